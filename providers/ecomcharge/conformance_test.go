package ecomcharge_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/providers/ecomcharge"
	"github.com/refundq/refundq/providers/ecomcharge/ecomchargesim"
	"github.com/refundq/refundq/providers/providertest"
	"github.com/refundq/refundq/providers/sim"
	"github.com/refundq/refundq/tasks"
)

const shop, secret = "361", "b8647b68898b084b836474ed8d61ffe1-s3cr3t"

func setup(t *testing.T) (*ecomchargesim.Simulator, *ecomcharge.Client, string) {
	t.Helper()
	s := ecomchargesim.New(shop, secret)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	// The simulated shop is a test shop, as the document's example.
	c, err := ecomcharge.New(ecomcharge.Config{BaseURL: srv.URL, ShopID: shop, SecretKey: secret, Mode: ecomcharge.ModeTest})
	if err != nil {
		t.Fatal(err)
	}
	return s, c, srv.URL
}

func TestConformance(t *testing.T) {
	entry := ecomcharge.Entry(func(string) string { return "" })
	providertest.Run(t, func(t *testing.T, shape providertest.Shape) *providertest.Harness {
		s, good, url := setup(t)
		s.Guessed(shape == providertest.Guessed)
		bad, _ := ecomcharge.New(ecomcharge.Config{BaseURL: url, ShopID: shop, SecretKey: "wrong", Mode: ecomcharge.ModeTest})
		return &providertest.Harness{
			Provider: good, WrongAuth: bad, Faults: s.Faults(), Currency: "EUR",
			Pay: func(t testing.TB, amount tasks.Money) (string, string) {
				uid := s.AddPayment("pay-"+uuid.NewString(), amount)
				return uid, uid
			},
			Applied:      s.Refunded,
			RefundCall:   func(string) (string, string) { return http.MethodPost, "/transactions/refunds" },
			MakePending:  s.MakePending,
			HideEvidence: s.HideEvidence,
			WrongAmount:  s.WrongAmount,
			Partial:      true, Multiple: true, AmountSet: true,
			Keyless:       entry.Keyless,
			ProvesAbsence: shape == providertest.Guessed,
			Guesses:       entry.Guesses,
		}
	})
}

func eur(minor int64) tasks.Money { return tasks.Money{Minor: minor, Currency: "EUR"} }

func newRefund(s *ecomchargesim.Simulator, paid, amount int64) providers.Refund {
	uid := s.AddPayment("pay-"+uuid.NewString(), eur(paid))
	return providers.Refund{RefundID: "rf-1", OrderID: uid, TransactionID: uid, Amount: eur(amount),
		Reason: "requested", Key: uuid.Must(uuid.NewV7()).String()}
}

// A resend inside the 30 s window after an applied-then-reset is refused by
// duplicate_check; on a resend that refusal means "probably ours, already
// applied" (Unknown), and reconciling by tracking id finds the one refund
// where ecomCharge keeps the tracking_id; where it does not, the look-up
// proves nothing and the refund stays unknown, never resent.
func TestDuplicateCheckAfterAppliedThenResetIsReconciled(t *testing.T) {
	for _, guessed := range []bool{true, false} {
		s, c, _ := setup(t)
		s.Guessed(guessed)
		r := newRefund(s, 10000, 2500)
		s.Faults().Next(1, http.MethodPost, "/transactions/refunds", sim.AppliedThenReset)
		ctx := context.Background()
		r.Attempt = 1
		if out := c.Refund(ctx, r); out.Kind != providers.Unknown {
			t.Fatalf("guessed %v: lost answer = %v, want unknown", guessed, out)
		}
		r.Attempt = 2 // a resend without asking first
		out := c.Refund(ctx, r)
		if out.Kind != providers.Unknown || out.Status != "duplicate_check" || !strings.Contains(out.Reason, "duplicate_check") {
			t.Fatalf("guessed %v: duplicate_check answer to a resend = %v; want unknown saying the duplicate check fired", guessed, out)
		}
		out = c.Lookup(ctx, r) // what the worker does with Unknown
		got := s.RefundsFor(r.TransactionID)
		if len(got) != 1 || got[0].Amount != eur(2500) {
			t.Fatalf("guessed %v: ledger = %+v, want one refund of 2500", guessed, got)
		}
		if !guessed {
			if out.Kind != providers.Unknown {
				t.Fatalf("documented shape: reconciled = %v, want unknown (tracking_id not kept)", out)
			}
			continue
		}
		if out.Kind != providers.Succeeded || out.Reference == "" || got[0].Key != r.Key || got[0].Ref != out.Reference {
			t.Fatalf("reconciled = %v, ledger %+v; want succeeded with our tracking id", out, got)
		}
	}
}

