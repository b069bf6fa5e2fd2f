package enqueue

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"sync"

	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/tasks"
)

// BulkOptions tunes EnqueueBulk.
type BulkOptions struct {
	// Concurrency is the number of tasks enqueued at once, and of batches
	// of rows checked and created at once; default 16 (one asynq client
	// does ~5k enqueues/s alone and ~25k/s from 16 goroutines on a 2-core
	// machine).
	Concurrency int
	DryRun      bool                  // validate only; write nothing
	Progress    func(done, total int) // called after each row, from one goroutine at a time
	// Done, when set, is told what became of each row, from one goroutine
	// at a time: err nil and created true for a new refund (in a dry run: a
	// valid row), false for a refund id already known with the same refund.
	Done func(row Row, created bool, err error)
}

// RowError is one row that did not go through.
type RowError struct {
	Line     int
	RefundID string
	Err      error
	Invalid  bool // the row itself is wrong (not a Redis failure)
}

// Error reads `line N: "<refund id>": reason`, the refund id quoted and cut
// at 64 characters, as is any longer quoted input in the reason.
func (e RowError) Error() string {
	id := "-"
	if e.RefundID != "" {
		id = quoteInput(e.RefundID)
	}
	return fmt.Sprintf("line %d: %s: %s", e.Line, id, ClipQuoted(e.Err.Error()))
}

func (e RowError) Unwrap() error { return e.Err }

// Outcome is what became of one row of a bulk file.
type Outcome string

// The outcomes of a row.
const (
	OutcomeEnqueued Outcome = "enqueued" // a new refund, its task queued
	OutcomeExisting Outcome = "existing" // the refund id was known with the same refund
	OutcomeValid    Outcome = "valid"    // dry run: the row would be enqueued
	OutcomeInvalid  Outcome = "invalid"  // the row is wrong; fix it
	OutcomeFailed   Outcome = "failed"   // could not be written (Redis); re-running is safe
)

// RowResult is what became of one row.
type RowResult struct {
	Line     int
	RefundID string
	Outcome  Outcome
	State    store.State // the refund's state, when enqueued or existing
	Err      error       // set for invalid and failed rows
}

// BulkSummary counts what happened to the rows of a bulk file.
type BulkSummary struct {
	Total    int
	Enqueued int // new refunds (in a dry run: valid rows)
	Existing int // refund id already known with the same refund
	Invalid  int
	Failed   int         // could not be written (e.g. Redis unreachable); safe to re-run
	Errors   []RowError  // sorted by line
	Results  []RowResult // every row, sorted by line
}

// EnqueueBulk enqueues every good row and reports every bad one; one bad row
// never stops the others. Re-running the same file is safe. The file is one
// span of ctx's trace; each refund starts a trace of its own, linked to it.
func (c *Client) EnqueueBulk(ctx context.Context, rows []Row, opt BulkOptions) BulkSummary {
	ctx, span, file := startBulk(ctx, len(rows), opt.DryRun)
	sum := c.enqueueBulk(ctx, rows, opt, file)
	endBulk(span, sum)
	return sum
}

