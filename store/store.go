// Package store keeps refundq's record of every refund in Redis: its state,
// the provider's references, and an append-only history of every attempt. The
// record, not asynq's task, is the lasting truth about a refund: asynq deletes
// completed tasks and silently trims its archive.
//
// Every Redis key refundq owns is built in this file; callers use methods
// named for what they mean.
package store

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/refundq/refundq/tasks"
)

// State is where a refund stands.
type State string

// The states of a refund; see README.md for the diagram.
const (
	Queued      State = "queued"       // accepted, waiting for a worker
	Processing  State = "processing"   // a worker is sending it or reconciling
	Pending     State = "pending"      // the provider has it and has not finished
	Succeeded   State = "succeeded"    // money is back on the card (terminal)
	Failed      State = "failed"       // refused or given up without paying (terminal)
	NeedsReview State = "needs_review" // automation stopped; a human must look
)

// Final reports whether automation is done with the refund. Succeeded and
// Failed never change again; NeedsReview may still be settled by a human or a
// later reconcile.
func (s State) Final() bool { return s == Succeeded || s == Failed || s == NeedsReview }

// Record is the stored view of one refund.
type Record struct {
	RefundID      string
	Provider      string
	OrderID       string
	TransactionID string
	Amount        tasks.Money
	Reason        string
	Metadata      map[string]string
	// Key is the id this refund carries at the provider (Moyasar PG
	// transaction_id, ecomCharge tracking_id, …), chosen once at creation and
	// reused on every send.
	Key            string
	State          State
	ProviderRef    string    // the provider's id of the refund
	ProviderStatus string    // the provider's last status word
	Attempts       int       // requests sent to the provider
	InFlight       int       // the attempt sent without a recorded outcome, 0 if none
	SentAt         time.Time // when the last attempt was sent
	// Before is what the adapter read of the provider's state just before
	// the attempt in flight was sent (providers.Preparer), for its look-up.
	Before string
	// NotFoundAt is when a look-up first showed nothing of the attempt in
	// flight; a keyless provider's "not applied" needs a second look-up a
	// settle delay later.
	NotFoundAt time.Time
	// UnsureAt is when a look-up first got an answer from the provider that
	// could not show what became of the attempt in flight; the same a settle
	// delay later hands the refund to a human.
	UnsureAt time.Time
	// Refused is a refusal the provider gave after an earlier attempt of this
	// refund had been sent: it is believed only once a look-up shows nothing
	// of ours applied.
	Refused string
	// Blocked says why the refund cannot go on until our configuration is
	// fixed (credentials refused, provider not configured); "" if it can.
	Blocked      string
	Task         string // the asynq task id that drives the refund now
	LastError    string
	PollStep     int       // polls done while pending
	PendingSince time.Time // zero unless pending
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Refund returns the task payload the record was created from.
func (r Record) Refund() tasks.Refund {
	return tasks.Refund{
		Version: tasks.PayloadVersion, RefundID: r.RefundID, Provider: r.Provider,
		OrderID: r.OrderID, TransactionID: r.TransactionID, AmountMinor: r.Amount.Minor,
		Currency: r.Amount.Currency, Reason: r.Reason, Metadata: r.Metadata,
	}
}

// Entry is one line of a refund's history.
type Entry struct {
	At         time.Time `json:"at"`
	Event      string    `json:"event"` // created, send, lookup, prepare, decision, settled, …
	Attempt    int       `json:"attempt,omitempty"`
	Sent       string    `json:"sent,omitempty"`    // what was sent (amount, key); never a secret
	Outcome    string    `json:"outcome,omitempty"` // outcome kind
	Status     string    `json:"status,omitempty"`  // provider's status word
	HTTPStatus int       `json:"http_status,omitempty"`
	RequestID  string    `json:"request_id,omitempty"` // the provider's id of the request
	Detail     string    `json:"detail,omitempty"`
	DurationMS int64     `json:"duration_ms,omitempty"`
	State      State     `json:"state,omitempty"` // state after this entry
	// Count and Last fold repeated identical answers (a refund the provider
	// keeps pending, polled for weeks) into one entry: it stands for Count
	// answers, the last at Last.
	Count int       `json:"count,omitempty"`
	Last  time.Time `json:"last,omitempty"`
}

// Errors returned by Store.
var (
	ErrNotFound = errors.New("refund not found")
	// ErrConflict: the refund id exists with a different provider, order,
	// transaction, amount or currency.
	ErrConflict = errors.New("refund id already used for a different refund")
	// ErrClosed: the refund is succeeded or failed and cannot change.
	ErrClosed = errors.New("refund is closed")
)

// Store reads and writes refund records.
type Store struct {
	rdb         redis.UniversalClient
	prefix      string
	now         func() time.Time
	queuedGrace time.Duration
	// durable waits until the writes made so far are kept (on disk or on a
	// replica); nil waits for nothing. See WithDurability.
	durable func(context.Context) error
}

// WithDurability returns a Store that, after every write that guards money —
// a new refund, an attempt marked in flight, a final state — waits until
// durable says Redis keeps it (durability.Promise.Wait), and reports a write
// it could not confirm as an error wrapping ErrNotKept. An attempt whose mark
// is not confirmed is marked not sent again, and nothing goes out.
func (s *Store) WithDurability(durable func(context.Context) error) *Store {
	c := *s
	c.durable = durable
	return &c
}

// ErrNotKept: Redis acknowledged a write that guards money but did not
// confirm, in time, that it would keep it through a crash.
var ErrNotKept = errors.New("Redis did not confirm the write durable")

// keep waits for the writes made so far to be durable.
func (s *Store) keep(ctx context.Context) error {
	if s.durable == nil {
		return nil
	}
	if err := s.durable(ctx); err != nil {
		return fmt.Errorf("%w: %v", ErrNotKept, err)
	}
	return nil
}

func (s *Store) grace() time.Duration {
	if s.queuedGrace > 0 {
		return s.queuedGrace
	}
	return DueQueued
}

// New returns a Store whose keys start with prefix (e.g. "refundq:"); tests
// use a prefix of their own.
func New(rdb redis.UniversalClient, prefix string) *Store {
	return &Store{rdb: rdb, prefix: prefix, now: time.Now}
}

// A refund's keys differ in their first segment, not in a suffix: a refund
// id may hold colons, and "x:history" must not name refund x's history.
func (s *Store) recordKey(id string) string  { return s.prefix + "refund:" + id }
func (s *Store) historyKey(id string) string { return s.prefix + "history:" + id }
func (s *Store) leaseKey(id string) string   { return s.prefix + "lease:" + id }

// dueKey orders every open refund by when the recoverer should next make sure
// a task drives it.
func (s *Store) dueKey() string { return s.prefix + "due" }

// blockedKey indexes the open refunds blocked by configuration (kept by
// update.lua, which builds the same name from the prefix).
func (s *Store) blockedKey() string { return s.prefix + "blocked" }

// stateKey indexes the refunds in one state by when they entered it (kept
// by the scripts, which build the same name from the prefix).
func (s *Store) stateKey(st State) string { return s.prefix + "state:" + string(st) }

// orderKey holds the refunds of one order (a sorted set: small ones are
// stored compactly, where a set is a hash table).
func (s *Store) orderKey(provider, order string) string {
	return s.prefix + "order:" + provider + ":" + order
}

// slotKey names the refund of ours in flight on an order, for providers
// where only the order as a whole shows what a lost answer did.
func (s *Store) slotKey(provider, order string) string {
	return s.prefix + "inflight:" + provider + ":" + order
}

func (s *Store) workersKey(queue string) string { return s.prefix + "workers:" + queue }
func (s *Store) workerProviderKey(queue, provider string) string {
	return s.prefix + "workers:" + queue + ":provider:" + provider
}

// AnnounceWorker records, for ttl, that a worker serving queue is running
// with these providers configured. Workers repeat it well within ttl; a
// stopped fleet fades out on its own.
func (s *Store) AnnounceWorker(ctx context.Context, queue string, enabled []string, ttl time.Duration) error {
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, s.workersKey(queue), fmtTime(s.now()), ttl)
		for _, name := range enabled {
			p.Set(ctx, s.workerProviderKey(queue, name), fmtTime(s.now()), ttl)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: announce worker: %w", err)
	}
	return nil
}