// Another refund of the same amount inside the window is refused by
// duplicate_check. On its first attempt nothing of ours was sent before, so
// it is transient with a retry after the window; it is not applied, its
// look-up is NotFound (tracking_id confirmed), and once the window has
// passed the resend goes through.
func TestDuplicateCheckWindowPasses(t *testing.T) {
	s, c, _ := setup(t)
	s.Guessed(true)
	s.SetDuplicateWindow(300 * time.Millisecond)
	first := newRefund(s, 10000, 2000)
	first.Attempt = 1
	ctx := context.Background()
	out := c.Refund(ctx, first)
	if out.Kind != providers.Succeeded || len(out.Observed) != 2 || !out.Observed[0].Holds || !out.Observed[1].Holds {
		t.Fatalf("first = %v (observed %+v), want succeeded, tracking_id echoed and listed", out, out.Observed)
	}
	known := providers.Knowledge{ecomcharge.GuessTrackingLookup: providers.Confirmed}
	second := first
	second.Key, second.Known = uuid.Must(uuid.NewV7()).String(), known
	out = c.Refund(ctx, second)
	if out.Kind != providers.Transient || out.Status != "duplicate_check" || out.RetryAfter != 31*time.Second {
		t.Fatalf("second inside the window = %v (retry after %s), want transient (duplicate_check) after 31s", out, out.RetryAfter)
	}
	if out := c.Lookup(ctx, second); out.Kind != providers.NotFound {
		t.Fatalf("look-up of the refused second = %v, want not found", out)
	}
	s.SetDuplicateWindow(time.Nanosecond) // the window passes, without waiting it out
	second.Attempt = 2
	if out := c.Refund(ctx, second); out.Kind != providers.Succeeded {
		t.Fatalf("second after the window = %v", out)
	}
	if got := s.Refunded(first.TransactionID); len(got) != 2 {
		t.Fatalf("ledger = %v, want two refunds", got)
	}
	s.SetDuplicateWindow(0) // off
	third := first
	third.Key = uuid.Must(uuid.NewV7()).String()
	if out := c.Refund(ctx, third); out.Kind != providers.Succeeded {
		t.Fatalf("third with the check off = %v", out)
	}
}

// The documented shape teaches that tracking_id is not kept: the refund
// answer does not echo it and the look-up right after lists nothing. The
// guessed shape echoes it and lists the refund. With the quirks on, the
// echo comes but the look-up lists no refund: the echo confirms only
// GuessTrackingEcho, and the look-up refutes GuessTrackingLookup. The
// look-up is made only while GuessTrackingLookup is open.
func TestTrackingGuessLearned(t *testing.T) {
	for _, tt := range []struct {
		guessed, quirks bool
		known           providers.Verdict // of GuessTrackingLookup
		echo, lookup    []bool            // observations' Holds
	}{
		{true, false, providers.Unconfirmed, []bool{true}, []bool{true}},
		{false, false, providers.Unconfirmed, []bool{false}, []bool{false}},
		{true, true, providers.Unconfirmed, []bool{true}, []bool{false}},
		{false, true, providers.Unconfirmed, []bool{false}, []bool{false}},
		{true, false, providers.Confirmed, []bool{true}, nil}, // the echo is reported, whatever is known
		{false, false, providers.Refuted, []bool{false}, nil}, // no look-up once known
		{true, true, providers.Refuted, []bool{true}, nil},
	} {
		s, c, _ := setup(t)
		s.Guessed(tt.guessed)
		s.Quirks(tt.quirks)
		r := newRefund(s, 1000, 1000)
		r.Attempt, r.Known = 1, providers.Knowledge{ecomcharge.GuessTrackingLookup: tt.known}
		out := c.Refund(context.Background(), r)
		if out.Kind != providers.Succeeded {
			t.Fatalf("%+v: refund = %v", tt, out)
		}
		var echo, lookup []bool
		for _, o := range out.Observed {
			switch {
			case o.Detail == "":
				t.Fatalf("%+v: observation %+v without a detail", tt, o)
			case o.Guess == ecomcharge.GuessTrackingEcho:
				echo = append(echo, o.Holds)
			case o.Guess == ecomcharge.GuessTrackingLookup:
				lookup = append(lookup, o.Holds)
			default:
				t.Fatalf("%+v: observation %+v", tt, o)
			}
		}
		if fmt.Sprint(echo) != fmt.Sprint(tt.echo) || fmt.Sprint(lookup) != fmt.Sprint(tt.lookup) {
			t.Errorf("guessed %v, quirks %v, known %s: observed echo %v and look-up %v, want %v and %v",
				tt.guessed, tt.quirks, tt.known, echo, lookup, tt.echo, tt.lookup)
		}
	}
}

