package moyasarpg

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/tasks"
)

const fixtureKey = "0190f6b3-8c1e-7a55-9d1e-3c2b1a0f9e88"

// answer serves one canned answer to every request.
func answer(t *testing.T, status int, body string, header map[string]string) *Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	c, err := New(Config{BaseURL: srv.URL, APIKey: "sk_test_fixture_SECRET"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func fixture(t *testing.T, name string) string {
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDocumentedAnswersAreClassified(t *testing.T) {
	r := providers.Refund{OrderID: "ord_5f1c2b", Amount: tasks.Money{Minor: 262346, Currency: "SAR"}, Key: fixtureKey}
	tests := []struct {
		name    string
		status  int
		body    string
		header  map[string]string
		refund  providers.Kind
		lookup  providers.Kind
		contain string
	}{
		{"order with our approved refund", 200, fixture(t, "order_refunded.json"), nil, providers.Succeeded, providers.Succeeded, ""},
		{"still processing", 400, fixture(t, "still_processing.json"), nil, providers.Pending, providers.Pending, "still processing"},
		{"validation failed", 422, fixture(t, "validation_failed.json"), nil, providers.Rejected, providers.Unknown, "amount: must be less"},
		{"bad key", 401, `{"message":"Invalid authorization credentials"}`, nil, providers.Rejected, providers.Unknown, "MOYASAR_PG_API_KEY"},
		{"no such order", 404, `{"message":"Object not found"}`, nil, providers.Rejected, providers.Rejected, "not found"},
		{"rate limited", 429, `{"message":"Too many requests"}`, map[string]string{"Retry-After": "7"}, providers.Transient, providers.Transient, ""},
		{"gateway HTML", 502, `<html><body>Bad Gateway</body></html>`, nil, providers.Unknown, providers.Unknown, "Bad Gateway"},
		{"200 HTML", 200, `<html>maintenance</html>`, nil, providers.Unknown, providers.Unknown, "unreadable"},
		{"200 without our refund", 200, strings.Replace(fixture(t, "order_refunded.json"), fixtureKey, "someone-else", 1), nil, providers.Unknown, providers.NotFound, ""},
		{"refund timeout status", 200, strings.Replace(fixture(t, "order_refunded.json"), `"refund", "status": "approved"`, `"refund", "status": "timeout"`, 1), nil, providers.Unknown, providers.Unknown, "uncertain"},
		{"refund initiated", 200, strings.Replace(fixture(t, "order_refunded.json"), `"refund", "status": "approved"`, `"refund", "status": "initiated"`, 1), nil, providers.Pending, providers.Pending, ""},
		{"refund failed", 200, strings.Replace(fixture(t, "order_refunded.json"), `"refund", "status": "approved"`, `"refund", "status": "failed"`, 1), nil, providers.Rejected, providers.Rejected, "failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := answer(t, tt.status, tt.body, tt.header)
			for op, want := range map[string]providers.Kind{"refund": tt.refund, "lookup": tt.lookup} {
				var out providers.Outcome
				if op == "refund" {
					out = c.Refund(context.Background(), r)
				} else {
					out = c.Lookup(context.Background(), r)
				}
				if out.Kind != want {
					t.Errorf("%s: %v, want %s", op, out, want)
				}
				if tt.contain != "" && out.Kind == want && want != providers.Unknown && !strings.Contains(out.Reason, tt.contain) && !strings.Contains(out.Status, strings.ReplaceAll(tt.contain, " ", "_")) {
					t.Errorf("%s: reason %q lacks %q", op, out.Reason, tt.contain)
				}
				if strings.Contains(out.Reason, "SECRET") {
					t.Errorf("%s: reason leaks the key: %q", op, out.Reason)
				}
			}
			if tt.status == 429 {
				if out := c.Refund(context.Background(), r); out.RetryAfter.Seconds() != 7 {
					t.Errorf("Retry-After = %s, want 7s", out.RetryAfter)
				}
			}
		})
	}
}

// FuzzClassify feeds arbitrary answers through both classifiers: no panic,
// and nothing but a documented approved refund carrying our key is success.
func FuzzClassify(f *testing.F) {
	f.Add(200, []byte(`{"id":"o","transactions":[{"id":"k","type":"refund","status":"approved"}]}`))
	f.Add(400, []byte(`{"message":"Initial request is still processing."}`))
	f.Add(422, []byte(`{"message":"Data validation failed","errors":{"amount":["x"]}}`))
	f.Add(500, []byte(`<html>`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		if status < 100 || status > 599 {
			return
		}
		resp := &providers.Response{Status: status, Header: http.Header{}, Body: body}
		for _, lookup := range []bool{false, true} {
			var out providers.Outcome
			if status == 200 {
				out = fromOrder(resp, "k", lookup)
			} else {
				out = fromError(resp, lookup)
			}
			if out.Kind == providers.Succeeded && (status != 200 || !strings.Contains(string(body), `"approved"`)) {
				t.Fatalf("status %d body %q classified as success", status, body)
			}
		}
	})
}
