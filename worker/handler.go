package worker

import (
	"context"
	"encoding/json"
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
	// blockedRetry is how long a blocked refund waits before it is tried
	// again (without counting against its retries).
	blockedRetry time.Duration
	// inRunWait is the longest wait a run sleeps through; a longer one
	// hands the task back to asynq for later, freeing the slot.
	inRunWait time.Duration
	// dueMargin: see Config.DueMargin.
	dueMargin time.Duration
	knowledge *knowledge
	metrics   *metrics
	guards    guards

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

// snooze hands the task back to asynq for later without counting a failure,
// and counts why.
func (h *Handler) snooze(why string, err error, after time.Duration) error {
	h.metrics.snoozes.WithLabelValues(why).Inc()
	return &snoozeError{err: err, after: after}
}

// errShutdown hands the task back to asynq when the worker is stopping
// between two provider calls; the next run reconciles.
var errShutdown = &snoozeError{err: errors.New("worker shutting down; the task will run again"), after: time.Second}

// HandleRefund handles a TypeRefund task.
func (h *Handler) HandleRefund(ctx context.Context, t *asynq.Task) error {
	r, err := tasks.DecodeRefund(t.Payload())
	if err != nil {
		return h.undecodable(ctx, t, err)
	}
	return h.drive(ctx, t, r.RefundID, nil, &r)
}

// HandlePoll handles a TypePoll task.
func (h *Handler) HandlePoll(ctx context.Context, t *asynq.Task) error {
	p, err := tasks.DecodePoll(t.Payload())
	if err != nil {
		return h.undecodable(ctx, t, err)
	}
	err = h.drive(ctx, t, p.RefundID, func(rec store.Record) bool {
		if p.Step == rec.PollStep {
			return false
		}
		// A newer poll was scheduled (the refund task re-ran while pending):
		// only the newest poll chain drives the refund.
		h.log.WithFields(logrus.Fields{"refund_id": rec.RefundID, "step": p.Step, "current_step": rec.PollStep}).Debug("stale poll ignored")
		return true
	}, nil)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("poll for unknown refund %s: %w", p.RefundID, asynq.SkipRetry)
	}
	return err
}

// undecodable handles a task whose payload this build cannot read. A newer
// payload version is a rolling deploy in progress: the task is handed back
// (not counted as a failure) for a newer worker. Anything else is archived
// with the reason, and a refund it names is moved to needs_review so it is not
// left open without a task.
func (h *Handler) undecodable(ctx context.Context, t *asynq.Task, err error) error {
	var head struct {
		Version  int    `json:"v"`
		RefundID string `json:"refund_id"`
	}
	_ = json.Unmarshal(t.Payload(), &head) // best effort: the payload may be the malformed part
	log := h.log.WithFields(logrus.Fields{"task_type": t.Type(), "refund_id": head.RefundID})
	if head.Version > tasks.PayloadVersion {
		log.WithError(err).Warn("task payload is newer than this worker; handed back for a newer worker")
		return h.snooze("newer_payload", fmt.Errorf("payload version %d is newer than this worker's %d: %w", head.Version, tasks.PayloadVersion, err), time.Minute)
	}
	log.WithError(err).Error("malformed task archived")
	if head.RefundID != "" {
		id, _ := asynq.GetTaskID(ctx)
		h.escalate(ctx, head.RefundID, id, fmt.Sprintf("its %s task could not be read and was archived: %v", t.Type(), err))
	}
	return fmt.Errorf("malformed %s task, archived without retry: %v: %w", t.Type(), err, asynq.SkipRetry)
}

// escalate moves an open refund to needs_review when its task is given up,
// so it does not stay open with nothing to drive it.
func (h *Handler) escalate(ctx context.Context, id, taskID, reason string) {
	moved, err := h.store.Escalate(recordCtx(ctx), id, taskID, reason)
	switch {
	case err != nil && !errors.Is(err, store.ErrNotFound):
		h.log.WithField("refund_id", id).WithError(err).Error("could not move the refund to needs_review; the recoverer will find it")
	case moved:
		h.log.WithFields(logrus.Fields{"refund_id": id, "state": store.NeedsReview, "reason": reason}).Error("refund needs review")
	}
}