func TestSimulatorAPI(t *testing.T) {
	s, c, base := setup(t)
	s.Guessed(true) // look-ups by tracking_id find the refunds
	ctx := context.Background()
	get := func(path string, version bool) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		req.SetBasicAuth(shop, secret)
		if version {
			req.Header.Set("X-API-Version", "3")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v map[string]any
		json.NewDecoder(resp.Body).Decode(&v)
		return resp.StatusCode, v
	}

	// Pending for two look-ups (by uid counts too), then successful.
	r := newRefund(s, 5000, 5000)
	s.MakePending(r.TransactionID, 2)
	out := c.Refund(ctx, r)
	if out.Kind != providers.Pending || out.Status != "pending" {
		t.Fatalf("refund = %v, want pending", out)
	}
	if len(s.Entries()) != 0 {
		t.Fatal("a pending refund moved money")
	}
	if st, v := get("/transactions/"+out.Reference, true); st != 200 || v["transaction"].(map[string]any)["status"] != "pending" || v["transaction"].(map[string]any)["code"] == nil {
		t.Fatalf("GET by uid = %d %v", st, v)
	}
	if out := c.Lookup(ctx, r); out.Kind != providers.Succeeded {
		t.Fatalf("look-up = %v, want succeeded", out)
	}
	if st, v := get("/transactions/"+out.Reference, false); st != 200 || v["transaction"].(map[string]any)["status"] != "successful" || v["transaction"].(map[string]any)["code"] != nil {
		t.Fatalf("GET by uid without X-API-Version = %d %v", st, v)
	}
	if st, v := get("/transactions/"+r.TransactionID, true); st != 200 || v["transaction"].(map[string]any)["type"] != "payment" {
		t.Fatalf("GET payment = %d %v", st, v)
	}
	if st, _ := get("/transactions/nope", true); st != 404 {
		t.Fatalf("GET unknown uid = %d", st)
	}
	if got := s.Entries(); len(got) != 1 || got[0].OrderID != r.TransactionID {
		t.Fatalf("ledger = %+v", got)
	}

	// Unknown parent, then AutoCreate.
	ghost := providers.Refund{TransactionID: "ghost", Amount: eur(100), Key: uuid.NewString()}
	if out := c.Refund(ctx, ghost); out.Kind != providers.Rejected || !strings.Contains(out.Reason, "not found") {
		t.Fatalf("refund of an unknown payment = %v", out)
	}
	s.AutoCreate(eur(1000))
	if out := c.Refund(ctx, ghost); out.Kind != providers.Succeeded {
		t.Fatalf("refund of an auto-created payment = %v", out)
	}
	if got := s.Refunded("ghost"); len(got) != 1 || got[0] != eur(100) {
		t.Fatalf("auto ledger = %v", got)
	}

	// A pending refund holds its amount: nothing more than what is left.
	p := newRefund(s, 1000, 600)
	s.MakePending(p.TransactionID, 5)
	if out := c.Refund(ctx, p); out.Kind != providers.Pending {
		t.Fatalf("pending = %v", out)
	}
	p2 := p
	p2.Key, p2.Amount = uuid.NewString(), eur(500)
	out = c.Refund(ctx, p2)
	if out.Kind != providers.Rejected || !strings.Contains(out.Reason, "can't be refunded") {
		t.Fatalf("refund beyond what a pending one leaves = %v", out)
	}
	// ecomCharge's words keep its minor units; refundq's reading beside
	// them says how much money that is.
	for _, want := range []string{"is more than the 400 left to refund", "ecomCharge counts in minor units: 400 is 4.00 EUR"} {
		if !strings.Contains(out.Reason, want) {
			t.Errorf("refund beyond what is left = %v, want it to say %q", out, want)
		}
	}
}

func TestSimulatorRefusesBadRequests(t *testing.T) {
	_, _, base := setup(t)
	post := func(user, pass, body string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, base+"/transactions/refunds", strings.NewReader(body))
		req.SetBasicAuth(user, pass)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v struct {
			Message string `json:"message"`
		}
		json.NewDecoder(resp.Body).Decode(&v)
		return resp.StatusCode, v.Message
	}
	for _, tt := range []struct {
		name, user, pass, body string
		status                 int
		message                string
	}{
		{"wrong secret", shop, "nope", `{}`, 401, "Unauthorized"},
		{"not JSON", shop, secret, `nope`, 422, "Request is invalid"},
		{"decimal amount", shop, secret, `{"request":{"parent_uid":"p","amount":4.5,"reason":"r"}}`, 422, "Amount"},
		{"no reason", shop, secret, `{"request":{"parent_uid":"p","amount":45}}`, 422, "Reason can't be blank."},
		{"long reason", shop, secret, `{"request":{"parent_uid":"p","amount":45,"reason":"` + strings.Repeat("x", 256) + `"}}`, 422, "Reason is too long"},
		{"no parent", shop, secret, `{"request":{"amount":45,"reason":"r"}}`, 422, "Parent uid"},
	} {
		if st, msg := post(tt.user, tt.pass, tt.body); st != tt.status || !strings.Contains(msg, tt.message) {
			t.Errorf("%s: %d %q, want %d %q", tt.name, st, msg, tt.status, tt.message)
		}
	}
}

