package moyasarpg

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/tasks"
)

// The document's example order, and its refund transaction's id, taken here
// as the transaction_id we sent.
const (
	docOrder  = "0191f5a7-44a9-76c2-9fec-39709fdbf723"
	docRefund = "f351a2a3-97c4-4f12-add3-80c1044091f5"
	docSecret = "sk_test_fixture_SECRET"
)

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
	c, err := New(Config{BaseURL: srv.URL, APIKey: docSecret})
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

// observed renders what an outcome observed of GuessRefundID: "", "true" or
// "false".
func observed(t *testing.T, out providers.Outcome) string {
	t.Helper()
	var s []string
	for _, o := range out.Observed {
		if o.Guess != GuessRefundID || o.Detail == "" {
			t.Errorf("observation %+v", o)
		}
		s = append(s, fmt.Sprint(o.Holds))
	}
	return strings.Join(s, ",")
}

func TestDocumentedAnswersAreClassified(t *testing.T) {
	doc := fixture(t, "order_documented.json")
	refundTxn := `"id": "` + docRefund + `"`
	withRefund := func(old, new string) string {
		i := strings.Index(doc, refundTxn)
		j := i + strings.Index(doc[i:], old)
		return doc[:j] + new + doc[j+len(old):]
	}
	// A transaction_id the document's order does not list, and Prepare's
	// snapshots for it: the order before our send without refunds, with the
	// document's refund already on it, with a refund "x-1" on it.
	const ourKey = "0191f5a8-0000-7000-8000-000000000001"
	before := func(refunds ...string) string {
		b, _ := json.Marshal(snapshot{Key: ourKey, Currency: "SAR", Listed: true, Refunds: refunds})
		return string(b)
	}
	clean, old := before(), before(docRefund)
	twoRefunds := strings.Replace(doc, `"transactions": [`, `"transactions": [{"id": "x-1", "status": "approved", "type": "refund", "amount": 262346},`, 1)
	tests := []struct {
		name              string
		status            int
		body              string
		header            map[string]string
		key               string   // default docRefund
		others            []string // OtherRefs
		refund, lookup    providers.Kind
		contain           string // in the reason of an outcome that is neither unknown nor not found
		observe, observeL string // what the refund (lookup) answer showed of the guess
		before            string // r.Before (Prepare's snapshot)
	}{
		{"doc: the order, our refund approved", 200, doc, nil, "", nil, providers.Succeeded, providers.Succeeded, "", "true", "true", ""},
		{"doc: the order, our id not there, one new refund of our amount", 200, doc, nil, ourKey, nil, providers.Succeeded, providers.Succeeded, "matched by amount", "false", "", clean},
		{"doc: the order, our id not there, its refund there before our send", 200, doc, nil, ourKey, nil, providers.Unknown, providers.Unknown, "", "", "", old},
		{"doc: the order, our id not there, no snapshot of the order before the send", 200, doc, nil, ourKey, nil, providers.Review, providers.Unknown, "before our send", "", "", ""},
		{"doc: the order, our id not there, its refund known to refundq", 200, doc, nil, ourKey, []string{docRefund}, providers.Unknown, providers.Unknown, "", "", "", ""},
		{"doc: the order, our id not there, two new refunds of our amount", 200, twoRefunds, nil, ourKey, nil, providers.Review, providers.Unknown, "cannot be told", "false", "", clean},
		{"doc: the order, our id not there, two refunds of our amount, one there before our send", 200, twoRefunds, nil, ourKey, nil, providers.Succeeded, providers.Succeeded, "matched by amount", "false", "", before("x-1")},
		{"doc: the order, our id not there, a new refund of another amount", 200, withRefund(`"amount": 262346`, `"amount": 262345`), nil, ourKey, nil, providers.Review, providers.Unknown, "other amounts", "", "", clean},
		{"doc: the order, our id not there, a new failed refund of our amount", 200, withRefund(`"status": "approved"`, `"status": "failed"`), nil, ourKey, nil, providers.Rejected, providers.Unknown, "failed", "false", "", clean},
		{"doc: the order, our id not there, a new refund of our amount in timeout", 200, withRefund(`"status": "approved"`, `"status": "timeout"`), nil, ourKey, nil, providers.Uncertain, providers.Uncertain, "reverse", "false", "", clean},
		{"doc: still processing", 400, fixture(t, "still_processing.json"), nil, "", nil, providers.Pending, providers.Unknown, "still processing", "", "", ""},
		{"400, another message (retries exhausted)", 400, `{"message": "Upstream retries exhausted"}`, nil, "", nil, providers.Unknown, providers.Unknown, "", "", "", ""},
		{"400, a business rule", 400, `{"message": "Refund is not allowed for this order"}`, nil, "", nil, providers.Unknown, providers.Unknown, "", "", "", ""},
		{"400, still processing in other words", 400, `{"message": "initial request is still processing"}`, nil, "", nil, providers.Unknown, providers.Unknown, "", "", "", ""},
		{"400 HTML", 400, `<html>Bad Request</html>`, nil, "", nil, providers.Unknown, providers.Unknown, "", "", "", ""},
		{"doc: 401", 401, fixture(t, "unauthorized.json"), nil, "", nil, providers.Blocked, providers.Blocked, "MOYASAR_PG_API_KEY", "", "", ""},
		{"doc: 403", 403, fixture(t, "forbidden.json"), nil, "", nil, providers.Blocked, providers.Blocked, "auth", "", "", ""},
		{"doc: 422", 422, fixture(t, "validation_failed.json"), nil, "", nil, providers.Rejected, providers.Unknown, "amount: The value must be greater than or equal to 1.", "", "", ""},
		{"404 (undocumented)", 404, `{"message":"Object not found"}`, nil, "", nil, providers.Unknown, providers.Unknown, "", "", "", ""},
		{"409 (undocumented)", 409, `{"message":"Conflict"}`, nil, "", nil, providers.Unknown, providers.Unknown, "", "", "", ""},
		{"rate limited", 429, `{"message":"Too many requests"}`, map[string]string{"Retry-After": "7"}, "", nil, providers.Transient, providers.Transient, "", "", "", ""},
		{"gateway HTML", 502, `<html><body>Bad Gateway</body></html>`, nil, "", nil, providers.Unknown, providers.Unknown, "", "", "", ""},
		{"5xx with the order", 500, doc, nil, "", nil, providers.Unknown, providers.Unknown, "", "", "", ""},
		{"200 HTML", 200, `<html>maintenance</html>`, nil, "", nil, providers.Unknown, providers.Unknown, "", "", "", ""},
		{"200 empty", 200, ``, nil, "", nil, providers.Unknown, providers.Unknown, "", "", "", ""},
		{"200 array", 200, "[" + doc + "]", nil, "", nil, providers.Unknown, providers.Unknown, "", "", "", ""},
		{"order without transactions", 200, `{"id": "` + docOrder + `", "currency": "SAR", "amount": 262346, "refunded_amount": 262346}`, nil, "", nil, providers.Unknown, providers.Unknown, "", "", "", ""},
		{"order with null transactions", 200, `{"id": "` + docOrder + `", "transactions": null}`, nil, "", nil, providers.Unknown, providers.Unknown, "", "", "", ""},
		{"order with no transactions", 200, `{"id": "` + docOrder + `", "transactions": []}`, nil, "", nil, providers.Unknown, providers.Unknown, "", "", "", ""},
		{"another order", 200, strings.Replace(doc, docOrder, "0191f5a7-0000-7000-8000-000000000000", 1), nil, "", nil, providers.Unknown, providers.Unknown, "", "", "", ""},
		{"a transaction without status", 200, withRefund(`"status": "approved",`, ``), nil, "", nil, providers.Unknown, providers.Unknown, "", "", "", ""},
		{"our id on a capture", 200, strings.Replace(doc, "0191f5a7-44ab-7fbb-ab3c-1e1a98a5166e", docRefund, 1), nil, "", nil, providers.Unknown, providers.Unknown, "", "", "", ""},
		{"refund initiated", 200, withRefund(`"status": "approved"`, `"status": "initiated"`), nil, "", nil, providers.Pending, providers.Pending, "", "true", "true", ""},
		{"refund failed", 200, withRefund(`"status": "approved"`, `"status": "failed"`), nil, "", nil, providers.Rejected, providers.Rejected, "APPROVED", "true", "true", ""},
		{"refund timeout", 200, withRefund(`"status": "approved"`, `"status": "timeout"`), nil, "", nil, providers.Uncertain, providers.Uncertain, "/v1/transactions/" + docRefund + "/reverse", "true", "true", ""},
		{"refund system_error", 200, withRefund(`"status": "approved"`, `"status": "system_error"`), nil, "", nil, providers.Uncertain, providers.Uncertain, "outcome uncertain", "true", "true", ""},
		{"refund in a status MPG does not document", 200, withRefund(`"status": "approved"`, `"status": "reversed"`), nil, "", nil, providers.Unknown, providers.Unknown, "", "true", "true", ""},
		{"approved for another amount", 200, withRefund(`"amount": 262346`, `"amount": 262345`), nil, "", nil, providers.Review, providers.Review, "MPG refunded 2623.45 SAR while 2623.46 SAR was asked", "true", "true", ""},
		{"approved without an amount", 200, withRefund(`"amount": 262346,`, ``), nil, "", nil, providers.Review, providers.Review, "no amount", "true", "true", ""},
		{"approved with a decimal amount", 200, withRefund(`"amount": 262346`, `"amount": 2623.46`), nil, "", nil, providers.Review, providers.Review, "2623.46", "true", "true", ""},
		{"approved on an order in another currency", 200, strings.Replace(doc, `"currency": "SAR"`, `"currency": "USD"`, 1), nil, "", nil, providers.Review, providers.Review, "USD", "true", "true", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := providers.Refund{OrderID: docOrder, Amount: tasks.Money{Minor: 262346, Currency: "SAR"}, Key: docRefund, OtherRefs: tt.others, Attempt: 1, Before: []byte(tt.before)}
			if tt.key != "" {
				r.Key = tt.key
			}
			c := answer(t, tt.status, tt.body, tt.header)
			for _, op := range []string{"refund", "lookup"} {
				want, wantObs, out := tt.refund, tt.observe, c.Refund(context.Background(), r)
				if op == "lookup" {
					want, wantObs, out = tt.lookup, tt.observeL, c.Lookup(context.Background(), r)
				}
				if out.Kind != want {
					t.Errorf("%s: %v, want %s", op, out, want)
				}
				if tt.contain != "" && out.Kind == want && want != providers.Unknown && want != providers.NotFound && !strings.Contains(out.Reason, tt.contain) {
					t.Errorf("%s: reason %q lacks %q", op, out.Reason, tt.contain)
				}
				if got := observed(t, out); got != wantObs {
					t.Errorf("%s: observed %q, want %q", op, got, wantObs)
				}
				if (out.Kind == providers.Succeeded || out.Kind == providers.Uncertain) && out.Reference != docRefund {
					t.Errorf("%s: reference %q", op, out.Reference)
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

// TestRequestShape checks what goes on the wire: the Bearer key, the path,
// an integer amount and our key as transaction_id.
func TestRequestShape(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = append(got, fmt.Sprintf("%s %s %s %s %s", r.Method, r.URL.EscapedPath(), r.Header.Get("Authorization"), r.Header.Get("Content-Type"), b))
		w.WriteHeader(500)
	}))
	defer srv.Close()
	c, err := New(Config{BaseURL: srv.URL + "/", APIKey: " " + docSecret + " "})
	if err != nil {
		t.Fatal(err)
	}
	r := providers.Refund{OrderID: "ord/1", Amount: tasks.Money{Minor: 262346, Currency: "SAR"}, Key: docRefund}
	c.Refund(context.Background(), r)
	c.Lookup(context.Background(), r)
	want := []string{
		`POST /v1/orders/ord%2F1/refund Bearer ` + docSecret + ` application/json {"amount":262346,"transaction_id":"` + docRefund + `"}`,
		`GET /v1/orders/ord%2F1 Bearer ` + docSecret + `  `,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("requests\n%q\nwant\n%q", got, want)
	}
	if out := c.Refund(context.Background(), providers.Refund{OrderID: "o", Amount: r.Amount}); out.Kind != providers.Rejected || len(got) != 2 {
		t.Fatalf("refund without a transaction_id = %v (%d requests), want rejected, nothing sent", out, len(got))
	}
}

func TestEntry(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	e := Entry(env(map[string]string{}))
	if e.Enabled() || len(e.Missing) != 1 || e.Missing[0] != EnvAPIKey || e.Name != providers.MoyasarPG {
		t.Fatalf("entry = %+v", e)
	}
	e = Entry(env(map[string]string{EnvAPIKey: docSecret, EnvBaseURL: "pg.moyasar.com"}))
	if e.Enabled() || e.Err == nil || strings.Contains(e.Err.Error(), docSecret) {
		t.Fatalf("entry with a bad URL = %+v", e)
	}
	e = Entry(env(map[string]string{EnvAPIKey: docSecret}))
	if !e.Enabled() || e.Provider.(*Client).base != SandboxURL || e.Keyless || e.SettleDelay != 0 {
		t.Fatalf("entry = %+v", e)
	}
	if len(e.Guesses) != 1 || e.Guesses[0].Guess != "moyasarpg.refund_id" || e.Guesses[0].Means == "" {
		t.Fatalf("guesses = %+v", e.Guesses)
	}
}

// A look-up never proves our refund absent: MPG does not promise that an
// applied refund shows in the order at once, so an order without it is
// Unknown whatever refundq knows of the guess (before, a confirmed guess made
// it NotFound).
func TestLookupNeverNotFound(t *testing.T) {
	body := `{"id": "` + docOrder + `", "currency": "SAR", "transactions": []}`
	before, _ := json.Marshal(snapshot{Key: docRefund, Currency: "SAR", Listed: true})
	r := providers.Refund{OrderID: docOrder, Amount: tasks.Money{Minor: 262346, Currency: "SAR"}, Key: docRefund, Attempt: 1, Before: before}
	for _, v := range []providers.Verdict{providers.Unconfirmed, providers.Refuted, providers.Confirmed} {
		r.Known = providers.Knowledge{GuessRefundID: v}
		if out := answer(t, 200, body, nil).Lookup(context.Background(), r); out.Kind != providers.Unknown {
			t.Errorf("guess %s: look-up %v, want unknown", v, out)
		}
	}
}

// On a resend, only MPG's exact "still processing" 400 is Pending; any other
// 400 is Unknown (never Rejected); a 422 refuses that resend only, and says
// that it proves nothing about the earlier attempt.
func TestResendRefusals(t *testing.T) {
	r := providers.Refund{OrderID: docOrder, Amount: tasks.Money{Minor: 262346, Currency: "SAR"}, Key: docRefund, Attempt: 2}
	for _, tc := range []struct {
		status  int
		body    string
		want    providers.Kind
		contain string
	}{
		{400, fixture(t, "still_processing.json"), providers.Pending, "still processing"},
		{400, `{"message": "Refund amount exceeds the refundable amount"}`, providers.Unknown, "does not say whether anything was applied"},
		{400, `{"message": "Initial request is still processing"}`, providers.Unknown, "does not say"},
		{422, `{"message": "Data validation failed", "errors": {"amount": ["The value must be less than or equal to 0."]}}`, providers.Rejected, "proves nothing about that attempt"},
	} {
		out := answer(t, tc.status, tc.body, nil).Refund(context.Background(), r)
		if out.Kind != tc.want || !strings.Contains(out.Reason, tc.contain) {
			t.Errorf("resend answered %d %s = %v, want %s (%q)", tc.status, tc.body, out, tc.want, tc.contain)
		}
	}
}

// MPG's refusal of an amount quotes its limit in minor units; the reason
// keeps MPG's words and says how much money that is, on a first attempt as
// on a resend.
func TestAmountRefusalReadInMajorUnits(t *testing.T) {
	body := `{"message": "Data validation failed", "errors": {"amount": ["The value must be less than or equal to 12000."]}}`
	for _, attempt := range []int{1, 2} {
		r := providers.Refund{OrderID: docOrder, Amount: tasks.Money{Minor: 12001, Currency: "SAR"}, Key: docRefund, Attempt: attempt}
		out := answer(t, 422, body, nil).Refund(context.Background(), r)
		for _, want := range []string{"The value must be less than or equal to 12000.", "MPG counts in minor units: 12000 is 120.00 SAR"} {
			if out.Kind != providers.Rejected || !strings.Contains(out.Reason, want) {
				t.Errorf("attempt %d: 422 = %v, want Rejected saying %q", attempt, out, want)
			}
		}
	}
}

// Prepare keeps, across the attempts of one refund, the refunds the order had
// before its first send: a refund that appeared after it may be that
// attempt's, ours. A snapshot of another refund's key is not carried.
func TestPrepareCarriesTheFirstSnapshot(t *testing.T) {
	body := strings.Replace(fixture(t, "order_documented.json"), `"transactions": [`, `"transactions": [{"id": "x-1", "status": "approved", "type": "refund", "amount": 1},`, 1)
	c := answer(t, 200, body, nil)
	r := providers.Refund{OrderID: docOrder, Amount: tasks.Money{Minor: 262346, Currency: "SAR"}, Key: "k-1"}
	read := func(r providers.Refund) snapshot {
		t.Helper()
		b, out, ok := c.Prepare(context.Background(), r)
		var s snapshot
		if !ok || json.Unmarshal(b, &s) != nil {
			t.Fatalf("prepare = %v %s", out, b)
		}
		return s
	}
	if s := read(r); !s.Listed || s.Key != "" || s.Currency != "SAR" || strings.Join(s.Refunds, ",") != "x-1,"+docRefund {
		t.Fatalf("first snapshot %+v", s)
	}
	r.Before, _ = json.Marshal(snapshot{Key: "k-1", Currency: "SAR", Listed: true, Refunds: []string{"x-1"}})
	if s := read(r); strings.Join(s.Refunds, ",") != "x-1" {
		t.Fatalf("resend's snapshot %+v, want the first send's refunds (x-1)", s)
	}
	r.Key = "k-2"
	if s := read(r); s.Key != "" || strings.Join(s.Refunds, ",") != "x-1,"+docRefund {
		t.Fatalf("another refund's snapshot %+v", s)
	}
	r.Before, _ = json.Marshal(snapshot{Key: "k-2", Currency: "SAR", Listed: false})
	if s := read(r); strings.Join(s.Refunds, ",") != "x-1,"+docRefund {
		t.Fatalf("snapshot after one without a list %+v, want the order's refunds now", s)
	}
}

// With a reference (MPG's id of our refund, from an earlier answer or a
// person), the look-up reads the transaction with exactly that id: the
// document's refund transaction, under a transaction_id that is not its id
// and with no snapshot to match by amount, is found by it; each row is the
// document's order changed in one place.
func TestLookupByReference(t *testing.T) {
	doc := fixture(t, "order_documented.json")
	refundTxn := `"id": "` + docRefund + `"`
	in := func(body, old, new string) string {
		i := strings.Index(body, refundTxn)
		j := i + strings.Index(body[i:], old)
		return body[:j] + new + body[j+len(old):]
	}
	withRefund := func(old, new string) string { return in(doc, old, new) }
	const ourKey = "0191f5a8-0000-7000-8000-000000000002"
	keyed := strings.Replace(doc, `"transactions": [`, `"transactions": [{"id": "`+ourKey+`", "status": "approved", "type": "refund", "amount": 262346},`, 1)
	twice := strings.Replace(doc, `"transactions": [`, `"transactions": [{"id": "`+docRefund+`", "status": "approved", "type": "refund", "amount": 262346},`, 1)
	tests := []struct {
		name, body, ref string
		want            providers.Kind
		contain         string
	}{
		{"approved", doc, docRefund, providers.Succeeded, "found by MPG's id"},
		{"initiated", withRefund(`"status": "approved"`, `"status": "initiated"`), docRefund, providers.Pending, ""},
		{"failed", withRefund(`"status": "approved"`, `"status": "failed"`), docRefund, providers.Rejected, "failed"},
		{"timeout", withRefund(`"status": "approved"`, `"status": "timeout"`), docRefund, providers.Uncertain, "reverse"},
		{"system_error", withRefund(`"status": "approved"`, `"status": "system_error"`), docRefund, providers.Uncertain, "outcome uncertain"},
		{"a status MPG does not document", withRefund(`"status": "approved"`, `"status": "reversed"`), docRefund, providers.Unknown, "reversed"},
		{"failed, of another amount", in(withRefund(`"status": "approved"`, `"status": "failed"`), `"amount": 262346`, `"amount": 100`), docRefund, providers.Review, "is of 1.00 SAR; the refund is of 2623.46 SAR"},
		{"another amount", withRefund(`"amount": 262346`, `"amount": 262345`), docRefund, providers.Review, "is of 2623.45 SAR"},
		{"no amount", withRefund(`"amount": 262346,`, ``), docRefund, providers.Review, "no amount"},
		{"another currency", strings.Replace(doc, `"currency": "SAR"`, `"currency": "USD"`, 1), docRefund, providers.Review, "USD"},
		{"no currency", strings.Replace(doc, `"currency": "SAR",`, ``, 1), docRefund, providers.Unknown, "no currency"},
		{"the capture", doc, "0191f5a7-44ab-7fbb-ab3c-1e1a98a5166e", providers.Review, `"capture"`},
		{"not listed", doc, "0191f5a8-ffff-7000-8000-000000000000", providers.Unknown, "proves nothing"},
		{"listed twice", twice, docRefund, providers.Unknown, "more than once"},
		{"another refund carries our key", keyed, docRefund, providers.Review, "two transactions"},
		{"our key is the reference", keyed, ourKey, providers.Succeeded, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(tt.body, tt.ref) && tt.want != providers.Unknown {
				t.Fatalf("fixture does not hold %s", tt.ref)
			}
			r := providers.Refund{OrderID: docOrder, Amount: tasks.Money{Minor: 262346, Currency: "SAR"}, Key: ourKey, Reference: tt.ref, Attempt: 1,
				Known: providers.Knowledge{GuessRefundID: providers.Confirmed}}
			out := answer(t, 200, tt.body, nil).Lookup(context.Background(), r)
			if out.Kind != tt.want || !strings.Contains(out.Reason, tt.contain) {
				t.Fatalf("look-up = %v, want %s (%q)", out, tt.want, tt.contain)
			}
			if (out.Kind == providers.Succeeded || out.Kind == providers.Pending || out.Kind == providers.Uncertain) && out.Reference != tt.ref {
				t.Fatalf("reference %q, want %s", out.Reference, tt.ref)
			}
		})
	}
}
