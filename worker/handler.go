package worker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/hibiken/asynq"
	"github.com/sirupsen/logrus"

	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/store"
	"github.com/refundq/refundq/tasks"
)

// Handler handles refund and poll tasks. It is re-entrant: whatever a
// previous run did or how it died, a run reads the record first and only
// sends a refund when no earlier attempt can have been applied.
type Handler struct {
	store    *store.Store
	registry *providers.Registry
	client   *asynq.Client
	queue    string
	log      *logrus.Logger
	attempt  AttemptPolicy
	// inFlightGrace is how long after an attempt was sent its call can
	// still be running somewhere.
	inFlightGrace time.Duration
	sweepAfter    time.Duration

	quit     chan struct{}
	quitOnce sync.Once
}

// Mux routes refundq's task types to the handler.
func (h *Handler) Mux() *asynq.ServeMux {
	mux := asynq.NewServeMux()
	mux.HandleFunc(tasks.TypeRefund, h.HandleRefund)
	mux.HandleFunc(tasks.TypePoll, h.HandlePoll)
	return mux
}

func (h *Handler) stop() { h.quitOnce.Do(func() { close(h.quit) }) }

func (h *Handler) stopping() bool {
	select {
	case <-h.quit:
		return true
	default:
		return false
	}
}

// errShutdown hands the task back to asynq when the worker is stopping
// between two provider calls; the next run reconciles.
var errShutdown = errors.New("worker shutting down; the task will run again")

// HandleRefund handles a TypeRefund task.
func (h *Handler) HandleRefund(ctx context.Context, t *asynq.Task) error {
	r, err := tasks.DecodeRefund(t.Payload())
	if err != nil {
		h.log.WithField("task_type", t.Type()).WithError(err).Error("malformed refund task archived")
		return fmt.Errorf("malformed refund task, archived without retry: %v: %w", err, asynq.SkipRetry)
	}
	// Producers create the record before the task; creating it here too makes
	// a task enqueued by other means safe, and catches a task whose payload
	// disagrees with the record of the same refund id, or that is a second
	// refund on an order its provider refunds once.
	create := h.store.Create
	if h.registry.OncePerOrder(r.Provider) {
		create = h.store.CreateSole
	}
	_, _, err = create(ctx, r)
	if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrOrderTaken) {
		h.log.WithField("refund_id", r.RefundID).WithError(err).Error("refund task refused by its record or its order's; archived")
		return fmt.Errorf("%v: %w", err, asynq.SkipRetry)
	}
	if err != nil {
		return err
	}
	return h.drive(ctx, r.RefundID, nil)
}

// HandlePoll handles a TypePoll task.
func (h *Handler) HandlePoll(ctx context.Context, t *asynq.Task) error {
	p, err := tasks.DecodePoll(t.Payload())
	if err != nil {
		h.log.WithField("task_type", t.Type()).WithError(err).Error("malformed poll task archived")
		return fmt.Errorf("malformed poll task, archived without retry: %v: %w", err, asynq.SkipRetry)
	}
	err = h.drive(ctx, p.RefundID, func(rec store.Record) bool {
		if p.Step == rec.PollStep {
			return false
		}
		// A newer poll was scheduled (the refund task re-ran while pending):
		// only the newest poll chain drives the refund.
		h.log.WithFields(logrus.Fields{"refund_id": rec.RefundID, "step": p.Step, "current_step": rec.PollStep}).Debug("stale poll ignored")
		return true
	})
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("poll for unknown refund %s: %w", p.RefundID, asynq.SkipRetry)
	}
	return err
}

