package worker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/sirupsen/logrus"

	"github.com/refundq/refundq/internal/spans"
	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/tasks"
)

func (h *run) apply(ctx context.Context, c store.Change) error {
	return h.write(ctx, c, false)
}

// finish records the change that ends the run and gives the lease up in
// the same round trip.
func (h *run) finish(ctx context.Context, c store.Change) error {
	return h.write(ctx, c, true)
}

func (h *run) write(ctx context.Context, c store.Change, last bool) error {
	if c.Task == "" {
		c.Task = h.task
	}
	if c.Task != "" {
		c.Queue = h.queue
	}
	if c.Due.IsZero() && !c.State.Final() {
		c.Due = h.dueRunning()
	}
	var err error
	if last {
		err = h.lease.Finish(recordCtx(ctx), c)
	} else {
		err = h.lease.Apply(recordCtx(ctx), c)
	}
	if err != nil && !errors.Is(err, store.ErrRefTaken) {
		h.log.WithError(err).Warn("could not record the refund's progress")
	}
	if err == nil && c.State != h.rec.State {
		h.metrics.transitions.WithLabelValues(h.rec.Provider, string(h.rec.State), string(c.State)).Inc()
		h.rec.State = c.State
	}
	return err
}

// settle records a success or a pending refund.
func (h *run) settle(ctx context.Context, d decision, out providers.Outcome, e store.Entry) error {
	if d.step == succeed {
		return h.close(ctx, store.Succeeded, "", out, e)
	}
	return h.pending(ctx, out, e)
}

// refTaken records that the provider's answer named a refund another of our
// refunds holds.
func (h *run) refTaken(ctx context.Context, e store.Entry, err error) {
	out := providers.Outcome{Kind: providers.Unknown, HTTPStatus: e.HTTPStatus, Reason: err.Error()}
	h.log.WithError(err).Warn("provider answer names another refund's reference; reconciling again")
	e.Outcome, e.Detail = out.Kind.String(), strings.TrimSpace(e.Detail+" → not ours: "+err.Error())
	_ = h.apply(ctx, store.Change{State: h.rec.State, LastError: e.Event + ": " + out.String(), Entry: e})
}

// close moves a refund to a final state (or needs_review). Any final state,
// failed included, completes the task: the task did its job, and the
// refund's record (and the task's result) say how it ended. Archiving a
// provider's refusal would count an ordinary business outcome as an asynq
// failure, and page whoever alerts on asynq's failure rate.
// e is the history entry of the call that decided it (zero when no call did).
func (h *run) close(ctx context.Context, state store.State, reason string, out providers.Outcome, e store.Entry) error {
	return h.closeAs(ctx, state, "", reason, out, e)
}

// toReview moves the refund to needs_review for kind's reason. A kind a
// later look-up may settle gets its first look-up scheduled in the same
// write.
func (h *run) toReview(ctx context.Context, kind store.ReviewKind, reason string, out providers.Outcome, e store.Entry) error {
	return h.closeAs(ctx, store.NeedsReview, kind, reason, out, e)
}

func (h *run) closeAs(ctx context.Context, state store.State, kind store.ReviewKind, reason string, out providers.Outcome, e store.Entry) error {
	rec := h.rec
	if e.Event == "" {
		e = store.Entry{Event: "decision", Attempt: rec.Attempts}
	}
	if reason != "" && reason != e.Detail {
		e.Detail = strings.TrimSpace(e.Detail + " → " + reason)
	}
	// needs_review keeps an attempt in flight as it is (and so the order's
	// slot): nothing is known of it until a human settles it.
	settled := state != store.NeedsReview || out.Kind == providers.Review
	c := store.Change{
		State: state, ProviderRef: out.Reference, ProviderStatus: out.Status, LastError: reason, Settled: settled,
		Entry: e,
	}
	if state == store.NeedsReview {
		if kind == "" {
			kind = store.ReviewStuck
		}
		c.Review = kind
		if kind.Rechecked() && h.review.first() > 0 {
			c.RecheckAt = h.lease.Now().Add(h.review.first())
		}
		zero := 0
		c.RecheckN = &zero
	}
	c.Result = h.taskResult(ctx, state, out.Reference)
	err := h.finish(ctx, c)
	if errors.Is(err, store.ErrClosed) {
		return nil
	}
	if err != nil {
		return err // not recorded: the re-run reconciles and records it
	}
	if c.Result.Key == "" {
		h.writeResult(state, out.Reference)
	}
	f := logrus.Fields{"state": state, "provider_ref": out.Reference, "reason": reason}
	switch state {
	case store.NeedsReview:
		f["review_kind"] = kind
		if !c.RecheckAt.IsZero() {
			f["recheck_at"] = c.RecheckAt
		}
		h.log.WithFields(f).Error("refund needs review")
	default:
		h.log.WithFields(f).Info("refund " + string(state))
	}
	return nil
}