func (c *Client) enqueueBulk(ctx context.Context, rows []Row, opt BulkOptions, file *bulkFile) BulkSummary {
	if opt.Concurrency <= 0 {
		opt.Concurrency = 16
	}
	sum := BulkSummary{Total: len(rows)}
	var mu sync.Mutex
	done := 0
	record := func(row Row, res Result, err error) {
		mu.Lock()
		defer mu.Unlock()
		rr := RowResult{Line: row.Line, RefundID: row.Request.RefundID, Err: err}
		switch {
		case err == nil && opt.DryRun:
			sum.Enqueued++
			rr.Outcome = OutcomeValid
		case err == nil && res.Created:
			sum.Enqueued++
			rr.Outcome, rr.State = OutcomeEnqueued, res.Record.State
		case err == nil:
			sum.Existing++
			rr.Outcome, rr.State = OutcomeExisting, res.Record.State
		case IsInvalid(err) || row.Err != nil:
			sum.Invalid++
			sum.Errors = append(sum.Errors, RowError{row.Line, row.Request.RefundID, err, true})
			rr.Outcome = OutcomeInvalid
		default:
			sum.Failed++
			sum.Errors = append(sum.Errors, RowError{row.Line, row.Request.RefundID, err, false})
			rr.Outcome = OutcomeFailed
		}
		sum.Results = append(sum.Results, rr)
		done++
		if opt.Done != nil {
			opt.Done(row, err == nil && res.Created, err)
		}
		if opt.Progress != nil {
			opt.Progress(done, len(rows))
		}
	}
	// Rows run concurrently, except that where a provider refunds an order
	// once, the rows refunding the same order run in line order (one pass per
	// occurrence), so the file's first row that passes for the order is the
	// one that gets it, on every run.
	var passes [][]Row
	seen := map[[2]string]int{}
	for _, row := range rows {
		n := 0
		// The provider first: the rows of other providers are not parsed
		// twice.
		if row.Err == nil && c.registry.OncePerOrder(row.Request.Provider) {
			if _, err := row.Request.Refund(); err == nil {
				k := [2]string{row.Request.Provider, row.Request.OrderID}
				n = seen[k]
				seen[k]++
			}
		}
		if n == len(passes) {
			passes = append(passes, nil)
		}
		passes[n] = append(passes[n], row)
	}
	// A dry run writes nothing, so the store cannot see a once-only order
	// taken by an earlier row of the file: this map does (under mu).
	taken := map[[2]string]Row{}
	dryRun := func(row Row, t tasks.Refund) error {
		if err := c.check(ctx, t); err != nil {
			return err
		}
		if !c.registry.OncePerOrder(t.Provider) {
			return nil
		}
		k := [2]string{t.Provider, t.OrderID}
		mu.Lock()
		f, ok := taken[k]
		mu.Unlock()
		if ok && f.Request.RefundID != t.RefundID {
			return fmt.Errorf("%w: %s refunds an order once, and line %d (%s) already refunds order %s",
				store.ErrOrderTaken, t.Provider, f.Line, f.Request.RefundID, t.OrderID)
		}
		if err := c.soleHolder(ctx, t); err != nil {
			return err
		}
		mu.Lock()
		if !ok {
			taken[k] = row
		}
		mu.Unlock()
		return nil
	}
	// A real run goes by batches (enqueuePass); a dry run row by row.
	validate := func(row Row) {
		if row.Err != nil {
			record(row, Result{}, row.Err)
			return
		}
		if ctx.Err() != nil {
			record(row, Result{}, ctx.Err())
			return
		}
		t, err := row.Request.Refund()
		if err == nil {
			err = dryRun(row, t)
		}
		record(row, Result{}, err)
	}
	for _, pass := range passes {
		if !opt.DryRun {
			c.enqueuePass(ctx, pass, opt.Concurrency, file, record)
			continue
		}
		work := make(chan Row)
		var wg sync.WaitGroup
		for range opt.Concurrency {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for row := range work {
					validate(row)
				}
			}()
		}
		for _, row := range pass {
			work <- row
		}
		close(work)
		wg.Wait()
	}
	sort.Slice(sum.Errors, func(i, j int) bool { return sum.Errors[i].Line < sum.Errors[j].Line })
	sort.Slice(sum.Results, func(i, j int) bool { return sum.Results[i].Line < sum.Results[j].Line })
	return sum
}

// quotedRun matches a Go-quoted string of more than quoteMax characters.
var quotedRun = regexp.MustCompile(`"(?:[^"\\]|\\.){` + strconv.Itoa(quoteMax+1) + `,}"`)

// ClipQuoted cuts every quoted string in msg longer than 64 characters to
// its first 64, then "…": messages from deeper layers quote user input (an
// amount, a currency) whole, and one bad cell of a file may be megabytes.
func ClipQuoted(msg string) string {
	return quotedRun.ReplaceAllStringFunc(msg, func(q string) string {
		s, err := strconv.Unquote(q)
		if err != nil {
			return q[:quoteMax] + "…"
		}
		return quoteInput(s)
	})
}
