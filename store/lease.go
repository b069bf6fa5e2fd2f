package store

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// One owner at a time: asynq may hand a task to a second worker while the
// first is still in a slow call (a run that overran its timeout, a handler
// pushed back at shutdown). Each run takes a lease on the refund; taking it
// bumps the refund's fence, and every write carries the token it got, so an
// owner that lost its lease cannot overwrite a newer owner's outcome.

//go:embed lease.lua
var leaseLua string

//go:embed renew.lua
var renewLua string

//go:embed release.lua
var releaseLua string

var (
	leaseScript   = newScript(leaseLua)
	renewScript   = newScript(renewLua)
	releaseScript = newScript(releaseLua)
)

// ErrBusy: another worker holds the refund's lease.
var ErrBusy = errors.New("refund is being handled by another worker")

// ErrFenced: a newer owner took the refund; this owner must stop writing.
var ErrFenced = errors.New("lease lost to a newer owner")

// BusyError says how long the current owner's lease still runs.
type BusyError struct{ Remaining time.Duration }

func (e *BusyError) Error() string {
	return fmt.Sprintf("%v (lease ends in %s)", ErrBusy, e.Remaining.Round(time.Millisecond))
}
func (e *BusyError) Is(target error) bool { return target == ErrBusy }

// Lease is one worker's hold on one refund. Its writes go through the Store
// methods that take it.
type Lease struct {
	s     *Store
	id    string
	token int64
	ttl   time.Duration
}

// Token is the fencing token of the lease.
func (l *Lease) Token() int64 { return l.token }

// Acquire takes refund id for this worker for ttl. It returns a *BusyError
// (errors.Is ErrBusy) while another worker holds it.
func (s *Store) Acquire(ctx context.Context, id string, ttl time.Duration) (*Lease, error) {
	res, err := leaseScript.Run(ctx, s.rdb, []string{s.recordKey(id), s.leaseKey(id)}, ttl.Milliseconds()).Int64Slice()
	if err != nil {
		if isErr(err, "NOTFOUND") {
			return nil, fmt.Errorf("refund %s: %w", id, ErrNotFound)
		}
		return nil, fmt.Errorf("store: lease refund %s: %w", id, err)
	}
	if res[0] == 0 {
		return nil, &BusyError{Remaining: time.Duration(res[1]) * time.Millisecond}
	}
	return &Lease{s: s, id: id, token: res[0], ttl: ttl}, nil
}

// Renew extends the lease by its ttl; ErrFenced if it was lost.
func (l *Lease) Renew(ctx context.Context) error {
	ok, err := renewScript.Run(ctx, l.s.rdb, []string{l.s.leaseKey(l.id)}, strconv.FormatInt(l.token, 10), l.ttl.Milliseconds()).Int()
	if err != nil {
		return fmt.Errorf("store: renew lease on %s: %w", l.id, err)
	}
	if ok == 0 {
		return fmt.Errorf("refund %s: %w", l.id, ErrFenced)
	}
	return nil
}

// Release gives the refund up, if this lease still holds it.
func (l *Lease) Release(ctx context.Context) error {
	return releaseScript.Run(ctx, l.s.rdb, []string{l.s.leaseKey(l.id)}, strconv.FormatInt(l.token, 10)).Err()
}

// KeepAlive renews the lease every ttl/3 until ctx ends. It calls lost once
// if the lease cannot be renewed, so the owner stops before a newer one
// starts.
func (l *Lease) KeepAlive(ctx context.Context, lost func(error)) {
	t := time.NewTicker(l.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := l.Renew(ctx); err != nil && ctx.Err() == nil {
				if errors.Is(err, ErrFenced) {
					lost(err)
					return
				}
				// A Redis blip: keep trying while the lease has time left.
			}
		}
	}
}

// MarkSent records, before the request leaves the process, that a new
// attempt is in flight: state processing, attempts+1, in_flight=attempt,
// sent_at=now. A worker that later finds in_flight set without an outcome
// knows the provider may have applied it and must reconcile first. It
// returns the attempt number.
func (l *Lease) MarkSent(ctx context.Context, sent string) (int, error) {
	n, err := l.s.update(ctx, l.id, l.token, Entry{Event: "send", Sent: sent, State: Processing}, true, "",
		"state", string(Processing), "sent_at", fmtTime(l.s.now()))
	if err != nil {
		return 0, fmt.Errorf("store: mark refund %s sent: %w", l.id, err)
	}
	return n, nil
}

// Apply records a change under the lease; see Change. A refund that is
// succeeded or failed never changes again (ErrClosed), and a lost lease
// writes nothing (ErrFenced).
func (l *Lease) Apply(ctx context.Context, c Change) error {
	return l.s.apply(ctx, l.id, l.token, c)
}

// ErrNotReview: only a refund in needs_review can be settled by hand.
var ErrNotReview = errors.New("refund is not in needs_review")

// Settle closes a needs_review refund by hand, as succeeded or failed, after
// a human has asked the provider. It takes the refund's lease so no worker
// is driving it meanwhile.
func (s *Store) Settle(ctx context.Context, id string, state State, providerRef, note string) error {
	if state != Succeeded && state != Failed {
		return fmt.Errorf("settle refund %s: state must be succeeded or failed, not %q", id, state)
	}
	l, err := s.Acquire(ctx, id, 30*time.Second)
	if err != nil {
		return err
	}
	defer l.Release(ctx)
	rec, err := s.Get(ctx, id)
	if err != nil {
		return err
	}
	if rec.State != NeedsReview {
		return fmt.Errorf("refund %s is %s: %w", id, rec.State, ErrNotReview)
	}
	lastError := ""
	if state == Failed {
		lastError = "settled by hand as failed: " + note
	}
	return l.Apply(ctx, Change{State: state, ProviderRef: providerRef, LastError: lastError, Settled: true,
		Entry: Entry{Event: "settled", Detail: note}})
}
