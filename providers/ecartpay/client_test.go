package ecartpay_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/providers/ecartpay"
	"github.com/refundq/refundq/providers/ecartpay/ecartpaysim"
	"github.com/refundq/refundq/providers/sim"
	"github.com/refundq/refundq/tasks"
)

func mxn(minor int64) tasks.Money { return tasks.Money{Minor: minor, Currency: "MXN"} }

// prepared returns r with the snapshot Prepare takes before a send.
func prepared(t *testing.T, c *ecartpay.Client, r providers.Refund) providers.Refund {
	t.Helper()
	before, out, ok := c.Prepare(context.Background(), r)
	if !ok {
		t.Fatalf("prepare = %v", out)
	}
	r.Before = before
	return r
}

// learn folds a refund answer's observations into what is known, as the
// worker does.
func learn(known providers.Knowledge, out providers.Outcome) {
	for _, o := range out.Observed {
		if !o.Holds {
			known[o.Guess] = providers.Refuted
		} else if known[o.Guess] != providers.Refuted {
			known[o.Guess] = providers.Confirmed
		}
	}
}

// An expired token is renewed once, transparently, and the refund is paid
// once; neither the token nor the keys reach the outcome.
func TestExpiredTokenIsRenewed(t *testing.T) {
	var tokenCalls atomic.Int32
	s, c, _ := setup(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == ecartpaysim.TokenPath {
				tokenCalls.Add(1)
			}
			if strings.HasPrefix(r.Header.Get("Authorization"), "Bearer") {
				t.Errorf("token sent with a Bearer prefix")
			}
			h.ServeHTTP(w, r)
		})
	})
	s.AddOrder("ord-1", mxn(40333))
	r := providers.Refund{OrderID: "ord-1", Amount: mxn(10000), Reason: "requested"}
	if out := c.Refund(context.Background(), prepared(t, c, r)); out.Kind != providers.Succeeded {
		t.Fatalf("first refund = %v", out)
	}
	s.ExpireTokens()
	r.Amount = mxn(20000)
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
	s.AddOrder("ord-cash", mxn(1000))
	s.SetMethod("ord-cash", "cash")
	r := prepared(t, c, providers.Refund{OrderID: "ord-cash", Amount: mxn(1000)})
	out := c.Refund(context.Background(), r)
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

func TestEntryIsKeylessAndNamesItsGuess(t *testing.T) {
	e := ecartpay.Entry(func(string) string { return "x" })
	if !e.Keyless || len(e.Guesses) != 1 || e.Guesses[0].Guess != ecartpay.GuessOrderRefunds || e.Guesses[0].Means == "" {
		t.Fatalf("entry = %+v", e)
	}
	if _, ok := e.Provider.(providers.Preparer); !ok {
		t.Fatal("the adapter does not read the order before a send")
	}
}

// The bug of issue 7: a partial refund whose answer was lost, on an order
// whose answers have no refunds list, was read as "not applied" and paid
// again. It is Unknown, with both states of the order for a human.
func TestLostPartialRefundIsNeverReadAsNotApplied(t *testing.T) {
	s, c, _ := setup(t, nil)
	s.AddOrder("ord-p", mxn(10000))
	r := prepared(t, c, providers.Refund{OrderID: "ord-p", Amount: mxn(4000), Attempt: 1})
	s.Faults().Next(1, http.MethodPost, ecartpaysim.RefundPath("ord-p"), sim.AppliedThenReset)
	if out := c.Refund(context.Background(), r); out.Kind != providers.Unknown {
		t.Fatalf("refund whose answer was lost = %v", out)
	}
	out := c.Lookup(context.Background(), r)
	if out.Kind != providers.Unknown || !strings.Contains(out.Reason, "before {paid") || !strings.Contains(out.Reason, "now {partially_refunded") {
		t.Fatalf("look-up = %v, want unknown naming both states", out)
	}
	if got := s.Refunded("ord-p"); len(got) != 1 {
		t.Fatalf("ledger = %v", got)
	}
}

