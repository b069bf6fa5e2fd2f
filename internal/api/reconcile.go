package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/refundq/refundq/enqueue"
	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/tasks"
)

// typeNoWorker: a reconciliation needs a running worker (only workers hold
// provider credentials), and none is.
const typeNoWorker = problemBase + "no-worker"

// Paging of a run's findings.
const (
	defaultFindings = 100
	maxFindings     = 1000
)

// reconcileBody is POST /v1/reconciliations.
type reconcileBody struct {
	Since    string `json:"since"`    // "24h", "7d" or an RFC 3339 time
	Until    string `json:"until"`    // RFC 3339; default now
	Provider string `json:"provider"` // "" every provider
}

// Reconciliation is a run as the API shows it.
type Reconciliation struct {
	ID        string     `json:"id"`
	StatusURL string     `json:"status_url"`
	State     string     `json:"state"` // running or done
	Since     time.Time  `json:"since"`
	Until     time.Time  `json:"until"`
	Provider  string     `json:"provider,omitempty"`
	StartedBy string     `json:"started_by,omitempty"`
	Error     string     `json:"error,omitempty"`
	Total     int        `json:"total"`
	Walked    int        `json:"walked"`
	Checked   int        `json:"checked"`
	Agree     int        `json:"agree"`
	Disagree  int        `json:"disagree"`
	Unchecked int        `json:"unchecked"`
	CreatedAt time.Time  `json:"created_at"`
	Finished  *time.Time `json:"finished_at,omitempty"`
	// Findings is one page of the run's findings (GET only), FindingsTotal
	// how many it has, NextOffset where the next page starts (absent on
	// the last).
	Findings      []Finding `json:"findings,omitempty"`
	FindingsTotal int       `json:"findings_total"`
	NextOffset    *int      `json:"next_offset,omitempty"`
}

// Finding is a refund a run could not confirm; amounts are decimals.
type Finding struct {
	RefundID    string      `json:"refund_id"`
	Provider    string      `json:"provider"`
	OrderID     string      `json:"order_id"`
	State       store.State `json:"state"`
	Amount      string      `json:"amount"`
	Currency    string      `json:"currency"`
	Reference   string      `json:"reference,omitempty"`
	Verdict     string      `json:"verdict"`
	Reason      string      `json:"reason"`
	Shows       string      `json:"provider_shows"`
	Status      string      `json:"provider_status,omitempty"`
	ProviderRef string      `json:"provider_reference,omitempty"`
	Detail      string      `json:"detail,omitempty"`
}

func reconciliationOf(run store.ReconcileRun) Reconciliation {
	out := Reconciliation{ID: run.ID, StatusURL: "/v1/reconciliations/" + run.ID, State: run.State, Since: run.Since.UTC(),
		Until: run.Until.UTC(), Provider: run.Provider, StartedBy: run.StartedBy, Error: run.Error, Total: run.Total,
		Walked: run.Walked, Checked: run.Checked, Agree: run.Agree, Disagree: run.Disagree, Unchecked: run.Unchecked,
		CreatedAt: run.CreatedAt.UTC()}
	if !run.FinishedAt.IsZero() {
		t := run.FinishedAt.UTC()
		out.Finished = &t
	}
	return out
}

// startReconciliation starts a run, which a worker carries out; 202 with
// where to follow it.
func (s *Server) startReconciliation(w http.ResponseWriter, r *http.Request) {
	var body reconcileBody
	if !readJSON(w, r, &body) {
		return
	}
	req := enqueue.ReconcileRequest{Provider: strings.TrimSpace(body.Provider), StartedBy: info(r).who.Actor()}
	var errs []FieldError
	var err error
	if req.Since, err = enqueue.ParseSince(body.Since, time.Now()); err != nil {
		errs = append(errs, field("since", `must be a duration back from now ("24h", "7d") or an RFC 3339 time`))
	}
	if body.Until != "" {
		if req.Until, err = time.Parse(time.RFC3339, body.Until); err != nil {
			errs = append(errs, field("until", "must be an RFC 3339 time"))
		}
	}
	if len(errs) > 0 {
		validationProblem(w, r, errs)
		return
	}
	run, err := s.enq.StartReconcile(r.Context(), req)
	var verr tasks.ValidationError
	switch {
	case errors.As(err, &verr):
		validationProblem(w, r, fieldErrors(verr))
		return
	case errors.Is(err, providers.ErrUnknownProvider), errors.Is(err, providers.ErrDisabled):
		validationProblem(w, r, []FieldError{field("provider", err.Error())})
		return
	case errors.Is(err, enqueue.ErrNoWorker):
		writeProblem(w, r, Problem{Status: http.StatusServiceUnavailable, Type: typeNoWorker,
			Title: "No worker is running", Detail: "a reconciliation is carried out by a worker, and none is running on the queue; start one"})
		return
	case err != nil:
		s.unavailable(w, r, err, "the reconciliation could not be started; try again")
		return
	}
	s.log.WithFields(logrus.Fields{"run_id": run.ID, "provider": run.Provider, "since": run.Since, "until": run.Until,
		"actor": req.StartedBy}).Info("reconciliation started")
	out := reconciliationOf(run)
	w.Header().Set("Location", out.StatusURL)
	writeJSON(w, http.StatusAccepted, out)
}

// getReconciliation answers a run's progress, counts and a page of its
// findings (?offset=, ?limit=).
func (s *Server) getReconciliation(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	q := r.URL.Query()
	var errs []FieldError
	limit, offset := defaultFindings, 0
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxFindings {
			errs = append(errs, FieldError{Field: "limit", Message: fmt.Sprintf("must be a whole number from 1 to %d", maxFindings)})
		}
		limit = n
	}
	if v := q.Get("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			errs = append(errs, FieldError{Field: "offset", Message: "must be a whole number from 0"})
		}
		offset = n
	}
	if len(errs) > 0 {
		validationProblem(w, r, errs)
		return
	}
	run, fs, total, err := s.enq.Reconciliation(r.Context(), id, offset, limit)
	switch {
	case errors.Is(err, store.ErrRunNotFound):
		writeProblem(w, r, Problem{Status: http.StatusNotFound, Detail: fmt.Sprintf("no reconciliation %q (runs are kept 7 days)", id)})
		return
	case err != nil:
		s.unavailable(w, r, err, "the reconciliation could not be read; try again")
		return
	}
	out := reconciliationOf(run)
	out.Findings, out.FindingsTotal = make([]Finding, 0, len(fs)), total
	for _, f := range fs {
		out.Findings = append(out.Findings, Finding{RefundID: f.RefundID, Provider: f.Provider, OrderID: f.OrderID, State: f.State,
			Amount: f.Amount.Decimal(), Currency: f.Amount.Currency, Reference: f.Reference, Verdict: f.Verdict, Reason: f.Reason,
			Shows: f.Shows, Status: f.Status, ProviderRef: f.ProviderRef, Detail: f.Detail})
	}
	if next := offset + len(fs); next < total {
		out.NextOffset = &next
	}
	writeJSON(w, http.StatusOK, out)
}
