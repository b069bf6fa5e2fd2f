package bbmsl_test

import (
	"strings"
	"testing"

	"github.com/refundq/refundq/providers"
)

// The worker hands Lookup BBMSL's id of a refund's transaction
// (r.Reference) once an answer named it or a person settled the refund with
// it. With the simulator's quirks on, a query also names the order's refund
// transaction (no page says whether it does), so a look-up can read ours by
// its id.

// A refund BBMSL applied and answered with a code no page documents (9999,
// "please query") names no transaction; a person finds it in BBMSL's portal
// and records its id. Later look-ups find it by that id and end Succeeded,
// paid once, with no second request. (The code as found left it Unknown in
// the documented shape: the query there has no netAmount to read.)
func TestReferenceFindsOurRefundByID(t *testing.T) {
	for _, guessed := range []bool{false, true} {
		b := newBench(t, guessed)
		b.s.Quirks(true)
		order := b.order(t, hkd(1500), true)
		r := providers.Refund{RefundID: "rf-r", OrderID: order, Amount: hkd(1000)}
		requests := b.s.RefundRequests()
		if out, sent := b.send(t, &r); !sent || out.Kind != providers.Unknown || out.Reference != "" {
			t.Fatalf("guessed=%v: refund answered 9999 = %v (sent %v, reference %q); want unknown, naming no transaction", guessed, out, sent, out.Reference)
		}
		paid := b.s.RefundsFor(order)
		if len(paid) != 1 {
			t.Fatalf("ledger %+v", paid)
		}
		r.Reference = paid[0].Ref // what the person records
		for i := 0; i < 2; i++ {
			out := b.lookup(r)
			if out.Kind != providers.Succeeded || out.Reference != r.Reference || !strings.Contains(out.Reason, r.Reference) {
				t.Fatalf("guessed=%v: look-up %d by the reference %s = %v (reference %q), want succeeded", guessed, i+1, r.Reference, out, out.Reference)
			}
		}
		if got := b.s.Refunded(order); len(got) != 1 || got[0] != hkd(1000) || b.s.RefundRequests() != requests+1 {
			t.Fatalf("guessed=%v: ledger %v after %d refund requests, want one refund of 10.00 after one", guessed, got, b.s.RefundRequests()-requests)
		}
	}
}

// A reference that names another refund's transaction (another amount) is
// Review in both shapes (the code as found could not read it in the
// documented shape: Unknown). A reference the order's answer does not show
// proves nothing: Unknown, neither our refund found by its amount (the code
// as found: Succeeded) nor NotFound on a paid order (the code as found, with
// bbmsl.query_order confirmed: NotFound, and a resend).
func TestReferenceNamingAnotherTransaction(t *testing.T) {
	for _, guessed := range []bool{false, true} {
		b := newBench(t, guessed)
		b.s.Quirks(true)

		// An order whose one refund, of 6.00, is another refund's.
		a := b.order(t, hkd(1500), true)
		other := providers.Refund{RefundID: "rf-other", OrderID: a, Amount: hkd(600)}
		b.send(t, &other)
		otherRef := b.s.RefundsFor(a)[0].Ref
		r := providers.Refund{RefundID: "rf-a", OrderID: a, Amount: hkd(1000), Reference: otherRef}
		if out := b.lookup(r); out.Kind != providers.Review || !strings.Contains(out.Reason, otherRef) || !strings.Contains(out.Reason, "6.00") {
			t.Errorf("guessed=%v: look-up by another refund's reference = %v, want review naming %s and its amount", guessed, out, otherRef)
		}

		// An order refunded by our amount, under another id than the
		// reference.
		c := b.order(t, hkd(1500), true)
		r = providers.Refund{RefundID: "rf-c", OrderID: c, Amount: hkd(1000)}
		b.send(t, &r)
		r.Reference = "9999999"
		if out := b.lookup(r); out.Kind != providers.Unknown {
			t.Errorf("guessed=%v: look-up by a reference the order does not show = %v, want unknown", guessed, out)
		}

		// A paid order that shows no refund yet (the first request was
		// turned away by the busy quirk).
		d := b.order(t, hkd(1500), false)
		r = providers.Refund{RefundID: "rf-d", OrderID: d, Amount: hkd(1000)}
		if out, _ := b.send(t, &r); out.Kind != providers.Unknown {
			t.Fatalf("guessed=%v: refund answered 9100 = %v", guessed, out)
		}
		r.Reference = "9999998"
		if out := b.lookup(r); out.Kind != providers.Unknown {
			t.Errorf("guessed=%v: look-up by a reference, of an order that shows no refund = %v, want unknown", guessed, out)
		}
		if got := b.s.Refunded(d); len(got) != 0 {
			t.Fatalf("ledger %v", got)
		}
	}
}
