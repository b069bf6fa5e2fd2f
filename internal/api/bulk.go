package api

import (
	"errors"
	"mime"
	"net/http"
	"sort"
	"strconv"
	"sync"

	"github.com/refundq/refundq/enqueue"
	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/tasks"
)

// BulkReport answers POST /v1/refunds/bulk: counts, and one entry per row
// of the file in line order.
type BulkReport struct {
	DryRun   bool      `json:"dry_run"`
	Total    int       `json:"total"`
	Created  int       `json:"created"` // new refunds (dry run: valid rows)
	Existing int       `json:"existing"`
	Invalid  int       `json:"invalid"`
	Failed   int       `json:"failed"` // not written (Redis); sending the file again is safe
	Rows     []BulkRow `json:"rows"`
}

// BulkRow is what became of one row.
type BulkRow struct {
	Line     int    `json:"line"` // the file's 1-based line the row starts on
	RefundID string `json:"refund_id,omitempty"`
	// Status is created, existing (the same refund was already enqueued),
	// valid (dry run), invalid (the row is wrong; fix it) or failed (not
	// written; send the file again).
	Status string       `json:"status"`
	Detail string       `json:"detail,omitempty"`
	Errors []FieldError `json:"errors,omitempty"`
}

// bulkFormats are the Content-Types a bulk file is taken in.
var bulkFormats = map[string]enqueue.Format{
	"text/csv":             enqueue.CSV,
	"application/x-ndjson": enqueue.JSONL,
	"application/jsonl":    enqueue.JSONL,
}

// bulkRefunds enqueues every good row of a CSV or JSON Lines file and
// reports every row; one bad row never stops the others, and sending the
// same file again is safe (its rows answer "existing"). ?dry_run=true
// validates without writing. The answer is 200 whenever the file could be
// read, whatever its rows; only an unreadable file is a problem.
func (s *Server) bulkRefunds(w http.ResponseWriter, r *http.Request) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	format, ok := bulkFormats[mt]
	if err != nil || !ok {
		writeProblem(w, r, Problem{Status: http.StatusUnsupportedMediaType,
			Detail: "send the file as Content-Type: text/csv or application/x-ndjson"})
		return
	}
	dryRun := false
	if v := r.URL.Query().Get("dry_run"); v != "" {
		if dryRun, err = strconv.ParseBool(v); err != nil {
			validationProblem(w, r, []FieldError{{Field: "dry_run", Message: "must be true or false"}})
			return
		}
	}
	if r.ContentLength > maxBulk {
		tooLarge(w, r, maxBulk)
		return
	}
	select {
	case s.bulk <- struct{}{}:
		defer func() { <-s.bulk }()
	default:
		w.Header().Set("Retry-After", "10")
		writeProblem(w, r, Problem{Status: http.StatusTooManyRequests,
			Detail: "as many bulk files as this server takes at once are being enqueued; send this one again later"})
		return
	}
	rows, err := enqueue.ReadBulk(http.MaxBytesReader(w, r.Body, maxBulk), format)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		tooLarge(w, r, maxBulk)
		return
	case err != nil:
		invalidBody(w, r, err.Error(), nil)
		return
	case len(rows) == 0:
		invalidBody(w, r, "the file has no rows", nil)
		return
	}
	rep := BulkReport{DryRun: dryRun, Rows: make([]BulkRow, 0, len(rows))}
	var mu sync.Mutex
	var failure error
	sum := s.enq.EnqueueBulk(r.Context(), rows, enqueue.BulkOptions{DryRun: dryRun,
		Done: func(row enqueue.Row, created bool, err error) {
			br := bulkRow(row, created, dryRun, err)
			mu.Lock()
			defer mu.Unlock()
			rep.Rows = append(rep.Rows, br)
			if br.Status == "failed" && failure == nil {
				failure = err
			}
		}})
	if failure != nil {
		s.log.WithField("request_id", w.Header().Get(requestIDHeader)).WithError(failure).Error("bulk: rows could not be written")
	}
	sort.Slice(rep.Rows, func(i, j int) bool { return rep.Rows[i].Line < rep.Rows[j].Line })
	rep.Total, rep.Created, rep.Existing, rep.Invalid, rep.Failed = sum.Total, sum.Enqueued, sum.Existing, sum.Invalid, sum.Failed
	writeJSON(w, http.StatusOK, rep)
}

// bulkRow reports one row as EnqueueBulk left it.
func bulkRow(row enqueue.Row, created, dryRun bool, err error) BulkRow {
	br := BulkRow{Line: row.Line, RefundID: row.Request.RefundID}
	var verr tasks.ValidationError
	var taken *store.OrderTakenError
	switch {
	case err == nil && dryRun:
		br.Status = "valid"
	case err == nil && created:
		br.Status = "created"
	case err == nil:
		br.Status = "existing"
	case row.Err != nil || enqueue.IsInvalid(err):
		br.Status = "invalid"
		br.Detail = err.Error()
		switch {
		case errors.As(err, &verr):
			br.Detail = "invalid fields; see errors"
			br.Errors = fieldErrors(verr)
		case errors.Is(err, store.ErrConflict):
			br.Detail = "refund id already used for a different refund: " + err.Error()
		case errors.As(err, &taken):
			br.Errors = []FieldError{field("order_id", "already refunded by "+taken.Owner)}
		case errors.Is(err, providers.ErrUnknownProvider), errors.Is(err, providers.ErrDisabled):
			br.Errors = []FieldError{field("provider", err.Error())}
		}
	default:
		// The error (a Redis failure) is logged, not shown: it may name hosts.
		br.Status = "failed"
		br.Detail = "not written; send the file again (rows already enqueued answer existing)"
	}
	return br
}
