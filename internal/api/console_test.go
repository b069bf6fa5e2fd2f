package api_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/tasks"
)

// consoleSession signs in to /console/login with tok and returns the
// Cookie header that carries the session.
func (h *harness) consoleSession(t *testing.T, tok string) string {
	t.Helper()
	resp, body := h.call(t, http.MethodPost, "/console/login?next=%2Fconsole%2F", "",
		strings.NewReader(url.Values{"token": {tok}}.Encode()), "Content-Type", "application/x-www-form-urlencoded")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/" {
		t.Fatalf("sign-in: %d to %q: %s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	for _, c := range resp.Cookies() {
		if c.Name == "refundq_console" {
			if c.Path != "/console" || !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode {
				t.Fatalf("console cookie %+v: want Path=/console, Secure, HttpOnly, SameSite=Strict", c)
			}
			return "refundq_console=" + c.Value
		}
	}
	t.Fatalf("sign-in set no console cookie: %v", resp.Header["Set-Cookie"])
	return ""
}

// page GETs a console page with a session cookie and returns its HTML.
func (h *harness) page(t *testing.T, cookie, path string, status int) string {
	t.Helper()
	resp, body := h.call(t, http.MethodGet, path, "", nil, "Cookie", cookie, "Accept", "text/html")
	if resp.StatusCode != status {
		t.Fatalf("GET %s: %d, want %d: %s", path, resp.StatusCode, status, body)
	}
	return string(body)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// settleForm posts the settle form of refund id with a session cookie.
func (h *harness) settleForm(t *testing.T, cookie, id string, form url.Values, header ...string) (*http.Response, string) {
	t.Helper()
	hdr := append([]string{"Cookie", cookie, "Content-Type", "application/x-www-form-urlencoded"}, header...)
	resp, body := h.call(t, http.MethodPost, "/console/refunds/"+id+"/settle", "", strings.NewReader(form.Encode()), hdr...)
	return resp, string(body)
}

// inReview makes refund id on provider and moves it to needs_review for
// kind, as a worker would.
func (h *harness) inReview(t *testing.T, id, provider, order string, kind store.ReviewKind) {
	t.Helper()
	ctx := context.Background()
	r := tasks.Refund{Version: tasks.PayloadVersion, RefundID: id, Provider: provider, OrderID: order,
		TransactionID: "txn_" + order, AmountMinor: 1250, Currency: "SAR", Reason: "requested"}
	if _, _, err := h.store.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	h.apply(t, id, store.Change{State: store.NeedsReview, LastError: "test: " + string(kind), Review: kind,
		Entry: store.Entry{Event: "decision", Detail: "test: " + string(kind)}})
}

func (h *harness) apply(t *testing.T, id string, c store.Change) {
	t.Helper()
	ctx := context.Background()
	l, _, err := h.store.Acquire(ctx, id, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release(ctx)
	if err := l.Apply(ctx, c); err != nil {
		t.Fatal(err)
	}
}

// A browser without a session is sent to the console's sign-in; the
// console's cookie opens the console, the monitoring one does not, and
// pages load nothing from elsewhere.
func TestConsoleSignIn(t *testing.T) {
	h := newHarness(t, withScopedTokens, withMonitoring)
	resp, _ := h.call(t, http.MethodGet, "/console/", "", nil, "Accept", "text/html")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/login?next=%2Fconsole%2F" {
		t.Fatalf("unsigned: %d to %q, want 303 to the console's sign-in", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, _ = h.call(t, http.MethodGet, "/console/", "", nil)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unsigned, not a browser: %d, want 401", resp.StatusCode)
	}
	resp, _ = h.call(t, http.MethodGet, "/console/login", "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-in form: %d", resp.StatusCode)
	}
	cookie := h.consoleSession(t, readTok)
	resp, body := h.call(t, http.MethodGet, "/console/", "", nil, "Cookie", cookie)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "Refunds waiting for a person") {
		t.Fatalf("signed in: %d %s", resp.StatusCode, body)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "http") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	if !strings.Contains(string(body), `name="viewport"`) || strings.Contains(string(body), "https://") {
		t.Error("the page lacks a viewport or loads something from elsewhere")
	}
	for _, asset := range []string{"/console/static/console.css", "/console/static/console.js"} {
		if resp, _ := h.call(t, http.MethodGet, asset, "", nil); resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %d", asset, resp.StatusCode)
		}
	}
	// The monitoring session is for /monitoring alone.
	resp, _ = h.call(t, http.MethodPost, "/monitoring/login", "", strings.NewReader("token="+readTok),
		"Content-Type", "application/x-www-form-urlencoded")
	mon := resp.Cookies()
	if len(mon) != 1 {
		t.Fatalf("monitoring sign-in: %d, cookies %v", resp.StatusCode, mon)
	}
	resp, _ = h.call(t, http.MethodGet, "/console/", "", nil, "Cookie", "refundq_console="+mon[0].Value, "Accept", "text/html")
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("a monitoring session as the console's: %d, want 303 to sign in", resp.StatusCode)
	}
	// A token with no read scope cannot sign in.
	resp, _ = h.call(t, http.MethodPost, "/console/login", "", strings.NewReader("token="+writeTok),
		"Content-Type", "application/x-www-form-urlencoded")
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("write-only token signs in: %d, want 403", resp.StatusCode)
	}
}