// Serving reports whether a running worker serving queue has provider
// configured, and whether any worker serving queue is running at all.
func (s *Store) Serving(ctx context.Context, queue, provider string) (enabled, anyWorker bool, err error) {
	v, err := s.rdb.MGet(ctx, s.workersKey(queue), s.workerProviderKey(queue, provider)).Result()
	if err != nil {
		return false, false, fmt.Errorf("store: workers of queue %s: %w", queue, err)
	}
	return v[1] != nil, v[0] != nil, nil
}

// refOwnersKey maps each provider reference on an order to the refund that
// holds it.
func (s *Store) refOwnersKey(provider, order string) string {
	return s.prefix + "refs:" + provider + ":" + order
}

//go:embed create.lua
var createLua string

//go:embed update.lua
var updateLua string

var (
	createScript = newScript(createLua)
	updateScript = newScript(updateLua)
)

func newScript(src string) *redis.Script { return redis.NewScript(src) }

func isErr(err error, code string) bool { return err != nil && strings.HasPrefix(err.Error(), code) }

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// Create stores a new refund in state queued, or returns the existing record
// when the refund id is taken by the same refund (created is then false). The
// same id for a different refund is ErrConflict, naming the fields that differ.
func (s *Store) Create(ctx context.Context, r tasks.Refund) (rec Record, created bool, err error) {
	return s.create(ctx, r, false)
}

