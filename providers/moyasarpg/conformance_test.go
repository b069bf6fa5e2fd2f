package moyasarpg_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/providers/moyasarpg"
	"github.com/refundq/refundq/providers/moyasarpg/moyasarpgsim"
	"github.com/refundq/refundq/providers/providertest"
	"github.com/refundq/refundq/tasks"
)

const key = "sk_test_conformance_SECRET"

func setup(t *testing.T) (*moyasarpgsim.Simulator, *moyasarpg.Client, string) {
	t.Helper()
	s := moyasarpgsim.New(key)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	c, err := moyasarpg.New(moyasarpg.Config{BaseURL: srv.URL, APIKey: key})
	if err != nil {
		t.Fatal(err)
	}
	return s, c, srv.URL
}

func TestConformance(t *testing.T) { conformance(t, false) }

// With the simulator's quirks on (resends validated before their replay;
// refunds shown in the look-up only some answers after they were applied),
// the suite holds as well.
func TestConformanceWithQuirks(t *testing.T) { conformance(t, true) }

func conformance(t *testing.T, quirks bool) {
	entry := moyasarpg.Entry(func(string) string { return "" })
	providertest.Run(t, func(t *testing.T, shape providertest.Shape) *providertest.Harness {
		s, good, url := setup(t)
		s.Guessed(shape == providertest.Guessed)
		s.Quirks(quirks)
		bad, _ := moyasarpg.New(moyasarpg.Config{BaseURL: url, APIKey: "sk_test_wrong"})
		return &providertest.Harness{
			Provider: good, WrongAuth: bad, Faults: s.Faults(), Currency: "SAR",
			Pay: func(t testing.TB, amount tasks.Money) (string, string) {
				id := "ord-" + uuid.NewString()
				s.AddOrder(id, amount)
				return id, ""
			},
			Applied:      s.Refunded,
			RefundCall:   func(order string) (string, string) { return http.MethodPost, "/v1/orders/" + order + "/refund" },
			MakePending:  s.SetProcessing,
			HideEvidence: s.HideEvidence,
			WrongAmount:  s.WrongAmount,
			Partial:      true, Multiple: true, AmountSet: true,
			Keyless: entry.Keyless,
			// No look-up proves a refund absent: MPG does not promise that
			// an applied refund shows in the order at once (the simulator's
			// quirks show one that does not), so an order without ours is
			// unknown in either shape. The worker reconciles it by resending
			// with the same transaction_id, which MPG answers from the first
			// request.
			ProvesAbsence: false,
			Guesses:       entry.Guesses,
		}
	})
}

