package store

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/refundq/refundq/tasks"
)

//go:embed create.lua
var createLua string

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
// between would otherwise leave the refund queued forever. 30 s: with the
// recoverer's pass every 15 s, such a refund, or one whose task was deleted
// before it ran, gets a task within 45 s.
const DueQueued = 30 * time.Second

// WithQueuedGrace returns a Store whose new refunds are due for the
// recoverer's check d after creation instead of DueQueued: longer for a
// producer that queues a large backlog, shorter in tests.
func (s *Store) WithQueuedGrace(d time.Duration) *Store {
	c := *s
	c.queuedGrace = d
	return &c
}

// WithQueue returns a Store whose new refunds record the asynq queue their
// task goes to, so a recoverer serving another queue under the same prefix
// looks for the task, and re-creates it, where it is.
func (s *Store) WithQueue(q string) *Store {
	c := *s
	c.queue = q
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
	for _, f := range [][2]string{{"transaction_id", r.TransactionID}, {"reason", r.Reason}, {"queue", s.queue}} {
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
	args := append([]any{s.prefix, now.UnixMilli(), s.grace().Milliseconds(), soleFlag}, fields...)
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
			Task: tasks.RefundTaskID(r.RefundID), Queue: s.queue, CreatedAt: now, UpdatedAt: now}, true, nil
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
