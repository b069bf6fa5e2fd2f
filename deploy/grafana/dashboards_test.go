// Package grafana holds refundq's Grafana dashboards; its test keeps the
// API's dashboard to the metrics the API exports, as worker/ops_test.go
// keeps refundq.json to the worker's.
package grafana

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/refundq/refundq/enqueue"
	"github.com/refundq/refundq/internal/api"
	"github.com/refundq/refundq/internal/redistest"
	"github.com/refundq/refundq/internal/store"
)

// Every refundq metric refundq-api.json charts is one the API's GET
// /metrics exports (read with a token that has the read scope alone, as
// Prometheus's does), so the dashboard cannot drift from the code.
func TestAPIDashboardChartsExportedMetrics(t *testing.T) {
	env := redistest.New(t)
	token := strings.Repeat("7f", 32)
	toks, err := api.ParseTokens(token + " name=prometheus read")
	if err != nil {
		t.Fatal(err)
	}
	enq := enqueue.New(env.Asynq, env.Client, enqueue.WithPrefix(env.Prefix), enqueue.AcceptRedisLoss())
	defer enq.Close()
	quiet := logrus.New()
	quiet.SetOutput(io.Discard)
	srv, err := api.New(api.Config{Enqueue: enq, Store: store.New(env.Client, env.Prefix), Tokens: toks, Redis: env.Client, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	// One request first: a route's duration histogram has no series until
	// a request was timed.
	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		srv.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	if code, body := get("/v1/refunds/rf-dashboard"); code != http.StatusNotFound {
		t.Fatalf("GET /v1/refunds/rf-dashboard = %d %s, want 404", code, body)
	}
	code, body := get("/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics with a read token = %d %s", code, body)
	}
	dash, err := os.ReadFile("refundq-api.json")
	if err != nil {
		t.Fatal(err)
	}
	names := regexp.MustCompile(`refundq_[a-z_]+`).FindAllString(string(dash), -1)
	if len(names) < 3 {
		t.Fatalf("refundq-api.json charts %d refundq metrics", len(names))
	}
	for _, n := range names {
		n = strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_count")
		if !strings.Contains(body, "# TYPE "+n+" ") {
			t.Errorf("refundq-api.json charts %s, which the API's /metrics does not export", n)
		}
	}
}
