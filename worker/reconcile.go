package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/tasks"
)

// A reconciliation run re-reads, at its provider, every refund that became
// succeeded or failed in a window, with the adapters' look-ups, and keeps
// what disagrees (store.ReconcileRun). It runs here because only workers
// hold provider credentials, rate limits and breakers: its look-ups queue
// behind the same guards as the refunds', so a report never costs a refund
// its provider's patience. It never sends and never changes a refund.

// Variables, not constants, so a test can make a run of many slices.
var (
	// reconcileBatch is how many refunds are checked between two saves of
	// the cursor: a crash redoes at most this many look-ups.
	reconcileBatch = 50
	// reconcileSlice is how long one run of the task goes on before it
	// saves and hands the task back, far inside tasks.ReconcileTimeout: a
	// run over a day of refunds is many short runs, and a deploy in the
	// middle loses none of it.
	reconcileSlice = 2 * time.Minute
	// reconcileReadTries is how many times a refund is looked up when the
	// look-up gets no answer or a 5xx, before it is reported unchecked;
	// the waits between grow by reconcileReadWait.
	reconcileReadTries = 3
	reconcileReadWait  = time.Second
)

// HandleReconcile handles a TypeReconcile task: it goes on with its run
// from the saved cursor until the run is done or its slice is over.
func (h *Handler) HandleReconcile(ctx context.Context, t *asynq.Task) error {
	p, err := tasks.DecodeReconcile(t.Payload())
	if err != nil {
		return h.undecodable(ctx, t, err)
	}
	run, err := h.store.Reconcile(ctx, p.RunID)
	if errors.Is(err, store.ErrRunNotFound) {
		return fmt.Errorf("%v: %w", err, asynq.SkipRetry) // expired: nothing left to report into
	}
	if err != nil || run.State == store.RunDone {
		return err
	}
	log := h.log.WithFields(logrus.Fields{"run_id": run.ID, "provider": run.Provider})
	end := time.Now().Add(reconcileSlice)
	for {
		if h.stopping() {
			return errShutdown
		}
		recs, scores, err := h.store.ReconcileBatch(ctx, run, reconcileBatch)
		if err != nil {
			return err
		}
		prog := store.Progress{Phase: run.Phase, AfterMS: run.AfterMS, AfterID: run.AfterID}
		var wait *refusal
		for i, rec := range recs {
			if mine := rec.Provider != "" && (run.Provider == "" || rec.Provider == run.Provider); mine &&
				(rec.State == store.Succeeded || rec.State == store.Failed) {
				var f *store.Finding
				var v agreement
				if v, f, wait = h.reconcileOne(ctx, rec); wait != nil {
					break // the cursor stays before it: it is checked, never skipped
				}
				prog.Checked++
				switch v {
				case agree:
					prog.Agree++
				case disagree:
					prog.Disagree++
				default:
					prog.Unchecked++
				}
				if f != nil {
					prog.Findings = append(prog.Findings, *f)
				}
			}
			prog.Walked++
			prog.AfterMS, prog.AfterID = scores[i], rec.RefundID
		}
		done := false
		if wait == nil && len(recs) < reconcileBatch {
			if run.Phase == store.Succeeded {
				prog.Phase, prog.AfterMS, prog.AfterID = store.Failed, run.Since.UnixMilli(), ""
			} else {
				done = true
			}
		}
		if err := h.store.SaveReconcile(recordCtx(ctx), run.ID, prog); err != nil {
			return err
		}
		run.Phase, run.AfterMS, run.AfterID = prog.Phase, prog.AfterMS, prog.AfterID
		if done {
			if err := h.store.FinishReconcile(recordCtx(ctx), run.ID, ""); err != nil {
				return err
			}
			if run, err = h.store.Reconcile(ctx, run.ID); err == nil {
				log.WithFields(logrus.Fields{"checked": run.Checked, "agree": run.Agree, "disagree": run.Disagree,
					"unchecked": run.Unchecked}).Info("reconciliation done")
			}
			return nil
		}
		if wait != nil && wait.after > h.inRunWait {
			return h.snooze(wait.why, wait, wait.after)
		}
		if wait != nil {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-h.quit:
				return errShutdown
			case <-time.After(wait.after):
			}
		}
		// Checked after a save, so every slice moves the cursor on.
		if time.Now().After(end) {
			return h.snooze("reconcile_slice", errors.New("reconciliation goes on in its next slice"), time.Second)
		}
	}
}