// CreateSole is Create for a provider that refunds an order once: a new
// refund is refused with an *OrderTakenError while another refund on the same
// order is anything but failed. The check and the write are one step, so two
// producers cannot both get in.
func (s *Store) CreateSole(ctx context.Context, r tasks.Refund) (rec Record, created bool, err error) {
	return s.create(ctx, r, true)
}

// ErrOrderTaken: the order already has a refund, and its provider refunds an
// order once.
var ErrOrderTaken = errors.New("the order already has a refund")

// OrderTakenError names the refund that already covers the order.
type OrderTakenError struct {
	Provider, Order, Owner string
	State                  State
}

func (e *OrderTakenError) Error() string {
	return fmt.Sprintf("%s refunds an order once, and order %s already has refund %s (%s)", e.Provider, e.Order, e.Owner, e.State)
}
func (e *OrderTakenError) Is(target error) bool { return target == ErrOrderTaken }

// SoleHolder returns, without writing, what CreateSole would refuse r with:
// an *OrderTakenError naming another refund on r's order that is anything but
// failed, or nil. For dry runs; CreateSole decides for real.
func (s *Store) SoleHolder(ctx context.Context, r tasks.Refund) error {
	ids, err := s.rdb.ZRange(ctx, s.orderKey(r.Provider, r.OrderID), 0, -1).Result()
	if err != nil {
		return fmt.Errorf("store: refunds of order %s: %w", r.OrderID, err)
	}
	if slices.Contains(ids, r.RefundID) {
		return nil // a known refund id answers with its record
	}
	recs, err := s.getMany(ctx, ids)
	if err != nil {
		return err
	}
	for _, o := range recs {
		if o.State != Failed {
			return &OrderTakenError{Provider: r.Provider, Order: r.OrderID, Owner: o.RefundID, State: o.State}
		}
	}
	return nil
}

// DueQueued is how long a new refund may wait for its first run before the
// recoverer makes sure its task exists (unless WithQueuedGrace says
// otherwise). Producers write the record, then the task; one that dies in
// between would otherwise leave the refund queued forever.
const DueQueued = 2 * time.Minute

// WithQueuedGrace returns a Store whose new refunds are due for the
// recoverer's check d after creation instead of DueQueued: longer for a
// producer that queues a large backlog, shorter in tests.
func (s *Store) WithQueuedGrace(d time.Duration) *Store {
	c := *s
	c.queuedGrace = d
	return &c
}

