package store

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/refundq/refundq/tasks"
)

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
	Blocked string
	// BlockedAt is when the refund was first blocked in a row of blocks
	// (zero when it is not blocked): the wait between two tries grows with it.
	BlockedAt time.Time
	Task      string // the asynq task id that drives the refund now
	// Queue is the asynq queue of that task ("" in records written before it
	// was kept: the recoverer's own queue).
	Queue string
	// Resumes counts the tasks the recoverer re-created after asynq had
	// archived the refund's task with its retries spent.
	Resumes   int
	LastError string
	PollStep  int // polls done while pending
	// Review says why the refund is in needs_review ("" before it first
	// was); RecheckN counts the look-ups made since, and RecheckAt is when
	// the next is due (zero: none will be).
	Review    ReviewKind
	RecheckN  int
	RecheckAt time.Time
	// SettledBy says who settled it out of needs_review: ByLookup or
	// ByPerson ("" if it never was).
	SettledBy    string
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
	Last  time.Time `json:"last,omitzero"`
	// Actor is who made a change by hand (settled, reopened): an API
	// token's name and id, or the person refundctl ran as.
	Actor string `json:"actor,omitempty"`
	// ProviderRef is the provider's reference a person settled with.
	ProviderRef string `json:"provider_ref,omitempty"`
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
		Task: h["task"], Queue: h["queue"], BlockedAt: parseTime(h["blocked_at"]), Resumes: atoi(h["resumes"]),
		Review: ReviewKind(h["review_kind"]), RecheckN: atoi(h["recheck_n"]), RecheckAt: parseTime(h["recheck_at"]),
		SettledBy: h["settled_by"],
		PollStep:  atoi(h["poll_step"]), PendingSince: parseTime(h["pending_since"]), SentAt: parseTime(h["sent_at"]),
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

func (s *Store) getMany(ctx context.Context, ids []string) ([]Record, error) {
	recs, bad, err := s.getEach(ctx, ids)
	for id, berr := range bad {
		return nil, fmt.Errorf("store: refund %s: %w", id, berr)
	}
	return recs, err
}

// getEach reads the records of ids (missing ones left out) and names the
// ones that cannot be parsed instead of failing on them.
func (s *Store) getEach(ctx context.Context, ids []string) ([]Record, map[string]error, error) {
	const batch = 500
	out := make([]Record, 0, len(ids))
	var bad map[string]error
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
			return nil, nil, fmt.Errorf("store: list: %w", err)
		}
		for i, c := range cmds {
			if len(c.Val()) == 0 {
				continue
			}
			r, err := parseRecord(c.Val())
			if err != nil {
				if bad == nil {
					bad = map[string]error{}
				}
				bad[ids[i]] = err
				continue
			}
			out = append(out, r)
		}
		ids = ids[n:]
	}
	return out, bad, nil
}

func fmtTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// msTime is how a record keeps a time: unix milliseconds, a third of the
// bytes of RFC 3339, in every one of millions of records.
func msTime(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// parseTime and atoi read a missing field (most of a record's, on every
// read) without building the error a failed parse allocates.
func parseTime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.UnixMilli(ms).UTC()
	}
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}

func atoi(s string) int {
	if s == "" {
		return 0
	}
	n, _ := strconv.Atoi(s)
	return n
}
