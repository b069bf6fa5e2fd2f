package worker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/tasks"
)

// rechecker looks up, on the review schedule (Config.ReviewRecheck), the
// refunds in needs_review whose outcome nothing has shown yet, and settles
// each one a look-up proves: the refund since listed at the provider, a
// guess since confirmed by other refunds, a pending refund since completed.
// It never sends. A look-up that proves nothing was applied hands the
// refund to a person with the proof, or sends it again only where the
// merchant allows it (Config.ResumeAfterReview).
//
// Each look-up holds the refund's lease, like a run: no worker, and no
// person settling by hand, changes it meanwhile. Several workers share the
// due refunds: the first to take a refund's lease looks it up, and moves
// its next look-up on; the others find it not due any more.
type rechecker struct {
	h     *Handler
	every time.Duration
	ticking
}

const (
	recheckBatch    = 50
	recheckParallel = 4
)

// recheckEvery is how often a worker looks for due look-ups: often against
// the first wait of the schedule, never more than every 30 s.
func recheckEvery(p reviewPolicy) time.Duration {
	return min(max(p.first()/4, time.Second), 30*time.Second)
}

func (r *rechecker) start() {
	if r.h.review.first() <= 0 {
		return // look-ups in review are off
	}
	r.ticking.start(r.every, func(ctx context.Context) { r.pass(ctx) })
}

// pass looks up every refund due now, a few at a time.
func (r *rechecker) pass(ctx context.Context) {
	h := r.h
	ids, err := h.store.DueRechecks(ctx, time.Now(), recheckBatch)
	if err != nil {
		if ctx.Err() == nil {
			h.log.WithError(err).Warn("review look-ups: cannot read the due refunds")
		}
		return
	}
	sem := make(chan struct{}, recheckParallel)
	var wg sync.WaitGroup
	for _, id := range ids {
		if ctx.Err() != nil || h.stopping() {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if _, err := h.Recheck(ctx, id); err != nil && ctx.Err() == nil {
				h.log.WithError(err).WithField("refund_id", id).Warn("review look-up failed; it is due again")
			}
		}()
	}
	wg.Wait()
}