// drive moves a refund towards a final state: reconcile first if an earlier
// attempt may have been applied, send only when the provider shows nothing
// was, and act on what decide makes of each answer.
// skip, when not nil, lets the caller drop a run that is no longer wanted,
// judged on the record as read under the lease. payload, for a refund task,
// is the refund the task carries: producers create the record before the
// task, and creating it here when it is missing makes a task enqueued by
// other means safe; a task whose payload disagrees with the record of the
// same refund id, or that would be a second refund on an order its provider
// refunds once, is archived.
func (h *Handler) drive(ctx context.Context, t *asynq.Task, id string, skip func(store.Record) bool, payload *tasks.Refund) error {
	lease, rec, err := h.store.Acquire(ctx, id, LeaseTTL)
	if errors.Is(err, store.ErrNotFound) && payload != nil {
		create := h.store.Create
		if h.registry.OncePerOrder(payload.Provider) {
			create = h.store.CreateSole
		}
		if _, _, err = create(ctx, *payload); err == nil {
			lease, rec, err = h.store.Acquire(ctx, id, LeaseTTL)
		}
	}
	if err == nil && payload != nil {
		if diff := rec.Differs(*payload); diff != "" {
			lease.Release(recordCtx(ctx))
			err = fmt.Errorf("refund %s: %w: %s", id, store.ErrConflict, diff)
		}
	}
	if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrOrderTaken) {
		h.log.WithField("refund_id", id).WithError(err).Error("refund task refused by its record or its order's; archived")
		return fmt.Errorf("%v: %w", err, asynq.SkipRetry)
	}
	var busy *store.BusyError
	if errors.As(err, &busy) {
		return h.snooze("lease_busy", fmt.Errorf("refund %s: %w", id, err), busy.Remaining+time.Second)
	}
	if err != nil {
		return err
	}
	defer lease.Release(recordCtx(ctx))
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go lease.KeepAlive(ctx, cancel)

	log := h.log.WithFields(logrus.Fields{"refund_id": rec.RefundID, "provider": rec.Provider})
	if rec.State.Final() {
		log.WithField("state", rec.State).Debug("refund already final; nothing to do")
		return nil
	}
	if skip != nil && skip(rec) {
		return nil
	}
	taskID, _ := asynq.GetTaskID(ctx)
	r := &run{Handler: h, lease: lease, log: log, rec: rec, task: taskID, result: t.ResultWriter(), b: h.newBackoff(ctx)}
	err = r.drive(ctx)
	if err != nil && !isSnooze(err) && !isSkipRetry(err) {
		if lastRun(ctx) {
			// asynq gives up on the task after this: never leave the refund
			// open without one.
			return r.finalize(ctx, err)
		}
		// asynq runs it again after retryDelay; the recoverer looks if it
		// has not by then.
		n, _ := asynq.GetRetryCount(ctx)
		wait := baseRetryDelay(n + 1)
		var ra *retryAfterError
		if errors.As(err, &ra) {
			wait = ra.after
		}
		_ = h.store.Postpone(recordCtx(ctx), id, time.Now().Add(wait*5/4+h.dueMargin))
	}
	return err
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
	rec   store.Record
	task  string
	// result is the task's result writer (nil for a task not run by an
	// asynq server): where a run leaves the state it reached, for asynqmon.
	result *asynq.ResultWriter
	entry  providers.Entry
	b      backoff.BackOff
	// last is the most recent outcome, for a run that ends without a
	// final answer.
	last providers.Outcome
}