// reconcileOne looks rec up at its provider, as the worker does before it
// would send again, and judges the answer. A refusal (the guard's, or the
// provider's "call again in …") means: wait, then check this refund again.
func (h *Handler) reconcileOne(ctx context.Context, rec store.Record) (agreement, *store.Finding, *refusal) {
	finding := func(v agreement, why string, out providers.Outcome) *store.Finding {
		h.metrics.reconciled.WithLabelValues(rec.Provider, string(v)).Inc()
		if v == agree {
			return nil
		}
		f := &store.Finding{RefundID: rec.RefundID, Provider: rec.Provider, OrderID: rec.OrderID, State: rec.State,
			Amount: rec.Amount, Reference: rec.ProviderRef, Verdict: string(v), Reason: why, Shows: out.Kind.String(),
			Status: out.Status, ProviderRef: out.Reference, Detail: out.Reason, At: time.Now().UTC()}
		entry := h.log.WithFields(logrus.Fields{"refund_id": rec.RefundID, "provider": rec.Provider, "state": rec.State,
			"outcome": out.Kind.String(), "reason": why})
		if v == disagree {
			entry.Warn("reconciliation: the provider disagrees with the record")
		} else {
			entry.Info("reconciliation: the provider's answer cannot show the refund")
		}
		return f
	}
	if !lookupNeeded(rec) {
		h.metrics.reconciled.WithLabelValues(rec.Provider, string(agree)).Inc()
		return agree, nil, nil
	}
	entry, err := h.registry.Get(rec.Provider)
	if err != nil {
		v := unchecked
		return v, finding(v, "not looked up: "+err.Error(), providers.Outcome{}), nil
	}
	// The request a run's look-up makes: what is known of the guesses read
	// now, and the other refunds on the order, which an adapter that may
	// match by amount must not take for this one.
	r := &run{Handler: h, log: h.log.WithFields(logrus.Fields{"refund_id": rec.RefundID, "provider": rec.Provider}), rec: rec, entry: entry}
	req, err := r.lookupRequest(ctx)
	if err != nil {
		v := unchecked
		return v, finding(v, "not looked up: "+err.Error(), providers.Outcome{}), nil
	}
	look := entry.Provider.Lookup
	// A final refund with the provider's reference is checked by that
	// reference where the adapter can (providers.Verifier); Lookup judges
	// a lost answer, which for such a refund may be the wrong question.
	if v, ok := entry.Provider.(providers.Verifier); ok && verifiable(rec) {
		look = v.Verify
	}
	var out providers.Outcome
	for try := 1; ; try++ {
		done, ref := h.guards.of(entry).admit(ctx, h.inRunWait)
		if ref != nil {
			return "", nil, ref
		}
		out, _ = r.call(ctx, callReconcile, look, req, done, time.Now().Add(providers.OperationTimeout))
		if throttled(out) {
			return "", nil, &refusal{why: "throttled", after: out.RetryAfter, msg: "provider asked to call again later: " + out.Reason}
		}
		// A read that got no answer, or a 5xx, says nothing of the refund
		// and changed nothing: ask again, a few times, rather than report
		// a refund unchecked for one lost packet. The guard still counts
		// each failure, so an outage opens the breaker and the run waits.
		if !failed(out) || try == reconcileReadTries {
			break
		}
		select {
		case <-ctx.Done():
			return "", nil, &refusal{why: "reconcile_read", after: time.Second, msg: "look-up again: " + context.Cause(ctx).Error()}
		case <-h.quit:
			return "", nil, &refusal{why: "reconcile_read", after: time.Second, msg: "look-up again after shutdown"}
		case <-time.After(reconcileReadWait * time.Duration(try)):
		}
	}
	if out.Kind == providers.NotFound {
		// An absence proves nothing, agreement or not, where it is read
		// through a guess confirmed after the refund was sent.
		out, _ = r.absence(ctx, out, store.Entry{})
	}
	v, why := judge(rec.State, rec.ProviderRef, out)
	return v, finding(v, why, out), nil
}

// callReconcile is a reconciliation's look-up of a final refund: the
// operation label of its metrics and spans.
const callReconcile call = "reconcile"

// newReconcileMetric counts the refunds reconciliations checked, by
// provider and verdict: an alert on verdict="disagree" is the finance
// team's page.
func newReconcileMetric(reg prometheus.Registerer) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "refundq_reconcile_checks_total",
		Help: "Final refunds reconciliation runs on this worker looked up again, by provider and verdict (agree, disagree, unchecked).",
	}, []string{"provider", "verdict"})
	reg.MustRegister(c)
	return c
}
