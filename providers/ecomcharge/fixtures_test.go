package ecomcharge

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/tasks"
)

const (
	fixtureKey    = "0190f6b3-8c1e-7a55-9d1e-3c2b1a0f9e88"
	fixtureShop   = "361"
	fixtureSecret = "b8647b68898b084b-s3cr3t"
)

// answer serves one canned answer to every request, to an adapter
// configured for a test shop (as the documents' examples are).
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
	c, err := New(Config{BaseURL: srv.URL, ShopID: fixtureShop, SecretKey: fixtureSecret, Mode: ModeTest})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func fixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDocumentedAnswersAreClassified(t *testing.T) {
	found := fixture(t, "tracking_found.json")
	success := fixture(t, "refund_successful.json")
	dupFailed := fixture(t, "refund_failed_duplicate_code.json")
	confirmed := providers.Knowledge{GuessTrackingLookup: providers.Confirmed}
	refuted := providers.Knowledge{GuessTrackingLookup: providers.Refuted}
	tests := []struct {
		name           string
		status         int
		body           string
		header         map[string]string
		attempt        int
		known          providers.Knowledge
		refund, lookup providers.Kind
		contain        string // in the reason of an outcome that is neither unknown nor not found
	}{
		{"seed: successful refund", 200, success, nil, 1, nil, providers.Succeeded, providers.Succeeded, ""},
		{"doc: can't be refunded", 422, fixture(t, "error_cant_refund.json"), nil, 1, nil, providers.Rejected, providers.Unknown, "base: transaction can't be refunded"},
		{"duplicate_check refusal, first attempt", 422, fixture(t, "error_duplicate.json"), nil, 1, nil, providers.Transient, providers.Unknown, "duplicate_check"},
		{"duplicate_check refusal, no attempt number", 422, fixture(t, "error_duplicate.json"), nil, 0, nil, providers.Transient, providers.Unknown, "duplicate_check"},
		{"duplicate_check refusal, resend", 422, fixture(t, "error_duplicate.json"), nil, 2, nil, providers.Unknown, providers.Unknown, ""},
		{"duplicate in friendly_message only", 422, `{"message":"Refund refused","friendly_message":"DUPLICATE order."}`, nil, 1, nil, providers.Transient, providers.Unknown, "duplicate_check"},
		{"duplicate by code only", 422, `{"message":"Refused","code":"f.0108"}`, nil, 1, nil, providers.Transient, providers.Unknown, "duplicate_check"},
		{"duplicate by code only, resend", 422, `{"message":"Refused","code":"F.0108"}`, nil, 3, nil, providers.Unknown, providers.Unknown, ""},
		{"guess: error inside response", 422, fixture(t, "error_response_wrapped.json"), nil, 1, nil, providers.Rejected, providers.Unknown, "Reason can't be blank"},
		{"failed refund", 200, fixture(t, "refund_failed.json"), nil, 1, nil, providers.Rejected, providers.Rejected, "Do not honor"},
		// A look-up that shows one failed refund of ours for two attempts
		// sent: the attempt it does not show may still land.
		{"failed refund listed, resend", 200, fixture(t, "refund_failed.json"), nil, 2, confirmed, providers.Rejected, providers.Unknown, ""},
		{"failed as duplicate (F.0108), first attempt", 200, dupFailed, nil, 1, nil, providers.Transient, providers.Unknown, "duplicate_check"},
		{"failed as duplicate (F.0108), resend", 200, dupFailed, nil, 2, nil, providers.Unknown, providers.Unknown, ""},
		{"failed as duplicate (F.0108), first attempt, guess confirmed", 200, dupFailed, nil, 1, confirmed, providers.Transient, providers.NotFound, ""},
		{"failed as duplicate (F.0108), resend, guess confirmed", 200, dupFailed, nil, 2, confirmed, providers.Unknown, providers.Unknown, ""},
		{"tracking list with our refund", 200, found, nil, 1, nil, providers.Unknown, providers.Succeeded, ""},
		{"tracking list empty, guess open", 200, fixture(t, "tracking_empty.json"), nil, 1, nil, providers.Unknown, providers.Unknown, ""},
		{"tracking list empty, guess refuted", 200, fixture(t, "tracking_empty.json"), nil, 1, refuted, providers.Unknown, providers.Unknown, ""},
		{"tracking list empty, guess confirmed", 200, fixture(t, "tracking_empty.json"), nil, 1, confirmed, providers.Unknown, providers.NotFound, ""},
		{"look-up without a list, guess confirmed", 200, `{}`, nil, 1, confirmed, providers.Unknown, providers.Unknown, ""},
		{"look-up with a null list", 200, `{"transactions": null}`, nil, 1, confirmed, providers.Unknown, providers.Unknown, ""},
		{"tracking answer as one transaction", 200, fixture(t, "tracking_single.json"), nil, 1, nil, providers.Pending, providers.Pending, ""},
		{"bad credentials", 401, `{"message":"Unauthorized"}`, nil, 1, nil, providers.Blocked, providers.Blocked, "ECOMCHARGE_SECRET_KEY"},
		{"bad credentials, HTML", 403, `<html>Forbidden</html>`, nil, 1, nil, providers.Blocked, providers.Blocked, "authentication"},
		{"rate limited", 429, `{"message":"Too many requests"}`, map[string]string{"Retry-After": "7"}, 1, nil, providers.Transient, providers.Transient, ""},
		{"gateway HTML", 502, `<html><body>Bad Gateway</body></html>`, nil, 1, confirmed, providers.Unknown, providers.Unknown, ""},
		{"5xx with a success body", 500, success, nil, 1, nil, providers.Unknown, providers.Unknown, ""},
		{"200 HTML", 200, `<html>maintenance</html>`, nil, 1, confirmed, providers.Unknown, providers.Unknown, ""},
		{"200 empty", 200, ``, nil, 1, confirmed, providers.Unknown, providers.Unknown, ""},
		{"404 JSON", 404, `{"message":"Record not found"}`, nil, 1, confirmed, providers.Blocked, providers.Blocked, "ECOMCHARGE_BASE_URL"},
		{"404 HTML", 404, `<html>Not Found</html>`, nil, 1, confirmed, providers.Blocked, providers.Blocked, "ECOMCHARGE_BASE_URL"},
		{"404 documented error shape, not found", 404, `{"message":"Parent transaction not found.","errors":{"parent_uid":["not found"]}}`, nil, 1, confirmed, providers.Rejected, providers.Blocked, "not found"},
		{"404 documented error shape, not found, resend", 404, `{"message":"Parent transaction not found.","errors":{"parent_uid":["not found"]}}`, nil, 2, confirmed, providers.Unknown, providers.Blocked, ""},
		{"404 documented error shape, other words", 404, `{"message":"Gone","errors":{"base":["gone"]}}`, nil, 1, confirmed, providers.Blocked, providers.Blocked, "ECOMCHARGE_BASE_URL"},
		{"409 JSON (undocumented)", 409, `{"message":"Conflict"}`, nil, 1, confirmed, providers.Unknown, providers.Unknown, ""},
		{"422 with a successful transaction", 422, success, nil, 1, nil, providers.Unknown, providers.Unknown, ""},
		{"someone else's tracking id", 200, strings.ReplaceAll(found, fixtureKey, "other"), nil, 1, confirmed, providers.Unknown, providers.Unknown, ""},
		{"another parent payment", 200, strings.ReplaceAll(success, "4107-310b0da80b", "4107-ffffffffff"), nil, 1, confirmed, providers.Unknown, providers.Unknown, ""},
		{"not a refund", 200, strings.Replace(found, `"type": "refund"`, `"type": "payment"`, 1), nil, 1, confirmed, providers.Unknown, providers.Unknown, ""},
		{"guess: expired", 200, strings.Replace(found, `"status": "successful"`, `"status": "expired"`, 1), nil, 1, confirmed, providers.Unknown, providers.Unknown, ""},
		{"guess: error", 200, strings.Replace(success, `"status": "successful"`, `"status": "error"`, 1), nil, 1, confirmed, providers.Unknown, providers.Unknown, ""},
		{"incomplete", 200, strings.Replace(found, `"status": "successful"`, `"status": "incomplete"`, 1), nil, 1, nil, providers.Unknown, providers.Pending, ""},
		{"transaction without status", 200, strings.Replace(success, `"status": "successful", `, ``, 1), nil, 1, confirmed, providers.Unknown, providers.Unknown, ""},
		{"success for another amount", 200, strings.Replace(success, `"amount": 492`, `"amount": 491`, 1), nil, 1, nil, providers.Review, providers.Review, "4.91 EUR while 4.92 EUR was asked"},
		{"success in another currency", 200, strings.Replace(success, `"currency": "EUR"`, `"currency": "USD"`, 1), nil, 1, nil, providers.Review, providers.Review, "USD"},
		{"success without an amount", 200, strings.Replace(success, `"amount": 492, `, ``, 1), nil, 1, nil, providers.Review, providers.Review, "without an amount"},
		{"success with a decimal amount", 200, strings.Replace(success, `"amount": 492`, `"amount": 4.92`, 1), nil, 1, nil, providers.Review, providers.Review, "4.92"},
		{"listed success for another amount", 200, strings.Replace(found, `"amount": 492`, `"amount": 491`, 1), nil, 1, nil, providers.Unknown, providers.Review, "4.91 EUR while 4.92 EUR was asked"},
		{"duplicate refusal next to our success", 200,
			`{"transactions": [` + strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(dupFailed), `{"transaction": `), `}`) + `,` +
				strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(found), `{"transactions": [`), `]}`) + `]}`,
			nil, 1, nil, providers.Unknown, providers.Succeeded, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := providers.Refund{OrderID: "4107-310b0da80b", TransactionID: "4107-310b0da80b",
				Amount: tasks.Money{Minor: 492, Currency: "EUR"}, Reason: "requested", Key: fixtureKey,
				Attempt: tt.attempt, Known: tt.known}
			c := answer(t, tt.status, tt.body, tt.header)
			for _, op := range []string{"refund", "lookup"} {
				want, out := tt.refund, c.Refund(context.Background(), r)
				if op == "lookup" {
					want, out = tt.lookup, c.Lookup(context.Background(), r)
				}
				if out.Kind != want {
					t.Errorf("%s: %v, want %s", op, out, want)
				}
				if tt.contain != "" && out.Kind == want && want != providers.Unknown && want != providers.NotFound && !strings.Contains(out.Reason, tt.contain) {
					t.Errorf("%s: reason %q lacks %q", op, out.Reason, tt.contain)
				}
				if out.Kind == providers.Succeeded && out.Reference != "4107-c2d6b7c2b4" {
					t.Errorf("%s: reference %q", op, out.Reference)
				}
				if out.Kind == providers.Transient && out.Status == "duplicate_check" && out.RetryAfter != DuplicateRetry {
					t.Errorf("%s: duplicate_check retry after %s, want %s", op, out.RetryAfter, DuplicateRetry)
				}
				if strings.Contains(out.Reason, fixtureSecret) {
					t.Errorf("%s: reason leaks the secret: %q", op, out.Reason)
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

// TestDocumentExample feeds the refund page's example answer, verbatim, to
// the adapter: a success for 492 EUR that does not echo our tracking_id
// (refuting GuessTrackingEcho), so while GuessTrackingLookup is open the
// adapter looks the refund up by tracking_id once, and learns from the list:
// only our refund listed as a successful refund of ours, with our
// tracking_id and amount, confirms it; a list without our refund refutes it.
func TestDocumentExample(t *testing.T) {
	doc := fixture(t, "refund_documented.json")
	const uid = "1cbf77cb-ed58-40f2-8bb4-0be10f12fda8"
	var env map[string]json.RawMessage
	if err := json.Unmarshal([]byte(doc), &env); err != nil {
		t.Fatal(err)
	}
	row := strings.Replace(string(env["transaction"]), `"uid":`, `"tracking_id": "`+fixtureKey+`", "uid":`, 1)
	listed := `{"transactions": [` + row + `]}`
	for _, tt := range []struct {
		name   string
		known  providers.Verdict
		lookup string // answer to the look-up; "" fails the test if asked
		want   []bool // what the look-up showed of GuessTrackingLookup
	}{
		{"guess open, empty list refutes", providers.Unconfirmed, `{"transactions": []}`, []bool{false}},
		{"guess open, only a payment listed refutes", providers.Unconfirmed,
			`{"transactions": [{"uid": "p-1", "status": "successful", "type": "payment", "amount": 492, "currency": "EUR", "tracking_id": "` + fixtureKey + `", "test": true}]}`, []bool{false}},
		{"guess open, our refund listed confirms", providers.Unconfirmed, listed, []bool{true}},
		{"guess open, our uid listed without our tracking_id", providers.Unconfirmed, `{"transactions": [` + string(env["transaction"]) + `]}`, nil},
		{"guess open, our uid listed as failed", providers.Unconfirmed, strings.Replace(listed, `"status": "successful"`, `"status": "failed"`, 1), nil},
		{"guess open, our uid listed for another amount", providers.Unconfirmed, strings.Replace(listed, `"amount": 492`, `"amount": 491`, 1), nil},
		{"guess open, look-up fails", providers.Unconfirmed, `<html>503</html>`, nil},
		{"guess open, no list", providers.Unconfirmed, `{}`, nil},
		{"guess confirmed: no look-up", providers.Confirmed, "", nil},
		{"guess refuted: no look-up", providers.Refuted, "", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var gets int
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodPost {
					w.Write([]byte(doc))
					return
				}
				gets++
				if tt.lookup == "" || r.URL.Path != "/v2/transactions/tracking_id/"+fixtureKey {
					t.Errorf("unexpected %s %s", r.Method, r.URL.Path)
				}
				w.Write([]byte(tt.lookup))
			}))
			defer srv.Close()
			c, _ := New(Config{BaseURL: srv.URL, ShopID: fixtureShop, SecretKey: fixtureSecret, Mode: ModeTest})
			r := providers.Refund{TransactionID: "5e14b86f-1bb9-40ad-b42a-b925176aec63", Amount: tasks.Money{Minor: 492, Currency: "EUR"},
				Key: fixtureKey, Attempt: 1, Known: providers.Knowledge{GuessTrackingLookup: tt.known}}
			out := c.Refund(context.Background(), r)
			if out.Kind != providers.Succeeded || out.Reference != uid || out.Status != "successful" {
				t.Fatalf("document example = %v", out)
			}
			var got []bool
			for _, o := range out.Observed {
				switch o.Guess {
				case GuessTrackingEcho:
					if o.Holds {
						t.Errorf("the document's example, without tracking_id, confirms %s", o.Guess)
					}
				case GuessTrackingLookup:
					got = append(got, o.Holds)
				default:
					t.Errorf("observation of %s", o.Guess)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("observed %s %v, want %v", GuessTrackingLookup, got, tt.want)
			}
			if tt.lookup != "" && gets != 1 {
				t.Errorf("%d look-ups, want 1", gets)
			}
			r.Amount.Minor = 50 // the page's request example asks 50; its answer says 492
			if out := c.Refund(context.Background(), r); out.Kind != providers.Review || !strings.Contains(out.Reason, "refunded 4.92 EUR while 0.50 EUR was asked") {
				t.Errorf("document example for a request of 50 = %v, want review", out)
			}
			live, _ := New(Config{BaseURL: srv.URL, ShopID: fixtureShop, SecretKey: fixtureSecret})
			if out := live.Refund(context.Background(), r); out.Kind != providers.Blocked || !strings.Contains(out.Reason, EnvMode) {
				t.Errorf("document example (a test shop) to a live configuration = %v, want blocked naming %s", out, EnvMode)
			}
		})
	}
}