func (h *run) drive(ctx context.Context) error {
	rec := &h.rec
	entry, err := h.registry.Get(rec.Provider)
	if err != nil {
		// Not configured on this worker (or a provider this build does not
		// know): our configuration, not the refund, is wrong.
		return h.block(ctx, err.Error(), false)
	}
	h.entry = entry
	if entry.Keyless {
		h.lease.ClaimReferences()
	}
	inFlight := rec.InFlight > 0 || rec.State == store.Pending
	if !inFlight && rec.Attempts == 0 && entry.Check != nil {
		if err := entry.Check(rec.Refund()); err != nil {
			return h.close(ctx, store.Failed, err.Error(), providers.Outcome{}, store.Entry{})
		}
	}
	next := sendNow
	if inFlight {
		next = lookUp
	}
	guard := h.guards.of(entry)
	for {
		if out, open := guard.open(); open && next == sendNow {
			// The provider failed call after call just now: nothing is sent,
			// so nothing is spent; the refund waits for the provider. (A
			// look-up goes on: it is what settles an attempt in flight, and
			// its failures count towards the task's retries.)
			_ = h.finish(ctx, store.Change{State: rec.State, LastError: "waiting: " + out.Reason, Due: h.dueAfter(out.RetryAfter),
				Entry: store.Entry{Event: "decision", Attempt: rec.Attempts, Detail: "waiting: " + out.Reason}})
			return h.snooze("circuit_open", errors.New(out.Reason), out.RetryAfter)
		}
		var c call
		var out providers.Outcome
		var e store.Entry
		switch next {
		case sendNow:
			if h.stopping() {
				return errShutdown
			}
			var handled bool
			c, out, e, handled, err = h.send(ctx)
			if handled || err != nil {
				return err
			}
		case lookUp:
			c = callLookup
			req, err := h.lookupRequest(ctx)
			if err != nil {
				return err
			}
			out, e = h.call(ctx, c, entry.Provider.Lookup, req)
		}
		h.last = out
		d := decide(h.facts(c, out))
		if c == callSend && d.step == lookUp {
			// A refusal after an earlier attempt: keep the attempt in flight
			// and the refusal, and let a look-up decide.
			if err := h.apply(ctx, store.Change{State: rec.State, Refused: d.reason, LastError: "send: " + out.String(), Entry: e}); err != nil {
				return err
			}
			rec.Refused = d.reason
			next = lookUp
			continue
		}
		if d.step == retryLookup || d.step == retrySend {
			if err := h.apply(ctx, store.Change{State: rec.State, Settled: c == callSend && d.step == retrySend,
				LastError: string(c) + ": " + out.String(), Entry: e}); err != nil {
				return err
			}
			if c == callSend && d.step == retrySend {
				rec.InFlight = 0
			}
		}
		switch d.step {
		case succeed, pend:
			err := h.settle(ctx, d, out, e)
			if !errors.Is(err, store.ErrRefTaken) {
				return err
			}
			// What the provider showed is another refund of ours on this
			// order (two equal refunds and no key to tell them apart), so it
			// says nothing about this one: look again without it.
			h.refTaken(ctx, e, err)
			next = lookUp
			if err := h.wait(ctx, decision{reason: "reconciling again"}); err != nil {
				return err
			}
		case fail:
			return h.close(ctx, store.Failed, d.reason, out, e)
		case review:
			return h.close(ctx, store.NeedsReview, d.reason, out, e)
		case block:
			return h.block(ctx, d.reason, c == callSend)
		case notApplied:
			h.metrics.resends.WithLabelValues(rec.Provider).Inc()
			e.Detail = strings.TrimSpace(e.Detail + " → " + d.reason)
			if err := h.apply(ctx, store.Change{State: rec.State, Settled: true, Entry: e}); err != nil {
				return err
			}
			rec.InFlight, rec.State = 0, store.Processing
			next = sendNow
		case firstNotFound, firstUnsure:
			e.Detail = strings.TrimSpace(e.Detail + " → " + d.reason)
			now := time.Now()
			c := store.Change{State: rec.State, LastError: "lookup: " + out.String(), Entry: e}
			if d.step == firstNotFound {
				c.NotFoundAt, rec.NotFoundAt = now, now
			} else {
				c.UnsureAt, rec.UnsureAt = now, now
			}
			if err := h.apply(ctx, c); err != nil {
				return err
			}
			next = lookUp
			if err := h.wait(ctx, d); err != nil {
				return err
			}
		case retryLookup, retrySend:
			next = lookUp
			if d.step == retrySend {
				next = sendNow
			}
			if err := h.wait(ctx, d); err != nil {
				return err
			}
		default:
			return fmt.Errorf("refund %s: no action for step %s", rec.RefundID, d.step)
		}
	}
}