// keys lists the JSON object's keys, nested ones as "a.b", sorted.
func keys(t *testing.T, raw json.RawMessage) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	var out []string
	for k, v := range m {
		out = append(out, k)
		if strings.HasPrefix(strings.TrimSpace(string(v)), "{") {
			for _, sub := range keys(t, v) {
				out = append(out, k+"."+sub)
			}
		}
	}
	sort.Strings(out)
	return out
}

// The simulator's refund answer has exactly the fields of the refund page's
// example by default; tracking_id appears only in the guessed shape, and
// only then do look-ups by tracking_id list refunds.
func TestSimulatorShapes(t *testing.T) {
	doc, err := os.ReadFile("testdata/refund_documented.json")
	if err != nil {
		t.Fatal(err)
	}
	var docEnv map[string]json.RawMessage
	json.Unmarshal(doc, &docEnv)
	want := keys(t, docEnv["transaction"])

	call := func(base, method, path, body string) (int, map[string]json.RawMessage) {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.SetBasicAuth(shop, secret)
		req.Header.Set("X-API-Version", "3")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v map[string]json.RawMessage
		json.NewDecoder(resp.Body).Decode(&v)
		return resp.StatusCode, v
	}
	for _, guessed := range []bool{false, true} {
		s, _, base := setup(t)
		s.Guessed(guessed)
		uid := s.AddPayment("pay-"+uuid.NewString(), eur(1000))
		st, v := call(base, http.MethodPost, "/transactions/refunds", `{"request":{"parent_uid":"`+uid+`","amount":300,"reason":"Client request","tracking_id":"our-key"}}`)
		if st != 200 {
			t.Fatalf("refund: %d %v", st, v)
		}
		got := keys(t, v["transaction"])
		wantHere := want
		if guessed {
			wantHere = append([]string{"tracking_id"}, want...)
			sort.Strings(wantHere)
		}
		if fmt.Sprint(got) != fmt.Sprint(wantHere) {
			t.Errorf("guessed %v: refund answer fields\n%v\nwant\n%v", guessed, got, wantHere)
		}
		_, list := call(base, http.MethodGet, "/v2/transactions/tracking_id/our-key", "")
		var txns []map[string]any
		json.Unmarshal(list["transactions"], &txns)
		if list["transactions"] == nil || len(txns) != map[bool]int{false: 0, true: 1}[guessed] {
			t.Errorf("guessed %v: look-up by tracking_id = %v", guessed, list)
		}
		s.HideEvidence()
		if _, list := call(base, http.MethodGet, "/v2/transactions/tracking_id/our-key", ""); len(list) != 0 {
			t.Errorf("guessed %v: look-up with the evidence hidden = %v, want {}", guessed, list)
		}
	}

	// WrongAmount: one minor unit short, in the answer and the ledger.
	s, c, _ := setup(t)
	r := newRefund(s, 1000, 400)
	s.WrongAmount(r.TransactionID)
	if out := c.Refund(context.Background(), r); out.Kind != providers.Review || !strings.Contains(out.Reason, "refunded 3.99 EUR while 4.00 EUR was asked") {
		t.Fatalf("short refund = %v, want review naming 3.99 EUR", out)
	}
	if got := s.Refunded(r.TransactionID); len(got) != 1 || got[0] != eur(399) {
		t.Fatalf("ledger = %v, want 399", got)
	}
	r2 := r
	r2.Key, r2.Amount = uuid.NewString(), eur(300)
	if out := c.Refund(context.Background(), r2); out.Kind != providers.Succeeded {
		t.Fatalf("the refund after the short one = %v", out)
	}

	// MakeIncomplete: "incomplete", then successful after the look-ups.
	s.Guessed(true)
	p := newRefund(s, 1000, 1000)
	s.MakeIncomplete(p.TransactionID, 1)
	if out := c.Refund(context.Background(), p); out.Kind != providers.Pending || out.Status != "incomplete" {
		t.Fatalf("incomplete refund = %v", out)
	}
	if out := c.Lookup(context.Background(), p); out.Kind != providers.Succeeded {
		t.Fatalf("look-up of the incomplete refund = %v", out)
	}
}