// drive moves a refund towards a final state: reconcile first if an earlier
// attempt may have been applied, send only when the provider shows nothing
// was, and map the outcome to one action.
// skip, when not nil, lets the caller drop a run that is no longer wanted,
// judged on the record as read under the lease.
func (h *Handler) drive(ctx context.Context, id string, skip func(store.Record) bool) error {
	lease, err := h.store.Acquire(ctx, id, LeaseTTL)
	var busy *store.BusyError
	if errors.As(err, &busy) {
		return &retryAfterError{err: fmt.Errorf("refund %s: %w", id, err), after: busy.Remaining + time.Second}
	}
	if err != nil {
		return err
	}
	defer lease.Release(recordCtx(ctx))
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go lease.KeepAlive(ctx, cancel)

	rec, err := h.store.Get(ctx, id)
	if err != nil {
		return err
	}
	log := h.log.WithFields(logrus.Fields{"refund_id": rec.RefundID, "provider": rec.Provider})
	if rec.State.Final() {
		log.WithField("state", rec.State).Debug("refund already final; nothing to do")
		return nil
	}
	if skip != nil && skip(rec) {
		return nil
	}
	r := run{Handler: h, lease: lease, log: log}
	return r.drive(ctx, rec)
}

// LeaseTTL is how long a worker holds a refund without renewing; it renews
// every third of it. A killed worker's refund is free again after this.
const LeaseTTL = 30 * time.Second

// run is one handler run holding one refund's lease; every write goes
// through the lease, so a run that lost it writes nothing.
type run struct {
	*Handler
	lease *store.Lease
	log   *logrus.Entry
}

func (h *run) drive(ctx context.Context, rec store.Record) error {
	log := h.log
	// Anything sent before and not settled, and anything the provider said
	// it is working on, must be looked up before a resend.
	reconcile := rec.InFlight > 0 || rec.State == store.Pending
	entry, err := h.registry.Get(rec.Provider)
	if err == nil && !reconcile && entry.Check != nil {
		err = entry.Check(rec.Refund())
	}
	if err != nil {
		if reconcile {
			return fmt.Errorf("refund %s was sent before and cannot be reconciled: %w", rec.RefundID, err)
		}
		return h.close(ctx, log, rec, store.Failed, err.Error(), providers.Outcome{}, store.Entry{})
	}
	if reconcile && rec.InFlight > 0 {
		// The attempt in flight was sent by an earlier run that may still be
		// in its call (a run asynq gave up on is not stopped). Let that call
		// time out before asking, so the look-up sees what it did.
		if wait := time.Until(rec.SentAt.Add(h.inFlightGrace)); wait > 0 {
			log.WithField("wait", wait.Round(time.Millisecond).String()).Info("previous attempt may still be in flight; waiting before the look-up")
			if !h.sleep(ctx, wait) {
				return h.giveBack(ctx, log, rec, providers.Outcome{Reason: "stopped while waiting for the previous attempt"}, true)
			}
		}
	}
	others, err := h.store.OtherRefs(ctx, rec)
	if err != nil {
		return err
	}
	req := providers.Refund{
		RefundID: rec.RefundID, OrderID: rec.OrderID, TransactionID: rec.TransactionID,
		Amount: rec.Amount, Reason: rec.Reason, Key: rec.Key, OtherRefs: others,
	}
	b := h.newBackoff(ctx)
	for {
		var out providers.Outcome
		var e store.Entry
		if reconcile {
			out, e = h.call(ctx, log, &rec, "lookup", entry.Provider.Lookup, req)
			if out.Kind == providers.NotFound {
				reconcile = false
				continue // the provider shows nothing applied: sending is safe
			}
		} else {
			if h.stopping() {
				return errShutdown
			}
			attempt, err := h.lease.MarkSent(ctx, fmt.Sprintf("refund %s key=%s", rec.Amount, rec.Key))
			if errors.Is(err, store.ErrClosed) {
				return nil // another run finished it meanwhile
			}
			if err != nil {
				return err
			}
			rec.InFlight, rec.State = attempt, store.Processing
			out, e = h.call(ctx, log, &rec, "send", entry.Provider.Refund, req)
			reconcile = out.Kind == providers.Unknown
		}
		switch out.Kind {
		case providers.Succeeded, providers.Pending:
			var err error
			if out.Kind == providers.Succeeded {
				err = h.close(ctx, log, rec, store.Succeeded, "", out, e)
			} else {
				err = h.pending(ctx, log, rec, entry.Schedule, out, e)
			}
			if !errors.Is(err, store.ErrRefTaken) {
				return err
			}
			// What the provider showed is another refund of ours on this
			// order (two equal refunds and no key to tell them apart), so it
			// says nothing about this one: look again without it.
			out = h.refTaken(ctx, log, rec, e, err)
			reconcile = true
			if req.OtherRefs, err = h.store.OtherRefs(ctx, rec); err != nil {
				return err
			}
		case providers.Rejected:
			return h.close(ctx, log, rec, store.Failed, out.Reason, out, e)
		}
		// Transient or Unknown: wait, then send again (Transient after a
		// send: nothing was applied) or look up (anything uncertain).
		wait := b.NextBackOff()
		if wait == backoff.Stop || h.stopping() || !h.sleep(ctx, max(wait, out.RetryAfter)) {
			return h.giveBack(ctx, log, rec, out, reconcile)
		}
	}
}

