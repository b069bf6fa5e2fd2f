package enqueue

import (
	"context"
	"errors"
	"slices"
	"sync"

	"go.opentelemetry.io/otel/trace"

	"github.com/refundq/refundq/internal/spans"
	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/tasks"
)

// maxBatch is the most rows whose refunds are created in one script run.
// The run costs Redis about 10 µs a row, so 250 rows hold other clients
// (the workers among them) up for under 3 ms, while the call and the
// durability wait are shared by 250 rows: where that wait is a WAITAOF (up
// to a second with appendfsync everysec), it is one wait for 250 rows, not
// one a row.
const maxBatch = 250

// batchSize is the rows of a batch for a pass of n rows: at most maxBatch,
// and small enough that each of the conc goroutines gets a batch of a small
// file.
func batchSize(n, conc int) int { return max(1, min(maxBatch, (n+conc-1)/conc)) }

// bulkRow is one row on its way through a batch.
type bulkRow struct {
	row  Row
	t    tasks.Refund
	ctx  context.Context // carries the row's span
	span trace.Span
	// refused is what the workers or the provider said against the refund:
	// it is created only if its refund id is known already (see check).
	refused error
}

// taskJob is a row whose refund is recorded and kept, and needs its task.
type taskJob struct {
	row *bulkRow
	res Result
}

// enqueuePass enqueues rows, no two of which refund the same order of a
// provider that refunds an order once, in batches of batchSize: a batch's
// refunds are checked, created in one script run and kept in one durability
// wait; then their tasks are enqueued alongside other batches' on conc
// goroutines. record is told what became of each row.
func (c *Client) enqueuePass(ctx context.Context, rows []Row, conc int, file *bulkFile, record func(Row, Result, error)) {
	jobs := make(chan taskJob)
	var tasksDone sync.WaitGroup
	for range conc {
		tasksDone.Add(1)
		go func() {
			defer tasksDone.Done()
			for j := range jobs {
				j.row.finish(record, j.res, c.enqueueTask(j.row.ctx, j.row.t))
			}
		}()
	}
	// As many batches in flight as task goroutines: a provider's Precheck
	// (a request per row) then runs as many at once as before batches.
	batches := make(chan []Row)
	var batchesDone sync.WaitGroup
	for range conc {
		batchesDone.Add(1)
		go func() {
			defer batchesDone.Done()
			for b := range batches {
				c.createBatch(ctx, b, file, record, jobs)
			}
		}()
	}
	for b := range slices.Chunk(rows, batchSize(len(rows), conc)) {
		batches <- b
	}
	close(batches)
	batchesDone.Wait()
	close(jobs)
	tasksDone.Wait()
}

// createBatch checks rows, creates the refunds of those that pass in one
// store.CreateMany, and hands the ones that need their task to jobs. It is
// enqueueRefund for many rows: the same checks, the same outcomes.
func (c *Client) createBatch(ctx context.Context, rows []Row, file *bulkFile, record func(Row, Result, error), jobs chan<- taskJob) {
	items := make([]*bulkRow, 0, len(rows))
	served := map[string]error{} // asked once a provider a batch
	for _, row := range rows {
		if row.Err != nil {
			record(row, Result{}, row.Err)
			continue
		}
		if ctx.Err() != nil {
			record(row, Result{}, ctx.Err())
			continue
		}
		t, err := row.Request.Refund()
		if err != nil {
			record(row, Result{}, err)
			continue
		}
		b := &bulkRow{row: row}
		b.ctx, b.span = startEnqueue(ctx, t, file)
		t.Trace = spans.Inject(b.ctx)
		b.t = t
		if err := c.registry.Check(t); err != nil {
			b.finish(record, Result{}, err)
			continue
		}
		refused, ok := served[t.Provider]
		if !ok {
			refused = c.served(ctx, t.Provider)
			served[t.Provider] = refused
		}
		if refused == nil {
			refused = c.registry.Precheck(b.ctx, t)
		}
		b.refused = refused
		items = append(items, b)
	}
	if len(items) == 0 {
		return
	}
	news := make([]store.NewRefund, len(items))
	for i, b := range items {
		news[i] = store.NewRefund{Refund: b.t, Sole: c.registry.OncePerOrder(b.t.Provider), IfKnown: b.refused != nil}
	}
	for i, made := range c.store.CreateMany(ctx, news) {
		b := items[i]
		res, err := Result{Record: made.Record, Created: made.Created}, made.Err
		// A known refund id answers with its record, whatever the workers or
		// the provider say now (see check); a record that could not be read
		// is no proof it is known.
		if b.refused != nil && res.Record.RefundID == "" && !errors.Is(err, store.ErrNotKept) {
			b.finish(record, Result{}, b.refused)
			continue
		}
		// Only a refund no worker has touched needs its task (see
		// enqueueRefund).
		if err == nil && res.Record.State == store.Queued && res.Record.Task == tasks.RefundTaskID(b.t.RefundID) {
			jobs <- taskJob{row: b, res: res}
			continue
		}
		b.finish(record, res, err)
	}
}

// finish ends the row's span and records what became of it.
func (b *bulkRow) finish(record func(Row, Result, error), res Result, err error) {
	endEnqueue(b.span, res, err)
	record(b.row, res, err)
}
