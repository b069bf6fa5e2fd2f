package worker

import (
	"context"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/refundq/refundq/internal/store"
)

// wait sleeps before the next call. A delay the rule itself requires (a
// settle delay) is waited out as it is, and when it is too long to sleep
// through the task is handed back to asynq for later without counting a
// failure. Otherwise the run's backoff chooses, at least the provider's
// hint; a backoff that is spent, or a hint too long to sleep through, gives
// the task back (counted, so a provider that never answers ends in review;
// not counted when the provider said when to call again).
func (h *run) wait(ctx context.Context, d decision) error {
	if h.stopping() {
		return errShutdown
	}
	wait := d.wait
	if wait <= 0 {
		next := h.b.NextBackOff()
		if next == backoff.Stop || d.hint > h.inRunWait {
			return h.giveBack(ctx)
		}
		wait = max(next, d.hint)
	} else if wait > h.inRunWait {
		_ = h.finish(ctx, store.Change{State: h.rec.State, LastError: h.rec.LastError, Due: h.dueAfter(wait),
			Entry: store.Entry{Event: "decision", Attempt: h.rec.Attempts, Detail: fmt.Sprintf("%s; next call in %s", d.reason, wait.Round(time.Second))}})
		return h.snooze("settle", fmt.Errorf("refund %s: %s", h.rec.RefundID, d.reason), wait)
	}
	if !h.sleep(ctx, wait) {
		if h.stopping() {
			return errShutdown
		}
		return h.giveBack(ctx)
	}
	return nil
}

// giveBack ends this run without a final answer; asynq runs the task again
// later, and on its last run finalize decides.
func (h *run) giveBack(ctx context.Context) error {
	if h.stopping() {
		return errShutdown
	}
	err := fmt.Errorf("refund %s: %s", h.rec.RefundID, h.last)
	if throttled(h.last) {
		// The provider answered, asking for time: not a failure to count.
		return h.handBack(ctx, "throttled", "provider asked to slow down: "+h.last.String(), h.last.RetryAfter)
	}
	if h.last.RetryAfter > 0 {
		return &retryAfterError{err: err, after: h.last.RetryAfter}
	}
	return err
}

func (h *Handler) newBackoff(ctx context.Context) backoff.BackOff {
	e := backoff.NewExponentialBackOff()
	e.InitialInterval = h.attempt.Initial
	e.MaxInterval = h.attempt.Max
	e.MaxElapsedTime = h.attempt.MaxElapsed
	var b backoff.BackOff = e
	if h.attempt.MaxTries > 0 {
		b = backoff.WithMaxRetries(b, h.attempt.MaxTries-1)
	}
	return backoff.WithContext(b, ctx)
}

// sleep waits d, and reports false if the context ended or the worker is
// stopping first.
func (h *Handler) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-h.quit:
		return false
	}
}

// handBack ends the run without calling the provider again now: the refund
// waits (reason in its record), and its task comes back after the wait
// without spending a retry (a guard's refusal, a 429, the order busy). A
// blocked refund stays blocked, since when it was: waiting shows nothing
// about our configuration.
func (h *run) handBack(ctx context.Context, why, reason string, after time.Duration) error {
	reason = "waiting: " + reason
	_ = h.finish(ctx, store.Change{State: h.rec.State, Blocked: h.rec.Blocked, LastError: reason, Due: h.dueAfter(after),
		Entry: store.Entry{Event: "decision", Attempt: h.rec.Attempts, Detail: fmt.Sprintf("%s; next call in %s", reason, after.Round(time.Millisecond))}})
	return h.snooze(why, fmt.Errorf("refund %s: %s", h.rec.RefundID, reason), after)
}

// Due times say when the recoverer should check that a task drives a
// refund: while a run holds it, until its lease would have run out if the
// run died; after it, the retry delay or the poll or snooze time; each plus
// the margin. They are on Redis's clock, as the recoverer reads them. A
// check that comes early finds the task alive and costs one look at asynq.
func (h *run) dueRunning() time.Time { return h.dueAfter(LeaseTTL) }

func (h *run) dueAfter(d time.Duration) time.Time {
	return h.lease.Now().Add(d + h.dueMargin)
}
