package worker_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/store"
	"github.com/refundq/refundq/tasks"
)

// A producer died between recording the refund and enqueueing its task: the
// recoverer finds the refund overdue without a task and creates it.
func TestRecovererEnqueuesARefundLeftWithoutATask(t *testing.T) {
	h := start(t)
	ctx := context.Background()
	h.sim.AddOrder("ord-orphan", mustMoney(t, "7.00", "SAR"))
	r := tasks.Refund{Version: 1, RefundID: "rf-orphan", Provider: providers.MoyasarPG, OrderID: "ord-orphan", AmountMinor: 700, Currency: "SAR"}
	if _, _, err := h.store.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	if n := h.worker.Recover(ctx); n != 0 {
		t.Fatalf("recoverer repaired %d refunds before any was overdue", n)
	}
	if err := h.store.Postpone(ctx, "rf-orphan", -time.Second); err != nil { // as if DueQueued passed
		t.Fatal(err)
	}
	if n := h.worker.Recover(ctx); n != 1 {
		t.Fatalf("recoverer repaired %d refunds, want 1", n)
	}
	rec := h.await(t, "rf-orphan")
	if rec.State != store.Succeeded {
		t.Fatalf("orphaned refund = %+v, want succeeded via the recoverer", rec)
	}
	if got := h.sim.RefundsFor("ord-orphan"); len(got) != 1 {
		t.Fatalf("ledger has %d refunds, want 1", len(got))
	}
}

// The poll chain broke: the record says pending with poll 2 scheduled, but
// the poll task never made it to asynq (the worker died between the two
// writes, or the enqueue failed). The recoverer re-creates the poll and the
// refund finishes.
func TestRecovererRestartsABrokenPollChain(t *testing.T) {
	h := start(t)
	ctx := context.Background()
	h.sim.AddOrder("ord-chain", mustMoney(t, "30.00", "SAR"))
	h.sim.SetProcessing("ord-chain", 4) // pending for the send and three more answers
	if _, err := h.enq.Enqueue(ctx, req("rf-chain", "ord-chain", "30.00")); err != nil {
		t.Fatal(err)
	}
	var rec store.Record
	for deadline := time.Now().Add(20 * time.Second); ; {
		rec, _ = h.store.Get(ctx, "rf-chain")
		if rec.State == store.Pending {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never pending: %+v", rec)
		}
		time.Sleep(20 * time.Millisecond)
	}
	h.worker.Shutdown() // no worker runs the poll meanwhile
	rec, _ = h.store.Get(ctx, "rf-chain")
	if err := h.insp.DeleteTask(h.env.Queue, rec.Task); err != nil {
		t.Fatalf("delete the scheduled poll %s: %v", rec.Task, err)
	}
	h.worker = h.newWorker(t)
	if n := h.recoverNow(t, "rf-chain"); n != 1 {
		t.Fatalf("recoverer re-created %d tasks, want the poll", n)
	}
	if rec := h.await(t, "rf-chain"); rec.State != store.Succeeded {
		t.Fatalf("after the repair: %+v", rec)
	}
	if got := h.sim.RefundsFor("ord-chain"); len(got) != 1 {
		t.Fatalf("ledger has %d refunds, want 1", len(got))
	}
}

// An operator archives a refund's task in asynqmon while it waits for a
// retry: the refund is open, its task archived by hand (not out of
// retries), so the recoverer brings it back and it finishes, paid once.
func TestRecovererUndoesAnOperatorsArchive(t *testing.T) {
	h := start(t, func(s *setup) { s.noStart = true })
	ctx := context.Background()
	h.sim.AddOrder("ord-arch", mustMoney(t, "11.00", "SAR"))
	if _, err := h.enq.Enqueue(ctx, req("rf-arch", "ord-arch", "11.00")); err != nil {
		t.Fatal(err)
	}
	if err := h.insp.ArchiveTask(h.env.Queue, tasks.RefundTaskID("rf-arch")); err != nil {
		t.Fatal(err)
	}
	if err := h.worker.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.worker.Shutdown)
	if n := h.recoverNow(t, "rf-arch"); n != 1 {
		t.Fatalf("recoverer re-created %d tasks, want 1", n)
	}
	if rec := h.await(t, "rf-arch"); rec.State != store.Succeeded {
		t.Fatalf("after the repair: %+v", rec)
	}
	if got := h.sim.RefundsFor("ord-arch"); len(got) != 1 {
		t.Fatalf("ledger has %d refunds, want 1", len(got))
	}
}

// A task archived with its retries spent (its last run handed it back, died,
// or a person archived it while it waited for that run) leaves the refund
// open: the recoverer gives it a new task, up to maxResumes (3) times; after
// that automation has given up and the refund goes to a human.
func TestRecovererResumesASpentTaskThenEscalates(t *testing.T) {
	h := start(t, func(s *setup) { s.noStart = true })
	ctx := context.Background()
	r := tasks.Refund{Version: 1, RefundID: "rf-spent", Provider: providers.MoyasarPG, OrderID: "ord-spent", AmountMinor: 100, Currency: "SAR"}
	rec := diedAfterSending(t, h.store, r)
	payload, _ := tasks.EncodeRefund(r)
	c := asynq.NewClient(h.env.Asynq)
	defer c.Close()
	spend := func() {
		t.Helper()
		// As asynq leaves a task whose last run failed: archived, retries
		// spent (here none were allowed).
		_ = h.insp.DeleteTask(h.env.Queue, rec.Task)
		if _, err := c.Enqueue(asynq.NewTask(tasks.TypeRefund, payload), asynq.TaskID(rec.Task), asynq.Queue(h.env.Queue), asynq.MaxRetry(0)); err != nil {
			t.Fatal(err)
		}
		if err := h.insp.ArchiveTask(h.env.Queue, rec.Task); err != nil {
			t.Fatal(err)
		}
	}
	for round := 1; round <= 3; round++ {
		spend()
		if n := h.recoverNow(t, "rf-spent"); n != 1 {
			t.Fatalf("round %d: recoverer re-created %d tasks, want 1", round, n)
		}
		info, err := h.insp.GetTaskInfo(h.env.Queue, rec.Task)
		if err != nil || info.State != asynq.TaskStatePending {
			t.Fatalf("round %d: task %+v, %v; want it pending again", round, info, err)
		}
		if now, _ := h.store.Get(ctx, "rf-spent"); now.State.Final() || now.Resumes != round {
			t.Fatalf("round %d: record = %+v; want open, resumed %d times", round, now, round)
		}
	}
	spend()
	if n := h.recoverNow(t, "rf-spent"); n != 0 {
		t.Fatalf("recoverer re-created %d tasks after %d resumes", n, 3)
	}
	rec, _ = h.store.Get(ctx, "rf-spent")
	if rec.State != store.NeedsReview || !strings.Contains(rec.LastError, "ran out of retries 4 times") || rec.InFlight != 1 {
		t.Fatalf("record = %+v; want needs_review, the attempt still in flight", rec)
	}
}
