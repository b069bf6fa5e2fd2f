// Package providertest is the conformance suite every provider adapter must
// pass against its simulator: one shared test function, run per provider,
// asserting on the simulator's ledger and not only on the outcome returned.
package providertest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/providers/sim"
	"github.com/refundq/refundq/tasks"
)

// Harness pairs an adapter with its simulator, served over real HTTP.
type Harness struct {
	Provider  providers.Provider // pointed at the simulator
	WrongAuth providers.Provider // the same, with a wrong credential
	Faults    *sim.Faults        // the simulator's injector
	Currency  string             // currency of the payments Pay makes

	// Pay makes a paid payment of amount at the simulator and returns the
	// ids a refund of it carries.
	Pay func(t testing.TB, amount tasks.Money) (orderID, transactionID string)
	// Applied lists the refunds that moved money on the order, per the
	// simulator's ledger.
	Applied func(orderID string) []tasks.Money
	// RefundCall is the method and path of the refund request for an order,
	// to aim faults at it.
	RefundCall func(orderID string) (method, path string)
	// MakePending makes the next refund on the order stay non-terminal for
	// n answers; nil when the provider has no such state.
	MakePending func(orderID string, n int)

	Partial   bool // partial refunds exist
	Multiple  bool // more than one refund per payment
	AmountSet bool // the refund request carries an amount the provider checks
}

// Run runs the conformance suite; newHarness is called once per case so
// cases do not share ledgers or faults.
func Run(t *testing.T, newHarness func(t *testing.T) *Harness) {
	cases := []struct {
		name string
		run  func(t *testing.T, h *Harness)
	}{
		{"full refund", fullRefund},
		{"partial refunds", partialRefunds},
		{"amount too big is rejected", amountTooBig},
		{"already refunded is rejected", alreadyRefunded},
		{"pending then terminal", pendingThenTerminal},
		{"auth failure", authFailure},
		{"5xx then success, reconciled first", func(t *testing.T, h *Harness) { notAppliedThenSettled(t, h, sim.Status5xx) }},
		{"429 honoured", rateLimited},
		{"applied then reset is reconciled", func(t *testing.T, h *Harness) { appliedThenLost(t, h, sim.AppliedThenReset) }},
		{"applied then timeout is reconciled", func(t *testing.T, h *Harness) { appliedThenLost(t, h, sim.AppliedThenTimeout) }},
		{"look-up of a refund never sent", neverSent},
		{"reset before apply is resent safely", func(t *testing.T, h *Harness) { notAppliedThenSettled(t, h, sim.ResetBeforeApply) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			c.run(t, h)
		})
	}
}

func money(h *Harness, minor int64) tasks.Money {
	return tasks.Money{Minor: minor, Currency: h.Currency}
}

