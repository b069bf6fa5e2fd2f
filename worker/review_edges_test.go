package worker_test

// Look-ups in review at their edges: what a run would believe, a provider
// this worker cannot call, a reference another refund holds, a resume of a
// refund the recoverer gave up on. Each failed before its fix.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/sirupsen/logrus"

	"github.com/refundq/refundq/enqueue"
	"github.com/refundq/refundq/internal/logs/logstest"
	"github.com/refundq/refundq/internal/redistest"
	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/tasks"
	"github.com/refundq/refundq/worker"
)

// scripted is a provider whose look-ups answer from a script, and which
// counts the refunds sent to it (each one is money).
type scripted struct {
	mu    sync.Mutex
	looks []providers.Outcome
	sent  int
}

func (s *scripted) Refund(ctx context.Context, r providers.Refund) providers.Outcome {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent++
	return providers.Outcome{Kind: providers.Pending, Reference: fmt.Sprintf("second-%d", s.sent), HTTPStatus: 200}
}

func (s *scripted) Lookup(ctx context.Context, r providers.Refund) providers.Outcome {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.looks) == 0 {
		return providers.Outcome{Kind: providers.Unknown, HTTPStatus: 503}
	}
	o := s.looks[0]
	s.looks = s.looks[1:]
	return o
}

func (s *scripted) script(o ...providers.Outcome) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.looks = append(s.looks, o...)
}

func (s *scripted) sends() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sent
}

// scriptedWorker runs a worker whose one provider (ecomcharge's name: keyed,
// not idempotent, unless keyless says otherwise) is p.
func scriptedWorker(t *testing.T, p providers.Provider, keyless, resume bool) *harness {
	t.Helper()
	env := redistest.New(t)
	reg := providers.NewRegistry(providers.Entry{Name: providers.EcomCharge, Provider: p, SettleDelay: settleDelay, Keyless: keyless,
		Schedule: providers.Schedule{First: time.Second, Max: time.Second, Horizon: time.Minute}})
	logs := &logstest.Buffer{}
	log := logrus.New()
	log.SetOutput(logs)
	log.SetFormatter(&logrus.JSONFormatter{})
	w, err := worker.New(worker.Config{AcceptRedisLoss: true, Redis: env.Asynq, RDB: env.Client, Registry: reg, Prefix: env.Prefix,
		Queue: env.Queue, Logger: log, InRunWait: time.Second, RecoverEvery: time.Hour, BlockedRetry: 500 * time.Millisecond,
		Attempt:       worker.AttemptPolicy{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond, MaxElapsed: 2 * time.Second, MaxTries: 5},
		ReviewRecheck: []time.Duration{time.Millisecond}, ResumeAfterReview: resume})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Shutdown)
	insp := asynq.NewInspector(env.Asynq)
	t.Cleanup(func() { insp.Close() })
	return &harness{env: env, store: store.New(env.Client, env.Prefix), logs: logs, worker: w, insp: insp}
}

func ecomRefund(id, order string) tasks.Refund {
	return tasks.Refund{Version: 1, RefundID: id, Provider: providers.EcomCharge, OrderID: order, AmountMinor: 500, Currency: "EUR"}
}