// call makes one provider call and returns its history entry. An outcome
// that settles nothing is recorded here; a final or pending one is recorded
// by close or pending, with the state change, in one write.
func (h *run) call(ctx context.Context, log *logrus.Entry, rec *store.Record, op string,
	fn func(context.Context, providers.Refund) providers.Outcome, req providers.Refund) (providers.Outcome, store.Entry) {
	start := time.Now()
	out := fn(ctx, req)
	dur := time.Since(start)
	attempt := rec.InFlight
	if op == "lookup" {
		attempt = rec.Attempts // the attempt the look-up is about
	}
	log.WithFields(logrus.Fields{
		"op": op, "attempt": attempt, "outcome": out.Kind.String(), "http_status": out.HTTPStatus,
		"provider_status": out.Status, "duration_ms": dur.Milliseconds(),
	}).Info(op + " " + out.Kind.String())
	e := store.Entry{Event: op, Attempt: attempt, Outcome: out.Kind.String(), Status: out.Status,
		HTTPStatus: out.HTTPStatus, Detail: out.Reason, DurationMS: dur.Milliseconds()}

	// A send that came back Transient was not applied; a lookup that found
	// nothing proves the same. Either way nothing is in flight any more.
	settled := (op == "send" && out.Kind == providers.Transient) || out.Kind == providers.NotFound
	c := store.Change{
		State:          rec.State,
		ProviderStatus: out.Status,
		Settled:        settled,
		Entry:          e,
	}
	switch out.Kind {
	case providers.Transient, providers.Unknown:
		c.LastError = op + ": " + out.String()
	case providers.Succeeded, providers.Rejected, providers.Pending:
		return out, e // recorded with the state change that follows
	}
	if err := h.lease.Apply(recordCtx(ctx), c); err != nil {
		log.WithError(err).Warn("could not record provider call")
	}
	if settled {
		rec.InFlight = 0
	}
	return out, e
}

// refTaken records that the provider's answer named a refund another of our
// refunds holds, and turns it into an outcome still to be reconciled.
func (h *run) refTaken(ctx context.Context, log *logrus.Entry, rec store.Record, e store.Entry, err error) providers.Outcome {
	out := providers.Outcome{Kind: providers.Unknown, HTTPStatus: e.HTTPStatus, Reason: err.Error()}
	log.WithError(err).Warn("provider answer names another refund's reference; reconciling again")
	e.Outcome, e.Detail = out.Kind.String(), strings.TrimSpace(e.Detail+" → not ours: "+err.Error())
	if aerr := h.lease.Apply(recordCtx(ctx), store.Change{State: rec.State, LastError: e.Event + ": " + out.String(), Entry: e}); aerr != nil {
		log.WithError(aerr).Warn("could not record provider call")
	}
	return out
}