func (s *Store) create(ctx context.Context, r tasks.Refund, sole bool) (rec Record, created bool, err error) {
	key, err := uuid.NewV7()
	if err != nil {
		return Record{}, false, fmt.Errorf("store: new key: %w", err)
	}
	now := s.now()
	meta, err := json.Marshal(r.Metadata)
	if err != nil {
		return Record{}, false, fmt.Errorf("store: encode metadata: %w", err)
	}
	// Only what is not empty or zero: a record is read with missing fields
	// as zero, and every byte counts millions of times.
	fields := []any{"refund_id", r.RefundID, "provider", r.Provider, "order_id", r.OrderID,
		"amount_minor", r.AmountMinor, "currency", r.Currency, "key", key.String(), "state", string(Queued),
		"created_at", msTime(now), "updated_at", msTime(now)}
	for _, f := range [][2]string{{"transaction_id", r.TransactionID}, {"reason", r.Reason}} {
		if f[1] != "" {
			fields = append(fields, f[0], f[1])
		}
	}
	if len(r.Metadata) > 0 {
		fields = append(fields, "metadata", string(meta))
	}
	soleFlag := "0"
	if sole {
		soleFlag = "1"
	}
	args := append([]any{s.prefix, now.UnixMilli(), now.Add(s.grace()).UnixMilli(), soleFlag}, fields...)
	keys := []string{s.recordKey(r.RefundID), s.dueKey(), s.orderKey(r.Provider, r.OrderID)}
	res, err := createScript.Run(ctx, s.rdb, keys, args...).Int()
	if rest, ok := strings.CutPrefix(errString(err), "ORDERTAKEN "); ok {
		state, owner, _ := strings.Cut(rest, " ")
		return Record{}, false, &OrderTakenError{Provider: r.Provider, Order: r.OrderID, Owner: owner, State: State(state)}
	}
	if err != nil {
		return Record{}, false, fmt.Errorf("store: create refund %s: %w", r.RefundID, err)
	}
	// Also when the refund existed: the producer that wrote it may have died
	// before its own wait, and this answer tells the caller it is kept.
	if err := s.keep(ctx); err != nil {
		return Record{}, false, fmt.Errorf("store: create refund %s: %w", r.RefundID, err)
	}
	if res == 1 {
		// What was just written, without reading it back (times as stored:
		// to the millisecond).
		now = time.UnixMilli(now.UnixMilli()).UTC()
		return Record{RefundID: r.RefundID, Provider: r.Provider, OrderID: r.OrderID, TransactionID: r.TransactionID,
			Amount: r.Money(), Reason: r.Reason, Metadata: r.Metadata, Key: key.String(), State: Queued,
			Task: tasks.RefundTaskID(r.RefundID), CreatedAt: now, UpdatedAt: now}, true, nil
	}
	rec, err = s.Get(ctx, r.RefundID)
	if err != nil {
		return Record{}, false, err
	}
	if diff := differences(rec.Refund(), r); diff != "" {
		return rec, false, fmt.Errorf("refund %s: %w: %s", r.RefundID, ErrConflict, diff)
	}
	return rec, false, nil
}

// Differs names the fields in which t is not the refund the record was
// created from ("" when it is the same refund).
func (r Record) Differs(t tasks.Refund) string { return differences(r.Refund(), t) }

func differences(have, want tasks.Refund) string {
	var d []string
	cmp := func(name, a, b string) {
		if a != b {
			d = append(d, fmt.Sprintf("%s is %q, not %q", name, a, b))
		}
	}
	cmp("provider", have.Provider, want.Provider)
	cmp("order_id", have.OrderID, want.OrderID)
	cmp("transaction_id", have.TransactionID, want.TransactionID)
	cmp("amount", have.Money().String(), want.Money().String())
	return strings.Join(d, "; ")
}

// Get returns the record of refund id, or ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (Record, error) {
	h, err := s.rdb.HGetAll(ctx, s.recordKey(id)).Result()
	if err != nil {
		return Record{}, fmt.Errorf("store: get refund %s: %w", id, err)
	}
	if len(h) == 0 {
		return Record{}, fmt.Errorf("refund %s: %w", id, ErrNotFound)
	}
	return parseRecord(h)
}

func parseRecord(h map[string]string) (Record, error) {
	amt, err := strconv.ParseInt(h["amount_minor"], 10, 64)
	if err != nil {
		return Record{}, fmt.Errorf("store: refund %s: bad amount_minor %q", h["refund_id"], h["amount_minor"])
	}
	r := Record{
		RefundID: h["refund_id"], Provider: h["provider"], OrderID: h["order_id"],
		TransactionID: h["transaction_id"], Amount: tasks.Money{Minor: amt, Currency: h["currency"]},
		Reason: h["reason"], Key: h["key"], State: State(h["state"]),
		ProviderRef: h["provider_ref"], ProviderStatus: h["provider_status"],
		Attempts: atoi(h["attempts"]), InFlight: atoi(h["in_flight"]), LastError: h["last_error"],
		Before: h["before"], NotFoundAt: parseTime(h["nf_at"]), UnsureAt: parseTime(h["unsure_at"]), Refused: h["refused"], Blocked: h["blocked"],
		Task:     h["task"],
		PollStep: atoi(h["poll_step"]), PendingSince: parseTime(h["pending_since"]), SentAt: parseTime(h["sent_at"]),
		CreatedAt: parseTime(h["created_at"]), UpdatedAt: parseTime(h["updated_at"]),
	}
	if r.Task == "" {
		r.Task = tasks.RefundTaskID(r.RefundID)
	}
	if m := h["metadata"]; m != "" && m != "null" {
		if err := json.Unmarshal([]byte(m), &r.Metadata); err != nil {
			return Record{}, fmt.Errorf("store: refund %s: bad metadata: %w", r.RefundID, err)
		}
	}
	return r, nil
}

// Change is a state transition with what led to it.
type Change struct {
	State          State
	ProviderRef    string // kept unless set
	ProviderStatus string // kept unless set
	LastError      string // replaces the last error ("" clears it)
	// Settled clears in_flight: the outcome of the attempt in flight is known
	// (or the provider showed it was never applied). It frees the order's
	// in-flight slot.
	Settled  bool
	PollStep *int // set the poll step, when not nil
	// Due is when the recoverer should next make sure a task drives the
	// refund; zero keeps it. Final states leave the due index.
	Due time.Time
	// Task is the asynq task id that drives the refund from now on; "" keeps it.
	Task string
	// Blocked replaces the blocked reason ("" clears it: any change that is
	// not a block shows the configuration works again).
	Blocked string
	// Refused, when set, records a refusal to be believed only after a
	// look-up (cleared by the next send).
	Refused string
	// NotFoundAt, when set, records the first look-up that showed nothing of
	// the attempt in flight (cleared by the next send).
	NotFoundAt time.Time
	// UnsureAt, when set, records the first look-up whose answer could not
	// show what became of the attempt in flight (cleared by the next send).
	UnsureAt time.Time
	// Fold: if the history's last entry is the same answer (event, outcome,
	// provider status, state), count this one into it instead of adding one.
	Fold  bool
	Entry Entry
}

func (c Change) fields(now time.Time) []any {
	fields := []any{"state", string(c.State), "last_error", c.LastError, "blocked", c.Blocked}
	if c.ProviderRef != "" {
		fields = append(fields, "provider_ref", c.ProviderRef)
	}
	if c.ProviderStatus != "" {
		fields = append(fields, "provider_status", c.ProviderStatus)
	}
	if c.Settled {
		fields = append(fields, "in_flight", 0)
	}
	if c.PollStep != nil {
		fields = append(fields, "poll_step", *c.PollStep)
	}
	if c.Task != "" {
		fields = append(fields, "task", c.Task)
	}
	if c.Refused != "" {
		fields = append(fields, "refused", c.Refused)
	}
	if !c.NotFoundAt.IsZero() {
		fields = append(fields, "nf_at", msTime(c.NotFoundAt))
	}
	if !c.UnsureAt.IsZero() {
		fields = append(fields, "unsure_at", msTime(c.UnsureAt))
	}
	if c.State == Pending {
		fields = append(fields, "pending_since_if_unset", msTime(now))
	} else {
		fields = append(fields, "pending_since", "")
	}
	return fields
}

// ErrRefTaken: the provider reference a change would record already belongs
// to another refund on the same order.
var ErrRefTaken = errors.New("provider reference already belongs to another refund")

// RefTakenError names the refund that holds the reference.
type RefTakenError struct {
	Ref, Owner string
}

func (e *RefTakenError) Error() string {
	return fmt.Sprintf("provider reference %s already belongs to refund %s on this order", e.Ref, e.Owner)
}
func (e *RefTakenError) Is(target error) bool { return target == ErrRefTaken }

// write is one run of update.lua for the refund a lease holds.
type write struct {
	entry   Entry
	send    string // "0", "1", "2": see update.lua
	due     time.Time
	release bool // give the lease up in the same script
	fold    bool // see Change.Fold
}