// pending records that the provider is still working on the refund and
// schedules the next poll, or hands it to a human past the horizon.
func (h *run) pending(ctx context.Context, out providers.Outcome, e store.Entry) error {
	rec := h.rec
	sched := h.entry.Schedule
	if since := h.lease.Now().Sub(rec.PendingSince); !rec.PendingSince.IsZero() && since > sched.Horizon {
		reason := fmt.Sprintf("still pending at the provider after %s (status %q); ask the provider, then settle by hand",
			since.Round(time.Second), out.Status)
		return h.toReview(ctx, store.ReviewPending, reason, out, e)
	}
	next := rec.PollStep + 1
	delay := sched.Delay(next-1, out.RetryAfter)
	e.Detail = strings.TrimSpace(fmt.Sprintf("%s → poll %d in %s", e.Detail, next, delay))
	pollID := tasks.PollTaskID(rec.RefundID, next)
	c := store.Change{
		State: store.Pending, ProviderRef: out.Reference, ProviderStatus: out.Status, Settled: true, PollStep: &next,
		Task: pollID, Due: h.dueAfter(delay), Entry: e, Fold: true, Result: h.taskResult(ctx, store.Pending, out.Reference),
	}
	err := h.finish(ctx, c)
	if errors.Is(err, store.ErrClosed) {
		return nil
	}
	if err != nil {
		return err
	}
	if c.Result.Key == "" {
		h.writeResult(store.Pending, out.Reference)
	}
	// The poll's run is a child of this one: the refund stays one trace.
	task, err := tasks.NewPollTask(tasks.Poll{RefundID: rec.RefundID, Step: next, Trace: spans.Inject(ctx)}, delay, h.queue)
	if err != nil {
		return fmt.Errorf("%v: %w", err, asynq.SkipRetry)
	}
	if _, err := h.client.EnqueueContext(recordCtx(ctx), task); err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		// The record names the poll task; the recoverer creates it when it
		// is overdue and missing.
		h.log.WithError(err).Warn("could not schedule the poll; the recoverer will")
	}
	h.log.WithFields(logrus.Fields{"state": store.Pending, "provider_status": out.Status, "poll_step": next, "poll_in": delay.String()}).Debug("refund pending; poll scheduled")
	return nil
}

// block keeps the refund where it is, with the reason, and hands the task
// back to be tried again without spending a retry: a wrong key or a missing
// variable must not end refunds, and fixing it resumes them. The wait grows
// with how long the refund has been blocked (blockedWait): a key rotated in
// twenty seconds costs seconds, a provider left unconfigured for a day costs
// one call every few minutes.
// settled says the attempt in flight was refused unapplied (a send that met
// an auth failure).
func (h *run) block(ctx context.Context, reason string, settled bool) error {
	rec := h.rec
	reason = "blocked: " + reason
	var since time.Duration
	if !rec.BlockedAt.IsZero() {
		since = h.lease.Now().Sub(rec.BlockedAt)
	}
	wait := blockedWait(since, h.blockedRetry)
	err := h.finish(ctx, store.Change{State: rec.State, Blocked: reason, LastError: reason, Settled: settled,
		Due: h.dueAfter(wait), Entry: store.Entry{Event: "decision", Attempt: rec.Attempts, Detail: fmt.Sprintf("%s; next try in %s", reason, wait.Round(time.Second))}})
	if err != nil && !errors.Is(err, store.ErrClosed) {
		return err
	}
	h.log.WithFields(logrus.Fields{"state": rec.State, "reason": reason, "retry_in": wait.String()}).Error("refund blocked")
	return h.snooze("blocked", errors.New(reason), wait)
}

// firstBlockedWait is the wait after a refund is first blocked.
const firstBlockedWait = 30 * time.Second

// blockedWait is the wait before the next try of a refund blocked for
// since: as long as it has been blocked (so the waits double), from
// firstBlockedWait up to longest.
func blockedWait(since, longest time.Duration) time.Duration {
	return min(max(since, firstBlockedWait), longest)
}

// finalize runs when asynq will not run the task again: the refund moves to
// needs_review with what is known, never to failed on a guess.
func (h *run) finalize(ctx context.Context, cause error) error {
	retry, _ := asynq.GetRetryCount(ctx)
	rec := h.rec
	reason := fmt.Sprintf("outcome still unknown after %d runs (last: %v); check the provider before any resend", retry+1, cause)
	kind := store.ReviewUnknown
	switch {
	case rec.State == store.Pending:
		kind = store.ReviewPending
	case rec.InFlight == 0:
		kind = store.ReviewNotSent
		reason = fmt.Sprintf("not sent after %d runs (last: %v); nothing was applied; `refundctl retry %s` sends it again", retry+1, cause, rec.RefundID)
	}
	if err := h.toReview(ctx, kind, reason, providers.Outcome{}, store.Entry{}); err != nil {
		return err
	}
	return fmt.Errorf("%s: %w", reason, asynq.SkipRetry)
}

// lastRun reports whether this is the refund's last counted run: if it
// fails, the refund goes to needs_review. asynq's own last retry is kept
// for a run that only waits (see tasks.MaxRetry), so a hand-back at the end
// of the budget is a hand-back, not an archive.
func lastRun(ctx context.Context) bool {
	retry, _ := asynq.GetRetryCount(ctx)
	maxRetry, ok := asynq.GetMaxRetry(ctx)
	return ok && retry >= maxRetry-1
}