// close moves a refund to a final state. Failed returns asynq.SkipRetry so the
// task is archived with the reason as its last error.
// e is the history entry of the call that decided it (zero when no call did).
func (h *run) close(ctx context.Context, log *logrus.Entry, rec store.Record, state store.State, reason string, out providers.Outcome, e store.Entry) error {
	if e.Event == "" {
		e = store.Entry{Event: "decision", Attempt: rec.Attempts}
	}
	if reason != "" && reason != e.Detail {
		e.Detail = strings.TrimSpace(e.Detail + " → " + reason)
	}
	err := h.lease.Apply(recordCtx(ctx), store.Change{
		State: state, ProviderRef: out.Reference, ProviderStatus: out.Status, LastError: reason, Settled: true,
		Entry: e,
	})
	if errors.Is(err, store.ErrClosed) {
		return nil
	}
	if err != nil {
		return err // not recorded: the re-run reconciles and records it
	}
	log.WithFields(logrus.Fields{"state": state, "provider_ref": out.Reference, "reason": reason}).Info("refund " + string(state))
	if state == store.Failed {
		return fmt.Errorf("refund %s failed: %s: %w", rec.RefundID, reason, asynq.SkipRetry)
	}
	return nil
}

// pending records that the provider is still working on the refund and
// schedules the next poll, or hands it to a human past the horizon.
func (h *run) pending(ctx context.Context, log *logrus.Entry, rec store.Record, sched providers.Schedule, out providers.Outcome, e store.Entry) error {
	if !rec.PendingSince.IsZero() && time.Since(rec.PendingSince) > sched.Horizon {
		reason := fmt.Sprintf("still pending at the provider after %s (status %q); ask the provider, then settle by hand",
			time.Since(rec.PendingSince).Round(time.Second), out.Status)
		return h.close(ctx, log, rec, store.NeedsReview, reason, out, e)
	}
	next := rec.PollStep + 1
	delay := sched.Delay(next-1, out.RetryAfter)
	e.Detail = strings.TrimSpace(fmt.Sprintf("%s → poll %d in %s", e.Detail, next, delay))
	err := h.lease.Apply(recordCtx(ctx), store.Change{
		State: store.Pending, ProviderRef: out.Reference, ProviderStatus: out.Status, Settled: true, PollStep: &next,
		Entry: e,
	})
	if errors.Is(err, store.ErrClosed) {
		return nil
	}
	if err != nil {
		return err
	}
	task, err := tasks.NewPollTask(tasks.Poll{RefundID: rec.RefundID, Step: next}, delay, asynq.Queue(h.queue))
	if err != nil {
		return fmt.Errorf("%v: %w", err, asynq.SkipRetry)
	}
	if _, err := h.client.EnqueueContext(recordCtx(ctx), task); err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		// The re-run of this task looks the refund up and schedules again.
		return fmt.Errorf("schedule poll %d of refund %s: %w", next, rec.RefundID, err)
	}
	log.WithFields(logrus.Fields{"state": store.Pending, "provider_status": out.Status, "poll_step": next, "poll_in": delay.String()}).Info("refund pending; poll scheduled")
	return nil
}

// giveBack ends this run without a final answer. The task goes back to asynq
// for a later retry; on its last retry the refund is closed instead, as
// failed if nothing can have been applied, else as needs_review with the
// evidence, never guessed.
func (h *run) giveBack(ctx context.Context, log *logrus.Entry, rec store.Record, out providers.Outcome, inFlight bool) error {
	retry, _ := asynq.GetRetryCount(ctx)
	maxRetry, hasMax := asynq.GetMaxRetry(ctx)
	if hasMax && retry >= maxRetry && !h.stopping() {
		if inFlight || rec.State == store.Pending {
			return h.close(ctx, log, rec, store.NeedsReview,
				fmt.Sprintf("outcome still unknown after %d runs (last: %s); check the provider before any resend", retry+1, out), out, store.Entry{})
		}
		return h.close(ctx, log, rec, store.Failed,
			fmt.Sprintf("provider unavailable after %d runs, nothing was applied (last: %s)", retry+1, out), out, store.Entry{})
	}
	if h.stopping() {
		return errShutdown
	}
	err := fmt.Errorf("refund %s: %s", rec.RefundID, out)
	if out.RetryAfter > 0 {
		return &retryAfterError{err: err, after: out.RetryAfter}
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

// recordCtx lets an outcome be written even when the handler's context has
// just ended (task timeout, shutdown deadline): losing the record of a call
// that reached the provider costs a reconcile, or worse. go-redis's own
// read and write timeouts still bound the write.
func recordCtx(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }
