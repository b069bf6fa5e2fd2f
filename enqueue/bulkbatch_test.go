package enqueue_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/refundq/refundq/enqueue"
	"github.com/refundq/refundq/internal/redistest"
	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/tasks"
)

// fileRows is a bulk file of n Moyasar PG refunds "<prefix>-<i>", one order
// each, from line 2.
func fileRows(prefix string, n int) []enqueue.Row {
	rows := make([]enqueue.Row, n)
	for i := range rows {
		rows[i] = enqueue.Row{Line: i + 2, Request: enqueue.Request{RefundID: fmt.Sprintf("%s-%d", prefix, i),
			Provider: providers.MoyasarPG, OrderID: fmt.Sprintf("ord-%d", i), Amount: "10.00", Currency: "SAR"}}
	}
	return rows
}

// pendingCount is the number of tasks pending on env's queue (pending
// lists one page).
func pendingCount(t *testing.T, env *redistest.Env) int {
	t.Helper()
	insp := asynq.NewInspector(env.Asynq)
	defer insp.Close()
	info, err := insp.GetQueueInfo(env.Queue)
	if err != nil {
		t.Fatal(err)
	}
	return info.Pending
}

func outcomes(sum enqueue.BulkSummary) map[int]enqueue.Outcome {
	m := map[int]enqueue.Outcome{}
	for _, r := range sum.Results {
		m[r.Line] = r.Outcome
	}
	return m
}

// A file of several batches: new rows, a row known before, and two rows on
// an order Fatora refunds once, far apart in the file. The first of the two
// gets the order, on the first run and on the second, and every callback
// is told about every row.
func TestBulkBatchesKeepEveryRowsOutcome(t *testing.T) {
	env := redistest.New(t)
	c := enqueue.New(env.Asynq, env.Client, enqueue.WithQueue(env.Queue), enqueue.WithPrefix(env.Prefix), enqueue.AcceptRedisLoss()) // catalog rules: Fatora refunds an order once
	t.Cleanup(func() { c.Close() })
	ctx := context.Background()
	rows := fileRows("rf", 250)
	if _, err := c.Enqueue(ctx, rows[7].Request); err != nil {
		t.Fatal(err)
	}
	fatora := func(id string) enqueue.Request {
		return enqueue.Request{RefundID: id, Provider: providers.Fatora, OrderID: "ord-f", TransactionID: "t-f", Amount: "5.00", Currency: "QAR"}
	}
	rows[240].Request = fatora("rf-f-late")  // line 242
	rows[3].Request = fatora("rf-f-first")   // line 5
	rows[120].Request = fatora("rf-f-first") // line 122: the same refund again
	for run := range 2 {
		var done, created, lastDone, lastTotal int
		sum := c.EnqueueBulk(ctx, rows, enqueue.BulkOptions{Concurrency: 4,
			Done: func(_ enqueue.Row, c bool, _ error) {
				done++
				if c {
					created++
				}
			},
			Progress: func(d, total int) { lastDone, lastTotal = d, total }})
		want := map[int]enqueue.Outcome{9: enqueue.OutcomeExisting, 5: enqueue.OutcomeEnqueued, 122: enqueue.OutcomeExisting, 242: enqueue.OutcomeInvalid}
		wantEnqueued := 247
		if run == 1 {
			want[5], wantEnqueued = enqueue.OutcomeExisting, 0
		}
		got := outcomes(sum)
		for line, o := range want {
			if got[line] != o {
				t.Errorf("run %d, line %d: %s, want %s", run+1, line, got[line], o)
			}
		}
		if sum.Enqueued != wantEnqueued || sum.Existing != 249-wantEnqueued || sum.Invalid != 1 || sum.Failed != 0 || len(sum.Results) != 250 {
			t.Fatalf("run %d: summary %d enqueued, %d existing, %d invalid, %d failed, %d results", run+1,
				sum.Enqueued, sum.Existing, sum.Invalid, sum.Failed, len(sum.Results))
		}
		if len(sum.Errors) != 1 || sum.Errors[0].Line != 242 || !errors.Is(sum.Errors[0].Err, store.ErrOrderTaken) ||
			!strings.Contains(sum.Errors[0].Error(), "already has refund rf-f-first") {
			t.Fatalf("run %d: errors %v; want line 242 refused for rf-f-first", run+1, sum.Errors)
		}
		if done != 250 || created != wantEnqueued || lastDone != 250 || lastTotal != 250 {
			t.Fatalf("run %d: Done told %d rows (%d created), Progress last %d/%d", run+1, done, created, lastDone, lastTotal)
		}
		if n := pendingCount(t, env); n != 248 {
			t.Fatalf("run %d: %d tasks pending, want 248", run+1, n)
		}
	}
}

// A producer that died between a refund's record and its task, or a task an
// operator archived: the file's next run enqueues the task, and the row is
// the existing refund.
func TestBulkEnqueuesMissingTasks(t *testing.T) {
	c, env := newClient(t)
	ctx := context.Background()
	rows := fileRows("rf", 20)
	s := store.New(env.Client, env.Prefix).WithQueue(env.Queue)
	lost, err := rows[4].Request.Refund()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Create(ctx, lost); err != nil { // the record alone
		t.Fatal(err)
	}
	if _, err := c.Enqueue(ctx, rows[9].Request); err != nil {
		t.Fatal(err)
	}
	insp := asynq.NewInspector(env.Asynq)
	defer insp.Close()
	if err := insp.ArchiveTask(env.Queue, tasks.RefundTaskID(rows[9].Request.RefundID)); err != nil {
		t.Fatal(err)
	}
	sum := c.EnqueueBulk(ctx, rows, enqueue.BulkOptions{})
	if sum.Enqueued != 18 || sum.Existing != 2 || len(sum.Errors) != 0 {
		t.Fatalf("summary %+v", sum)
	}
	for _, id := range []string{rows[4].Request.RefundID, rows[9].Request.RefundID} {
		info, err := insp.GetTaskInfo(env.Queue, tasks.RefundTaskID(id))
		if err != nil || info.State != asynq.TaskStatePending {
			t.Errorf("%s: task %+v, %v; want it pending", id, info, err)
		}
	}
}