// A run that saw the provider have the refund in progress, and then shows
// none of it, hands it to a person (decide: pending && !idempotent →
// contradiction). A look-up in review forgets the "in progress" it saw: the
// next "not found" is taken as proof nothing was applied, and with
// REFUNDQ_RESUME_AFTER_REVIEW the refund is sent a second time while the
// first may still complete.
func TestReviewPendingThenNotFoundIsAContradiction(t *testing.T) {
	p := &scripted{}
	h := scriptedWorker(t, p, false, true)
	ctx := context.Background()
	r := ecomRefund("rf-pn", "ord-pn")
	diedAfterSending(t, h.store, r)
	if moved, err := h.store.Escalate(ctx, r.RefundID, "", "test: outcome unknown", time.Millisecond); err != nil || !moved {
		t.Fatalf("escalate: %v %v", moved, err)
	}
	p.script(
		providers.Outcome{Kind: providers.Pending, Reference: "first-1", Status: "processing", HTTPStatus: 200},
		providers.Outcome{Kind: providers.NotFound, HTTPStatus: 200},
	)
	time.Sleep(settleDelay + 20*time.Millisecond)
	if found, err := h.worker.Handler().Recheck(ctx, r.RefundID); err != nil || found != "unknown" {
		t.Fatalf("first look-up = %q, %v; want unknown (pending)", found, err)
	}
	rec, _ := h.store.Get(ctx, r.RefundID)
	// Forced due: the schedule's next wait is 1ms.
	time.Sleep(5 * time.Millisecond)
	found, err := h.worker.Handler().Recheck(ctx, r.RefundID)
	after, _ := h.store.Get(ctx, r.RefundID)
	if err != nil || found != "contradiction" {
		t.Errorf("after the provider showed it in progress (%s, provider_ref %q kept?), a not-found in review = %q, %v; "+
			"want contradiction, as a run decides; the refund is now %s", rec.Review, rec.ProviderRef, found, err, after.State)
	}
	if after.State == store.Queued {
		t.Errorf("the refund the provider had in progress is queued to be sent again: %+v", after)
		h.recoverNow(t, r.RefundID)
		deadline := time.Now().Add(10 * time.Second)
		for p.sends() == 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if p.sends() > 0 {
			t.Errorf("and it was: %d more refund(s) sent for rf-pn while the first was last seen in progress", p.sends())
		}
	}
}

