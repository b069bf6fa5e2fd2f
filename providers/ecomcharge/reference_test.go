package ecomcharge_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/providers/ecomcharge"
	"github.com/refundq/refundq/providers/ecomcharge/ecomchargesim"
)

// shapes are the simulator's shapes a look-up by reference must work in:
// the documented one, the guessed one, each with the quirks on and off.
var shapes = []struct{ guessed, quirks bool }{{false, false}, {false, true}, {true, false}, {true, true}}

// A refund ecomCharge answers "pending" (or "incomplete") names its uid; the
// worker keeps it as the refund's reference and polls. Its look-ups ask for
// that uid (GET /transactions/{uid}, documented): pending while ecomCharge
// works on it, then Succeeded, without any guess, so in every shape, the
// documented one and the one whose look-up by tracking_id lists payments
// only included. Paid once.
func TestPendingRefundCompletesThroughLookUpsByUID(t *testing.T) {
	holds := map[string]func(*ecomchargesim.Simulator) func(string, int){
		"pending":    func(s *ecomchargesim.Simulator) func(string, int) { return s.MakePending },
		"incomplete": func(s *ecomchargesim.Simulator) func(string, int) { return s.MakeIncomplete },
	}
	for status, hold := range holds {
		for _, sh := range shapes {
			name := fmt.Sprintf("%s, guessed %v, quirks %v", status, sh.guessed, sh.quirks)
			s, c, _ := setup(t)
			s.Guessed(sh.guessed)
			s.Quirks(sh.quirks)
			w := &worker{c: c, known: providers.Knowledge{}}
			warm := newRefund(s, 5000, 5000) // what production learns first
			if out := w.send(&warm); out.Kind != providers.Succeeded {
				t.Fatalf("%s: warm-up refund = %v", name, out)
			}
			r := newRefund(s, 10000, 4000) // partial: a second one would be paid
			hold(s)(r.TransactionID, 3)
			out := w.send(&r)
			if out.Kind != providers.Pending || out.Status != status || out.Reference == "" {
				t.Fatalf("%s: refund = %v (reference %q), want pending naming its uid", name, out, out.Reference)
			}
			r.Reference = out.Reference // what the worker records with a pending refund
			var kinds []providers.Kind
			for range 6 {
				out = w.lookup(r)
				kinds = append(kinds, out.Kind)
				if out.Kind != providers.Pending {
					break
				}
			}
			if want := []providers.Kind{providers.Pending, providers.Pending, providers.Succeeded}; fmt.Sprint(kinds) != fmt.Sprint(want) {
				t.Fatalf("%s: look-ups by uid = %v (last %v), want %v", name, kinds, out, want)
			}
			if out.Reference != r.Reference || out.Status != "successful" {
				t.Fatalf("%s: success = %v, reference %q, want reference %q", name, out, out.Reference, r.Reference)
			}
			got := s.RefundsFor(r.TransactionID)
			if len(got) != 1 || got[0].Amount != eur(4000) || got[0].Ref != r.Reference {
				t.Fatalf("%s: ledger %+v, want one refund of 4000 with reference %s", name, got, r.Reference)
			}
		}
	}
}

// A pending refund the acquirer then refuses ends failed at ecomCharge. Its
// look-up by uid shows it: Rejected for the refund's only attempt (nothing
// was paid), and never NotFound. Were another attempt of ours sent, the
// failure of this one is not "our refund failed": Unknown.
func TestPendingRefundDeclinedIsRejectedByUID(t *testing.T) {
	for _, sh := range shapes {
		name := fmt.Sprintf("guessed %v, quirks %v", sh.guessed, sh.quirks)
		s, c, _ := setup(t)
		s.Guessed(sh.guessed)
		s.Quirks(sh.quirks)
		w := &worker{c: c, known: providers.Knowledge{}}
		r := newRefund(s, 10000, 4000)
		s.PendThenDecline(r.TransactionID, 2)
		out := w.send(&r)
		if out.Kind != providers.Pending {
			t.Fatalf("%s: refund = %v, want pending", name, out)
		}
		r.Reference = out.Reference
		if out = w.lookup(r); out.Kind != providers.Pending {
			t.Fatalf("%s: first look-up = %v, want pending", name, out)
		}
		later := r
		later.Attempt = 2
		if out := w.lookup(later); out.Kind != providers.Unknown {
			t.Fatalf("%s: failure shown by uid with a second attempt sent = %v, want unknown", name, out)
		}
		if out = w.lookup(r); out.Kind != providers.Rejected || out.Reference != r.Reference || !strings.Contains(out.Reason, "Do not honor") {
			t.Fatalf("%s: look-up of the declined refund = %v, want rejected naming the acquirer's refusal", name, out)
		}
		if got := s.Refunded(r.TransactionID); len(got) != 0 {
			t.Fatalf("%s: ledger %v, want nothing paid", name, got)
		}
	}
}