// TestRequestShape checks what goes on the wire: Basic auth, API version,
// the request envelope, an integer amount and a reason even when none given.
func TestRequestShape(t *testing.T) {
	var mu sync.Mutex
	var got []*http.Request
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got, bodies = append(got, r), append(bodies, string(b))
		mu.Unlock()
		w.Write([]byte(`{"transactions": []}`))
	}))
	defer srv.Close()
	c, err := New(Config{BaseURL: srv.URL + "/", ShopID: " 361 ", SecretKey: fixtureSecret})
	if err != nil {
		t.Fatal(err)
	}
	r := providers.Refund{TransactionID: "4107-310b0da80b", Amount: tasks.Money{Minor: 492, Currency: "EUR"}, Key: "k/1"}
	c.Refund(context.Background(), r)
	c.Lookup(context.Background(), r)
	if len(got) != 2 {
		t.Fatalf("%d requests", len(got))
	}
	for _, req := range got {
		if u, p, ok := req.BasicAuth(); !ok || u != "361" || p != fixtureSecret {
			t.Errorf("%s %s: basic auth %q", req.Method, req.URL.Path, u)
		}
		if req.Header.Get("X-API-Version") != "3" {
			t.Errorf("%s: X-API-Version %q", req.Method, req.Header.Get("X-API-Version"))
		}
	}
	if got[0].Method != http.MethodPost || got[0].URL.Path != "/transactions/refunds" || got[0].Header.Get("Content-Type") != "application/json" {
		t.Errorf("refund sent as %s %s %q", got[0].Method, got[0].URL.Path, got[0].Header.Get("Content-Type"))
	}
	var body map[string]map[string]any
	if err := json.Unmarshal([]byte(bodies[0]), &body); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"parent_uid": "4107-310b0da80b", "amount": 492.0, "reason": defaultReason, "duplicate_check": true, "tracking_id": "k/1"}
	for k, v := range want {
		if body["request"][k] != v {
			t.Errorf("request.%s = %#v, want %#v (body %s)", k, body["request"][k], v, bodies[0])
		}
	}
	if !strings.Contains(bodies[0], `"amount":492,`) {
		t.Errorf("amount not an integer: %s", bodies[0])
	}
	if got[1].Method != http.MethodGet || got[1].URL.EscapedPath() != "/v2/transactions/tracking_id/k%2F1" {
		t.Errorf("look-up sent as %s %s", got[1].Method, got[1].URL.EscapedPath())
	}
}

