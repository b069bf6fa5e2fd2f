package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/refundq/refundq/internal/api"
)

// A reconciliation over HTTP: refused while no worker runs, started with
// 202 and a status URL, followed to done; its counts are the worker's.
func TestReconciliationOverHTTP(t *testing.T) {
	h := newHarness(t)
	resp, body := h.postJSON(t, "/v1/reconciliations", map[string]any{"since": "1h"})
	if p := problem(t, resp, body, http.StatusServiceUnavailable); !strings.HasSuffix(p.Type, "#problem-no-worker") {
		t.Fatalf("no worker: %+v", p)
	}
	resp, body = h.postJSON(t, "/v1/reconciliations", map[string]any{"since": "yesterday", "until": "soon"})
	if p := problem(t, resp, body, http.StatusBadRequest); strings.Join(fields(p), ",") != "since,until" {
		t.Fatalf("bad window: %+v", p)
	}

	sim := withWorker(t, h)
	sim.Pay("ord-rc", money(t, "10.00", "SAR"))
	if resp, body := h.postJSON(t, "/v1/refunds", refund("rf-rc", "ord-rc", "10.00")); resp.StatusCode != http.StatusCreated {
		t.Fatalf("enqueue: %d %s", resp.StatusCode, body)
	}
	if r := h.awaitFinal(t, "rf-rc"); r.State != "succeeded" {
		t.Fatalf("refund = %+v", r)
	}
	resp, body = h.postJSON(t, "/v1/reconciliations", map[string]any{"since": "1h", "provider": "ecartpay"})
	if p := problem(t, resp, body, http.StatusBadRequest); strings.Join(fields(p), ",") != "provider" {
		t.Fatalf("a provider no worker has: %+v", p)
	}
	resp, body = h.postJSON(t, "/v1/reconciliations", map[string]any{"since": "1h", "provider": "moyasarpg"})
	run := decode[api.Reconciliation](t, resp, body, http.StatusAccepted)
	if run.State != "running" || run.Total != 1 || resp.Header.Get("Location") != run.StatusURL ||
		!strings.Contains(run.StartedBy, "api token") {
		t.Fatalf("started: %+v, Location %q", run, resp.Header.Get("Location"))
	}
	deadline := time.Now().Add(30 * time.Second)
	for run.State != "done" {
		if time.Now().After(deadline) {
			t.Fatalf("run not done: %+v\nlogs:\n%s", run, h.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
		resp, body = h.call(t, http.MethodGet, run.StatusURL, token, nil)
		run = decode[api.Reconciliation](t, resp, body, http.StatusOK)
	}
	if run.Checked != 1 || run.Agree != 1 || run.Disagree != 0 || run.FindingsTotal != 0 || run.NextOffset != nil {
		t.Fatalf("done: %+v", run)
	}
	resp, body = h.call(t, http.MethodGet, "/v1/reconciliations/rc-none", token, nil)
	problem(t, resp, body, http.StatusNotFound)
	resp, body = h.call(t, http.MethodGet, run.StatusURL+"?limit=0", token, nil)
	problem(t, resp, body, http.StatusBadRequest)
}
