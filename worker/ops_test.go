package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"

	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/providers/sim"
	"github.com/refundq/refundq/tasks"
	"github.com/refundq/refundq/webhook"
	"github.com/refundq/refundq/worker"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// After a refund, /metrics shows the provider call histogram per provider,
// operation and outcome, the transitions, and the fleet-wide state gauges.
func TestMetricsAfterARefund(t *testing.T) {
	h := start(t)
	h.sim.AddOrder("ord-m", mustMoney(t, "5.00", "SAR"))
	if _, err := h.enq.Enqueue(context.Background(), req("rf-m", "ord-m", "5.00")); err != nil {
		t.Fatal(err)
	}
	if rec := h.await(t, "rf-m"); rec.State != store.Succeeded {
		t.Fatalf("refund: %+v", rec)
	}
	srv := httptest.NewServer(h.worker.HTTPHandler())
	defer srv.Close()
	code, body := get(t, srv.URL+"/metrics")
	for _, want := range []string{
		`refundq_provider_call_duration_seconds_count{op="send",outcome="succeeded",provider="moyasarpg"} 1`,
		`refundq_refund_transitions_total{from="processing",provider="moyasarpg",to="succeeded"} 1`,
		`refundq_refunds{state="succeeded"} 1`,
		`refundq_refunds_blocked 0`,
		`refundq_oldest_refund_age_seconds{state="queued"} 0`,
		`asynq_tasks_processed_total`,
	} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("/metrics (HTTP %d) lacks %s", code, want)
		}
	}
	if code, _ := get(t, srv.URL+"/healthz"); code != 200 {
		t.Errorf("/healthz = %d", code)
	}
	if code, body := get(t, srv.URL+"/readyz"); code != 200 {
		t.Errorf("/readyz = %d %s", code, body)
	}
}

