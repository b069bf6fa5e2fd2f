package store

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

//go:embed update.lua
var updateLua string

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
	// Task is the asynq task id that drives the refund from now on, and
	// Queue its queue; "" keeps them.
	Task, Queue string
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
	// Review, when set, records why the refund is in needs_review, and
	// RecheckAt when a look-up is next due (zero: none); RecheckN, when not
	// nil, sets the count of look-ups made in review.
	Review    ReviewKind
	RecheckAt time.Time
	RecheckN  *int
	// SettledBy records who settled the refund out of needs_review
	// (ByLookup, ByPerson).
	SettledBy string
	// ClearResumes starts the recoverer's count of spent tasks over: the
	// refund is sent on again (from review), as after Reopen.
	ClearResumes bool
	// Result, when its Key is set, is also written as the result of the
	// asynq task that drives the refund, in the same round trip.
	Result TaskResult
}

// TaskResult is an asynq task's result: Value in the field "result" of the
// task's hash, Key (tasks.ResultKey), as asynq's ResultWriter writes it.
// Only for a store on the Redis (and database) that asynq uses.
type TaskResult struct {
	Key   string
	Value []byte
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
	if c.Queue != "" {
		fields = append(fields, "queue", c.Queue)
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
	if c.Review != "" {
		at := ""
		if !c.RecheckAt.IsZero() {
			at = msTime(c.RecheckAt)
		}
		fields = append(fields, "review_kind", string(c.Review), "recheck_at", at)
	}
	if c.RecheckN != nil {
		fields = append(fields, "recheck_n", *c.RecheckN)
	}
	if c.SettledBy != "" {
		fields = append(fields, "settled_by", c.SettledBy)
	}
	if c.ClearResumes {
		fields = append(fields, "resumes", "")
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
	result  TaskResult
	send    string // "0", "1", "2": see update.lua
	due     time.Time
	release bool // give the lease up in the same script
	fold    bool // see Change.Fold
}

// update runs update.lua: guard, set fields, move the state and due
// indexes, append the history entry.
func (l *Lease) update(ctx context.Context, w write, fields ...any) (int, error) {
	s := l.s
	now := l.Now()
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
		now.UnixMilli(), due, release, w.result.Value, "updated_at", msTime(now)}, fields...)
	refs := "" // no claim checked, none written
	if l.claims {
		refs = s.refOwnersKey(l.provider, l.order)
	}
	keys := []string{s.recordKey(l.id), s.historyKey(l.id), s.dueKey(),
		refs, s.slotKey(l.provider, l.order), s.leaseKey(l.id), s.recheckKey(), w.result.Key}
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