// A refund escalated by the recoverer while pending at the provider (its
// poll task archived) loses "pending": it becomes outcome_unknown, and one
// "not found" in review is then proof enough to send it again. finalize
// records such a refund as pending_too_long; Escalate must too.
func TestEscalatedPendingRefundKeepsPending(t *testing.T) {
	p := &scripted{}
	h := scriptedWorker(t, p, false, true)
	ctx := context.Background()
	r := ecomRefund("rf-ep", "ord-ep")
	diedAfterSending(t, h.store, r)
	// As run.pending records it: the attempt settled (in_flight 0), pending.
	l, _, err := h.store.Acquire(ctx, r.RefundID, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	one := 1
	if err := l.Finish(ctx, store.Change{State: store.Pending, ProviderRef: "first-1", ProviderStatus: "processing", Settled: true,
		PollStep: &one, Task: tasks.PollTaskID(r.RefundID, 1), Entry: store.Entry{Event: "lookup", Outcome: "pending"}}); err != nil {
		t.Fatal(err)
	}
	if moved, err := h.store.Escalate(ctx, r.RefundID, "", "test: its poll task ran out of retries", time.Millisecond); err != nil || !moved {
		t.Fatalf("escalate: %v %v", moved, err)
	}
	rec, _ := h.store.Get(ctx, r.RefundID)
	if rec.Review != store.ReviewPending {
		t.Errorf("a pending refund escalated: review kind %q, want %q", rec.Review, store.ReviewPending)
	}
	p.script(providers.Outcome{Kind: providers.NotFound, HTTPStatus: 200})
	time.Sleep(settleDelay + 20*time.Millisecond)
	found, err := h.worker.Handler().Recheck(ctx, r.RefundID)
	if err != nil || found != "contradiction" {
		t.Errorf("a pending refund now not found = %q, %v; want contradiction", found, err)
	}
	after, _ := h.store.Get(ctx, r.RefundID)
	if after.State == store.Queued {
		t.Errorf("the refund the provider had in progress is queued to be sent again (store.Reopen would refuse it: %q): %+v",
			"the provider knows it as first-1", after)
	}
}

// Due look-ups that this worker cannot make (the provider not configured
// here, or its breaker open) stay at the head of the recheck index with
// their score unchanged, and DueRechecks reads only the first 50: one
// unconfigured provider with 50 refunds in review stops every other
// provider's look-ups for good, silently.
func TestReviewLookupsAreNotStarvedByAnUnconfiguredProvider(t *testing.T) {
	h := start(t, func(s *setup) { s.reviewRecheck = []time.Duration{50 * time.Millisecond, time.Hour} })
	ctx := context.Background()
	for i := range 50 {
		r := tasks.Refund{Version: 1, RefundID: fmt.Sprintf("rf-fat-%02d", i), Provider: providers.Fatora, OrderID: fmt.Sprintf("ord-fat-%02d", i),
			AmountMinor: 100, Currency: "KWD"}
		diedAfterSending(t, h.store, r)
		if moved, err := h.store.Escalate(ctx, r.RefundID, "", "test: outcome unknown", time.Millisecond); err != nil || !moved {
			t.Fatalf("escalate: %v %v", moved, err)
		}
	}
	h.sim.AddOrder("ord-sv", mustMoney(t, "42.50", "SAR"))
	r := tasks.Refund{Version: 1, RefundID: "rf-sv", Provider: providers.MoyasarPG, OrderID: "ord-sv", AmountMinor: 4250, Currency: "SAR"}
	diedAfterSending(t, h.store, r)
	rec, _ := h.store.Get(ctx, r.RefundID)
	h.applyAtProvider(t, rec)
	time.Sleep(10 * time.Millisecond)
	if moved, err := h.store.Escalate(ctx, r.RefundID, "", "test: outcome unknown", time.Millisecond); err != nil || !moved {
		t.Fatalf("escalate: %v %v", moved, err)
	}
	deadline := time.Now().Add(6 * time.Second) // six passes (one a second)
	for time.Now().Before(deadline) {
		if rec, _ := h.store.Get(ctx, r.RefundID); rec.State == store.Succeeded {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	rec, _ = h.store.Get(ctx, r.RefundID)
	t.Fatalf("the Moyasar PG refund, applied at the provider and due for a look-up, was never looked up: %s, %d look-ups, next %s",
		rec.State, rec.RecheckN, rec.RecheckAt)
}

// A look-up whose answer names another refund's reference (keyless: two
// equal refunds on an order) settles nothing, but its history entry still
// says "settled" by the look-up as succeeded: the console's timeline marks
// it as a settle while the refund is still in review.
func TestReviewRefTakenIsNotRecordedAsASettle(t *testing.T) {
	p := &scripted{}
	h := scriptedWorker(t, p, true, false)
	ctx := context.Background()
	a, b := ecomRefund("rf-ra", "ord-r"), ecomRefund("rf-rb", "ord-r")
	a.RefundID, b.RefundID = "rf-ra", "rf-rb"
	if _, _, err := h.store.Create(ctx, a); err != nil {
		t.Fatal(err)
	}
	la, _, err := h.store.Acquire(ctx, a.RefundID, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	la.ClaimReferences()
	if err := la.Finish(ctx, store.Change{State: store.Succeeded, ProviderRef: "R1", Settled: true, Entry: store.Entry{Event: "lookup"}}); err != nil {
		t.Fatal(err)
	}
	diedAfterSending(t, h.store, b)
	if moved, err := h.store.Escalate(ctx, b.RefundID, "", "test: outcome unknown", time.Millisecond); err != nil || !moved {
		t.Fatalf("escalate: %v %v", moved, err)
	}
	p.script(providers.Outcome{Kind: providers.Succeeded, Reference: "R1", HTTPStatus: 200})
	time.Sleep(settleDelay + 20*time.Millisecond)
	found, err := h.worker.Handler().Recheck(ctx, b.RefundID)
	rec, _ := h.store.Get(ctx, b.RefundID)
	if err != nil || rec.State != store.NeedsReview {
		t.Fatalf("Recheck = %q, %v; record %+v; want still in review", found, err, rec)
	}
	hist, _ := h.store.History(ctx, b.RefundID)
	last := hist[len(hist)-1]
	if last.Event == "settled" || last.Actor != "" {
		t.Errorf("history of a refund still in review ends with %q by %q: %q", last.Event, last.Actor, last.Detail)
	}
}

// REFUNDQ_RESUME_AFTER_REVIEW on a refund that reached review because the
// recoverer gave up on it (its task archived with retries spent, resumes
// at maxResumes): the resume names the same, still archived, task; the
// recoverer sees it spent again with resumes unchanged and escalates the
// refund straight back, now as not_sent. The history says "sent again";
// nothing is.
func TestResumeAfterReviewOfARecovererEscalation(t *testing.T) {
	p := &scripted{}
	h := scriptedWorker(t, p, false, true)
	ctx := context.Background()
	r := ecomRefund("rf-rs", "ord-rs")
	diedAfterSending(t, h.store, r)
	payload, err := tasks.EncodeRefund(r)
	if err != nil {
		t.Fatal(err)
	}
	c := asynq.NewClient(h.env.Asynq)
	defer c.Close()
	if _, err := c.Enqueue(asynq.NewTask(tasks.TypeRefund, payload, asynq.TaskID(tasks.RefundTaskID(r.RefundID)),
		asynq.MaxRetry(0), asynq.Queue(h.env.Queue), asynq.ProcessIn(time.Hour))); err != nil {
		t.Fatal(err)
	}
	if err := h.insp.ArchiveTask(h.env.Queue, tasks.RefundTaskID(r.RefundID)); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := h.store.Resumed(ctx, r.RefundID); err != nil {
			t.Fatal(err)
		}
	}
	if n := h.recoverNow(t, r.RefundID); n != 0 {
		t.Fatalf("recoverer re-created %d tasks; want it to escalate", n)
	}
	rec, _ := h.store.Get(ctx, r.RefundID)
	if rec.State != store.NeedsReview || rec.Review != store.ReviewUnknown {
		t.Fatalf("after the recoverer gave up: %+v; want needs_review, outcome_unknown", rec)
	}
	p.script(providers.Outcome{Kind: providers.NotFound, HTTPStatus: 200})
	time.Sleep(settleDelay + 20*time.Millisecond)
	if found, err := h.worker.Handler().Recheck(ctx, r.RefundID); err != nil || found != "not_applied" {
		t.Fatalf("Recheck = %q, %v; want not_applied", found, err)
	}
	h.recoverNow(t, r.RefundID)
	deadline := time.Now().Add(5 * time.Second)
	for p.sends() == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	rec, _ = h.store.Get(ctx, r.RefundID)
	if p.sends() == 0 {
		t.Fatalf("resumed after review, but never sent: %s (%s): %s", rec.State, rec.Review, rec.LastError)
	}
}

// A guess is confirmed by answers about refunds made after the provider
// showed the field; a provider that began showing it may not show it for
// refunds made before. So an absence read through a guess confirmed only
// after the attempt was sent proves nothing — in review as in a run — while
// the same absence through a guess confirmed before the send does.
func TestAnAbsenceThroughAGuessConfirmedAfterTheSendIsNoProof(t *testing.T) {
	notFound := providers.Outcome{Kind: providers.NotFound, HTTPStatus: 200}
	confirm := func(t *testing.T, h *harness) {
		t.Helper()
		if _, err := h.store.Observe(context.Background(), providers.EcomCharge, "ecomcharge.tracking_lookup", true, "a look-up listed our refund"); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("in review", func(t *testing.T) {
		for _, before := range []bool{true, false} {
			p := &scripted{}
			h := scriptedWorker(t, p, false, false)
			ctx := context.Background()
			r := ecomRefund(fmt.Sprintf("rf-late-%v", before), "ord-late")
			if before {
				confirm(t, h)
				time.Sleep(5 * time.Millisecond)
			}
			diedAfterSending(t, h.store, r)
			if !before {
				time.Sleep(5 * time.Millisecond)
				confirm(t, h)
			}
			if moved, err := h.store.Escalate(ctx, r.RefundID, "", "test: outcome unknown", time.Millisecond); err != nil || !moved {
				t.Fatalf("escalate: %v %v", moved, err)
			}
			p.script(notFound)
			time.Sleep(settleDelay + 20*time.Millisecond)
			found, err := h.worker.Handler().Recheck(ctx, r.RefundID)
			want := "unknown"
			if before {
				want = "not_applied"
			}
			if err != nil || found != want {
				hist, _ := h.store.History(ctx, r.RefundID)
				t.Errorf("guess confirmed before the send %v: Recheck = %q, %v; want %s\nhistory %+v", before, found, err, want, hist)
			}
		}
	})
	t.Run("in a run", func(t *testing.T) {
		p := &scripted{}
		h := scriptedWorker(t, p, false, false)
		ctx := context.Background()
		r := ecomRefund("rf-late-run", "ord-late-run")
		diedAfterSending(t, h.store, r)
		time.Sleep(5 * time.Millisecond)
		confirm(t, h)
		for range 20 {
			p.script(notFound)
		}
		time.Sleep(settleDelay)
		h.enqueueTask(t, r)
		rec := h.await(t, r.RefundID)
		if rec.State != store.NeedsReview || p.sends() != 0 {
			hist, _ := h.store.History(ctx, r.RefundID)
			t.Fatalf("a refund whose only 'not found' rests on a guess confirmed after its send: %s, %d sent; want needs_review, none sent\nhistory %+v",
				rec.State, p.sends(), hist)
		}
	})
}

// A reconciliation reads an absence as a run does: a failed refund whose
// provider shows nothing of it agrees only where that "nothing" is not read
// through a guess confirmed after the refund was sent; otherwise it is
// unchecked (neither agreement nor disagreement is proven).
func TestReconcileReadsAnAbsenceAsARunDoes(t *testing.T) {
	for _, before := range []bool{true, false} {
		t.Run(fmt.Sprintf("guess confirmed before the send %v", before), func(t *testing.T) {
			p := &scripted{}
			h := scriptedWorker(t, p, false, false)
			ctx := context.Background()
			confirm := func() {
				if _, err := h.store.Observe(ctx, providers.EcomCharge, "ecomcharge.tracking_lookup", true, "a look-up listed our refund"); err != nil {
					t.Fatal(err)
				}
			}
			since := time.Now().Add(-time.Minute)
			if before {
				confirm()
				time.Sleep(5 * time.Millisecond)
			}
			r := ecomRefund("rf-rcl", "ord-rcl")
			diedAfterSending(t, h.store, r)
			l, _, err := h.store.Acquire(ctx, r.RefundID, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if err := l.Finish(ctx, store.Change{State: store.Failed, Settled: true, LastError: "refused",
				Entry: store.Entry{Event: "send", Outcome: "rejected"}}); err != nil {
				t.Fatal(err)
			}
			if !before {
				time.Sleep(5 * time.Millisecond)
				confirm()
			}
			p.script(providers.Outcome{Kind: providers.NotFound, HTTPStatus: 200})
			enq := enqueue.New(h.env.Asynq, h.env.Client, enqueue.WithQueue(h.env.Queue), enqueue.WithPrefix(h.env.Prefix), enqueue.AcceptRedisLoss())
			t.Cleanup(func() { enq.Close() })
			var run store.ReconcileRun
			for { // the worker announces itself at start
				run, err = enq.StartReconcile(ctx, enqueue.ReconcileRequest{Since: since, Until: aheadOfRedis(), StartedBy: "test"})
				if !errors.Is(err, enqueue.ErrNoWorker) {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if err != nil {
				t.Fatal(err)
			}
			run = h.awaitRun(t, run.ID, "done", func(r store.ReconcileRun) bool { return r.State == store.RunDone })
			wantAgree, wantUnchecked := 0, 1
			if before {
				wantAgree, wantUnchecked = 1, 0
			}
			if run.Checked != 1 || run.Agree != wantAgree || run.Unchecked != wantUnchecked || run.Disagree != 0 {
				t.Fatalf("run = %+v; want %d agree, %d unchecked", run, wantAgree, wantUnchecked)
			}
		})
	}
}
