package api_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/refundq/refundq/internal/api"
)

// Tokens with a scope each, as a token file names them.
const (
	readTok   = "tok_read_0123456789abcdef0123456789abcdef"
	writeTok  = "tok_write_0123456789abcdef0123456789abcde"
	settleTok = "tok_settle_0123456789abcdef0123456789abcd"
)

func withScopedTokens(o *options) {
	o.tokens = readTok + " name=grafana read\n" + writeTok + " name=shop-backend write\n" + settleTok + " name=alice read settle\n" + token
}

// Each route needs its scope: a token without it gets 403 saying which
// scope is missing, and nothing changes.
func TestScopes(t *testing.T) {
	h := newHarness(t, withScopedTokens, withMonitoring)
	body := func() *strings.Reader {
		return strings.NewReader(`{"refund_id":"rf_sc","provider":"moyasarpg","order_id":"ord_sc","amount":"5.00","currency":"SAR"}`)
	}
	settle := func() *strings.Reader { return strings.NewReader(`{"state":"failed","note":"provider shows none"}`) }
	for _, c := range []struct {
		name, method, path, tok string
		body                    func() *strings.Reader
		status                  int
		missing                 string
	}{
		{"read cannot enqueue", "POST", "/v1/refunds", readTok, body, 403, "write"},
		{"settle cannot enqueue", "POST", "/v1/refunds", settleTok, body, 403, "write"},
		{"write enqueues", "POST", "/v1/refunds", writeTok, body, 201, ""},
		{"write cannot read", "GET", "/v1/refunds/rf_sc", writeTok, nil, 403, "read"},
		{"read reads", "GET", "/v1/refunds/rf_sc", readTok, nil, 200, ""},
		{"read lists", "GET", "/v1/refunds?state=queued", readTok, nil, 200, ""},
		{"read cannot settle", "POST", "/v1/refunds/rf_sc/settle", readTok, settle, 403, "settle"},
		{"write cannot settle", "POST", "/v1/refunds/rf_sc/settle", writeTok, settle, 403, "settle"},
		{"read cannot upload a bulk file", "POST", "/v1/refunds/bulk", readTok, body, 403, "write"},
		{"read scrapes metrics", "GET", "/metrics", readTok, nil, 200, ""},
		{"write cannot scrape metrics", "GET", "/metrics", writeTok, nil, 403, "read"},
		{"read opens monitoring", "GET", "/monitoring/api/queues", readTok, nil, 200, ""},
		{"write alone cannot open monitoring", "GET", "/monitoring/api/queues", writeTok, nil, 403, "read"},
		{"read cannot act in monitoring", "DELETE", "/monitoring/api/queues/x", readTok, nil, 403, "write"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var rd *strings.Reader
			if c.body != nil {
				rd = c.body()
			}
			var resp *http.Response
			var b []byte
			if rd != nil {
				resp, b = h.call(t, c.method, c.path, c.tok, rd, "Content-Type", "application/json")
			} else {
				resp, b = h.call(t, c.method, c.path, c.tok, nil)
			}
			if c.status != 403 {
				if resp.StatusCode != c.status {
					t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.status, b)
				}
				return
			}
			p := problem(t, resp, b, http.StatusForbidden)
			if !strings.HasSuffix(p.Type, "scope-missing") || !strings.Contains(p.Detail, `the "`+c.missing+`" scope`) {
				t.Fatalf("problem %+v: want scope-missing naming %q", p, c.missing)
			}
		})
	}
	// In needs_review, a token without the scope still cannot settle, and
	// the refund stays there; a token with it settles, and the history
	// names it.
	h.toReview(t, "rf_sc")
	resp, b := h.call(t, "POST", "/v1/refunds/rf_sc/settle", readTok, settle(), "Content-Type", "application/json")
	problem(t, resp, b, http.StatusForbidden)
	if rec, err := h.store.Get(context.Background(), "rf_sc"); err != nil || rec.State != "needs_review" {
		t.Fatalf("after a refused settle: %+v, %v; want needs_review", rec, err)
	}
	resp, b = h.call(t, "POST", "/v1/refunds/rf_sc/settle", settleTok, settle(), "Content-Type", "application/json")
	if got := decode[api.Refund](t, resp, b, http.StatusOK); got.State != "failed" {
		t.Fatalf("settled = %+v", got)
	}
	resp, b = h.call(t, "GET", "/v1/refunds/rf_sc", readTok, nil)
	full := decode[api.Refund](t, resp, b, http.StatusOK)
	last := full.History[len(full.History)-1]
	if last.Event != "settled" || !strings.HasPrefix(last.Actor, "api token alice (") {
		t.Fatalf("last entry %+v: want settled by api token alice", last)
	}
	// A write-only token cannot sign in to the monitoring pages.
	form := url.Values{"token": {writeTok}}
	resp, b = h.call(t, "POST", "/monitoring/login", "", strings.NewReader(form.Encode()), "Content-Type", "application/x-www-form-urlencoded")
	problem(t, resp, b, http.StatusForbidden)
	if len(resp.Cookies()) != 0 {
		t.Fatal("a token without the read scope got a monitoring session")
	}
	if !strings.Contains(h.logs.String(), `"token_name":"grafana"`) {
		t.Fatal("request log lines do not name the token")
	}
}