// send prepares (where the adapter reads the provider first), marks the
// attempt in flight and sends it. handled is true when the run is over (the
// order is busy with another refund of ours).
func (h *run) send(ctx context.Context) (c call, out providers.Outcome, e store.Entry, handled bool, err error) {
	rec := &h.rec
	req, err := h.request(ctx)
	if err != nil {
		return "", out, e, true, err
	}
	var before []byte
	if h.entry.Keyless {
		// Another refund of ours holding the order would show on it as a
		// change no record explains: wait for it before reading the order.
		if err := h.lease.OrderHeld(ctx); err != nil {
			return h.orderBusy(ctx, err)
		}
	}
	if p, ok := h.entry.Provider.(providers.Preparer); ok {
		var ok bool
		start := time.Now()
		pctx, cancel := context.WithTimeout(ctx, providers.OperationTimeout)
		out = h.guards.of(h.entry).call(pctx, func() providers.Outcome {
			var o providers.Outcome
			before, o, ok = p.Prepare(pctx, req)
			if ok {
				o.Kind = providers.Succeeded // read; for the breaker and the metric
			}
			return o
		})
		cancel()
		h.metrics.calls.WithLabelValues(rec.Provider, string(callPrepare), out.Kind.String()).Observe(time.Since(start).Seconds())
		if !ok {
			h.learn(ctx, out)
			e = h.entryFor(callPrepare, rec.Attempts+1, out, time.Since(start))
			return callPrepare, out, e, false, nil
		}
	}
	attempt, err := h.lease.MarkSent(ctx, store.Send{
		Sent:   fmt.Sprintf("refund %s key=%s", rec.Amount, rec.Key),
		Before: string(before), OnePerOrder: h.entry.Keyless,
		Due: h.dueRunning(), Task: h.task,
	})
	switch {
	case errors.Is(err, store.ErrOrderBusy):
		return h.orderBusy(ctx, err)
	case errors.Is(err, store.ErrClosed):
		return "", out, e, true, nil // another run finished it meanwhile
	case err != nil:
		return "", out, e, true, err
	}
	if rec.State != store.Processing {
		h.metrics.transitions.WithLabelValues(rec.Provider, string(rec.State), string(store.Processing)).Inc()
	}
	rec.InFlight, rec.Attempts, rec.State, rec.SentAt = attempt, attempt, store.Processing, time.Now()
	rec.Before, rec.NotFoundAt, rec.UnsureAt, rec.Refused = string(before), time.Time{}, time.Time{}, ""
	// The adapter judges its answer against what it read just now, not
	// against an earlier attempt's read.
	req.Attempt, req.Before = attempt, before
	out, e = h.call(ctx, callSend, h.entry.Provider.Refund, req)
	return callSend, out, e, false, nil
}

// orderBusy ends a run whose refund waits for another refund of ours on
// the same order (err is an *OrderBusyError). A holder in needs_review waits
// for a person, and no timer frees the order: the refund is blocked, naming
// the refund to settle first, so it shows in list, the API, metrics and
// alerts. Otherwise the task comes back about when the holder's attempt can
// be settled.
func (h *run) orderBusy(ctx context.Context, err error) (c call, out providers.Outcome, e store.Entry, handled bool, _ error) {
	rec := &h.rec
	var busy *store.OrderBusyError
	errors.As(err, &busy)
	if busy.HolderState == store.NeedsReview {
		reason := fmt.Sprintf("order %s is held by refund %s (%s): one refund of ours at a time on an order at %s; settle %s first",
			busy.Order, busy.Holder, busy.HolderState, rec.Provider, busy.Holder)
		return "", out, e, true, h.block(ctx, reason, false)
	}
	h.log.WithField("holder", busy.Holder).Info("another refund of ours is in flight on the order; waiting for it")
	// The other refund's attempt settles a settle delay or so after its
	// send at the earliest.
	wait := h.entry.Settle() / 2
	_ = h.finish(ctx, store.Change{State: rec.State, LastError: "waiting: " + busy.Error(),
		Due: h.dueAfter(wait), Entry: store.Entry{Event: "decision", Detail: "waiting: " + busy.Error()}})
	return "", out, e, true, h.snooze("order_busy", err, wait)
}

