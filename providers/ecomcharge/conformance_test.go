package ecomcharge_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/providers/ecomcharge"
	"github.com/refundq/refundq/providers/providertest"
	"github.com/refundq/refundq/providers/sim"
	"github.com/refundq/refundq/tasks"
)

const shop, secret = "361", "b8647b68898b084b836474ed8d61ffe1-s3cr3t"

func setup(t *testing.T) (*ecomcharge.Simulator, *ecomcharge.Client, string) {
	t.Helper()
	s := ecomcharge.NewSimulator(shop, secret)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	c, err := ecomcharge.New(ecomcharge.Config{BaseURL: srv.URL, ShopID: shop, SecretKey: secret})
	if err != nil {
		t.Fatal(err)
	}
	return s, c, srv.URL
}

func TestConformance(t *testing.T) {
	providertest.Run(t, func(t *testing.T) *providertest.Harness {
		s, good, url := setup(t)
		bad, _ := ecomcharge.New(ecomcharge.Config{BaseURL: url, ShopID: shop, SecretKey: "wrong"})
		return &providertest.Harness{
			Provider: good, WrongAuth: bad, Faults: s.Faults(), Currency: "EUR",
			Pay: func(t testing.TB, amount tasks.Money) (string, string) {
				uid := s.AddPayment("pay-"+uuid.NewString(), amount)
				return uid, uid
			},
			Applied:     s.Refunded,
			RefundCall:  func(string) (string, string) { return http.MethodPost, "/transactions/refunds" },
			MakePending: s.MakePending,
			Partial:     true, Multiple: true, AmountSet: true,
		}
	})
}

func eur(minor int64) tasks.Money { return tasks.Money{Minor: minor, Currency: "EUR"} }

func newRefund(s *ecomcharge.Simulator, paid, amount int64) providers.Refund {
	uid := s.AddPayment("pay-"+uuid.NewString(), eur(paid))
	return providers.Refund{RefundID: "rf-1", OrderID: uid, TransactionID: uid, Amount: eur(amount),
		Reason: "requested", Key: uuid.Must(uuid.NewV7()).String()}
}

// A resend inside the 30 s window after an applied-then-reset is refused by
// duplicate_check; that refusal means "already sent", and reconciling by
// tracking id finds the one refund.
func TestDuplicateCheckAfterAppliedThenResetIsReconciled(t *testing.T) {
	s, c, _ := setup(t)
	r := newRefund(s, 10000, 2500)
	s.Faults().Next(1, http.MethodPost, "/transactions/refunds", sim.AppliedThenReset)
	ctx := context.Background()
	if out := c.Refund(ctx, r); out.Kind != providers.Unknown {
		t.Fatalf("lost answer = %v, want unknown", out)
	}
	out := c.Refund(ctx, r) // a resend without asking first
	if out.Kind != providers.Unknown || !strings.Contains(out.Reason, "duplicate_check") {
		t.Fatalf("duplicate_check answer = %v; want unknown saying the duplicate check fired, never rejected", out)
	}
	out = c.Lookup(ctx, r) // what the worker does with Unknown
	if out.Kind != providers.Succeeded || out.Reference == "" {
		t.Fatalf("reconciled = %v, want succeeded", out)
	}
	got := s.RefundsFor(r.TransactionID)
	if len(got) != 1 || got[0].Amount != eur(2500) || got[0].Key != r.Key || got[0].Ref != out.Reference {
		t.Fatalf("ledger = %+v, want one refund of 2500 with our tracking id", got)
	}
}

// Another refund of the same amount inside the window is refused by
// duplicate_check; it is not applied, its look-up is NotFound, and once the
// window has passed the resend goes through.
func TestDuplicateCheckWindowPasses(t *testing.T) {
	s, c, _ := setup(t)
	s.SetDuplicateWindow(300 * time.Millisecond)
	first := newRefund(s, 10000, 2000)
	ctx := context.Background()
	if out := c.Refund(ctx, first); out.Kind != providers.Succeeded {
		t.Fatalf("first = %v", out)
	}
	second := first
	second.Key = uuid.Must(uuid.NewV7()).String()
	if out := c.Refund(ctx, second); out.Kind != providers.Unknown || out.Status != "duplicate_check" {
		t.Fatalf("second inside the window = %v, want unknown (duplicate_check)", out)
	}
	if out := c.Lookup(ctx, second); out.Kind != providers.NotFound {
		t.Fatalf("look-up of the refused second = %v, want not found", out)
	}
	s.SetDuplicateWindow(time.Nanosecond) // the window passes, without waiting it out
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

func TestSimulatorAPI(t *testing.T) {
	s, c, base := setup(t)
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
	if out := c.Refund(ctx, p2); out.Kind != providers.Rejected || !strings.Contains(out.Reason, "can't be refunded") {
		t.Fatalf("refund beyond what a pending one leaves = %v", out)
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
