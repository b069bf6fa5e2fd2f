package ecartpay_test

import (
	"context"
	"testing"

	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/providers/ecartpay"
)

// A reconciliation checks a final refund by Ecart Pay's id of it. Once a
// second refund lands on the order, Lookup's comparison with the snapshot
// from before our send sees two changes and can attribute neither; the
// confirmed refunds list shows ours by id and amount, and Verify reads it
// there. Where the list cannot show it, Verify is Lookup.
func TestVerifyByReference(t *testing.T) {
	ctx := context.Background()
	s, c, _ := setup(t, nil)
	s.Guessed(true)
	s.AddOrder("ord-v", mxn(30000))
	known := providers.Knowledge{}
	send := func(amount int64) providers.Refund {
		r := prepared(t, c, providers.Refund{OrderID: "ord-v", Amount: mxn(amount), Reason: "requested", Known: known})
		out := c.Refund(ctx, r)
		if out.Kind != providers.Succeeded || out.Reference == "" {
			t.Fatalf("refund of %d = %v", amount, out)
		}
		learn(known, out)
		r.Reference = out.Reference
		return r
	}
	first := send(10000)
	second := send(5000)
	if known[ecartpay.GuessOrderRefunds] != providers.Confirmed {
		t.Fatalf("refunds list not confirmed by the refund answers: %v", known)
	}
	if out := c.Lookup(ctx, first); out.Kind != providers.Unknown {
		t.Fatalf("lookup of the first refund after a second = %v; want unknown (two changes since its snapshot)", out)
	}

	with := func(f func(*providers.Refund)) providers.Refund {
		r := first
		r.Known = providers.Knowledge{}
		for g, v := range known {
			r.Known[g] = v
		}
		f(&r)
		return r
	}
	cases := []struct {
		name string
		r    providers.Refund
		want providers.Kind
	}{
		{"listed with our amount", first, providers.Succeeded},
		{"the second refund too", second, providers.Succeeded},
		{"listed with another amount", with(func(r *providers.Refund) { r.Amount = mxn(10001) }), providers.Review},
		{"listed in another currency", with(func(r *providers.Refund) { r.Amount.Currency = "USD" }), providers.Review},
		{"the id is another refund's of ours too", with(func(r *providers.Refund) { r.OtherRefs = []string{r.Reference} }), providers.Unknown},
		{"the list is not confirmed: as Lookup", with(func(r *providers.Refund) { r.Known = providers.Knowledge{} }), providers.Unknown},
		{"the list does not show the id: as Lookup", with(func(r *providers.Refund) { r.Reference = "not-a-refund" }), providers.Unknown},
		{"no snapshot and no id", with(func(r *providers.Refund) { r.Reference, r.Before = "", nil }), providers.Unknown},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := c.Verify(ctx, tc.r)
			if out.Kind != tc.want {
				t.Fatalf("verify = %v; want %v", out, tc.want)
			}
			if out.Kind == providers.Succeeded && out.Reference != tc.r.Reference {
				t.Fatalf("verify names %q; want %q", out.Reference, tc.r.Reference)
			}
		})
	}
}

// In the documented shape (no refunds list) Verify proves what Lookup
// proves, on the same one read: a paid order refunded in full by a refund
// of its whole total. A partial refund's amount is on no documented field.
func TestVerifyDocumentedShapeIsLookup(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		amount int64
		want   providers.Kind
	}{
		{"full refund of a paid order", 30000, providers.Succeeded},
		{"partial refund: its amount is not shown", 10000, providers.Unknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, c, _ := setup(t, nil)
			s.AddOrder("ord-d", mxn(30000))
			known := providers.Knowledge{}
			r := prepared(t, c, providers.Refund{OrderID: "ord-d", Amount: mxn(tc.amount), Reason: "requested", Known: known})
			out := c.Refund(ctx, r)
			if out.Kind != providers.Succeeded {
				t.Fatalf("refund = %v", out)
			}
			learn(known, out)
			r.Reference = out.Reference
			if got, want := c.Verify(ctx, r), c.Lookup(ctx, r); got.Kind != tc.want || want.Kind != tc.want {
				t.Fatalf("verify = %v, lookup = %v; want both %v", got, want, tc.want)
			}
		})
	}
}