// update runs update.lua: guard, set fields, move the state and due
// indexes, append the history entry.
func (l *Lease) update(ctx context.Context, w write, fields ...any) (int, error) {
	s := l.s
	now := s.now()
	w.entry.At = now
	hist, err := json.Marshal(w.entry)
	if err != nil {
		return 0, err
	}
	due := ""
	if !w.due.IsZero() {
		due = strconv.FormatInt(w.due.UnixMilli(), 10)
	}
	release := "0"
	if w.release {
		release = "1"
	}
	if w.fold {
		release += "f"
	}
	args := append([]any{s.prefix, strconv.FormatInt(l.token, 10), l.owner, string(hist), w.send,
		now.UnixMilli(), due, release, "updated_at", msTime(now)}, fields...)
	refs := "" // no claim checked, none written
	if l.claims {
		refs = s.refOwnersKey(l.provider, l.order)
	}
	keys := []string{s.recordKey(l.id), s.historyKey(l.id), s.dueKey(),
		refs, s.slotKey(l.provider, l.order), s.leaseKey(l.id)}
	n, err := updateScript.Run(ctx, s.rdb, keys, args...).Int()
	if err != nil {
		if holder, ok := strings.CutPrefix(errString(err), "REFTAKEN "); ok {
			return 0, &RefTakenError{Owner: holder}
		}
		if rest, ok := strings.CutPrefix(errString(err), "ORDERBUSY "); ok {
			state, holder, _ := strings.Cut(rest, " ")
			return 0, &OrderBusyError{Order: l.order, Holder: holder, HolderState: State(state)}
		}
		switch {
		case isErr(err, "NOTFOUND"):
			return 0, ErrNotFound
		case isErr(err, "CLOSED"):
			return 0, ErrClosed
		case isErr(err, "FENCED"):
			return 0, ErrFenced
		}
		return 0, err
	}
	return n, nil
}

// ErrOrderBusy: another refund of ours is in flight on the same order, at a
// provider where only the order as a whole shows what a lost answer did.
var ErrOrderBusy = errors.New("another refund is in flight on the order")

// OrderBusyError names the refund in flight on the order, and its state.
type OrderBusyError struct {
	Order, Holder string
	HolderState   State
}

func (e *OrderBusyError) Error() string {
	return fmt.Sprintf("refund %s (%s) is in flight on order %s; one at a time where the provider keeps no refund key", e.Holder, e.HolderState, e.Order)
}
func (e *OrderBusyError) Is(target error) bool { return target == ErrOrderBusy }

// History returns every entry of refund id's history, oldest first.
func (s *Store) History(ctx context.Context, id string) ([]Entry, error) {
	var head *redis.SliceCmd
	var list *redis.StringSliceCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		head = p.HMGet(ctx, s.recordKey(id), "created_at", "provider", "amount_minor", "currency", "order_id")
		list = p.LRange(ctx, s.historyKey(id), 0, -1)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: history of %s: %w", id, err)
	}
	out := make([]Entry, 0, len(list.Val())+1)
	// The creation is not stored as an entry (the record and the events
	// stream have it); the history starts with it all the same.
	if v := head.Val(); len(v) == 5 && v[0] != nil {
		str := func(i int) string { x, _ := v[i].(string); return x }
		minor, _ := strconv.ParseInt(str(2), 10, 64)
		m := tasks.Money{Minor: minor, Currency: str(3)}
		out = append(out, Entry{At: parseTime(str(0)), Event: "created", State: Queued,
			Detail: fmt.Sprintf("%s refund of %s on order %s", str(1), m, str(4))})
	}
	for _, line := range list.Val() {
		var e Entry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			return nil, fmt.Errorf("store: history of %s: %w", id, err)
		}
		out = append(out, e)
	}
	return out, nil
}

// OtherRefs returns the provider references of the other refunds refundq
// knows on the same order. A provider without a refund key matches a lost
// answer by amount; these keep it from taking another refund for this one.
func (s *Store) OtherRefs(ctx context.Context, rec Record) ([]string, error) {
	ids, err := s.rdb.ZRange(ctx, s.orderKey(rec.Provider, rec.OrderID), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("store: refunds of order %s: %w", rec.OrderID, err)
	}
	others := ids[:0]
	for _, id := range ids {
		if id != rec.RefundID {
			others = append(others, id)
		}
	}
	recs, err := s.getMany(ctx, others)
	if err != nil {
		return nil, err
	}
	var refs []string
	for _, r := range recs {
		if r.ProviderRef != "" {
			refs = append(refs, r.ProviderRef)
		}
	}
	return refs, nil
}