func newRefund(h *Harness, t *testing.T, paid, refund int64) (providers.Refund, string) {
	order, txn := h.Pay(t, money(h, paid))
	return providers.Refund{
		RefundID: "rf-" + uuid.NewString()[:8], OrderID: order, TransactionID: txn,
		Amount: money(h, refund), Reason: "requested", Key: uuid.Must(uuid.NewV7()).String(),
	}, order
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// settle drives a refund the way the worker does: a resend only after a
// look-up shows nothing was applied (or after a Transient answer, which
// promises nothing was).
func settle(t *testing.T, p providers.Provider, r providers.Refund, out providers.Outcome) providers.Outcome {
	t.Helper()
	for range 20 {
		switch out.Kind {
		case providers.Succeeded, providers.Rejected:
			return out
		case providers.Transient:
			out = p.Refund(ctx(t), r)
		case providers.Pending, providers.Unknown:
			out = p.Lookup(ctx(t), r)
			if out.Kind == providers.NotFound {
				out = p.Refund(ctx(t), r)
			}
		default:
			t.Fatalf("unexpected outcome %v", out)
		}
	}
	t.Fatalf("refund not settled after 20 calls: %v", out)
	return out
}

func wantApplied(t *testing.T, h *Harness, order string, want ...int64) {
	t.Helper()
	got := h.Applied(order)
	if len(got) != len(want) {
		t.Fatalf("ledger for %s has %d refunds %v, want %v", order, len(got), got, want)
	}
	for i := range want {
		if got[i] != money(h, want[i]) {
			t.Fatalf("ledger for %s = %v, want %v", order, got, want)
		}
	}
}

func wantKind(t *testing.T, what string, out providers.Outcome, kind providers.Kind) {
	t.Helper()
	if out.Kind != kind {
		t.Fatalf("%s = %v, want %s", what, out, kind)
	}
}

func fullRefund(t *testing.T, h *Harness) {
	r, order := newRefund(h, t, 1500, 1500)
	out := h.Provider.Refund(ctx(t), r)
	wantKind(t, "refund", out, providers.Succeeded)
	wantApplied(t, h, order, 1500)
	wantKind(t, "look-up after success", h.Provider.Lookup(ctx(t), r), providers.Succeeded)
}

func partialRefunds(t *testing.T, h *Harness) {
	if !h.Partial {
		t.Skip("provider refunds whole payments only")
	}
	r, order := newRefund(h, t, 10000, 4000)
	wantKind(t, "first partial refund", h.Provider.Refund(ctx(t), r), providers.Succeeded)
	wantApplied(t, h, order, 4000)
	if !h.Multiple {
		return
	}
	r2 := r
	r2.Amount, r2.Key = money(h, 3550), uuid.Must(uuid.NewV7()).String()
	wantKind(t, "second partial refund", h.Provider.Refund(ctx(t), r2), providers.Succeeded)
	wantApplied(t, h, order, 4000, 3550)
}

func amountTooBig(t *testing.T, h *Harness) {
	if !h.AmountSet {
		t.Skip("the refund request carries no amount")
	}
	r, order := newRefund(h, t, 1000, 1001)
	out := h.Provider.Refund(ctx(t), r)
	wantKind(t, "refund of more than was paid", out, providers.Rejected)
	if out.Reason == "" {
		t.Fatal("rejected without a reason a human can act on")
	}
	wantApplied(t, h, order)
}

func alreadyRefunded(t *testing.T, h *Harness) {
	r, order := newRefund(h, t, 1000, 1000)
	wantKind(t, "first refund", h.Provider.Refund(ctx(t), r), providers.Succeeded)
	again := r
	again.Key = uuid.Must(uuid.NewV7()).String() // a different refund of the same payment
	again.RefundID += "-again"
	out := settle(t, h.Provider, again, h.Provider.Refund(ctx(t), again))
	wantKind(t, "second full refund of one payment", out, providers.Rejected)
	wantApplied(t, h, order, 1000)
}

func pendingThenTerminal(t *testing.T, h *Harness) {
	if h.MakePending == nil {
		t.Skip("provider has no pending state")
	}
	r, order := newRefund(h, t, 2000, 2000)
	h.MakePending(order, 2)
	out := h.Provider.Refund(ctx(t), r)
	wantKind(t, "refund", out, providers.Pending)
	out = settle(t, h.Provider, r, out)
	wantKind(t, "settled", out, providers.Succeeded)
	wantApplied(t, h, order, 2000)
}

func authFailure(t *testing.T, h *Harness) {
	r, order := newRefund(h, t, 1000, 1000)
	out := h.WrongAuth.Refund(ctx(t), r)
	wantKind(t, "refund with a wrong credential", out, providers.Rejected)
	if !strings.Contains(strings.ToLower(out.Reason), "auth") {
		t.Fatalf("reason %q does not point at the credentials", out.Reason)
	}
	wantApplied(t, h, order)
	if out := h.WrongAuth.Lookup(ctx(t), r); out.Kind == providers.Rejected || out.Kind == providers.NotFound || out.Kind == providers.Succeeded {
		t.Fatalf("look-up with a wrong credential = %v; it proves nothing and must be Unknown or Transient", out)
	}
}

// notAppliedThenSettled: the refund call fails without the provider applying
// it (a 5xx page, a connection reset before the request was read); the
// outcome is unknown or transient, and settling it pays exactly once.
func notAppliedThenSettled(t *testing.T, h *Harness, kind sim.Kind) {
	r, order := newRefund(h, t, 1000, 1000)
	m, p := h.RefundCall(order)
	h.Faults.Next(1, m, p, kind)
	out := h.Provider.Refund(ctx(t), r)
	if out.Kind != providers.Unknown && out.Kind != providers.Transient {
		t.Fatalf("refund met by %s = %v, want unknown or transient", kind, out)
	}
	wantApplied(t, h, order)
	wantKind(t, "settled", settle(t, h.Provider, r, out), providers.Succeeded)
	wantApplied(t, h, order, 1000)
}

func rateLimited(t *testing.T, h *Harness) {
	r, order := newRefund(h, t, 1000, 1000)
	m, p := h.RefundCall(order)
	h.Faults.Next(1, m, p, sim.RateLimited)
	out := h.Provider.Refund(ctx(t), r)
	wantKind(t, "refund answered 429", out, providers.Transient)
	if out.RetryAfter <= 0 {
		t.Fatalf("Retry-After not passed on: %v", out)
	}
	wantApplied(t, h, order)
	wantKind(t, "settled", settle(t, h.Provider, r, out), providers.Succeeded)
	wantApplied(t, h, order, 1000)
}

func appliedThenLost(t *testing.T, h *Harness, kind sim.Kind) {
	r, order := newRefund(h, t, 1000, 1000)
	m, p := h.RefundCall(order)
	h.Faults.Next(1, m, p, kind)
	c, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	out := h.Provider.Refund(c, r)
	wantKind(t, "refund whose answer was lost", out, providers.Unknown)
	wantApplied(t, h, order, 1000) // the provider did apply it
	wantKind(t, "reconciled", settle(t, h.Provider, r, out), providers.Succeeded)
	wantApplied(t, h, order, 1000) // and it was not sent again
}

func neverSent(t *testing.T, h *Harness) {
	r, order := newRefund(h, t, 1000, 1000)
	wantKind(t, "look-up before any send", h.Provider.Lookup(ctx(t), r), providers.NotFound)
	wantApplied(t, h, order)
}
