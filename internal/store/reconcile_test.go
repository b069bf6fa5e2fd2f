package store_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/refundq/refundq/internal/redistest"
	"github.com/refundq/refundq/internal/store"
)

// finalAt records refund id as having become st at the given time. A
// lease writes on Redis's clock, so the test moves the state index's score
// itself.
func finalAt(t *testing.T, env *redistest.Env, s *store.Store, id string, st store.State, at time.Time) {
	t.Helper()
	ctx := context.Background()
	if _, _, err := s.Create(ctx, refund(id)); err != nil {
		t.Fatal(err)
	}
	l, _, err := s.Acquire(ctx, id, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Finish(ctx, store.Change{State: st, Settled: true}); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.ZAddXX(ctx, env.Prefix+"state:"+string(st), redis.Z{Score: float64(at.UnixMilli()), Member: id}).Err(); err != nil {
		t.Fatal(err)
	}
}

// A run walks succeeded then failed refunds of its window in the order they
// became final, ties by id, in batches; the cursor saved with each batch is
// all a restarted walk needs.
func TestReconcileWalksTheWindowInBatches(t *testing.T) {
	env := redistest.New(t)
	s := store.New(env.Client, env.Prefix)
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	finalAt(t, env, s, "old", store.Succeeded, t0.Add(-time.Hour)) // before the window
	for _, id := range []string{"s-c", "s-a", "s-b"} {             // three at the same ms
		finalAt(t, env, s, id, store.Succeeded, t0)
	}
	finalAt(t, env, s, "s-d", store.Succeeded, t0.Add(time.Minute))
	finalAt(t, env, s, "f-1", store.Failed, t0.Add(2*time.Minute))
	finalAt(t, env, s, "late", store.Failed, t0.Add(2*time.Hour)) // after it

	run, err := s.CreateReconcile(ctx, store.ReconcileRun{ID: "run-1", Since: t0, Until: t0.Add(time.Hour), StartedBy: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if run.Total != 5 {
		t.Fatalf("total = %d, want 5", run.Total)
	}
	var walked []string
	for batches := 0; ; batches++ {
		if batches > 10 {
			t.Fatal("the walk does not end")
		}
		// Re-read the run every time: what a restarted worker starts from.
		run, err = s.Reconcile(ctx, "run-1")
		if err != nil {
			t.Fatal(err)
		}
		recs, scores, err := s.ReconcileBatch(ctx, run, 2)
		if err != nil {
			t.Fatal(err)
		}
		p := store.Progress{Phase: run.Phase, AfterMS: run.AfterMS, AfterID: run.AfterID}
		for i, r := range recs {
			walked = append(walked, r.RefundID)
			p.Walked++
			p.AfterMS, p.AfterID = scores[i], r.RefundID
			if r.RefundID == "s-b" {
				p.Disagree++
				p.Findings = append(p.Findings, store.Finding{RefundID: r.RefundID, Verdict: "disagree", Reason: "test"})
			}
		}
		if len(recs) < 2 {
			if run.Phase == store.Failed {
				if err := s.SaveReconcile(ctx, run.ID, p); err != nil {
					t.Fatal(err)
				}
				break
			}
			p.Phase, p.AfterMS, p.AfterID = store.Failed, run.Since.UnixMilli(), ""
		}
		if err := s.SaveReconcile(ctx, run.ID, p); err != nil {
			t.Fatal(err)
		}
	}
	if want := []string{"s-a", "s-b", "s-c", "s-d", "f-1"}; !reflect.DeepEqual(walked, want) {
		t.Fatalf("walked %v, want %v", walked, want)
	}
	if err := s.FinishReconcile(ctx, "run-1", ""); err != nil {
		t.Fatal(err)
	}
	run, _ = s.Reconcile(ctx, "run-1")
	if run.State != store.RunDone || run.Walked != 5 || run.Disagree != 1 || run.StartedBy != "alice" || run.FinishedAt.IsZero() {
		t.Fatalf("finished run = %+v", run)
	}
	fs, n, err := s.ReconcileFindings(ctx, "run-1", 0, 0)
	if err != nil || n != 1 || len(fs) != 1 || fs[0].RefundID != "s-b" {
		t.Fatalf("findings = %+v, %d, %v", fs, n, err)
	}
	if ttl := env.Client.PTTL(ctx, env.Prefix+"reconcile:run-1").Val(); ttl <= 0 || ttl > store.ReconcileRetention {
		t.Fatalf("run kept for %s, want up to %s", ttl, store.ReconcileRetention)
	}
	if _, err := s.Reconcile(ctx, "nope"); !errors.Is(err, store.ErrRunNotFound) {
		t.Fatalf("unknown run: %v", err)
	}
}

// More refunds at one ms than a batch holds still end: the walk pages past
// the ties already done.
func TestReconcileBatchPagesThroughTies(t *testing.T) {
	env := redistest.New(t)
	s := store.New(env.Client, env.Prefix)
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	for i := range 7 {
		finalAt(t, env, s, fmt.Sprintf("r-%d", i), store.Succeeded, t0)
	}
	run, err := s.CreateReconcile(ctx, store.ReconcileRun{ID: "ties", Since: t0, Until: t0})
	if err != nil {
		t.Fatal(err)
	}
	run.AfterMS, run.AfterID = t0.UnixMilli(), "r-4"
	recs, _, err := s.ReconcileBatch(ctx, run, 2)
	if err != nil || len(recs) != 2 || recs[0].RefundID != "r-5" || recs[1].RefundID != "r-6" {
		t.Fatalf("after r-4: %+v, %v", recs, err)
	}
}
