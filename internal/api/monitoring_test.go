package api_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/refundq/refundq/internal/api"
	"github.com/refundq/refundq/tasks"
)

func withMonitoring(o *options) { o.monitoring = true }

func TestMonitoringSignInAndAccess(t *testing.T) {
	h := newHarness(t, withMonitoring)
	// Nothing without credentials: a problem for a client, the sign-in
	// form for a browser.
	resp, b := h.call(t, "GET", "/monitoring/api/queues", "", nil)
	problem(t, resp, b, http.StatusUnauthorized)
	resp, _ = h.call(t, "GET", "/monitoring/queues?x=1", "", nil, "Accept", "text/html,application/xhtml+xml")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/monitoring/login?next="+url.QueryEscape("/monitoring/queues?x=1") {
		t.Fatalf("browser without a session: %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, b = h.call(t, "GET", "/monitoring/login", "", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `<form method="post"`) {
		t.Fatalf("login form: %d %s", resp.StatusCode, b)
	}
	// A token in the address is refused, whether it is valid or not, by
	// GET or by POST: it is in proxy logs and the browser's history already.
	for _, method := range []string{"GET", "POST"} {
		for _, tok := range []string{token, "tok_wrong_0123456789abcdef0123456789abcdef"} {
			resp, b = h.call(t, method, "/monitoring/login?token="+tok, "", nil)
			if p := problem(t, resp, b, http.StatusBadRequest); !strings.Contains(p.Detail, "never taken from the address") {
				t.Fatalf("%s login with ?token=: %+v", method, p)
			}
			if len(resp.Cookies()) != 0 {
				t.Fatalf("%s login with ?token= set a cookie", method)
			}
		}
	}
	form := url.Values{"token": {"tok_wrong_0123456789abcdef0123456789abcdef"}}
	resp, b = h.call(t, "POST", "/monitoring/login", "", strings.NewReader(form.Encode()), "Content-Type", "application/x-www-form-urlencoded")
	problem(t, resp, b, http.StatusUnauthorized)

	// Sign in with the form: next stays on the monitoring pages.
	form = url.Values{"token": {token}}
	resp, _ = h.call(t, "POST", "/monitoring/login?next="+url.QueryEscape("/monitoring/queues/"+h.env.Queue), "",
		strings.NewReader(form.Encode()), "Content-Type", "application/x-www-form-urlencoded")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/monitoring/queues/"+h.env.Queue {
		t.Fatalf("login: %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	cookie := sessionCookie(t, resp)
	resp, _ = h.call(t, "POST", "/monitoring/login?next="+url.QueryEscape("https://evil.example/"), "",
		strings.NewReader(form.Encode()), "Content-Type", "application/x-www-form-urlencoded")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/monitoring/" {
		t.Fatalf("form login: %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	sessionCookie(t, resp)

	// The cookie opens the monitoring pages and their API, never the
	// refunds API.
	resp, b = h.call(t, "GET", "/monitoring/api/queues", "", nil, "Cookie", cookie)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "queues") {
		t.Fatalf("asynqmon API with the session: %d %s", resp.StatusCode, b)
	}
	resp, b = h.call(t, "GET", "/monitoring/", "", nil, "Cookie", cookie)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "<html") {
		t.Fatalf("asynqmon page with the session: %d", resp.StatusCode)
	}
	resp, b = h.call(t, "GET", "/v1/refunds?state=queued", "", nil, "Cookie", cookie)
	problem(t, resp, b, http.StatusUnauthorized)
	// A bearer token opens them too (scripts, curl).
	if resp, b := h.call(t, "GET", "/monitoring/api/queues", token, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("asynqmon API with a bearer token: %d %s", resp.StatusCode, b)
	}
	resp, _ = h.call(t, "GET", "/monitoring", token, nil)
	if resp.StatusCode/100 != 3 || resp.Header.Get("Location") != "/monitoring/" {
		t.Fatalf("/monitoring: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if strings.Contains(h.logs.String(), token) {
		t.Fatal("the token reached the log (the login link's query?)")
	}
}

func sessionCookie(t *testing.T, resp *http.Response) string {
	t.Helper()
	for _, c := range resp.Cookies() {
		if c.Name != "refundq_monitoring" {
			continue
		}
		if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/monitoring" || c.MaxAge <= 0 || strings.Contains(c.Value, token) {
			t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict, Path=/monitoring, a lifetime, and no token in it", c)
		}
		return c.Name + "=" + c.Value
	}
	t.Fatalf("no session cookie in %v", resp.Header["Set-Cookie"])
	return ""
}

func TestMonitoringIsReadOnlyUnlessConfigured(t *testing.T) {
	for _, writable := range []bool{false, true} {
		h := newHarness(t, func(o *options) { o.monitoring, o.writable = true, writable })
		resp, b := h.postJSON(t, "/v1/refunds", refund("rf_ro", "ord_ro", "1.00"))
		decode[api.Refund](t, resp, b, http.StatusCreated)
		resp, b = h.call(t, "POST", "/monitoring/api/queues/"+h.env.Queue+":pause", token, nil)
		want := http.StatusMethodNotAllowed
		if writable {
			want = http.StatusNoContent
		}
		if resp.StatusCode != want {
			t.Fatalf("writable=%v: pause answered %d %s, want %d", writable, resp.StatusCode, b, want)
		}
		resp, b = h.call(t, "GET", "/monitoring/api/queues/"+h.env.Queue, token, nil)
		var q struct {
			Current struct {
				Paused bool `json:"paused"`
			} `json:"current"`
		}
		if err := json.Unmarshal(b, &q); err != nil || resp.StatusCode != http.StatusOK || q.Current.Paused != writable {
			t.Fatalf("writable=%v: queue %d %s, want paused=%v", writable, resp.StatusCode, b, writable)
		}
	}
}