// request builds what the adapter sees of the refund.
func (h *run) request(ctx context.Context) (providers.Refund, error) {
	rec := h.rec
	req := providers.Refund{
		RefundID: rec.RefundID, OrderID: rec.OrderID, TransactionID: rec.TransactionID,
		Amount: rec.Amount, Reason: rec.Reason, Key: rec.Key, Reference: rec.ProviderRef,
		Attempt: max(rec.InFlight, rec.Attempts), Known: h.knowledge.of(rec.Provider),
	}
	if rec.Before != "" {
		req.Before = []byte(rec.Before)
	}
	if h.entry.Keyless {
		// A provider without a key of ours matches every answer by what the
		// order shows; the others only a look-up's (see lookupRequest).
		var err error
		if req.OtherRefs, err = h.store.OtherRefs(ctx, rec); err != nil {
			return req, err
		}
	}
	return req, nil
}

// lookupRequest is request for a look-up: what is known of the provider's
// guesses is read now, not from a copy up to knowledgeTTL old that another
// worker's refutation has not reached yet (a NotFound may rest on a guess);
// and every adapter gets the other refunds on the order, since a look-up
// may match by amount where a guess is not confirmed. A refund whose other
// refunds cannot be read is not looked up: a match by amount could take one
// of theirs.
func (h *run) lookupRequest(ctx context.Context) (providers.Refund, error) {
	req, err := h.request(ctx)
	if err != nil {
		return req, err
	}
	req.Known = h.knowledge.fresh(h.rec.Provider)
	if !h.entry.Keyless {
		req.OtherRefs, err = h.store.OtherRefs(ctx, h.rec)
	}
	return req, err
}

// facts gathers what decide needs from the record.
func (h *run) facts(c call, out providers.Outcome) facts {
	rec := h.rec
	f := facts{
		call: c, out: out, attempt: max(rec.Attempts, 1), pending: rec.State == store.Pending,
		refused: rec.Refused, sinceSent: time.Since(rec.SentAt), sinceNotFound: -1,
		sinceUnsure: -1, settle: h.entry.Settle(), keyless: h.entry.Keyless, idempotent: h.entry.Idempotent,
	}
	if c == callPrepare {
		f.attempt = rec.Attempts + 1
	}
	if rec.SentAt.IsZero() {
		f.sinceSent = f.settle // never sent: nothing can still be applied
	}
	if !rec.NotFoundAt.IsZero() {
		f.sinceNotFound = time.Since(rec.NotFoundAt)
	}
	if !rec.UnsureAt.IsZero() {
		f.sinceUnsure = time.Since(rec.UnsureAt)
	}
	return f
}

// call makes one provider call, logs it, learns from it, and returns its
// history entry (recorded with whatever the decision writes).
func (h *run) call(ctx context.Context, c call, fn func(context.Context, providers.Refund) providers.Outcome, req providers.Refund) (providers.Outcome, store.Entry) {
	start := time.Now()
	var requestID string
	cctx, cancel := context.WithTimeout(providers.WithRequestID(ctx, &requestID), providers.OperationTimeout)
	out := h.guards.of(h.entry).call(cctx, func() providers.Outcome { return fn(cctx, req) })
	cancel()
	dur := time.Since(start)
	h.metrics.calls.WithLabelValues(h.rec.Provider, string(c), out.Kind.String()).Observe(dur.Seconds())
	if out.RequestID == "" {
		out.RequestID = requestID
	}
	h.learn(ctx, out)
	return out, h.entryFor(c, req.Attempt, out, dur)
}