// failNth fails the nth command called name, as a connection reset would.
type failNth struct {
	name  string
	n     int32
	calls atomic.Int32
}

func (h *failNth) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *failNth) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == h.name && h.calls.Add(1) == h.n {
			err := errors.New("injected: connection reset by peer")
			cmd.SetErr(err)
			return err
		}
		return next(ctx, cmd)
	}
}

func (h *failNth) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// A batch whose script run fails reports each of its rows as failed, and a
// Redis error on one refund inside a run fails that row alone; the other
// rows go through, and the next run of the file enqueues the rest.
func TestBulkRedisErrorsAreReportedPerRow(t *testing.T) {
	c, env := newClient(t)
	ctx := context.Background()
	rows := fileRows("rf", 40) // 4 batches of 10 on 4 goroutines
	// Line 7's order is a key of the wrong type.
	broken := env.Prefix + "order:" + providers.MoyasarPG + ":" + rows[5].Request.OrderID
	if err := env.Client.Set(ctx, broken, "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	env.Client.AddHook(&failNth{name: "evalsha", n: 2})
	sum := c.EnqueueBulk(ctx, rows, enqueue.BulkOptions{Concurrency: 4})
	lost, wrongType := 0, 0
	for _, e := range sum.Errors {
		switch {
		case e.Invalid:
			t.Errorf("%v reported invalid", e)
		case strings.Contains(e.Error(), "injected"):
			lost++
		case e.Line == 7 && strings.Contains(e.Error(), "WRONGTYPE"):
			wrongType++
		default:
			t.Errorf("unexpected %v", e)
		}
	}
	// Line 7 is in the failed batch or not.
	if lost != 10 || sum.Failed != 10+wrongType || sum.Enqueued != 40-sum.Failed || len(sum.Results) != 40 {
		t.Fatalf("%d rows of the failed batch, %d of the broken key; summary %d enqueued, %d failed", lost, wrongType,
			sum.Enqueued, sum.Failed)
	}
	if n := pendingCount(t, env); n != sum.Enqueued {
		t.Fatalf("%d tasks pending, want %d", n, sum.Enqueued)
	}
	// Fixed, the file again: nothing lost, nothing twice.
	if err := env.Client.Del(ctx, broken).Err(); err != nil {
		t.Fatal(err)
	}
	again := c.EnqueueBulk(ctx, rows, enqueue.BulkOptions{Concurrency: 4})
	if again.Failed != 0 || again.Enqueued+again.Existing != 40 || len(again.Errors) != 0 {
		t.Fatalf("re-run: %+v", again)
	}
	if n := pendingCount(t, env); n != 40 {
		t.Fatalf("%d tasks pending after the re-run, want 40", n)
	}
}

// A known refund id answers with its record in a bulk file too, whatever
// the workers say now; an unknown one is refused, and so is a known id with
// another amount.
func TestBulkKnownRefundIDOfAProviderNoWorkerHas(t *testing.T) {
	env := redistest.New(t)
	c := enqueue.New(env.Asynq, env.Client, enqueue.WithQueue(env.Queue), enqueue.WithPrefix(env.Prefix), enqueue.AcceptRedisLoss())
	t.Cleanup(func() { c.Close() })
	ctx := context.Background()
	fatora := func(id, order, amount string) enqueue.Request {
		return enqueue.Request{RefundID: id, Provider: providers.Fatora, OrderID: order, TransactionID: "t-" + order, Amount: amount, Currency: "QAR"}
	}
	if _, err := c.Enqueue(ctx, fatora("rf-known", "o-1", "5.00")); err != nil {
		t.Fatal(err)
	}
	s := store.New(env.Client, env.Prefix)
	if err := s.AnnounceWorker(ctx, env.Queue, []string{providers.MoyasarPG}, time.Minute); err != nil {
		t.Fatal(err)
	}
	c = enqueue.New(env.Asynq, env.Client, enqueue.WithQueue(env.Queue), enqueue.WithPrefix(env.Prefix), enqueue.AcceptRedisLoss())
	t.Cleanup(func() { c.Close() })
	rows := fileRows("rf-m", 3)
	rows[0].Request = fatora("rf-known", "o-1", "5.00")
	rows[1].Request = fatora("rf-new", "o-2", "5.00")
	rows = append(rows, enqueue.Row{Line: 5, Request: fatora("rf-known", "o-1", "6.00")})
	sum := c.EnqueueBulk(ctx, rows, enqueue.BulkOptions{})
	got := outcomes(sum)
	want := map[int]enqueue.Outcome{2: enqueue.OutcomeExisting, 3: enqueue.OutcomeInvalid, 4: enqueue.OutcomeEnqueued, 5: enqueue.OutcomeInvalid}
	for line, o := range want {
		if got[line] != o {
			t.Errorf("line %d: %s, want %s", line, got[line], o)
		}
	}
	if len(sum.Errors) != 2 || !errors.Is(sum.Errors[0].Err, providers.ErrDisabled) || !errors.Is(sum.Errors[1].Err, store.ErrConflict) {
		t.Fatalf("errors %v; want line 3 not served, line 5 a conflict", sum.Errors)
	}
}