// A settle from the console needs the settle scope and the session's form
// token; it records who did it, and is refused, in words, when a worker
// holds the refund or it left needs_review.
func TestConsoleSettle(t *testing.T) {
	h := newHarness(t, withScopedTokens)
	h.inReview(t, "rf_cs_1", "moyasarpg", "ord_cs_1", store.ReviewUnknown)
	alice := h.consoleSession(t, settleTok)
	html := h.page(t, alice, "/console/refunds/rf_cs_1", http.StatusOK)
	for _, want := range []string{"12.50 SAR", "outcome_unknown", "ord_cs_1", "txn_ord_cs_1", `action="/console/refunds/rf_cs_1/settle"`} {
		if !strings.Contains(html, want) {
			t.Errorf("refund page lacks %q", want)
		}
	}
	if strings.Contains(html, "1250") {
		t.Error("refund page shows the amount in minor units")
	}
	m := csrfField.FindStringSubmatch(html)
	if m == nil {
		t.Fatalf("no csrf field in the settle form:\n%s", html)
	}
	csrf := m[1]
	ok := url.Values{"state": {"succeeded"}, "provider_ref": {"rfd_77"}, "note": {"MPG dashboard shows refund rfd_77"}, "csrf": {csrf}}
	with := func(k, v string) url.Values {
		f := url.Values{}
		for key, vs := range ok {
			f[key] = vs
		}
		f.Set(k, v)
		return f
	}
	stillInReview := func(what string) {
		t.Helper()
		if rec, err := h.store.Get(context.Background(), "rf_cs_1"); err != nil || rec.State != store.NeedsReview {
			t.Fatalf("after %s: %s %v, want needs_review", what, rec.State, err)
		}
	}

	for name, c := range map[string]struct {
		form   url.Values
		header []string
		status int
		says   string
	}{
		"no csrf":           {with("csrf", ""), nil, http.StatusForbidden, "anti-forgery token"},
		"wrong csrf":        {with("csrf", csrf[1:]+"A"), nil, http.StatusForbidden, "anti-forgery token"},
		"another origin":    {ok, []string{"Origin", "https://evil.example"}, http.StatusForbidden, "evil.example"},
		"cross-site fetch":  {ok, []string{"Sec-Fetch-Site", "cross-site"}, http.StatusForbidden, "another site"},
		"no note":           {with("note", "  "), nil, http.StatusUnprocessableEntity, "is required"},
		"succeeded, no ref": {with("provider_ref", ""), nil, http.StatusUnprocessableEntity, "required when the refund succeeded"},
		"no outcome":        {with("state", "maybe"), nil, http.StatusUnprocessableEntity, "must be"},
	} {
		resp, body := h.settleForm(t, alice, "rf_cs_1", c.form, c.header...)
		if resp.StatusCode != c.status || !strings.Contains(body, c.says) {
			t.Errorf("%s: %d, want %d saying %q:\n%s", name, resp.StatusCode, c.status, c.says, body)
		}
		stillInReview(name)
	}

	// A read token's session cannot settle, whatever its form says.
	grafana := h.consoleSession(t, readTok)
	if resp, _ := h.settleForm(t, grafana, "rf_cs_1", ok); resp.StatusCode != http.StatusForbidden {
		t.Errorf("read token settles: %d, want 403", resp.StatusCode)
	}
	if html := h.page(t, grafana, "/console/refunds/rf_cs_1", http.StatusOK); strings.Contains(html, `name="csrf"`) {
		t.Error("a read token is shown the settle form")
	}
	stillInReview("a read token's post")

	// A form token is the session's: another session's does not do.
	alice2 := h.consoleSession(t, settleTok)
	if alice2 == alice {
		time.Sleep(1100 * time.Millisecond) // another expiry, so another cookie
		alice2 = h.consoleSession(t, settleTok)
	}
	if resp, _ := h.settleForm(t, alice2, "rf_cs_1", ok); resp.StatusCode != http.StatusForbidden {
		t.Errorf("another session's form token: %d, want 403", resp.StatusCode)
	}

	// While a worker holds it, the settle is refused, saying when to retry.
	l, _, err := h.store.Acquire(context.Background(), "rf_cs_1", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	resp, body := h.settleForm(t, alice, "rf_cs_1", ok)
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "a worker is looking this refund up right now; try again in") {
		t.Errorf("held by a worker: %d:\n%s", resp.StatusCode, body)
	}
	l.Release(context.Background())
	stillInReview("a refusal while held")

	resp, body = h.settleForm(t, alice, "rf_cs_1", ok)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/refunds/rf_cs_1?settled=1" {
		t.Fatalf("settle: %d to %q:\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	rec, err := h.store.Get(context.Background(), "rf_cs_1")
	if err != nil || rec.State != store.Succeeded || rec.ProviderRef != "rfd_77" || rec.SettledBy != store.ByPerson {
		t.Fatalf("after settle: %+v %v", rec, err)
	}
	hist, _ := h.store.History(context.Background(), "rf_cs_1")
	last := hist[len(hist)-1]
	if last.Event != "settled" || last.Actor != aliceActor || last.Detail != "MPG dashboard shows refund rfd_77" {
		t.Errorf("history's last entry %+v, want settled by %q with the note", last, aliceActor)
	}
	if html := h.page(t, alice, "/console/refunds/rf_cs_1?settled=1", http.StatusOK); !strings.Contains(html, "Settled as succeeded") ||
		!strings.Contains(html, "by "+aliceActor) {
		t.Errorf("the settled refund's page does not say so:\n%s", html)
	}

	// Settled already: refused, saying where it is now.
	resp, body = h.settleForm(t, alice, "rf_cs_1", ok)
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "it is no longer in needs_review: it is succeeded") {
		t.Errorf("settled twice: %d:\n%s", resp.StatusCode, body)
	}
}

// aliceActor is how a settle by settleTok (name=alice) is recorded: its
// name and id, the first 4 bytes of its SHA-256 in hex.
var aliceActor = func() string {
	h := sha256.Sum256([]byte(settleTok))
	return "api token alice (" + hex.EncodeToString(h[:4]) + ")"
}()
