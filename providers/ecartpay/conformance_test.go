package ecartpay_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"

	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/providers/ecartpay"
	"github.com/refundq/refundq/providers/providertest"
	"github.com/refundq/refundq/tasks"
)

const pub, priv = "pub_sandbox_1", "prv_sandbox_SECRET"

func setup(t *testing.T, wrap func(http.Handler) http.Handler) (*ecartpay.Simulator, *ecartpay.Client, string) {
	s := ecartpay.NewSimulator(pub, priv)
	var h http.Handler = s
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := ecartpay.New(ecartpay.Config{BaseURL: srv.URL, PublicKey: pub, PrivateKey: priv})
	if err != nil {
		t.Fatal(err)
	}
	return s, c, srv.URL
}

func TestConformance(t *testing.T) {
	providertest.Run(t, func(t *testing.T) *providertest.Harness {
		s, good, url := setup(t, nil)
		bad, _ := ecartpay.New(ecartpay.Config{BaseURL: url, PublicKey: pub, PrivateKey: "wrong"})
		return &providertest.Harness{
			Provider: good, WrongAuth: bad, Faults: s.Faults(), Currency: "MXN",
			Pay: func(t testing.TB, amount tasks.Money) (string, string) {
				order := "ord-" + uuid.NewString()
				s.AddOrder(order, amount)
				return order, ""
			},
			Applied:    s.Refunded,
			RefundCall: func(order string) (string, string) { return http.MethodPost, "/api/orders/" + order + "/refund" },
			Partial:    true, Multiple: true, AmountSet: true,
		}
	})
}

// An expired token is renewed once, transparently, and the refund is paid
// once; neither the token nor the keys reach the outcome.
func TestExpiredTokenIsRenewed(t *testing.T) {
	var tokenCalls atomic.Int32
	s, c, _ := setup(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/api/authorizations/token" {
				tokenCalls.Add(1)
			}
			if r.Header.Get("Authorization") != "" && strings.HasPrefix(r.Header.Get("Authorization"), "Bearer") {
				t.Errorf("token sent with a Bearer prefix")
			}
			h.ServeHTTP(w, r)
		})
	})
	s.AddOrder("ord-1", tasks.Money{Minor: 40333, Currency: "MXN"})
	r := providers.Refund{OrderID: "ord-1", Amount: tasks.Money{Minor: 10000, Currency: "MXN"}, Reason: "requested"}
	if out := c.Refund(context.Background(), r); out.Kind != providers.Succeeded {
		t.Fatalf("first refund = %v", out)
	}
	s.ExpireTokens()
	r.Amount.Minor = 20000
	out := c.Refund(context.Background(), r)
	if out.Kind != providers.Succeeded {
		t.Fatalf("refund after expiry = %v", out)
	}
	if n := tokenCalls.Load(); n != 2 {
		t.Fatalf("%d token requests, want 2 (one cached, one renewed after the 401)", n)
	}
	if got := s.Refunded("ord-1"); len(got) != 2 {
		t.Fatalf("ledger = %v, want 2 refunds", got)
	}
	if strings.Contains(out.Reason, priv) || strings.Contains(out.Reason, "eyJ") {
		t.Fatalf("outcome leaks a credential: %v", out)
	}
}

func TestCashAndReasonRules(t *testing.T) {
	s, c, _ := setup(t, nil)
	s.AddOrder("ord-cash", tasks.Money{Minor: 1000, Currency: "MXN"})
	s.SetMethod("ord-cash", "cash")
	out := c.Refund(context.Background(), providers.Refund{OrderID: "ord-cash", Amount: tasks.Money{Minor: 1000, Currency: "MXN"}})
	if out.Kind != providers.Rejected || !strings.Contains(out.Reason, "does not support refunds") {
		t.Fatalf("cash refund = %v", out)
	}
	if err := ecartpay.Check(tasks.Refund{Reason: "changed my mind"}); err == nil || !strings.Contains(err.Error(), "requested, duplicate, fraudulent") {
		t.Fatalf("Check(bad reason) = %v", err)
	}
	if err := ecartpay.Check(tasks.Refund{Reason: "fraudulent"}); err != nil {
		t.Fatal(err)
	}
}

// Ecart Pay has no refund key: two refunds of one amount on one order make a
// lost answer ambiguous, and the look-up says so instead of guessing.
func TestAmbiguousLookupIsUnknown(t *testing.T) {
	s, c, _ := setup(t, nil)
	s.AddOrder("ord-2", tasks.Money{Minor: 2000, Currency: "MXN"})
	r := providers.Refund{OrderID: "ord-2", Amount: tasks.Money{Minor: 500, Currency: "MXN"}}
	c.Refund(context.Background(), r)
	c.Refund(context.Background(), r)
	if out := c.Lookup(context.Background(), r); out.Kind != providers.Unknown {
		t.Fatalf("look-up with two equal refunds = %v, want unknown", out)
	}
}

// An earlier refund of the same amount on the order, known to refundq, is not
// taken for this one when this one's answer was lost before it was applied.
func TestLookupSkipsTheOrdersOtherKnownRefunds(t *testing.T) {
	s, c, _ := setup(t, nil)
	s.AddOrder("ord-3", tasks.Money{Minor: 2000, Currency: "MXN"})
	first := providers.Refund{OrderID: "ord-3", Amount: tasks.Money{Minor: 500, Currency: "MXN"}}
	out := c.Refund(context.Background(), first)
	if out.Kind != providers.Succeeded || out.Reference == "" {
		t.Fatalf("first refund = %v", out)
	}
	second := first
	if got := c.Lookup(context.Background(), second); got.Kind != providers.Succeeded {
		t.Fatalf("without the other refs the look-up sees the first refund: %v", got)
	}
	second.OtherRefs = []string{out.Reference}
	if got := c.Lookup(context.Background(), second); got.Kind != providers.NotFound {
		t.Fatalf("look-up knowing the first refund = %v, want not found (safe to send)", got)
	}
}