// keys lists a JSON object's keys, nested objects' as "a.b" and the first
// element's of an array as "a[].b", sorted.
func keys(t *testing.T, raw json.RawMessage) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	var out []string
	for k, v := range m {
		out = append(out, k)
		switch s := strings.TrimSpace(string(v)); {
		case strings.HasPrefix(s, "{"):
			for _, sub := range keys(t, v) {
				out = append(out, k+"."+sub)
			}
		case strings.HasPrefix(s, "["):
			var list []json.RawMessage
			json.Unmarshal(v, &list)
			if len(list) > 0 && strings.HasPrefix(strings.TrimSpace(string(list[0])), "{") {
				for _, sub := range keys(t, list[0]) {
					out = append(out, k+"[]."+sub)
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

type call struct {
	status int
	body   json.RawMessage
}

func do(t *testing.T, base, auth, method, path, body string) call {
	t.Helper()
	req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return call{resp.StatusCode, b}
}

// The simulator's order has exactly the fields of the document's example;
// its refund transaction's id is MPG's own unless Guessed.
func TestSimulatorShapes(t *testing.T) {
	doc, err := os.ReadFile("testdata/order_documented.json")
	if err != nil {
		t.Fatal(err)
	}
	want := keys(t, doc)
	for _, guessed := range []bool{false, true} {
		s, _, base := setup(t)
		s.Guessed(guessed)
		s.AddOrder("ord-1", tasks.Money{Minor: 10000, Currency: "SAR"})
		const txn = "0191f5a8-1111-7000-8000-000000000001"
		c := do(t, base, "Bearer "+key, http.MethodPost, "/v1/orders/ord-1/refund", `{"amount": 2500, "transaction_id": "`+txn+`"}`)
		if c.status != 200 {
			t.Fatalf("refund = %d %s", c.status, c.body)
		}
		if got := keys(t, c.body); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("guessed %v: order fields\n%v\nwant\n%v", guessed, got, want)
		}
		var o struct {
			RefundedAmount int64 `json:"refunded_amount"`
			Transactions   []struct {
				ID, Type, Status string
				Amount           int64
			}
		}
		json.Unmarshal(c.body, &o)
		if len(o.Transactions) != 2 || o.Transactions[0].Type != "capture" || o.Transactions[1].Type != "refund" ||
			o.Transactions[1].Status != "approved" || o.Transactions[1].Amount != 2500 || o.RefundedAmount != 2500 {
			t.Fatalf("guessed %v: order %s", guessed, c.body)
		}
		id := o.Transactions[1].ID
		if guessed != (id == txn) {
			t.Errorf("guessed %v: refund transaction id %s (our transaction_id %s)", guessed, id, txn)
		}
		if u, err := uuid.Parse(id); err != nil || u.Version() != 7 {
			t.Errorf("refund transaction id %s is not a UUIDv7", id)
		}
		// Idempotency: the same transaction_id again is a replay, not a refund.
		again := do(t, base, "Bearer "+key, http.MethodPost, "/v1/orders/ord-1/refund", `{"amount": 2500, "transaction_id": "`+txn+`"}`)
		if again.status != 200 || len(s.Refunded("ord-1")) != 1 {
			t.Fatalf("guessed %v: replay = %d, ledger %v", guessed, again.status, s.Refunded("ord-1"))
		}
		if e := s.RefundsFor("ord-1"); e[0].Key != txn || e[0].Ref != id {
			t.Errorf("ledger %+v", e)
		}
		s.HideEvidence()
		if c := do(t, base, "Bearer "+key, http.MethodGet, "/v1/orders/ord-1", ""); c.status != 200 || strings.Contains(string(c.body), "transactions") {
			t.Errorf("order with the evidence hidden = %d %s", c.status, c.body)
		}
	}
}

func TestSimulatorRules(t *testing.T) {
	s, c, base := setup(t)
	ctx := context.Background()
	sar := func(minor int64) tasks.Money { return tasks.Money{Minor: minor, Currency: "SAR"} }
	s.AddOrder("ord-r", sar(1000))
	for _, tt := range []struct {
		name, auth, body string
		status           int
		contain          string
	}{
		{"no key", "", `{"amount": 1}`, 401, "Missing authentication information"},
		{"wrong key", "Bearer sk_test_other", `{"amount": 1}`, 403, `"Unauthorized"`},
		{"amount 0", "Bearer " + key, `{"amount": 0}`, 422, "The value must be greater than or equal to 1."},
		{"decimal amount", "Bearer " + key, `{"amount": 1.5}`, 422, "Data validation failed"},
		{"more than paid", "Bearer " + key, `{"amount": 1001}`, 422, "less than or equal to 1000"},
	} {
		if got := do(t, base, tt.auth, http.MethodPost, "/v1/orders/ord-r/refund", tt.body); got.status != tt.status || !strings.Contains(string(got.body), tt.contain) {
			t.Errorf("%s: %d %s, want %d %q", tt.name, got.status, got.body, tt.status, tt.contain)
		}
	}
	if got := do(t, base, "Bearer "+key, http.MethodGet, "/v1/orders/nope", ""); got.status != 404 {
		t.Errorf("unknown order: %d", got.status)
	}

	// In flight: a resend is told "still processing", then the refund is
	// approved after the requests SetProcessing gave it.
	s.Guessed(true)
	s.AddOrder("ord-p", sar(5000))
	s.SetProcessing("ord-p", 2)
	r := providers.Refund{OrderID: "ord-p", Amount: sar(5000), Key: uuid.Must(uuid.NewV7()).String(), Attempt: 1}
	if out := c.Refund(ctx, r); out.Kind != providers.Pending || out.Status != "initiated" {
		t.Fatalf("first = %v, want pending (initiated)", out)
	}
	r.Attempt = 2
	if out := c.Refund(ctx, r); out.Kind != providers.Pending || out.Status != "still_processing" {
		t.Fatalf("resend in flight = %v, want pending (still processing)", out)
	}
	if out := c.Lookup(ctx, r); out.Kind != providers.Succeeded {
		t.Fatalf("look-up = %v, want succeeded", out)
	}
	if got := s.Refunded("ord-p"); len(got) != 1 || got[0] != sar(5000) {
		t.Fatalf("ledger %v", got)
	}

	// WrongAmount: one minor unit short, said in the answer.
	s.AddOrder("ord-w", sar(1000))
	s.WrongAmount("ord-w")
	w := providers.Refund{OrderID: "ord-w", Amount: sar(600), Key: uuid.Must(uuid.NewV7()).String(), Attempt: 1}
	if out := c.Refund(ctx, w); out.Kind != providers.Review || !strings.Contains(out.Reason, "refunded 5.99 SAR while 6.00 SAR was asked") {
		t.Fatalf("short refund = %v", out)
	}
	if got := s.Refunded("ord-w"); len(got) != 1 || got[0] != sar(599) {
		t.Fatalf("ledger %v", got)
	}

	// AutoCreate, and a refund without transaction_id gets an id of MPG's.
	s.AutoCreate(sar(700))
	if got := do(t, base, "Bearer "+key, http.MethodPost, "/v1/orders/ord-auto/refund", `{"amount": 700}`); got.status != 200 || len(s.Refunded("ord-auto")) != 1 {
		t.Fatalf("auto-created order refund = %d %s", got.status, got.body)
	}
}
