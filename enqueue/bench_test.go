package enqueue_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/refundq/refundq/enqueue"
	"github.com/refundq/refundq/internal/redistest"
	"github.com/refundq/refundq/providers/catalog"
)

// BenchmarkBulkVsBareAsynq measures what refundq's enqueue path (validate,
// record, idempotency, task) costs against bare asynq enqueues of tasks of
// the same size, both from 16 goroutines on the same Redis in the same run,
// and reports the ratio. Run: go test -run=^$ -bench=BulkVsBare ./enqueue
func BenchmarkBulkVsBareAsynq(b *testing.B) {
	env := redistest.New(b)
	c := enqueue.New(env.Asynq, env.Client, enqueue.WithQueue(env.Queue), enqueue.WithPrefix(env.Prefix), enqueue.WithRegistry(catalog.Rules()), enqueue.AcceptRedisLoss())
	defer c.Close()
	bare := asynq.NewClient(env.Asynq)
	defer bare.Close()
	ctx := context.Background()
	const n = 2000
	run := 0
	for b.Loop() {
		run++
		rows := make([]enqueue.Row, n)
		for i := range rows {
			rows[i] = enqueue.Row{Line: i + 2, Request: enqueue.Request{RefundID: fmt.Sprintf("bench-%d-%d", run, i),
				Provider: "moyasarpg", OrderID: fmt.Sprintf("ord-%d", i), Amount: "403.33", Currency: "SAR"}}
		}
		start := time.Now()
		sum := c.EnqueueBulk(ctx, rows, enqueue.BulkOptions{Concurrency: 16})
		refundq := time.Since(start)
		if sum.Enqueued != n {
			b.Fatalf("summary %+v", sum)
		}
		payload := []byte(`{"v":1,"refund_id":"bench-0000-0000","provider":"moyasarpg","order_id":"ord-0","amount_minor":40333,"currency":"SAR"}`)
		start = time.Now()
		work := make(chan int)
		done := make(chan struct{})
		for range 16 {
			go func() {
				for i := range work {
					if _, err := bare.Enqueue(asynq.NewTask("bench", payload), asynq.Queue(env.Queue), asynq.TaskID(fmt.Sprintf("bare-%d-%d", run, i))); err != nil {
						b.Error(err)
					}
				}
				done <- struct{}{}
			}()
		}
		for i := range n {
			work <- i
		}
		close(work)
		for range 16 {
			<-done
		}
		baseline := time.Since(start)
		if size := queueSize(b, env); size != 2*n*run {
			b.Fatalf("queue holds %d tasks after run %d, want %d", size, run, 2*n*run)
		}
		b.ReportMetric(float64(n)/refundq.Seconds(), "refunds/s")
		b.ReportMetric(float64(n)/baseline.Seconds(), "bare-tasks/s")
		b.ReportMetric(refundq.Seconds()/baseline.Seconds(), "x-bare-time")
	}
}

func queueSize(b *testing.B, env *redistest.Env) int {
	insp := asynq.NewInspector(env.Asynq)
	defer insp.Close()
	info, err := insp.GetQueueInfo(env.Queue)
	if err != nil {
		b.Fatal(err)
	}
	return info.Pending
}