func (h *run) entryFor(c call, attempt int, out providers.Outcome, dur time.Duration) store.Entry {
	h.log.WithFields(logrus.Fields{
		"op": string(c), "attempt": attempt, "outcome": out.Kind.String(), "http_status": out.HTTPStatus,
		"provider_status": out.Status, "duration_ms": dur.Milliseconds(),
	}).Info(string(c) + " " + out.Kind.String())
	return store.Entry{Event: string(c), Attempt: attempt, Outcome: out.Kind.String(), Status: out.Status,
		HTTPStatus: out.HTTPStatus, RequestID: out.RequestID, Detail: out.Reason, DurationMS: dur.Milliseconds()}
}

// learn passes what an answer showed about the adapter's guesses on to the
// provider's knowledge.
func (h *run) learn(ctx context.Context, out providers.Outcome) {
	for _, o := range out.Observed {
		h.knowledge.observe(ctx, h.rec.Provider, o)
	}
}

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

// close moves a refund to a final state (or needs_review). Failed returns
// asynq.SkipRetry so the task is archived with the reason as its last error.
// e is the history entry of the call that decided it (zero when no call did).
func (h *run) close(ctx context.Context, state store.State, reason string, out providers.Outcome, e store.Entry) error {
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
	err := h.finish(ctx, store.Change{
		State: state, ProviderRef: out.Reference, ProviderStatus: out.Status, LastError: reason, Settled: settled,
		Entry: e,
	})
	if errors.Is(err, store.ErrClosed) {
		return nil
	}
	if err != nil {
		return err // not recorded: the re-run reconciles and records it
	}
	h.writeResult(state, out.Reference)
	f := logrus.Fields{"state": state, "provider_ref": out.Reference, "reason": reason}
	switch state {
	case store.NeedsReview:
		h.log.WithFields(f).Error("refund needs review")
	default:
		h.log.WithFields(f).Info("refund " + string(state))
	}
	if state == store.Failed {
		return fmt.Errorf("refund %s failed: %s: %w", rec.RefundID, reason, asynq.SkipRetry)
	}
	return nil
}

// pending records that the provider is still working on the refund and
// schedules the next poll, or hands it to a human past the horizon.
func (h *run) pending(ctx context.Context, out providers.Outcome, e store.Entry) error {
	rec := h.rec
	sched := h.entry.Schedule
	if !rec.PendingSince.IsZero() && time.Since(rec.PendingSince) > sched.Horizon {
		reason := fmt.Sprintf("still pending at the provider after %s (status %q); ask the provider, then settle by hand",
			time.Since(rec.PendingSince).Round(time.Second), out.Status)
		return h.close(ctx, store.NeedsReview, reason, out, e)
	}
	next := rec.PollStep + 1
	delay := sched.Delay(next-1, out.RetryAfter)
	e.Detail = strings.TrimSpace(fmt.Sprintf("%s → poll %d in %s", e.Detail, next, delay))
	pollID := tasks.PollTaskID(rec.RefundID, next)
	err := h.finish(ctx, store.Change{
		State: store.Pending, ProviderRef: out.Reference, ProviderStatus: out.Status, Settled: true, PollStep: &next,
		Task: pollID, Due: h.dueAfter(delay), Entry: e, Fold: true,
	})
	if errors.Is(err, store.ErrClosed) {
		return nil
	}
	if err != nil {
		return err
	}
	h.writeResult(store.Pending, out.Reference)
	task, err := tasks.NewPollTask(tasks.Poll{RefundID: rec.RefundID, Step: next}, delay, h.queue)
	if err != nil {
		return fmt.Errorf("%v: %w", err, asynq.SkipRetry)
	}
	if _, err := h.client.EnqueueContext(recordCtx(ctx), task); err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		// The record names the poll task; the recoverer creates it when it
		// is overdue and missing.
		h.log.WithError(err).Warn("could not schedule the poll; the recoverer will")
	}
	h.log.WithFields(logrus.Fields{"state": store.Pending, "provider_status": out.Status, "poll_step": next, "poll_in": delay.String()}).Info("refund pending; poll scheduled")
	return nil
}

