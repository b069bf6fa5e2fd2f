package worker_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/refundq/refundq/enqueue"
	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/providers"
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
	// As if DueQueued passed (recoverNow waits out the pass at start, which
	// would otherwise race this one for the refund).
	if n := h.recoverNow(t, "rf-orphan"); n != 1 {
		t.Fatalf("recoverer repaired %d refunds, want 1", n)
	}
	h.awaitPaidOnce(t, "rf-orphan", "ord-orphan")
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
	h.awaitPaidOnce(t, "rf-chain", "ord-chain")
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
	h.awaitPaidOnce(t, "rf-arch", "ord-arch")
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

// overdueWithoutTasks creates n refunds, each overdue with no task, as a
// producer that died after every record would leave them.
func (h *harness) overdueWithoutTasks(t *testing.T, prefix string, n int) {
	t.Helper()
	ctx := context.Background()
	ids := make(chan int)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range ids {
				r := tasks.Refund{Version: 1, RefundID: fmt.Sprintf("%s-%06d", prefix, i), Provider: providers.MoyasarPG,
					OrderID: fmt.Sprintf("ord-%s-%06d", prefix, i), AmountMinor: 100, Currency: "SAR"}
				if _, _, err := h.store.Create(ctx, r); err != nil {
					t.Error(err)
					return
				}
				if err := h.store.Postpone(ctx, r.RefundID, -time.Second); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for i := range n {
		ids <- i
	}
	close(ids)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
}

// A worker that lives less than a recoverer period (a crash loop, a
// rolling deploy) still recovers: the recoverer makes a pass at start.
// Here the period is an hour, so only that pass can have made the task.
func TestAWorkerRecoversAtStart(t *testing.T) {
	h := start(t, func(s *setup) { s.noStart = true })
	h.sim.AddOrder("ord-start", mustMoney(t, "3.00", "SAR"))
	r := tasks.Refund{Version: 1, RefundID: "rf-start", Provider: providers.MoyasarPG, OrderID: "ord-start", AmountMinor: 300, Currency: "SAR"}
	if _, _, err := h.store.Create(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if err := h.store.Postpone(context.Background(), r.RefundID, -time.Second); err != nil {
		t.Fatal(err)
	}
	if err := h.worker.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.worker.Shutdown)
	h.awaitPaidOnce(t, "rf-start", "ord-start") // its task made by the pass at start
}

// A backlog of overdue refunds (a producer that died after a bulk file's
// records, or asynq's tasks lost with Redis) is worked through in one pass,
// batch after batch, not 200 a period; each gets its task once.
func TestRecovererWorksThroughABacklog(t *testing.T) {
	h := start(t, func(s *setup) { s.noStart = true })
	h.overdueWithoutTasks(t, "rf-bl", backlogSize)
	began := time.Now()
	n := h.worker.Recover(context.Background())
	took := time.Since(began)
	t.Logf("%d overdue refunds recovered in one pass in %s (%.0f per second)", n, took.Round(time.Millisecond), float64(n)/took.Seconds())
	if n != backlogSize {
		t.Fatalf("one pass re-created %d tasks, want all %d", n, backlogSize)
	}
	q, err := h.insp.GetQueueInfo(h.env.Queue)
	if err != nil || q.Pending != backlogSize {
		t.Fatalf("queue %+v, %v; want %d pending tasks, one per refund", q, err, backlogSize)
	}
	if again := h.worker.Recover(context.Background()); again != 0 {
		t.Fatalf("a second pass re-created %d tasks; every refund had one", again)
	}
}

// A pass is time-boxed to the recoverer's period: with a period shorter
// than a batch takes, each pass takes one batch (200) and leaves the rest,
// due already, to the next.
func TestRecovererPassIsTimeBoxed(t *testing.T) {
	h := start(t, func(s *setup) { s.noStart = true; s.recoverEvery = time.Nanosecond })
	h.overdueWithoutTasks(t, "rf-tb", 500)
	for i, want := range []int{200, 200, 100, 0} {
		if n := h.worker.Recover(context.Background()); n != want {
			t.Fatalf("pass %d re-created %d tasks, want %d", i+1, n, want)
		}
	}
}

// A record that cannot be read (here an amount that does not parse) is
// skipped, counted and logged; the others in its batch are recovered, and
// it is looked at again only after an hour, not at the head of every pass.
func TestRecovererSkipsAnUnreadableRecord(t *testing.T) {
	h := start(t, func(s *setup) { s.noStart = true })
	ctx := context.Background()
	h.overdueWithoutTasks(t, "rf-bad", 3)
	bad := "rf-bad-000001"
	if err := h.env.Client.HSet(ctx, h.env.Prefix+"refund:"+bad, "amount_minor", "12.5").Err(); err != nil {
		t.Fatal(err)
	}
	if n := h.worker.Recover(ctx); n != 2 {
		t.Fatalf("recoverer re-created %d tasks, want the 2 readable refunds'", n)
	}
	if due, _ := h.store.Due(ctx, bad); time.Until(due) < 50*time.Minute {
		t.Fatalf("unreadable refund due again in %s, want about an hour", time.Until(due))
	}
	if !strings.Contains(h.logs.String(), `"refund_id":"`+bad+`"`) || !strings.Contains(h.logs.String(), "cannot be read") {
		t.Fatalf("the skipped record was not logged by id:\n%s", h.logs.String())
	}
	srv := httptest.NewServer(h.worker.HTTPHandler())
	defer srv.Close()
	if _, body := get(t, srv.URL+"/metrics"); !strings.Contains(body, "refundq_recoverer_unreadable_total 1") {
		t.Fatal("/metrics lacks refundq_recoverer_unreadable_total 1")
	}
}

// Two queues under one prefix: a refund's task lives in the queue its
// producer chose, and the recoverer of a worker serving another queue looks
// for it there: it neither makes a second live task in its own queue nor
// misses one that is gone.
func TestRecovererLooksInTheRefundsOwnQueue(t *testing.T) {
	h := start(t, func(s *setup) { s.noStart = true })
	ctx := context.Background()
	other := h.env.Queue + "-b"
	t.Cleanup(func() { _ = h.insp.DeleteQueue(other, true) })
	enq := enqueue.New(h.env.Asynq, h.env.Client, enqueue.WithQueue(other), enqueue.WithPrefix(h.env.Prefix),
		enqueue.WithRegistry(h.registry(t, apiKey)), enqueue.AcceptRedisLoss())
	defer enq.Close()
	if _, err := enq.Enqueue(ctx, req("rf-q", "ord-q", "4.00")); err != nil {
		t.Fatal(err)
	}
	if n := h.recoverNow(t, "rf-q"); n != 0 {
		t.Fatalf("recoverer re-created %d tasks for a refund whose task waits in queue %s", n, other)
	}
	if _, err := h.insp.GetTaskInfo(h.env.Queue, tasks.RefundTaskID("rf-q")); !errors.Is(err, asynq.ErrTaskNotFound) && !errors.Is(err, asynq.ErrQueueNotFound) {
		t.Fatalf("a second task in the recoverer's own queue: %v", err)
	}
	if err := h.insp.DeleteTask(other, tasks.RefundTaskID("rf-q")); err != nil {
		t.Fatal(err)
	}
	if n := h.recoverNow(t, "rf-q"); n != 1 {
		t.Fatalf("recoverer re-created %d tasks after the task was deleted, want 1", n)
	}
	if info, err := h.insp.GetTaskInfo(other, tasks.RefundTaskID("rf-q")); err != nil || info.State != asynq.TaskStatePending {
		t.Fatalf("task in %s: %+v, %v; want it pending there again", other, info, err)
	}
}