func TestCheck(t *testing.T) {
	ok := tasks.Refund{TransactionID: "4107-310b0da80b", Reason: strings.Repeat("é", 255)}
	if err := Check(ok); err != nil {
		t.Fatalf("Check(255-character reason) = %v", err)
	}
	if err := Check(tasks.Refund{TransactionID: " "}); err == nil || err.Error() != "ecomcharge needs transaction_id: the parent payment uid" {
		t.Fatalf("Check(no transaction id) = %v", err)
	}
	long := ok
	long.Reason += "x"
	if err := Check(long); err == nil || !strings.Contains(err.Error(), "255") {
		t.Fatalf("Check(256-character reason) = %v", err)
	}
	c := answer(t, 200, `{}`, nil)
	if out := c.Refund(context.Background(), providers.Refund{Key: "k"}); out.Kind != providers.Rejected {
		t.Fatalf("refund without parent uid = %v", out)
	}
}

func TestEntry(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	e := Entry(env(map[string]string{"ECOMCHARGE_SHOP_ID": "361"}))
	if e.Enabled() || len(e.Missing) != 1 || e.Missing[0] != "ECOMCHARGE_SECRET_KEY" || e.Check == nil || e.Name != providers.EcomCharge {
		t.Fatalf("entry = %+v", e)
	}
	e = Entry(env(map[string]string{}))
	if e.Enabled() || strings.Join(e.Missing, ",") != "ECOMCHARGE_SHOP_ID,ECOMCHARGE_SECRET_KEY" {
		t.Fatalf("entry = %+v", e)
	}
	e = Entry(env(map[string]string{"ECOMCHARGE_SHOP_ID": "361", "ECOMCHARGE_SECRET_KEY": fixtureSecret, "ECOMCHARGE_BASE_URL": "processing.ecomcharge.com"}))
	if e.Enabled() || e.Err == nil || strings.Contains(e.Err.Error(), fixtureSecret) {
		t.Fatalf("entry with a bad URL = %+v", e)
	}
	e = Entry(env(map[string]string{"ECOMCHARGE_SHOP_ID": "361", "ECOMCHARGE_SECRET_KEY": fixtureSecret}))
	if !e.Enabled() || e.Provider.(*Client).base != DefaultURL {
		t.Fatalf("entry = %+v", e)
	}
	if e.Keyless || e.Settle() != 35*time.Second || len(e.Guesses) != 2 ||
		e.Guesses[0].Guess != "ecomcharge.tracking_id" || e.Guesses[1].Guess != "ecomcharge.tracking_lookup" ||
		e.Guesses[0].Means == "" || e.Guesses[1].Means == "" {
		t.Fatalf("entry = %+v: want a keyed provider settling after 35 s with the tracking_id guesses", e)
	}
	if e.Provider.(*Client).test {
		t.Fatal("an unset ECOMCHARGE_MODE is not live")
	}
	for mode, test := range map[string]bool{"live": false, "test": true, " TEST ": true} {
		e = Entry(env(map[string]string{"ECOMCHARGE_SHOP_ID": "361", "ECOMCHARGE_SECRET_KEY": fixtureSecret, "ECOMCHARGE_MODE": mode}))
		if !e.Enabled() || e.Err != nil || e.Provider.(*Client).test != test {
			t.Fatalf("ECOMCHARGE_MODE=%q: entry = %+v", mode, e)
		}
	}
	for _, vars := range []map[string]string{
		{"ECOMCHARGE_SHOP_ID": "361", "ECOMCHARGE_SECRET_KEY": fixtureSecret, "ECOMCHARGE_MODE": "sandbox"},
		{"ECOMCHARGE_MODE": "production"}, // a mode set wrong is an error even before the credentials are
	} {
		e = Entry(env(vars))
		if e.Enabled() || e.Err == nil || !strings.Contains(e.Err.Error(), "ECOMCHARGE_MODE") || strings.Join(e.Missing, ",") != "ECOMCHARGE_MODE to live or test" {
			t.Fatalf("%v: entry = %+v, want an error naming ECOMCHARGE_MODE", vars, e)
		}
	}
}

// Item 6: the settle delay rests on duplicate_check's window and on the
// operation timeout (see SettleDelay): a resend a settle delay after the
// send comes after both.
func TestSettleDelayOutlastsWhatItRestsOn(t *testing.T) {
	if SettleDelay <= DuplicateWindow || SettleDelay <= providers.OperationTimeout {
		t.Fatalf("SettleDelay %s is not longer than duplicate_check's window %s and the operation timeout %s",
			SettleDelay, DuplicateWindow, providers.OperationTimeout)
	}
	if DuplicateRetry <= DuplicateWindow {
		t.Fatalf("DuplicateRetry %s is inside the window %s", DuplicateRetry, DuplicateWindow)
	}
}
