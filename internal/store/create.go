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
	res := s.CreateMany(ctx, []NewRefund{{Refund: r}})[0]
	return res.Record, res.Created, res.Err
}

// CreateSole is Create for a provider that refunds an order once: a new
// refund is refused with an *OrderTakenError while another refund on the same
// order is anything but failed. The check and the write are one step, so two
// producers cannot both get in.
func (s *Store) CreateSole(ctx context.Context, r tasks.Refund) (rec Record, created bool, err error) {
	res := s.CreateMany(ctx, []NewRefund{{Refund: r, Sole: true}})[0]
	return res.Record, res.Created, res.Err
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

// NewRefund is one refund for CreateMany.
type NewRefund struct {
	Refund tasks.Refund
	// Sole: its provider refunds an order once (see CreateSole).
	Sole bool
	// IfKnown creates nothing: the result is the refund's record when its
	// id is known, else an error wrapping ErrNotFound. For a refund a check
	// refused, when a known refund id answers with its record all the same.
	IfKnown bool
}

// CreateResult is what CreateMany did with one refund: Create's results.
type CreateResult struct {
	Record  Record
	Created bool
	Err     error
}

// CreateMany is Create, or CreateSole where NewRefund.Sole says so, for many
// refunds at once: one script run on Redis and one durability wait for all
// of them. The refunds are taken in order, so of two on an order refunded
// once, the earlier gets it. Each result is its own refund's; an error
// reaching Redis, or a durability wait that failed, is every result's error
// (refunds may have been created all the same: creating them again answers
// with their record).
func (s *Store) CreateMany(ctx context.Context, refunds []NewRefund) []CreateResult {
	out := make([]CreateResult, len(refunds))
	now := s.now()
	keys := make([]string, 1, 1+2*len(refunds))
	keys[0] = s.dueKey()
	args := make([]any, 3, 3+26*len(refunds))
	args[0], args[1], args[2] = s.prefix, now.UnixMilli(), s.grace().Milliseconds()
	newKeys := make([]string, len(refunds))
	var sent []int // the refunds in the script, by index
	for i, n := range refunds {
		r := n.Refund
		mode := "c"
		var fields []any
		switch {
		case n.IfKnown:
			mode = "k"
		case n.Sole:
			mode = "s"
		}
		if mode != "k" {
			var err error
			if fields, newKeys[i], err = s.newRecord(r, now); err != nil {
				out[i].Err = fmt.Errorf("store: create refund %s: %w", r.RefundID, err)
				continue
			}
		}
		keys = append(keys, s.recordKey(r.RefundID), s.orderKey(r.Provider, r.OrderID))
		args = append(args, mode, len(fields))
		args = append(args, fields...)
		sent = append(sent, i)
	}
	if len(sent) == 0 {
		return out
	}
	replies, err := createScript.Run(ctx, s.rdb, keys, args...).Slice()
	if err == nil && len(replies) != len(sent) {
		err = fmt.Errorf("%d replies for %d refunds", len(replies), len(sent))
	}
	if err != nil {
		// The script may have run before the error reached us (a timeout):
		// the refund may exist, and sending it again answers with its record.
		for _, i := range sent {
			out[i].Err = fmt.Errorf("store: create refund %s (it may have been created: enqueueing it again is safe): %w", refunds[i].Refund.RefundID, err)
		}
		return out
	}
	kept := false // whether a result rests on a write being kept
	for k, i := range sent {
		out[i] = s.created(refunds[i].Refund, newKeys[i], now, replies[k])
		kept = kept || out[i].Created || out[i].Record.RefundID != ""
	}
	if !kept {
		return out
	}
	// Also for refunds that existed: the producer that wrote one may have
	// died before its own wait, and this answer tells the caller it is kept.
	if err := s.keep(ctx); err != nil {
		for _, i := range sent {
			if out[i].Created || out[i].Record.RefundID != "" {
				out[i] = CreateResult{Err: fmt.Errorf("store: create refund %s: %w", refunds[i].Refund.RefundID, err)}
			}
		}
	}
	return out
}

// newRecord returns the record fields of a new refund r, and its key.
func (s *Store) newRecord(r tasks.Refund, now time.Time) ([]any, string, error) {
	key, err := uuid.NewV7()
	if err != nil {
		return nil, "", fmt.Errorf("new key: %w", err)
	}
	// Only what is not empty or zero: a record is read with missing fields
	// as zero, and every byte counts millions of times. create.lua reads
	// refund_id and provider as the first two.
	fields := make([]any, 0, 22)
	fields = append(fields, "refund_id", r.RefundID, "provider", r.Provider, "order_id", r.OrderID,
		"amount_minor", r.AmountMinor, "currency", r.Currency, "key", key.String(), "state", string(Queued),
		"created_at", msTime(now), "updated_at", msTime(now))
	for _, f := range [][2]string{{"transaction_id", r.TransactionID}, {"reason", r.Reason}, {"queue", s.queue}} {
		if f[1] != "" {
			fields = append(fields, f[0], f[1])
		}
	}
	if len(r.Metadata) > 0 {
		meta, err := json.Marshal(r.Metadata)
		if err != nil {
			return nil, "", fmt.Errorf("encode metadata: %w", err)
		}
		fields = append(fields, "metadata", string(meta))
	}
	return fields, key.String(), nil
}

// created reads create.lua's reply for refund r (see there), whose key was
// to be key.
func (s *Store) created(r tasks.Refund, key string, now time.Time, reply any) CreateResult {
	row, _ := reply.([]any)
	code := int64(-1)
	if len(row) > 0 {
		code, _ = row[0].(int64)
	}
	str := func(i int) string {
		if i >= len(row) {
			return ""
		}
		v, _ := row[i].(string)
		return v
	}
	switch {
	case code == 1:
		// What was just written, without reading it back (times as stored:
		// to the millisecond).
		now = time.UnixMilli(now.UnixMilli()).UTC()
		return CreateResult{Created: true, Record: Record{RefundID: r.RefundID, Provider: r.Provider, OrderID: r.OrderID,
			TransactionID: r.TransactionID, Amount: r.Money(), Reason: r.Reason, Metadata: r.Metadata, Key: key,
			State: Queued, Task: tasks.RefundTaskID(r.RefundID), Queue: s.queue, CreatedAt: now, UpdatedAt: now}}
	case code == 0:
		h := make(map[string]string, len(row)/2)
		for i := 1; i+1 < len(row); i += 2 {
			h[str(i)] = str(i + 1)
		}
		rec, err := parseRecord(h)
		if err != nil {
			return CreateResult{Err: err}
		}
		if diff := differences(rec.Refund(), r); diff != "" {
			return CreateResult{Record: rec, Err: fmt.Errorf("refund %s: %w: %s", r.RefundID, ErrConflict, diff)}
		}
		return CreateResult{Record: rec}
	case code == 2:
		return CreateResult{Err: &OrderTakenError{Provider: r.Provider, Order: r.OrderID, Owner: str(2), State: State(str(1))}}
	case code == 3:
		return CreateResult{Err: fmt.Errorf("refund %s: %w", r.RefundID, ErrNotFound)}
	case code == 4:
		return CreateResult{Err: fmt.Errorf("store: create refund %s: %s", r.RefundID, str(1))}
	}
	return CreateResult{Err: fmt.Errorf("store: create refund %s: unexpected reply %v", r.RefundID, reply)}
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