// taskView is what asynqmon's API answers for one task.
type taskView struct {
	ID      string `json:"id"`
	State   string `json:"state"`
	Payload string `json:"payload"`
	Result  string `json:"result"`
}

// awaitTask polls asynqmon's API (as the browser does) until the task is
// completed with a result.
func (h *harness) awaitTask(t *testing.T, taskID string) taskView {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, b := h.call(t, "GET", "/monitoring/api/queues/"+h.env.Queue+"/tasks/"+url.PathEscape(taskID), token, nil)
		var v taskView
		if resp.StatusCode == http.StatusOK && json.Unmarshal(b, &v) == nil && v.State == "completed" && v.Result != "" {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %s not completed with a result: %d %s", taskID, resp.StatusCode, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestMonitoringShowsDecimalAmountAndResult(t *testing.T) {
	h := newHarness(t, withMonitoring)
	sim := withWorker(t, h)
	sim.Pay("ord_mon_1", money(t, "2623.46", "SAR"))
	body := refund("rf_mon_1", "ord_mon_1", "2623.46")
	body["metadata"] = map[string]string{"customer_email": "jo@example.com"}
	resp, b := h.postJSON(t, "/v1/refunds", body)
	decode[api.Refund](t, resp, b, http.StatusCreated)
	final := h.awaitFinal(t, "rf_mon_1")
	if final.State != "succeeded" || final.ProviderRef == "" {
		t.Fatalf("refund = %+v", final)
	}
	v := h.awaitTask(t, tasks.RefundTaskID("rf_mon_1"))
	if want := "refund rf_mon_1: 2623.46 SAR moyasarpg order ord_mon_1 metadata: 1 key(s), redacted"; v.Payload != want {
		t.Errorf("payload = %q, want %q", v.Payload, want)
	}
	if want := "succeeded, provider ref " + final.ProviderRef; v.Result != want {
		t.Errorf("result = %q, want %q", v.Result, want)
	}
	resp, b = h.call(t, "GET", "/monitoring/api/queues/"+h.env.Queue+"/completed_tasks", token, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "2623.46 SAR") || !strings.Contains(string(b), final.ProviderRef) {
		t.Fatalf("completed tasks list: %d %s", resp.StatusCode, b)
	}
	if strings.Contains(string(b), "jo@example.com") || strings.Contains(h.logs.String(), "jo@example.com") {
		t.Fatal("metadata reached asynqmon or the log")
	}
}

func TestFormatters(t *testing.T) {
	for _, tc := range []struct {
		name, taskType, payload, want string
	}{
		{"refund", tasks.TypeRefund, `{"v":1,"refund_id":"rf_1","provider":"moyasarpg","order_id":"ord_1","amount_minor":262346,"currency":"SAR","reason":"Jo Bloggs asked","metadata":{"email":"jo@example.com"}}`,
			"refund rf_1: 2623.46 SAR moyasarpg order ord_1 metadata: 1 key(s), redacted"},
		{"three decimals, transaction", tasks.TypeRefund, `{"v":1,"refund_id":"rf_2","provider":"fatora","order_id":"o","transaction_id":"tx_9","amount_minor":1250,"currency":"KWD"}`,
			"refund rf_2: 1.250 KWD fatora order o transaction tx_9"},
		{"no decimals", tasks.TypeRefund, `{"v":1,"refund_id":"rf_3","provider":"ecartpay","order_id":"o","amount_minor":1000,"currency":"JPY"}`,
			"refund rf_3: 1000 JPY ecartpay order o"},
		{"unknown currency", tasks.TypeRefund, `{"v":1,"refund_id":"rf_4","provider":"x","order_id":"o","amount_minor":5,"currency":"ZZZ"}`,
			`refund rf_4: 5 minor units of unknown currency "ZZZ" x order o`},
		{"unreadable refund", tasks.TypeRefund, `{"v":1,"amount_minor":"lots"}`, "refund task whose payload cannot be read (29 bytes)"},
		{"poll", tasks.TypePoll, `{"v":1,"refund_id":"rf_1","step":3}`, "poll 3 of refund rf_1"},
		{"another type", "webhook:deliver", `{"url":"https://example.com"}`, `{"url":"https://example.com"}`},
	} {
		if got := api.PayloadFormatter.FormatPayload(tc.taskType, []byte(tc.payload)); got != tc.want {
			t.Errorf("%s: payload = %q, want %q", tc.name, got, tc.want)
		}
		if strings.Contains(api.PayloadFormatter.FormatPayload(tc.taskType, []byte(tc.payload)), "jo@example.com") {
			t.Errorf("%s: metadata shown", tc.name)
		}
	}
	for result, want := range map[string]string{
		`{"state":"succeeded","provider_ref":"rfd_1"}`: "succeeded, provider ref rfd_1",
		`{"state":"needs_review"}`:                     "needs_review",
		``:                                             "(no result)",
		`plain`:                                        "plain",
	} {
		if got := api.ResultFormatter.FormatResult("", []byte(result)); got != want {
			t.Errorf("result %q shown as %q, want %q", result, got, want)
		}
	}
}