// /readyz fails while the worker's Redis is unreachable, and names why.
func TestReadyzFailsWithoutRedis(t *testing.T) {
	h := start(t)
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer dead.Close()
	log := logrus.New()
	log.SetOutput(io.Discard)
	w, err := worker.New(worker.Config{AcceptRedisLoss: true, Redis: asynq.RedisClientOpt{Addr: "127.0.0.1:1"}, RDB: dead,
		Registry: h.registry(t, apiKey), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(w.HTTPHandler())
	defer srv.Close()
	code, body := get(t, srv.URL+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "redis") {
		t.Fatalf("/readyz without Redis = %d %q; want 503 naming redis", code, body)
	}
	if code, _ := get(t, srv.URL+"/healthz"); code != 200 {
		t.Fatalf("/healthz = %d; the process is alive", code)
	}
}

// A receiver gets one signed delivery per final refund; it verifies each,
// and when it answers 500 the delivery comes again. Each try is in the
// refund's history.
func TestWebhooksSignedAndRedelivered(t *testing.T) {
	secret := []byte("whsec_test_SECRET")
	var mu sync.Mutex
	got := map[string][]webhook.Event{}
	failFirst := map[string]bool{"rf-wh-2": true}
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := webhook.Verify(r.Header.Get(webhook.Header), body, [][]byte{secret}, webhook.DefaultTolerance, time.Now()); err != nil {
			t.Errorf("delivery fails verification: %v", err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		var ev webhook.Event
		if err := json.Unmarshal(body, &ev); err != nil {
			t.Errorf("delivery body: %v", err)
		}
		mu.Lock()
		defer mu.Unlock()
		got[ev.Refund.RefundID] = append(got[ev.Refund.RefundID], ev)
		if failFirst[ev.Refund.RefundID] {
			failFirst[ev.Refund.RefundID] = false
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer recv.Close()
	h := start(t, func(s *setup) {
		s.webhook = worker.WebhookConfig{URL: recv.URL, Secrets: [][]byte{secret}, FirstRetry: 200 * time.Millisecond}
	})
	h.sim.AddOrder("ord-wh", mustMoney(t, "50.00", "SAR"))
	for _, r := range [][2]string{{"rf-wh-1", "10.00"}, {"rf-wh-2", "20.00"}, {"rf-wh-3", "99.00"}} {
		if _, err := h.enq.Enqueue(context.Background(), req(r[0], "ord-wh", r[1])); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]string{"rf-wh-1": "refund.succeeded", "rf-wh-2": "refund.succeeded", "rf-wh-3": "refund.failed"}
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		done := len(got["rf-wh-1"]) == 1 && len(got["rf-wh-2"]) == 2 && len(got["rf-wh-3"]) == 1
		mu.Unlock()
		if done {
			break
		}
		if time.Now().After(deadline) {
			mu.Lock()
			t.Fatalf("deliveries: %+v", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	delivered := map[string][]webhook.Event{}
	for id, evs := range got {
		delivered[id] = append([]webhook.Event(nil), evs...)
	}
	mu.Unlock()
	for id, typ := range want {
		for _, ev := range delivered[id] {
			if ev.Type != typ || ev.ID == "" || ev.Refund.Currency != "SAR" || ev.Refund.Amount == "" {
				t.Errorf("%s: delivery %+v, want type %s with its amount", id, ev, typ)
			}
		}
	}
	if a, b := delivered["rf-wh-2"][0], delivered["rf-wh-2"][1]; a.ID != b.ID {
		t.Errorf("a redelivery must carry the same event id: %s vs %s", a.ID, b.ID)
	}
	// The worker writes a try to the history once the receiver has
	// answered: wait for the second.
	var tries []string
	for deadline := time.Now().Add(10 * time.Second); ; {
		hist, _ := h.store.History(context.Background(), "rf-wh-2")
		tries = tries[:0]
		for _, e := range hist {
			if e.Event == "webhook" {
				tries = append(tries, e.Detail)
			}
		}
		if len(tries) >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(tries) != 2 || !strings.Contains(tries[0], "not delivered") || !strings.Contains(tries[1], "delivered") {
		t.Fatalf("webhook tries in the history: %q", tries)
	}
	// Measured: three delivered, one try failed, and nothing left waiting.
	srv := httptest.NewServer(h.worker.HTTPHandler())
	defer srv.Close()
	counts := map[string]float64{
		`refundq_webhook_deliveries_total{outcome="delivered"}`: 3, `refundq_webhook_deliveries_total{outcome="failed"}`: 1,
		`refundq_webhook_deliveries_total{outcome="gave_up"}`: 0, `refundq_webhook_delivery_duration_seconds_count`: 4,
		`refundq_webhook_undelivered`: 0, `refundq_webhook_oldest_undelivered_age_seconds`: 0,
	}
	var body string
	for deadline := time.Now().Add(10 * time.Second); ; {
		_, body = get(t, srv.URL+"/metrics")
		all := true
		for k, v := range counts {
			if got, ok := metricValue(body, k); !ok || got != v {
				all = false
			}
		}
		if all {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhook metrics: want %v\n%s", counts, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A dispatcher that claims a delivered event again (its first died
	// before acknowledging it) finds the task done: the outbox stays empty.
	ev := delivered["rf-wh-1"][0]
	if err := h.worker.QueueWebhook(context.Background(), store.Event{ID: ev.ID, RefundID: "rf-wh-1", To: store.Succeeded, At: ev.Created}); err != nil {
		t.Fatal(err)
	}
	if _, n, err := h.store.OutboxOldest(context.Background()); err != nil || n != 0 {
		t.Fatalf("outbox after an event claimed again: %d, %v; want 0", n, err)
	}
}

// A final refund past its retention is exported to the audit file, then
// deleted with its history and index entries; an open one and one in
// needs_review are kept.
func TestJanitorExportsThenDeletesPastRetention(t *testing.T) {
	dir := t.TempDir()
	h := start(t, func(s *setup) { s.retention, s.auditDir = time.Millisecond, dir })
	h.sim.AddOrder("ord-j", mustMoney(t, "5.00", "SAR"))
	if _, err := h.enq.Enqueue(context.Background(), req("rf-j", "ord-j", "5.00")); err != nil {
		t.Fatal(err)
	}
	h.await(t, "rf-j")
	h.sim.AddOrder("ord-j2", mustMoney(t, "9.00", "SAR"))
	h.sim.Faults().Next(1, "POST", "/v1/orders/ord-j2/refund", sim.AppliedThenReset)
	h.sim.Faults().Next(1000, "GET", "/v1/orders/ord-j2", sim.Status5xx)
	h.enqueueWithRetries(t, tasks.Refund{Version: 1, RefundID: "rf-j2", Provider: providers.MoyasarPG, OrderID: "ord-j2", AmountMinor: 900, Currency: "SAR"}, 0)
	if rec := h.await(t, "rf-j2"); rec.State != store.NeedsReview {
		t.Fatalf("rf-j2 = %s, want needs_review", rec.State)
	}
	n, err := h.worker.Sweep(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("sweep deleted %d, %v; want the one succeeded refund", n, err)
	}
	if _, err := h.store.Get(context.Background(), "rf-j"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("rf-j still stored: %v", err)
	}
	if hist, _ := h.store.History(context.Background(), "rf-j"); len(hist) != 0 {
		t.Fatalf("rf-j's history still stored: %v", hist)
	}
	if _, n, _ := h.store.ListState(context.Background(), store.Succeeded, 0, 10); n != 0 {
		t.Fatalf("succeeded index still counts %d", n)
	}
	if rec, err := h.store.Get(context.Background(), "rf-j2"); err != nil || rec.State != store.NeedsReview {
		t.Fatalf("needs_review refund deleted: %+v, %v", rec, err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "refunds-*.jsonl"))
	if len(files) != 1 {
		t.Fatalf("audit files: %v", files)
	}
	b, _ := os.ReadFile(files[0])
	if !strings.Contains(string(b), `"RefundID":"rf-j"`) || !strings.Contains(string(b), `"event":"send"`) || strings.Count(string(b), "\n") != 1 {
		t.Fatalf("audit file: %s", b)
	}
}

// Every refundq metric the Grafana dashboard charts is one the worker
// exports, so the dashboard cannot drift from the code.
func TestDashboardChartsExportedMetrics(t *testing.T) {
	h := start(t)
	h.sim.AddOrder("ord-d", mustMoney(t, "5.00", "SAR"))
	h.sim.Faults().Next(1, "POST", "/v1/orders/ord-d/refund", sim.ResetBeforeApply)
	if _, err := h.enq.Enqueue(context.Background(), req("rf-d", "ord-d", "5.00")); err != nil {
		t.Fatal(err)
	}
	h.await(t, "rf-d")
	srv := httptest.NewServer(h.worker.HTTPHandler())
	defer srv.Close()
	_, body := get(t, srv.URL+"/metrics")
	dash, err := os.ReadFile("../deploy/grafana/refundq.json")
	if err != nil {
		t.Fatal(err)
	}
	names := regexp.MustCompile(`refundq_[a-z_]+`).FindAllString(string(dash), -1)
	if len(names) < 5 {
		t.Fatalf("dashboard charts %d refundq metrics", len(names))
	}
	for _, n := range names {
		n = strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_count")
		if !strings.Contains(body, "# TYPE "+n+" ") {
			t.Errorf("dashboard charts %s, which /metrics does not export", n)
		}
	}
}
