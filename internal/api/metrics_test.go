package api_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/refundq/refundq/internal/api"
)

// GET /metrics counts requests by route pattern and status class (never by
// path: no refund id becomes a label) and says whether Redis answers.
func TestAPIMetrics(t *testing.T) {
	h := newHarness(t)
	resp, b := h.postJSON(t, "/v1/refunds", refund("rf_met_1", "ord_met", "5.00"))
	decode[api.Refund](t, resp, b, http.StatusCreated)
	h.call(t, "GET", "/v1/refunds/rf_met_missing", token, nil)
	h.call(t, "GET", "/v1/nothing-here", token, nil)
	h.call(t, "GET", "/v1/refunds/rf_met_1", "", nil) // 401

	resp, b = h.call(t, "GET", "/metrics", token, nil)
	body := string(b)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics = %d %s", resp.StatusCode, body)
	}
	for _, want := range []string{
		`refundq_http_requests_total{route="POST /v1/refunds",status_class="2xx"} 1`,
		`refundq_http_requests_total{route="GET /v1/refunds/{id}",status_class="4xx"} 2`,
		`refundq_http_requests_total{route="unmatched",status_class="4xx"} 1`,
		`refundq_http_requests_total{route="POST /v1/refunds/{id}/settle",status_class="5xx"} 0`,
		`refundq_http_request_duration_seconds_count{route="POST /v1/refunds"} 1`,
		"refundq_redis_up 1",
		"refundq_collect_last_success_timestamp_seconds ",
		"go_goroutines ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(body, "rf_met") || strings.Contains(body, "nothing-here") {
		t.Error("/metrics carries a path or a refund id in a label")
	}
	if resp, b := h.call(t, "GET", "/metrics", "", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("/metrics without a token = %d %s", resp.StatusCode, b)
	}
}

// With Redis down the API's scrape still answers, and says so.
func TestAPIMetricsWithRedisDown(t *testing.T) {
	srv := deadRedisServer(t)
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	srv.ServeHTTP(rec, req)
	body := rec.Body.String()
	if rec.Code != http.StatusOK || !strings.Contains(body, "refundq_redis_up 0") || strings.Contains(body, "refundq_collect_last_success_timestamp_seconds ") {
		t.Fatalf("/metrics with Redis down = %d:\n%s\nwant 200, refundq_redis_up 0 and no last success", rec.Code, body)
	}
}