// The session cookie is always Secure: over plain HTTP on loopback (a TLS
// proxy on the same host looks just so), whatever X-Forwarded-Proto a
// client sends, and over TLS.
func TestSessionCookieSecure(t *testing.T) {
	h := newHarness(t, withMonitoring)
	form := url.Values{"token": {token}}.Encode()
	for _, proto := range []string{"", "http", "https"} {
		resp, _ := h.call(t, "POST", "/monitoring/login", "", strings.NewReader(form),
			"Content-Type", "application/x-www-form-urlencoded", "X-Forwarded-Proto", proto)
		cs := resp.Cookies()
		if len(cs) != 1 || !cs[0].Secure {
			t.Fatalf("X-Forwarded-Proto %q: cookies %v, want one Secure", proto, cs)
		}
	}
	tls := newHarness(t, withMonitoring, func(o *options) { o.tls = true })
	resp, _ := tls.call(t, "POST", "/monitoring/login", "", strings.NewReader(form), "Content-Type", "application/x-www-form-urlencoded")
	cs := resp.Cookies()
	if len(cs) != 1 || !cs[0].Secure {
		t.Fatalf("cookies over TLS = %v, want one Secure", cs)
	}
}

func TestTokensFromText(t *testing.T) {
	for _, tc := range []struct {
		name, text, err string
	}{
		{"two with comments and blanks", "# ops\n" + token + "\n\n  " + strings.Repeat("b", 40) + "  \n", ""},
		{"comma separated", token + "," + strings.Repeat("c", 32), ""},
		{"none", "# nobody\n\n", "no API token"},
		{"short", "short_secret_1", "token 1 is 14 characters"},
		{"bad characters", strings.Repeat("d", 32) + "\n" + strings.Repeat("e", 31) + "!", "token 2 has characters"},
		{"named with scopes", token + " name=grafana read\n" + strings.Repeat("f", 32) + " name=support READ settle", ""},
		{"unknown scope", token + " name=x admin", `"admin" is neither name=NAME nor a scope`},
		{"bad name", token + " name=a/b", `name="a/b"`},
		{"same token twice", token + " read\n" + token + " name=x settle", "tokens 1 and 2 are the same token"},
		{"same name twice", token + " name=ops\n" + strings.Repeat("g", 32) + " name=ops", `tokens 1 and 2 are both named "ops"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := api.ParseTokens(tc.text)
			switch {
			case tc.err == "" && err != nil:
				t.Fatal(err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("err = %v, want %q", err, tc.err)
			case err != nil && (strings.Contains(err.Error(), "short_secret") || strings.Contains(err.Error(), "ddd") || strings.Contains(err.Error(), token)):
				t.Fatalf("the error repeats a token: %v", err)
			}
		})
	}
}