// writeResult leaves the state a run reached (and the provider's reference)
// as the task's result, which asynqmon shows. The record stays the truth:
// this is written after it, best effort.
func (h *run) writeResult(state store.State, providerRef string) {
	if h.result == nil {
		return
	}
	if providerRef == "" {
		providerRef = h.rec.ProviderRef // kept by the record when the answer named none
	}
	b, _ := json.Marshal(struct {
		State       store.State `json:"state"`
		ProviderRef string      `json:"provider_ref,omitempty"`
	}{state, providerRef})
	if _, err := h.result.Write(b); err != nil {
		h.log.WithError(err).Warn("could not write the task's result")
	}
}

// block keeps the refund where it is, with the reason, and hands the task
// back to be tried again after blockedRetry without spending a retry: a
// wrong key or a missing variable must not end refunds, and fixing it
// resumes them.
// settled says the attempt in flight was refused unapplied (a send that met
// an auth failure).
func (h *run) block(ctx context.Context, reason string, settled bool) error {
	rec := h.rec
	reason = "blocked: " + reason
	err := h.finish(ctx, store.Change{State: rec.State, Blocked: reason, LastError: reason, Settled: settled,
		Due: h.dueAfter(h.blockedRetry), Entry: store.Entry{Event: "decision", Attempt: rec.Attempts, Detail: reason}})
	if err != nil && !errors.Is(err, store.ErrClosed) {
		return err
	}
	h.log.WithFields(logrus.Fields{"state": rec.State, "reason": reason, "retry_in": h.blockedRetry.String()}).Error("refund blocked")
	return h.snooze("blocked", errors.New(reason), h.blockedRetry)
}

// wait sleeps before the next call. A delay the rule itself requires (a
// settle delay) is waited out as it is, and when it is too long to sleep
// through the task is handed back to asynq for later without counting a
// failure. Otherwise the run's backoff chooses, at least the provider's
// hint; a backoff that is spent, or a hint too long to sleep through, gives
// the task back (counted, so a provider that never answers ends in review).
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
	if h.last.RetryAfter > 0 {
		return &retryAfterError{err: err, after: h.last.RetryAfter}
	}
	return err
}

// finalize runs when asynq will not run the task again: the refund moves to
// needs_review with what is known, never to failed on a guess.
func (h *run) finalize(ctx context.Context, cause error) error {
	retry, _ := asynq.GetRetryCount(ctx)
	rec := h.rec
	reason := fmt.Sprintf("outcome still unknown after %d runs (last: %v); check the provider before any resend", retry+1, cause)
	if rec.InFlight == 0 && rec.State != store.Pending {
		reason = fmt.Sprintf("not sent after %d runs (last: %v); nothing was applied; `refundctl retry %s` sends it again", retry+1, cause, rec.RefundID)
	}
	if err := h.close(ctx, store.NeedsReview, reason, providers.Outcome{}, store.Entry{}); err != nil {
		return err
	}
	return fmt.Errorf("%s: %w", reason, asynq.SkipRetry)
}

// lastRun reports whether asynq archives the task if this run fails.
func lastRun(ctx context.Context) bool {
	retry, _ := asynq.GetRetryCount(ctx)
	maxRetry, ok := asynq.GetMaxRetry(ctx)
	return ok && retry >= maxRetry
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

// Due times say when the recoverer should check that a task drives a
// refund: while a run holds it, the run's whole timeout; after it, the retry
// delay or the poll or snooze time; each plus the margin. A check that comes
// early finds the task alive and costs one look at asynq.
func (h *Handler) dueRunning() time.Time { return time.Now().Add(tasks.Timeout + h.dueMargin) }
func (h *Handler) dueAfter(d time.Duration) time.Time {
	return time.Now().Add(d + h.dueMargin)
}

// recordCtx lets an outcome be written even when the handler's context has
// just ended (task timeout, shutdown deadline): losing the record of a call
// that reached the provider costs a reconcile, or worse. go-redis's own
// read and write timeouts still bound the write.
func recordCtx(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }
