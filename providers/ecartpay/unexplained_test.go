package ecartpay_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/providers/ecartpay"
	"github.com/refundq/refundq/providers/ecartpay/ecartpaysim"
	"github.com/refundq/refundq/providers/sim"
	"github.com/refundq/refundq/tasks"
)

// shaped serves a simulator in the documented or the guessed shape; in the
// guessed shape one refund is made first, so the refunds list is confirmed
// as it would be in production.
func shaped(t *testing.T, guessed bool) (*ecartpaysim.Simulator, *ecartpay.Client, providers.Knowledge) {
	t.Helper()
	s, c, _ := setup(t, nil)
	s.Guessed(guessed)
	known := providers.Knowledge{}
	s.AddOrder("ord-warm", mxn(100))
	learn(known, c.Refund(context.Background(), prepared(t, c, providers.Refund{OrderID: "ord-warm", Amount: mxn(100), Known: known})))
	if known.Holds(ecartpay.GuessOrderRefunds) != guessed {
		t.Fatalf("guessed=%v: the warm-up left the refunds list %s", guessed, known[ecartpay.GuessOrderRefunds])
	}
	return s, c, known
}

// lostAttempt applies a refund on the order whose answer never arrives, as
// an earlier attempt would whose "in flight" mark Redis then lost: the
// record shows no attempt, the order shows the refund.
func lostAttempt(t *testing.T, s *ecartpaysim.Simulator, c *ecartpay.Client, order string, r providers.Refund) {
	t.Helper()
	r = prepared(t, c, r)
	r.Attempt = 1
	s.Faults().Next(1, http.MethodPost, ecartpaysim.RefundPath(order), sim.AppliedThenReset)
	if out := c.Refund(context.Background(), r); out.Kind != providers.Unknown {
		t.Fatalf("lost attempt = %v", out)
	}
}

// A refund on the order that no attempt refundq recorded explains, found
// before this refund's first send (what a Redis that lost an acknowledged
// "attempt in flight" mark leaves behind). It may be this refund's own
// earlier attempt, so nothing is sent, and a human decides (the worker holds
// the order while it reads it: no other refund of ours is in flight on it).
// The code as found sent the refund again: a partial one was paid twice, a
// full one refused and failed while paid.
func TestRefundOnTheOrderBeforeTheFirstSend(t *testing.T) {
	for _, guessed := range []bool{false, true} {
		for _, amount := range []int64{10000, 4000} {
			s, c, known := shaped(t, guessed)
			s.AddOrder("ord-l", mxn(10000))
			r := providers.Refund{RefundID: "rf-l", OrderID: "ord-l", Amount: mxn(amount), Reason: "requested", Known: known}
			lostAttempt(t, s, c, "ord-l", r)

			// The worker drives the refund as if it had never been sent.
			_, out, ok := c.Prepare(context.Background(), r)
			if ok || out.Kind != providers.Review {
				t.Fatalf("guessed=%v amount=%d: prepare = %v, %v; want review, nothing sent", guessed, amount, out, ok)
			}
			ref := s.RefundsFor("ord-l")[0].Ref
			if !strings.Contains(out.Reason, ref) || !strings.Contains(out.Reason, "nothing sent") {
				t.Fatalf("reason %q does not name the refund %s and say nothing was sent", out.Reason, ref)
			}
			if got := s.Refunded("ord-l"); len(got) != 1 {
				t.Fatalf("ledger = %v, want the one earlier refund", got)
			}
		}
	}
}

// An earlier partial refund does not block a new partial one when it is
// explained: another refund of ours (OtherRefs), or, with the refunds list
// confirmed, a refund of another amount than ours (every attempt of this
// refund asks its own amount). Without the list, an earlier refund nobody
// recorded cannot be told from this refund's own lost attempt: a human.
func TestEarlierPartialRefundDoesNotBlockANewOne(t *testing.T) {
	for _, guessed := range []bool{false, true} {
		s, c, known := shaped(t, guessed)
		// Ours, recorded.
		s.AddOrder("ord-ours", mxn(10000))
		first := c.Refund(context.Background(), prepared(t, c, providers.Refund{RefundID: "rf-1", OrderID: "ord-ours", Amount: mxn(3000), Known: known}))
		if first.Kind != providers.Succeeded {
			t.Fatalf("first refund = %v", first)
		}
		r := providers.Refund{RefundID: "rf-2", OrderID: "ord-ours", Amount: mxn(3000), Known: known, OtherRefs: []string{first.Reference}}
		if out := c.Refund(context.Background(), prepared(t, c, r)); out.Kind != providers.Succeeded {
			t.Fatalf("guessed=%v: second partial refund after one of ours = %v", guessed, out)
		}

		// Made elsewhere (the dashboard), of another amount, an hour ago.
		s.AddOrder("ord-else", mxn(10000))
		lostAttempt(t, s, c, "ord-else", providers.Refund{OrderID: "ord-else", Amount: mxn(2500)})
		s.Backdate("ord-else", time.Hour)
		r = providers.Refund{RefundID: "rf-3", OrderID: "ord-else", Amount: mxn(4000), Known: known}
		before, out, ok := c.Prepare(context.Background(), r)
		if !guessed {
			if ok || out.Kind != providers.Review {
				t.Fatalf("documented shape: prepare = %v, %v; want review (the earlier refund's amount is not shown)", out, ok)
			}
			continue
		}
		if !ok {
			t.Fatalf("prepare with an earlier refund of another amount = %v", out)
		}
		r.Before, r.Attempt = before, 1
		if out := c.Refund(context.Background(), r); out.Kind != providers.Succeeded {
			t.Fatalf("partial refund after one of another amount = %v", out)
		}
		if got := s.Refunded("ord-else"); len(got) != 2 || got[1] != mxn(4000) {
			t.Fatalf("ledger = %v", got)
		}
	}
}

// An order that does not show what a lost answer would be judged by is not
// refunded, and does not wait for ever either: a human gets what is missing
// and what was read. The code as found answered Transient on every try.
func TestOrderThatCannotBeJudgedGoesToReview(t *testing.T) {
	s, c, _ := setup(t, nil)
	s.AddOrder("ord-h", mxn(1000))
	s.HideEvidence()
	_, out, ok := c.Prepare(context.Background(), providers.Refund{OrderID: "ord-h", Amount: mxn(1000)})
	if ok || out.Kind != providers.Review {
		t.Fatalf("prepare = %v, %v; want review", out, ok)
	}
	for _, want := range []string{"nothing sent", "status", "updated_at", "read {", "MXN"} {
		if !strings.Contains(out.Reason, want) {
			t.Fatalf("reason %q lacks %q", out.Reason, want)
		}
	}
	// Another currency is still refused first: no send can ever be right.
	s.AddOrder("ord-hu", tasksUSD(1000))
	if _, out, ok := c.Prepare(context.Background(), providers.Refund{OrderID: "ord-hu", Amount: mxn(1000)}); ok || out.Kind != providers.Rejected {
		t.Fatalf("prepare of an order in USD = %v, %v; want rejected", out, ok)
	}
}

// A refusal of a first attempt ("exceeds the refundable amount") whose
// order changed since the read before the send may be the echo of a refund
// of ours that landed meanwhile (an earlier attempt applied late): it is
// looked up, and the look-up finds the refund paid. The code as found
// failed it.
func TestRefusalAfterTheOrderChangedIsLookedUp(t *testing.T) {
	s, c, _ := setup(t, nil)
	s.AddOrder("ord-r", mxn(10000))
	r := prepared(t, c, providers.Refund{RefundID: "rf-r", OrderID: "ord-r", Amount: mxn(10000), Reason: "requested"})
	r.Attempt = 1
	// The earlier attempt lands between the read and the send.
	lostAttempt(t, s, c, "ord-r", providers.Refund{RefundID: "rf-r", OrderID: "ord-r", Amount: mxn(10000)})
	out := c.Refund(context.Background(), r)
	if out.Kind != providers.Unknown || !strings.Contains(out.Reason, "refundable") {
		t.Fatalf("refusal after the order changed = %v; want unknown, with the refusal", out)
	}
	if look := c.Lookup(context.Background(), r); look.Kind != providers.Succeeded {
		t.Fatalf("look-up = %v; the order shows our refund", look)
	}
	if got := s.Refunded("ord-r"); len(got) != 1 {
		t.Fatalf("ledger = %v", got)
	}
	// The same refusal on an order unchanged since the read stands.
	s.AddOrder("ord-big", mxn(1000))
	big := prepared(t, c, providers.Refund{OrderID: "ord-big", Amount: mxn(1001)})
	big.Attempt = 1
	if out := c.Refund(context.Background(), big); out.Kind != providers.Rejected {
		t.Fatalf("refund of more than the order = %v", out)
	}
}

func tasksUSD(minor int64) tasks.Money { return tasks.Money{Minor: minor, Currency: "USD"} }