// A uid ecomCharge's own answer gave us that its status query does not know
// proves nothing: Unknown, never NotFound (a resend could pay twice), even
// where the look-up by tracking_id is known to list refunds and lists none.
func TestUnknownReferenceIsNeverNotFound(t *testing.T) {
	for _, sh := range shapes {
		s, c, _ := setup(t)
		s.Guessed(sh.guessed)
		s.Quirks(sh.quirks)
		r := newRefund(s, 10000, 4000)
		r.Attempt, r.Reference = 1, uuid.NewString()
		r.Known = providers.Knowledge{ecomcharge.GuessTrackingLookup: providers.Confirmed}
		out := c.Lookup(t.Context(), r)
		if out.Kind != providers.Unknown || out.HTTPStatus != 404 {
			t.Fatalf("guessed %v, quirks %v: look-up of an unknown uid = %v, want unknown (HTTP 404)", sh.guessed, sh.quirks, out)
		}
	}
}

// A transaction that contradicts the refund it is the reference of (not a
// refund, a refund of another payment, another amount) is for a human:
// Review. One in the other mode than configured blocks.
func TestReferenceContradictingTheRefundIsReview(t *testing.T) {
	for _, sh := range shapes {
		name := fmt.Sprintf("guessed %v, quirks %v", sh.guessed, sh.quirks)
		s, c, _ := setup(t)
		s.Guessed(sh.guessed)
		s.Quirks(sh.quirks)
		ctx := t.Context()

		// The reference names the parent payment itself.
		r := newRefund(s, 10000, 4000)
		r.Attempt, r.Reference = 1, r.TransactionID
		if out := c.Lookup(ctx, r); out.Kind != providers.Review || !strings.Contains(out.Reason, "payment") {
			t.Fatalf("%s: reference naming a payment = %v, want review", name, out)
		}

		// The reference names a refund of another payment.
		other := newRefund(s, 10000, 4000)
		out := c.Refund(ctx, other)
		if out.Kind != providers.Succeeded {
			t.Fatalf("%s: other refund = %v", name, out)
		}
		r.Reference = out.Reference
		if out := c.Lookup(ctx, r); out.Kind != providers.Review || !strings.Contains(out.Reason, other.TransactionID) {
			t.Fatalf("%s: reference naming another payment's refund = %v, want review", name, out)
		}

		// A pending refund held for another amount than asked.
		short := newRefund(s, 10000, 4000)
		s.WrongAmount(short.TransactionID)
		s.MakePending(short.TransactionID, 5)
		short.Attempt = 1
		if out = c.Refund(ctx, short); out.Kind != providers.Pending {
			t.Fatalf("%s: short refund = %v, want pending", name, out)
		}
		short.Reference = out.Reference
		if out := c.Lookup(ctx, short); out.Kind != providers.Review || !strings.Contains(out.Reason, "39.99 EUR while 40.00 EUR") {
			t.Fatalf("%s: pending refund of 3999 for 4000 asked = %v, want review naming 39.99 EUR", name, out)
		}

		// The shop turns out live while the configuration says test.
		s.SetTestMode(false)
		if out := c.Lookup(ctx, short); out.Kind != providers.Blocked || !strings.Contains(out.Reason, ecomcharge.EnvMode) {
			t.Fatalf("%s: answer of a live shop to a test configuration = %v, want blocked naming %s", name, out, ecomcharge.EnvMode)
		}
	}
}
