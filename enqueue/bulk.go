package enqueue

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/refundq/refundq/store"
	"github.com/refundq/refundq/tasks"
)

// Format is a bulk file's format.
type Format int

// Bulk file formats.
const (
	CSV   Format = iota // header refund_id,provider,order_id,transaction_id,amount,currency,reason
	JSONL               // one JSON object per line with the same keys
)

// FormatFor picks the format from the file name (.csv, .jsonl, .ndjson),
// else from the first non-blank byte of the content ('{' is JSON Lines).
func FormatFor(name string, head []byte) Format {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".csv":
		return CSV
	case ".jsonl", ".ndjson":
		return JSONL
	}
	if t := bytes.TrimLeft(head, " \t\r\n\ufeff"); len(t) > 0 && t[0] == '{' {
		return JSONL
	}
	return CSV
}

// Row is one refund read from a bulk file. Line is the physical 1-based line
// it started on; Err is set when the row could not be read as a request.
type Row struct {
	Line    int
	Request Request
	Err     error
}

// csvColumns are the CSV header's columns; required ones must be present.
var csvColumns = map[string]bool{
	"refund_id": true, "provider": true, "order_id": true, "transaction_id": false,
	"amount": true, "currency": true, "reason": false,
}

// ReadBulk reads every row of a bulk file. A malformed row becomes a Row
// with Err, so the rest of the file still goes through; only an unusable
// file (bad CSV header, read failure) is an error.
func ReadBulk(r io.Reader, format Format) ([]Row, error) {
	if format == JSONL {
		return readJSONL(r)
	}
	return readCSV(r)
}

func readCSV(r io.Reader) ([]Row, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1 // checked per row, so one short row is reported, not fatal
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("bulk: read CSV header: %w", err)
	}
	cols := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if _, ok := csvColumns[h]; !ok {
			return nil, fmt.Errorf("bulk: line 1: unknown column %q (want %s)", h, columnList())
		}
		if _, dup := cols[h]; dup {
			return nil, fmt.Errorf("bulk: line 1: column %q twice", h)
		}
		cols[h] = i
	}
	for c, required := range csvColumns {
		if _, ok := cols[c]; required && !ok {
			return nil, fmt.Errorf("bulk: line 1: missing column %q (want %s)", c, columnList())
		}
	}
	var rows []Row
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return rows, nil
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				rows = append(rows, Row{Line: pe.StartLine, Err: fmt.Errorf("malformed CSV: %v", pe.Err)})
				continue
			}
			return rows, fmt.Errorf("bulk: read: %w", err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		if len(rec) != len(header) {
			row := Row{Line: line, Err: fmt.Errorf("%d fields, header has %d", len(rec), len(header))}
			if i := cols["refund_id"]; i < len(rec) {
				row.Request.RefundID = strings.TrimSpace(rec[i]) // to name the row in the report
			}
			rows = append(rows, row)
			continue
		}
		get := func(c string) string {
			if i, ok := cols[c]; ok {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		rows = append(rows, Row{Line: line, Request: Request{
			RefundID: get("refund_id"), Provider: get("provider"), OrderID: get("order_id"),
			TransactionID: get("transaction_id"), Amount: get("amount"), Currency: get("currency"), Reason: get("reason"),
		}})
	}
}

func columnList() string {
	return "refund_id,provider,order_id,transaction_id,amount,currency,reason"
}

func readJSONL(r io.Reader) ([]Row, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	var rows []Row
	for n := 1; sc.Scan(); n++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var raw struct {
			Request
			Amount json.RawMessage `json:"amount"`
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&raw); err != nil {
			rows = append(rows, Row{Line: n, Err: fmt.Errorf("invalid JSON: %v", err)})
			continue
		}
		req := raw.Request
		// An amount may be written as a string ("403.33") or a bare JSON
		// number (403.33); either way its digits are kept as written, never
		// parsed into a float.
		amt := strings.TrimSpace(string(raw.Amount))
		if strings.HasPrefix(amt, `"`) {
			if err := json.Unmarshal(raw.Amount, &amt); err != nil {
				rows = append(rows, Row{Line: n, Request: req, Err: fmt.Errorf("amount: %v", err)})
				continue
			}
		}
		req.Amount = amt
		rows = append(rows, Row{Line: n, Request: req})
	}
	if err := sc.Err(); err != nil {
		return rows, fmt.Errorf("bulk: read line %d: %w", len(rows)+1, err)
	}
	return rows, nil
}

// BulkOptions tunes EnqueueBulk.
type BulkOptions struct {
	// Concurrency is the number of enqueues in flight; default 16 (one
	// asynq client does ~5k enqueues/s alone and ~25k/s from 16 goroutines
	// on a 2-core machine).
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

func (e RowError) Error() string {
	id := e.RefundID
	if id == "" {
		id = "-"
	}
	return fmt.Sprintf("line %d: %s: %v", e.Line, id, e.Err)
}

// BulkSummary counts what happened to the rows of a bulk file.
type BulkSummary struct {
	Total    int
	Enqueued int // new refunds (in a dry run: valid rows)
	Existing int // refund id already known with the same refund
	Invalid  int
	Failed   int        // could not be written (e.g. Redis unreachable); safe to re-run
	Errors   []RowError // sorted by line
}

// EnqueueBulk enqueues every good row and reports every bad one; one bad row
// never stops the others. Re-running the same file is safe.
func (c *Client) EnqueueBulk(ctx context.Context, rows []Row, opt BulkOptions) BulkSummary {
	if opt.Concurrency <= 0 {
		opt.Concurrency = 16
	}
	sum := BulkSummary{Total: len(rows)}
	var mu sync.Mutex
	done := 0
	record := func(row Row, created bool, err error) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err == nil && created:
			sum.Enqueued++
		case err == nil:
			sum.Existing++
		case IsInvalid(err) || row.Err != nil:
			sum.Invalid++
			sum.Errors = append(sum.Errors, RowError{row.Line, row.Request.RefundID, err, true})
		default:
			sum.Failed++
			sum.Errors = append(sum.Errors, RowError{row.Line, row.Request.RefundID, err, false})
		}
		done++
		if opt.Done != nil {
			opt.Done(row, created, err)
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
		if t, err := row.Request.Refund(); row.Err == nil && err == nil && c.registry.OncePerOrder(t.Provider) {
			k := [2]string{t.Provider, t.OrderID}
			n = seen[k]
			seen[k]++
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
	handle := func(row Row) {
		if row.Err != nil {
			record(row, false, row.Err)
			return
		}
		if ctx.Err() != nil {
			record(row, false, ctx.Err())
			return
		}
		t, err := row.Request.Refund()
		if err == nil && opt.DryRun {
			err = dryRun(row, t)
		}
		if err != nil || opt.DryRun {
			record(row, true, err)
			return
		}
		res, err := c.EnqueueRefund(ctx, t)
		record(row, res.Created, err)
	}
	for _, pass := range passes {
		work := make(chan Row)
		var wg sync.WaitGroup
		for range opt.Concurrency {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for row := range work {
					handle(row)
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
	return sum
}
