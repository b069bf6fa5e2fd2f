package worker_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"testing"
	"time"

	"github.com/refundq/refundq/enqueue"
	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/providers/sim"
	"github.com/refundq/refundq/worker"
)

// aheadOfRedis is a run's end of window for a test that reconciles refunds
// made final a moment ago: their state index is scored on Redis's clock (a
// lease's), which may run a few milliseconds ahead of this process's.
func aheadOfRedis() time.Time { return time.Now().Add(time.Second) }

// awaitRun waits until reconciliation run id satisfies cond.
func (h *harness) awaitRun(t *testing.T, id string, what string, cond func(store.ReconcileRun) bool) store.ReconcileRun {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		run, err := h.store.Reconcile(context.Background(), id)
		if err == nil && cond(run) {
			return run
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s not %s: %+v, %v\nlogs:\n%s", id, what, run, err, h.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Refunds paid through a real worker agree with the simulator's books,
// except the two the test breaks there after refundq recorded them final:
// one shows another amount, one recorded failed shows applied. The run is
// many slices, and its worker is stopped and another started mid-run: the
// counts add up to every refund once, and each finding is reported once.
func TestReconcileReportsExactlyThePlantedDisagreements(t *testing.T) {
	t.Cleanup(worker.SetReconcilePace(2, 0)) // before start: restored after the workers stop
	h := start(t)
	ctx := context.Background()
	since := time.Now().Add(-time.Minute)

	const paid = 6
	for i := range paid {
		order := fmt.Sprintf("ord-rc-%d", i)
		h.sim.AddOrder(order, mustMoney(t, "10.00", "SAR"))
		if _, err := h.enq.Enqueue(ctx, req(fmt.Sprintf("rf-rc-%d", i), order, "10.00")); err != nil {
			t.Fatal(err)
		}
	}
	// More than the order holds: MPG refuses it, and refundq records it
	// failed after one attempt.
	h.sim.AddOrder("ord-rc-f", mustMoney(t, "10.00", "SAR"))
	if _, err := h.enq.Enqueue(ctx, req("rf-rc-f", "ord-rc-f", "20.00")); err != nil {
		t.Fatal(err)
	}
	for i := range paid {
		h.awaitPaidOnce(t, fmt.Sprintf("rf-rc-%d", i), fmt.Sprintf("ord-rc-%d", i))
	}
	failed := h.await(t, "rf-rc-f")
	if failed.State != store.Failed || failed.Attempts != 1 {
		t.Fatalf("rf-rc-f = %+v, want failed after one attempt", failed)
	}

	// The plants.
	short, _ := h.store.Get(ctx, "rf-rc-3")
	if !h.sim.ShortenApplied("ord-rc-3", short.ProviderRef) {
		t.Fatalf("no approved refund %s on ord-rc-3 to shorten", short.ProviderRef)
	}
	h.sim.ApplyLate("ord-rc-f", failed.Key, failed.Amount)

	run, err := h.enq.StartReconcile(ctx, enqueue.ReconcileRequest{Since: since, Until: aheadOfRedis(), StartedBy: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if run.Total != paid+1 {
		t.Fatalf("run total = %d, want %d", run.Total, paid+1)
	}
	// A worker stopped mid-run, and another one started.
	h.awaitRun(t, run.ID, "under way", func(r store.ReconcileRun) bool { return r.Walked > 0 })
	h.worker.Shutdown()
	if r, _ := h.store.Reconcile(ctx, run.ID); r.State == store.RunDone {
		t.Fatalf("run done before the worker stopped (%+v): the test shows no resume", r)
	}
	h.worker = h.newWorker(t)
	run = h.awaitRun(t, run.ID, "done", func(r store.ReconcileRun) bool { return r.State == store.RunDone })

	if run.Walked != paid+1 || run.Checked != paid+1 || run.Disagree != 2 || run.Agree != paid-1 || run.Unchecked != 0 {
		t.Fatalf("run = %+v; want %d checked, %d agree, 2 disagree, 0 unchecked", run, paid+1, paid-1)
	}
	fs, n, err := h.store.ReconcileFindings(ctx, run.ID, 0, 0)
	if err != nil || n != 2 {
		t.Fatalf("findings = %+v, %d, %v; want 2", fs, n, err)
	}
	sort.Slice(fs, func(i, j int) bool { return fs[i].RefundID < fs[j].RefundID })
	if f := fs[0]; f.RefundID != "rf-rc-3" || f.Verdict != "disagree" || f.Reason != "provider shows another amount or currency" ||
		f.State != store.Succeeded || f.Shows != "review" {
		t.Errorf("finding for the shortened refund = %+v", f)
	}
	if f := fs[1]; f.RefundID != "rf-rc-f" || f.Verdict != "disagree" || f.Reason != "failed here, applied at the provider" ||
		f.State != store.Failed || f.Shows != "succeeded" {
		t.Errorf("finding for the failed refund applied late = %+v", f)
	}
	// Read-only: nothing was sent, no record changed.
	if got := h.sim.RefundsFor("ord-rc-0"); len(got) != 1 {
		t.Fatalf("ledger of ord-rc-0 has %d refunds after the run, want 1", len(got))
	}
	if rec, _ := h.store.Get(ctx, "rf-rc-f"); rec.State != store.Failed || !rec.UpdatedAt.Equal(failed.UpdatedAt) {
		t.Fatalf("rf-rc-f changed by the run: %+v", rec)
	}
}

// A run is refused while no worker could carry it out.
func TestReconcileRefusedWithoutWorkers(t *testing.T) {
	h := start(t, func(s *setup) { s.noStart = true })
	_, err := h.enq.StartReconcile(context.Background(), enqueue.ReconcileRequest{Since: time.Now().Add(-time.Hour)})
	if err == nil || !errors.Is(err, enqueue.ErrNoWorker) {
		t.Fatalf("start with no worker: %v, want ErrNoWorker", err)
	}
}

// A look-up that gets no answer (a 503, a reset) says nothing of the refund:
// the run asks again instead of reporting the refund unchecked. Two failed
// reads in a row are asked through; a provider that never answers leaves
// the refund unchecked after reconcileReadTries, and the run still ends.
func TestReconcileAsksAgainAfterAFailedRead(t *testing.T) {
	t.Cleanup(worker.SetReconcileReadWait(10 * time.Millisecond))
	cases := []struct {
		name      string
		faults    []sim.Kind
		agree     int
		unchecked int
	}{
		{"one 503", []sim.Kind{sim.Status5xx}, 1, 0},
		{"a 503, then a reset", []sim.Kind{sim.Status5xx, sim.ResetBeforeApply}, 1, 0},
		{"no answer at all", []sim.Kind{sim.Status5xx, sim.Status5xx, sim.Status5xx}, 0, 1},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := start(t)
			ctx := context.Background()
			since := time.Now().Add(-time.Minute)
			id, order := fmt.Sprintf("rf-rd-%d", i), fmt.Sprintf("ord-rd-%d", i)
			h.sim.AddOrder(order, mustMoney(t, "10.00", "SAR"))
			if _, err := h.enq.Enqueue(ctx, req(id, order, "10.00")); err != nil {
				t.Fatal(err)
			}
			h.awaitPaidOnce(t, id, order)
			for _, k := range c.faults {
				h.sim.Faults().Next(1, http.MethodGet, "/v1/orders/"+order, k)
			}
			run, err := h.enq.StartReconcile(ctx, enqueue.ReconcileRequest{Since: since, Until: aheadOfRedis(), StartedBy: "test"})
			if err != nil {
				t.Fatal(err)
			}
			run = h.awaitRun(t, run.ID, "done", func(r store.ReconcileRun) bool { return r.State == store.RunDone })
			if run.Checked != 1 || run.Agree != c.agree || run.Unchecked != c.unchecked || run.Disagree != 0 {
				t.Fatalf("run = %+v; want 1 checked, %d agree, %d unchecked", run, c.agree, c.unchecked)
			}
		})
	}
}

// Two partial refunds of ours on one Ecart Pay order (the refunds list, a
// guess, confirmed by their answers). The first one's snapshot from before
// its send no longer explains the order, which has moved on by the second:
// Lookup cannot attribute either change. The run checks each by Ecart Pay's
// id of it instead (providers.Verifier): both agree.
func TestReconcileVerifiesByReference(t *testing.T) {
	h, s := keyless(t, true)
	ctx := context.Background()
	since := time.Now().Add(-time.Minute)
	s.AddOrder("ord-two", mxn(t, "300.00"))
	for _, r := range []struct{ id, amount string }{{"rf-two-a", "100.00"}, {"rf-two-b", "50.00"}} {
		if _, err := h.enq.Enqueue(ctx, ecartReq(r.id, "ord-two", r.amount)); err != nil {
			t.Fatal(err)
		}
		if rec := h.await(t, r.id); rec.State != store.Succeeded || rec.ProviderRef == "" {
			t.Fatalf("%s = %+v; want succeeded with Ecart Pay's refund id", r.id, rec)
		}
	}
	run, err := h.enq.StartReconcile(ctx, enqueue.ReconcileRequest{Since: since, Until: aheadOfRedis(), StartedBy: "test"})
	if err != nil {
		t.Fatal(err)
	}
	run = h.awaitRun(t, run.ID, "done", func(r store.ReconcileRun) bool { return r.State == store.RunDone })
	if run.Checked != 2 || run.Agree != 2 || run.Unchecked != 0 || run.Disagree != 0 {
		fs, _, _ := h.store.ReconcileFindings(ctx, run.ID, 0, 0)
		t.Fatalf("run = %+v, findings %+v; want 2 checked, 2 agree", run, fs)
	}
	if got := s.Refunded("ord-two"); len(got) != 2 {
		t.Fatalf("ledger = %v after the run, want the 2 refunds", got)
	}
}