// Recheck looks refund id up if it is in needs_review and its look-up is
// due, and acts on what the answer proves. It returns what the look-up
// found ("" when none was made: not due, held by someone else, the
// provider not configured here or not callable now).
func (h *Handler) Recheck(ctx context.Context, id string) (string, error) {
	lease, rec, err := h.store.Acquire(ctx, id, LeaseTTL)
	if errors.Is(err, store.ErrNotFound) {
		return "", h.store.DropRecheck(ctx, id) // deleted by hand
	}
	if errors.Is(err, store.ErrBusy) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	defer lease.Release(recordCtx(ctx))
	if rec.State != store.NeedsReview || !rec.Review.Rechecked() || rec.RecheckAt.IsZero() {
		return "", h.store.DropRecheck(ctx, id)
	}
	if rec.RecheckAt.After(lease.Now()) {
		return "", nil // another worker looked it up meanwhile
	}
	entry, err := h.registry.Get(rec.Provider)
	if err != nil {
		// Another worker may have it configured: it is due again in a
		// while, and the refunds behind it in the index get their turn.
		return "", h.skipRecheck(ctx, rec, "not_configured", time.Minute, err.Error())
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go lease.KeepAlive(ctx, cancel)
	log := h.log.WithFields(logrus.Fields{"refund_id": rec.RefundID, "provider": rec.Provider, "review_kind": rec.Review})
	r := &run{Handler: h, lease: lease, log: log, rec: rec, entry: entry}
	if entry.Keyless {
		lease.ClaimReferences()
	}
	req, err := r.lookupRequest(ctx)
	if err != nil {
		return "", errors.Join(err, h.skipRecheck(ctx, rec, "error", time.Minute, err.Error()))
	}
	done, ref := h.guards.of(entry).admit(ctx, h.inRunWait)
	if ref != nil {
		return "", h.skipRecheck(ctx, rec, ref.why, min(max(ref.after, time.Second), 5*time.Minute), ref.msg)
	}
	out, e := r.call(ctx, callLookup, entry.Provider.Lookup, req, done, time.Now().Add(providers.OperationTimeout))
	if out.Kind == providers.NotFound {
		out, e = r.absence(ctx, out, e)
	}
	f := r.facts(callLookup, out)
	// What a run would know: the provider had the refund (in progress,
	// named it, was polled), so "not found" now contradicts rather than
	// proves.
	f.pending = rec.Review == store.ReviewPending || rec.PollStep > 0 || rec.ProviderRef != ""
	found, why := judgeReview(f)
	if found == nothingApplied {
		hist, err := h.store.History(ctx, rec.RefundID)
		if err != nil {
			return "", errors.Join(err, h.skipRecheck(ctx, rec, "error", time.Minute, err.Error()))
		}
		if shown := store.ShownAtProvider(rec, hist); shown != "" {
			found, why = contradicted, "the provider shows nothing of the refund now, but earlier "+shown
		}
	}
	if err := r.recorded(ctx, found, why, out, e); err != nil {
		return "", err
	}
	h.metrics.rechecks.WithLabelValues(rec.Provider, found.String()).Inc()
	return found.String(), nil
}

// confirmedSince names a guess of the refund's provider that was confirmed
// only after the refund's attempt was sent ("" when none was). A guess is
// confirmed by answers about refunds made after the provider showed the
// field; a provider that began showing it (a new API version) may not show
// it for refunds made before. An absence read through such a guess proves
// nothing of an older refund: only the presence of ours would.
func (h *Handler) confirmedSince(ctx context.Context, rec store.Record) (string, error) {
	gs, err := h.store.Guesses(ctx, rec.Provider)
	if err != nil {
		return "", err
	}
	for _, g := range gs {
		if g.Verdict() == "confirmed" && g.ConfirmedAt.After(rec.SentAt) {
			return fmt.Sprintf("its guess %s was confirmed at %s, after the attempt was sent at %s", g.Guess,
				g.ConfirmedAt.UTC().Format(time.RFC3339), rec.SentAt.UTC().Format(time.RFC3339)), nil
		}
	}
	return "", nil
}

// skipRecheck moves a look-up this worker cannot make now (the provider not
// configured here, its breaker open, its rate limit spent, an error) back
// in the index by wait, so the refunds due behind it are looked up, and
// says so: a look-up skipped for ever would leave a refund silently
// waiting.
func (h *Handler) skipRecheck(ctx context.Context, rec store.Record, why string, wait time.Duration, detail string) error {
	h.metrics.recheckSkips.WithLabelValues(rec.Provider, why).Inc()
	h.log.WithFields(logrus.Fields{"refund_id": rec.RefundID, "provider": rec.Provider, "why": why, "detail": detail,
		"retry_in": wait.String()}).Warn("review look-up skipped; it is due again later")
	return h.store.DeferRecheck(recordCtx(ctx), rec.RefundID, time.Now().Add(wait))
}

// lookupActor is who a settle by look-up is recorded as.
const lookupActor = "refundq look-up"

// recorded writes what a look-up in review found.
func (r *run) recorded(ctx context.Context, found finding, why string, out providers.Outcome, e store.Entry) error {
	rec, now := r.rec, r.lease.Now()
	evidence := strings.TrimSpace(fmt.Sprintf("%s (HTTP %d, status %q, request %s): %s", out.Kind, out.HTTPStatus, out.Status, out.RequestID, out.Reason))
	switch found {
	case paid, refused:
		state, lastErr := store.Succeeded, ""
		if found == refused {
			state, lastErr = store.Failed, "settled by look-up as failed: "+why
		}
		settle := e
		settle.Event, settle.Actor, settle.ProviderRef = "settled", lookupActor, out.Reference
		settle.Detail = fmt.Sprintf("settled by look-up %d in review as %s: %s; evidence: %s", rec.RecheckN+1, state, why, evidence)
		err := r.lease.Finish(recordCtx(ctx), store.Change{State: state, ProviderRef: out.Reference, ProviderStatus: out.Status,
			LastError: lastErr, Settled: true, SettledBy: store.ByLookup, Entry: settle})
		if errors.Is(err, store.ErrRefTaken) {
			// What the provider showed is another refund of ours: it proves
			// nothing of this one.
			return r.again(ctx, "it names another refund's reference: "+err.Error(), e, providers.Outcome{}, time.Time{})
		}
		if err == nil {
			r.writeResult(state, out.Reference)
			r.log.WithFields(logrus.Fields{"state": state, "provider_ref": out.Reference, "evidence": evidence}).Info("refund settled by look-up")
		}
		return err
	case nothingApplied:
		return r.nothingApplied(ctx, why, e)
	case contradicted:
		e.Detail = strings.TrimSpace(e.Detail + " → " + why + "; no more look-ups: a person decides")
		err := r.lease.Finish(recordCtx(ctx), store.Change{State: store.NeedsReview, Review: store.ReviewContradiction,
			Settled: out.Kind == providers.Review, LastError: why, Entry: e})
		if err == nil {
			r.log.WithField("reason", why).Warn("review look-up found a contradiction; a person decides")
		}
		return err
	case notFoundOnce:
		return r.again(ctx, why, e, out, now)
	}
	return r.again(ctx, why, e, out, time.Time{})
}

// again records a look-up that proved nothing and schedules the next, or,
// past the horizon, says no more will be made. An answer that shows the
// refund at the provider (in progress, uncertain) keeps its reference and
// status, and one in progress makes the refund pending_too_long: what the
// provider has shown, later look-ups must not forget.
func (r *run) again(ctx context.Context, why string, e store.Entry, out providers.Outcome, notFoundAt time.Time) error {
	rec, now := r.rec, r.lease.Now()
	kind := rec.Review
	var ref, status string
	if out.Kind == providers.Pending || out.Kind == providers.Uncertain {
		ref, status = out.Reference, out.Status
	}
	if out.Kind == providers.Pending {
		kind = store.ReviewPending
	}
	n := rec.RecheckN + 1
	next := now.Add(r.review.after(n))
	since, err := r.store.InStateSince(ctx, rec.RefundID, store.NeedsReview)
	if err != nil {
		return err
	}
	horizon := max(r.review.horizon, r.entry.Schedule.Horizon)
	if r.review.after(n) <= 0 || (!since.IsZero() && next.Sub(since) > horizon) {
		next = time.Time{}
		why += fmt.Sprintf("; no more look-ups (%s in review): a person decides", horizon)
	} else {
		why += "; next look-up at " + next.UTC().Format(time.RFC3339)
	}
	e.Detail = strings.TrimSpace(e.Detail + " → " + why)
	// A refund looked up daily for a month keeps one entry per kind of
	// answer, counted.
	c := store.Change{State: store.NeedsReview, Review: kind, RecheckAt: next, ProviderRef: ref, ProviderStatus: status,
		RecheckN: &n, NotFoundAt: notFoundAt, LastError: rec.LastError, Fold: true, Entry: e}
	err = r.lease.Finish(recordCtx(ctx), c)
	if errors.Is(err, store.ErrRefTaken) {
		// Another refund of ours holds that reference: keep the rest.
		c.ProviderRef = ""
		err = r.lease.Finish(recordCtx(ctx), c)
	}
	return err
}

// nothingApplied records the proof that nothing of the attempt in flight
// was applied. The refund is sent again only where the merchant allows it;
// otherwise it waits for a person, with the proof, and is not looked up
// again (the proof does not get stronger).
func (r *run) nothingApplied(ctx context.Context, why string, e store.Entry) error {
	rec := r.rec
	if r.review.resume {
		// The recoverer gives it a task at once (replacing the finished
		// one), as it does for any open refund whose task is missing.
		e.Detail = strings.TrimSpace(e.Detail + " → " + why + "; sent again (REFUNDQ_RESUME_AFTER_REVIEW)")
		// The recoverer's count of spent tasks starts over, as after a
		// person's retry: the refund is sent on, not resumed once more.
		err := r.lease.Finish(recordCtx(ctx), store.Change{State: store.Queued, Settled: true, Due: r.lease.Now(),
			Task: tasks.RefundTaskID(rec.RefundID), Queue: r.queue, ClearResumes: true, Entry: e})
		if err == nil {
			r.log.WithField("proof", why).Info("review look-up proved nothing applied; the refund is sent again")
		}
		return err
	}
	e.Detail = strings.TrimSpace(e.Detail + " → " + why + "; it stays for a person (REFUNDQ_RESUME_AFTER_REVIEW is off): " +
		"`refundctl retry " + rec.RefundID + "` sends it again, `refundctl settle` fails it")
	err := r.lease.Finish(recordCtx(ctx), store.Change{State: store.NeedsReview, Review: store.ReviewNotApplied, Settled: true,
		LastError: "a look-up proved nothing was applied: " + why, Entry: e})
	if err == nil {
		r.log.WithField("proof", why).Warn("review look-up proved nothing applied; a person decides whether to send it again")
	}
	return err
}