// Overdue returns up to limit open refunds whose due time has passed: the
// recoverer makes sure each has a task, then pushes it back with Postpone.
func (s *Store) Overdue(ctx context.Context, now time.Time, limit int) ([]Record, error) {
	ids, err := s.rdb.ZRangeByScore(ctx, s.dueKey(), &redis.ZRangeBy{
		Min: "-inf", Max: strconv.FormatInt(now.UnixMilli(), 10), Count: int64(limit),
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("store: overdue refunds: %w", err)
	}
	recs, err := s.getMany(ctx, ids)
	if err != nil {
		return nil, err
	}
	// A record gone (expired, deleted by hand) has nothing left to recover.
	if len(recs) < len(ids) {
		have := make(map[string]bool, len(recs))
		for _, r := range recs {
			have[r.RefundID] = true
		}
		for _, id := range ids {
			if !have[id] {
				s.rdb.ZRem(ctx, s.dueKey(), id)
			}
		}
	}
	return recs, nil
}

// Postpone sets when the recoverer next looks at an open refund, if it is
// still in the due index.
func (s *Store) Postpone(ctx context.Context, id string, due time.Time) error {
	return s.rdb.ZAddXX(ctx, s.dueKey(), redis.Z{Score: float64(due.UnixMilli()), Member: id}).Err()
}

// Due returns when the recoverer next looks at refund id (zero when it is
// not open).
func (s *Store) Due(ctx context.Context, id string) (time.Time, error) {
	ms, err := s.rdb.ZScore(ctx, s.dueKey(), id).Result()
	if errors.Is(err, redis.Nil) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("store: due time of %s: %w", id, err)
	}
	return time.UnixMilli(int64(ms)), nil
}

// ListState returns up to limit refunds in state st, oldest in that state
// first, after skipping offset, and how many there are in all.
func (s *Store) ListState(ctx context.Context, st State, offset, limit int) ([]Record, int, error) {
	ids, err := s.rdb.ZRange(ctx, s.stateKey(st), int64(offset), int64(offset+limit)-1).Result()
	if err != nil {
		return nil, 0, fmt.Errorf("store: list %s: %w", st, err)
	}
	total, err := s.rdb.ZCard(ctx, s.stateKey(st)).Result()
	if err != nil {
		return nil, 0, fmt.Errorf("store: count %s: %w", st, err)
	}
	recs, err := s.getMany(ctx, ids)
	return recs, int(total), err
}

// OldestIn returns when the refund longest in state st entered it (zero when
// none is), and how many refunds are in it.
func (s *Store) OldestIn(ctx context.Context, st State) (time.Time, int, error) {
	z, err := s.rdb.ZRangeWithScores(ctx, s.stateKey(st), 0, 0).Result()
	if err != nil {
		return time.Time{}, 0, fmt.Errorf("store: oldest %s: %w", st, err)
	}
	n, err := s.rdb.ZCard(ctx, s.stateKey(st)).Result()
	if err != nil || len(z) == 0 {
		return time.Time{}, int(n), err
	}
	return time.UnixMilli(int64(z[0].Score)), int(n), nil
}

// States lists every state, open ones first.
var States = []State{Queued, Processing, Pending, NeedsReview, Succeeded, Failed}

// List returns up to limit records (limit <= 0: all), state by state, each
// state oldest first. For paging through one state, see ListState.
func (s *Store) List(ctx context.Context, limit int) ([]Record, error) {
	var out []Record
	for _, st := range States {
		n := -1
		if limit > 0 {
			n = limit - len(out)
			if n <= 0 {
				break
			}
		}
		ids, err := s.rdb.ZRange(ctx, s.stateKey(st), 0, int64(n)).Result()
		if err != nil {
			return nil, fmt.Errorf("store: list %s: %w", st, err)
		}
		if limit > 0 && len(ids) > n {
			ids = ids[:n]
		}
		recs, err := s.getMany(ctx, ids)
		if err != nil {
			return nil, err
		}
		out = append(out, recs...)
	}
	return out, nil
}

func (s *Store) getMany(ctx context.Context, ids []string) ([]Record, error) {
	const batch = 500
	out := make([]Record, 0, len(ids))
	for len(ids) > 0 {
		n := min(batch, len(ids))
		cmds := make([]*redis.MapStringStringCmd, n)
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, id := range ids[:n] {
				cmds[i] = p.HGetAll(ctx, s.recordKey(id))
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("store: list: %w", err)
		}
		for _, c := range cmds {
			if len(c.Val()) == 0 {
				continue
			}
			r, err := parseRecord(c.Val())
			if err != nil {
				return nil, err
			}
			out = append(out, r)
		}
		ids = ids[n:]
	}
	return out, nil
}

func fmtTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// msTime is how a record keeps a time: unix milliseconds, a third of the
// bytes of RFC 3339, in every one of millions of records.
func msTime(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

func parseTime(s string) time.Time {
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.UnixMilli(ms).UTC()
	}
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}
