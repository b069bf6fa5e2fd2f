package worker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/hibiken/asynq"
	"github.com/sirupsen/logrus"

	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/providers"
)

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
	for {
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
			done, err := h.admit(ctx)
			if err != nil {
				return err
			}
			out, e = h.call(ctx, c, entry.Provider.Lookup, req, done, time.Now().Add(providers.OperationTimeout))
			if out.Kind == providers.NotFound {
				out, e = h.absence(ctx, out, e)
			}
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
			return h.toReview(ctx, d.kind, d.reason, out, e)
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
			now := h.lease.Now()
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

// absence keeps a look-up's "not found" only where it can prove something:
// read through a guess confirmed after the attempt was sent, it cannot
// (confirmedSince), and it is an answer that cannot show the refund.
func (h *run) absence(ctx context.Context, out providers.Outcome, e store.Entry) (providers.Outcome, store.Entry) {
	late, err := h.confirmedSince(ctx, h.rec)
	if err == nil && late == "" {
		return out, e
	}
	why := late + ": that its answers show refunds sent before is not confirmed, so an absence is no proof"
	if err != nil {
		why = "what is known of the provider's guesses cannot be read: " + err.Error()
	}
	out.Kind, out.Reason = providers.Unknown, strings.TrimSpace(out.Reason+"; "+why)
	e.Outcome, e.Detail = out.Kind.String(), out.Reason
	return out, e
}

// facts gathers what decide needs from the record.
func (h *run) facts(c call, out providers.Outcome) facts {
	rec := h.rec
	// On Redis's clock, as the times were written: see store.Lease.Now.
	now := h.lease.Now()
	f := facts{
		call: c, out: out, attempt: max(rec.Attempts, 1), pending: rec.State == store.Pending,
		refused: rec.Refused, sinceSent: now.Sub(rec.SentAt), sinceNotFound: -1,
		sinceUnsure: -1, settle: h.entry.Settle(), keyless: h.entry.Keyless, idempotent: h.entry.Idempotent,
	}
	if c == callPrepare {
		f.attempt = rec.Attempts + 1
	}
	if rec.SentAt.IsZero() {
		f.sinceSent = f.settle // never sent: nothing can still be applied
	}
	if !rec.NotFoundAt.IsZero() {
		f.sinceNotFound = now.Sub(rec.NotFoundAt)
	}
	if !rec.UnsureAt.IsZero() {
		f.sinceUnsure = now.Sub(rec.UnsureAt)
	}
	return f
}
