package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/providers"
)

// send prepares (where the adapter reads the provider first), marks the
// attempt in flight and sends it. handled is true when the run is over (the
// order is busy with another refund of ours, the guard refused the call,
// the worker is stopping).
func (h *run) send(ctx context.Context) (c call, out providers.Outcome, e store.Entry, handled bool, err error) {
	rec := &h.rec
	req, err := h.request(ctx)
	if err != nil {
		return "", out, e, true, err
	}
	var before []byte
	if h.entry.Keyless {
		// The order is ours before it is read: another refund of ours sent
		// meanwhile would show on it as a change no record explains.
		if err := h.lease.ClaimOrder(ctx); err != nil {
			if errors.Is(err, store.ErrOrderBusy) {
				return h.orderBusy(ctx, err)
			}
			return "", out, e, true, err
		}
	}
	if p, ok := h.entry.Provider.(providers.Preparer); ok {
		done, err := h.admit(ctx)
		if err != nil {
			return "", out, e, true, err
		}
		var ok bool
		start := time.Now()
		pctx, cancel := context.WithTimeout(ctx, providers.OperationTimeout)
		pctx, span := h.startCall(pctx, callPrepare, rec.Attempts+1)
		out = reported(done, func() providers.Outcome {
			var o providers.Outcome
			before, o, ok = p.Prepare(pctx, req)
			if ok {
				o.Kind = providers.Succeeded // read; for the breaker and the metric
			}
			return o
		})
		endCall(span, out)
		cancel()
		h.metrics.calls.WithLabelValues(rec.Provider, string(callPrepare), out.Kind.String()).Observe(time.Since(start).Seconds())
		if !ok {
			h.learn(ctx, out)
			e = h.entryFor(callPrepare, rec.Attempts+1, out, time.Since(start))
			return callPrepare, out, e, false, nil
		}
		// The read may have taken most of the shutdown's grace: a send
		// started now could be cut off mid-flight.
		if h.stopping() {
			return "", out, e, true, errShutdown
		}
	}
	// Every wait (the rate limit's included) is over before the mark: the
	// request leaves within OperationTimeout of sent_at, as the settle rule
	// assumes, or not at all.
	done, err := h.admit(ctx)
	if err != nil {
		return "", out, e, true, err
	}
	if h.stopping() { // the rate limit's wait may have outlasted the shutdown's start
		done(nil)
		return "", out, e, true, errShutdown
	}
	deadline := time.Now().Add(providers.OperationTimeout)
	attempt, err := h.lease.MarkSent(ctx, store.Send{
		Sent:   fmt.Sprintf("refund %s key=%s", rec.Amount, rec.Key),
		Before: string(before), OnePerOrder: h.entry.Keyless,
		Due: h.dueRunning(), Task: h.task, Queue: h.queue,
	})
	if err != nil {
		done(nil)
	}
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
	rec.InFlight, rec.Attempts, rec.State, rec.SentAt = attempt, attempt, store.Processing, h.lease.Now()
	rec.Before, rec.NotFoundAt, rec.UnsureAt, rec.Refused = string(before), time.Time{}, time.Time{}, ""
	// The adapter judges its answer against what it read just now, not
	// against an earlier attempt's read.
	req.Attempt, req.Before = attempt, before
	out, e = h.call(ctx, callSend, h.entry.Provider.Refund, req, done, deadline)
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
	h.log.WithField("holder", busy.Holder).Debug("another refund of ours is in flight on the order; waiting for it")
	// The other refund's attempt settles a settle delay or so after its
	// send at the earliest.
	wait := h.entry.Settle() / 2
	return "", out, e, true, h.handBack(ctx, "order_busy", busy.Error(), wait)
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

// call makes one provider call the guard admitted (done), until deadline,
// logs it, learns from it, and returns its history entry (recorded with
// whatever the decision writes).
func (h *run) call(ctx context.Context, c call, fn func(context.Context, providers.Refund) providers.Outcome, req providers.Refund,
	done func(*providers.Outcome), deadline time.Time) (providers.Outcome, store.Entry) {
	start := time.Now()
	var requestID string
	cctx, cancel := context.WithDeadline(providers.WithRequestID(ctx, &requestID), deadline)
	cctx, span := h.startCall(cctx, c, req.Attempt)
	out := reported(done, func() providers.Outcome { return fn(cctx, req) })
	endCall(span, out)
	cancel()
	dur := time.Since(start)
	h.metrics.calls.WithLabelValues(h.rec.Provider, string(c), out.Kind.String()).Observe(dur.Seconds())
	if out.RequestID == "" {
		out.RequestID = requestID
	}
	h.learn(ctx, out)
	return out, h.entryFor(c, req.Attempt, out, dur)
}

// reported makes an admitted call and reports its outcome to done, also
// when the adapter panics (asynq recovers a handler's panic, and the
// breaker's one trial slot must not stay taken for good).
func reported(done func(*providers.Outcome), call func() providers.Outcome) providers.Outcome {
	ok := false
	defer func() {
		if !ok {
			done(&providers.Outcome{Kind: providers.Unknown, Reason: "the adapter panicked"})
		}
	}()
	out := call()
	ok = true
	done(&out)
	return out
}

// admit asks the provider's guard to let a call through. A refusal ends the
// run: the refund waits, with the reason, and its task comes back after the
// wait without spending a retry.
func (h *run) admit(ctx context.Context) (func(*providers.Outcome), error) {
	done, ref := h.guards.of(h.entry).admit(ctx, h.inRunWait)
	if ref == nil {
		return done, nil
	}
	return nil, h.handBack(ctx, ref.why, ref.msg, ref.after)
}

// entryFor logs a call and returns its history entry. A call that got the
// answer it asked for (applied, in progress, not there) is logged at debug:
// an operator reads the outcome a run reaches, not every call on the way,
// and the history keeps them all. Any other answer (an error, a refusal,
// no answer) is logged at info, for whoever looks into a provider.
func (h *run) entryFor(c call, attempt int, out providers.Outcome, dur time.Duration) store.Entry {
	level := logrus.InfoLevel
	switch out.Kind {
	case providers.Succeeded, providers.Pending, providers.NotFound:
		level = logrus.DebugLevel
	}
	if h.log.Logger.IsLevelEnabled(level) {
		h.log.WithFields(logrus.Fields{
			"op": string(c), "attempt": attempt, "outcome": out.Kind.String(), "http_status": out.HTTPStatus,
			"provider_status": out.Status, "duration_ms": dur.Milliseconds(),
		}).Log(level, string(c)+" "+out.Kind.String())
	}
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