// Once refund answers have confirmed the refunds list, the same lost partial
// refund is found: exactly one new entry, of our amount.
func TestLostPartialRefundFoundByTheConfirmedList(t *testing.T) {
	s, c, _ := setup(t, nil)
	s.Guessed(true)
	known := providers.Knowledge{}
	s.AddOrder("ord-warm", mxn(5000))
	warm := c.Refund(context.Background(), prepared(t, c, providers.Refund{OrderID: "ord-warm", Amount: mxn(5000), Known: known}))
	learn(known, warm)
	if !known.Holds(ecartpay.GuessOrderRefunds) {
		t.Fatalf("the guessed answer did not confirm the list: %v %+v", warm, warm.Observed)
	}
	s.AddOrder("ord-p", mxn(10000))
	first := prepared(t, c, providers.Refund{OrderID: "ord-p", Amount: mxn(2500), Known: known})
	ref1 := c.Refund(context.Background(), first).Reference
	r := prepared(t, c, providers.Refund{OrderID: "ord-p", Amount: mxn(4000), Known: known, OtherRefs: []string{ref1}})
	s.Faults().Next(1, http.MethodPost, ecartpaysim.RefundPath("ord-p"), sim.AppliedThenReset)
	c.Refund(context.Background(), r)
	out := c.Lookup(context.Background(), r)
	entries := s.RefundsFor("ord-p")
	if out.Kind != providers.Succeeded || len(entries) != 2 || out.Reference != entries[1].Ref {
		t.Fatalf("look-up = %v, ledger %+v", out, entries)
	}
}

func TestLookupWithoutSnapshotIsUnknown(t *testing.T) {
	s, c, _ := setup(t, nil)
	s.AddOrder("ord-n", mxn(1000))
	for _, before := range [][]byte{nil, []byte("{"), []byte(`{"status":"paid"}`)} {
		if out := c.Lookup(context.Background(), providers.Refund{OrderID: "ord-n", Amount: mxn(1000), Before: before}); out.Kind != providers.Unknown {
			t.Fatalf("look-up with before %q = %v", before, out)
		}
	}
}

// A full refund applied and known as another refund of ours is not taken
// for this one.
func TestLookupNeverTakesAnotherRefundOfOurs(t *testing.T) {
	s, c, _ := setup(t, nil)
	s.AddOrder("ord-o", mxn(1000))
	r := prepared(t, c, providers.Refund{OrderID: "ord-o", Amount: mxn(1000)})
	other := c.Refund(context.Background(), r)
	if other.Kind != providers.Succeeded {
		t.Fatal(other)
	}
	r.OtherRefs = []string{other.Reference}
	if out := c.Lookup(context.Background(), r); out.Kind != providers.Unknown {
		t.Fatalf("look-up = %v, want unknown", out)
	}
}

// The refund request carries no currency: a refund in another currency than
// the order's would be paid in the order's. Nothing is sent.
func TestAnotherCurrencyIsNeverSent(t *testing.T) {
	s, c, _ := setup(t, nil)
	s.AddOrder("ord-usd", tasks.Money{Minor: 1000, Currency: "USD"})
	r := providers.Refund{OrderID: "ord-usd", Amount: mxn(1000)}
	_, out, ok := c.Prepare(context.Background(), r)
	if ok || out.Kind != providers.Rejected || !strings.Contains(out.Reason, "USD") {
		t.Fatalf("prepare = %v, %v", out, ok)
	}
	r.Before = []byte(`{"status":"paid","refund_id":"","total":"10","updated_at":"t","currency":"USD"}`)
	if out := c.Refund(context.Background(), r); out.Kind != providers.Rejected {
		t.Fatalf("refund = %v", out)
	}
	if got := s.Refunded("ord-usd"); len(got) != 0 {
		t.Fatalf("ledger = %v", got)
	}
}

// An order that Ecart Pay does not have is refused before anything is sent.
func TestPrepareOfAnUnknownOrder(t *testing.T) {
	_, c, _ := setup(t, nil)
	if _, out, ok := c.Prepare(context.Background(), providers.Refund{OrderID: "ord-none", Amount: mxn(1000)}); ok || out.Kind != providers.Rejected {
		t.Fatalf("prepare of an unknown order = %v, %v", out, ok)
	}
}

func TestAuthFailuresBlock(t *testing.T) {
	s, _, url := setup(t, nil)
	s.AddOrder("ord-a", mxn(1000))
	bad, _ := ecartpay.New(ecartpay.Config{BaseURL: url, PublicKey: pub, PrivateKey: "wrong"})
	r := providers.Refund{OrderID: "ord-a", Amount: mxn(1000)}
	if _, out, ok := bad.Prepare(context.Background(), r); ok || out.Kind != providers.Blocked || !strings.Contains(out.Reason, "ECARTPAY_PRIVATE_KEY") {
		t.Fatalf("prepare = %v", out)
	}
	// A token the API refuses even fresh (403 on the call itself).
	_, c, _ := setup(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != ecartpaysim.TokenPath {
				sim.WriteJSON(w, http.StatusForbidden, map[string]string{"message": "Forbidden"})
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	if out := c.Refund(context.Background(), r); out.Kind != providers.Blocked || strings.Contains(out.Reason, priv) {
		t.Fatalf("refund answered 403 = %v", out)
	}
}
