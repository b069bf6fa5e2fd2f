package providertest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/providers/sim"
)

// learnGuesses: in the guessed shape the adapter confirms every guess from
// the provider's own answers; in the documented shape none is confirmed.
func learnGuesses(t *testing.T, h *Harness, shape Shape) {
	d := newDriver(t, h)
	for range 2 {
		d.warmUp()
	}
	for _, g := range h.Guesses {
		v := d.known[g.Guess]
		if shape == Guessed && v != providers.Confirmed {
			t.Errorf("guess %s is %s after refunds against the guessed shape; the adapter never learns it", g.Guess, v)
		}
		if shape == Documented && v == providers.Confirmed {
			t.Errorf("guess %s confirmed by answers of the documented shape, which do not show it", g.Guess)
		}
	}
}

func fullRefund(t *testing.T, h *Harness, d *driver) {
	r, order := d.newRefund(1500, 1500)
	out := d.send(&r)
	wantKind(t, "refund", out, providers.Succeeded)
	wantApplied(t, h, order, 1500)
	if out := d.lookup(&r); out.Kind != providers.Succeeded && !(out.Kind == providers.Unknown && !h.ProvesAbsence) {
		t.Fatalf("look-up after success = %v", out)
	}
}

func partialRefunds(t *testing.T, h *Harness, d *driver) {
	if !h.Partial {
		t.Skip("provider refunds whole payments only")
	}
	r, order := d.newRefund(10000, 4000)
	wantKind(t, "first partial refund", d.send(&r), providers.Succeeded)
	wantApplied(t, h, order, 4000)
	if !h.Multiple {
		return
	}
	r2 := r
	r2.RefundID, r2.Attempt, r2.Before = r.RefundID+"-2", 0, nil
	r2.Amount, r2.Key = money(h, 3550), uuid.Must(uuid.NewV7()).String()
	wantKind(t, "second partial refund", d.send(&r2), providers.Succeeded)
	wantApplied(t, h, order, 4000, 3550)
}

func amountTooBig(t *testing.T, h *Harness, d *driver) {
	if !h.AmountSet {
		t.Skip("the refund request carries no amount")
	}
	r, order := d.newRefund(1000, 1001)
	out := d.send(&r)
	wantKind(t, "refund of more than was paid", out, providers.Rejected)
	if out.Reason == "" {
		t.Fatal("rejected without a reason a human can act on")
	}
	wantApplied(t, h, order)
}

func alreadyRefunded(t *testing.T, h *Harness, d *driver) {
	r, order := d.newRefund(1000, 1000)
	wantKind(t, "first refund", d.send(&r), providers.Succeeded)
	again := r
	again.Key, again.Attempt, again.Before = uuid.Must(uuid.NewV7()).String(), 0, nil // a different refund of the same payment
	again.RefundID += "-again"
	out := d.settle(&again, d.send(&again))
	wantKind(t, "second full refund of one payment", out, providers.Rejected)
	wantApplied(t, h, order, 1000)
}

func pendingThenTerminal(t *testing.T, h *Harness, d *driver) {
	if h.MakePending == nil {
		t.Skip("provider has no pending state")
	}
	r, order := d.newRefund(2000, 2000)
	h.MakePending(order, 2)
	out := d.send(&r)
	wantKind(t, "refund", out, providers.Pending)
	out = d.settle(&r, out)
	wantSettledOnce(t, h, order, out, 2000)
}

func authFailure(t *testing.T, h *Harness, d *driver) {
	r, order := d.newRefund(1000, 1000)
	out := h.WrongAuth.Refund(ctx(t), r)
	wantKind(t, "refund with a wrong credential", out, providers.Blocked)
	if !strings.Contains(strings.ToLower(out.Reason), "auth") {
		t.Fatalf("reason %q does not point at the credentials", out.Reason)
	}
	wantApplied(t, h, order)
	switch out := h.WrongAuth.Lookup(ctx(t), r); out.Kind {
	case providers.Unknown, providers.Transient, providers.Blocked:
	default:
		t.Fatalf("look-up with a wrong credential = %v; it proves nothing", out)
	}
}

// notApplied: the refund call fails without the provider applying it (a 5xx
// page, a connection reset before the request was read); the outcome is
// unknown or transient, and settling it pays at most once.
func notApplied(t *testing.T, h *Harness, d *driver, kind sim.Kind) {
	r, order := d.newRefund(1000, 1000)
	m, p := h.RefundCall(order)
	h.Faults.Next(1, m, p, kind)
	out := d.send(&r)
	if out.Kind != providers.Unknown && out.Kind != providers.Transient {
		t.Fatalf("refund met by %s = %v, want unknown or transient", kind, out)
	}
	wantApplied(t, h, order)
	out = d.settle(&r, out)
	wantSettledOnce(t, h, order, out, 1000)
	if h.ProvesAbsence && out.Kind != providers.Succeeded {
		t.Fatalf("a refund provably never applied was not resent: %v", out)
	}
}

func rateLimited(t *testing.T, h *Harness, d *driver) {
	r, order := d.newRefund(1000, 1000)
	m, p := h.RefundCall(order)
	h.Faults.Next(1, m, p, sim.RateLimited)
	out := d.send(&r)
	wantKind(t, "refund answered 429", out, providers.Transient)
	if out.RetryAfter <= 0 {
		t.Fatalf("Retry-After not passed on: %v", out)
	}
	wantApplied(t, h, order)
	wantKind(t, "settled", d.settle(&r, out), providers.Succeeded)
	wantApplied(t, h, order, 1000)
}

func appliedThenLost(t *testing.T, h *Harness, d *driver, kind sim.Kind) {
	r, order := d.newRefund(1000, 1000)
	m, p := h.RefundCall(order)
	h.Faults.Next(1, m, p, kind)
	c, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	out := d.sendWith(c, &r)
	wantKind(t, "refund whose answer was lost", out, providers.Unknown)
	wantApplied(t, h, order, 1000) // the provider did apply it
	out = d.settle(&r, out)
	wantSettledOnce(t, h, order, out, 1000)
}

// lateApply: the provider applies the refund after our client gave up; a
// look-up made at once shows nothing, and only the settle rules keep the
// refund from being paid twice.
func lateApply(t *testing.T, h *Harness, d *driver) {
	r, order := d.newRefund(1000, 1000)
	m, p := h.RefundCall(order)
	h.Faults.Next(1, m, p, sim.AppliedLate)
	c, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	out := d.sendWith(c, &r)
	wantKind(t, "refund the provider is still working on", out, providers.Unknown)
	wantApplied(t, h, order) // not yet
	out = d.settle(&r, out)
	h.Faults.WaitLate()
	wantSettledOnce(t, h, order, out, 1000)
}

// refusalAfterUnknown: an attempt's answer is lost, a resend (the mistake
// the worker must never make without proof, or a resend whose proof was
// wrong) is refused; the refusal must not read as "nothing was paid": a
// look-up still finds the first attempt's refund.
func refusalAfterUnknown(t *testing.T, h *Harness, d *driver) {
	r, order := d.newRefund(1000, 1000)
	m, p := h.RefundCall(order)
	h.Faults.Next(1, m, p, sim.AppliedThenReset)
	out := d.send(&r)
	wantKind(t, "refund whose answer was lost", out, providers.Unknown)
	// The resend, made without proof. It keeps the state read before the
	// first attempt (the worker takes a new one only once the previous
	// attempt is proven not applied).
	r.Attempt++
	r.Known = d.known
	out = d.learn(h.Provider.Refund(ctx(t), r))
	if out.Kind == providers.Succeeded {
		// Moyasar PG replays the first answer for the same transaction_id.
		wantApplied(t, h, order, 1000)
		return
	}
	wantApplied(t, h, order, 1000)
	switch out := d.lookup(&r); out.Kind {
	case providers.Succeeded:
	case providers.Unknown, providers.Review:
		if h.ProvesAbsence {
			t.Fatalf("look-up after the refused resend = %v; the first attempt's refund is there to be found", out)
		}
	default:
		t.Fatalf("look-up after the refused resend = %v; the first attempt was paid", out)
	}
}

func neverSent(t *testing.T, h *Harness, d *driver) {
	r, order := d.newRefund(1000, 1000)
	if p, ok := h.Provider.(providers.Preparer); ok {
		before, out, ok := p.Prepare(ctx(t), r)
		if !ok {
			t.Fatalf("prepare = %v", out)
		}
		r.Before = before
	}
	r.Known = d.known
	out := h.Provider.Lookup(ctx(t), r)
	want := providers.NotFound
	if !h.ProvesAbsence {
		want = providers.Unknown
	}
	wantKind(t, "look-up before any send", out, want)
	wantApplied(t, h, order)
}

// evidenceAbsent: the simulator leaves out the part of its answer that would
// show a refund; the look-up must not read the absence as "not applied".
func evidenceAbsent(t *testing.T, h *Harness, d *driver) {
	if h.HideEvidence == nil {
		t.Fatal("the harness must say how the simulator hides the evidence")
	}
	r, order := d.newRefund(1000, 1000)
	m, p := h.RefundCall(order)
	h.Faults.Next(1, m, p, sim.ResetBeforeApply)
	sent := d.send(&r)
	h.HideEvidence()
	r.Known = d.known
	if out := h.Provider.Lookup(ctx(t), r); out.Kind != providers.Unknown && out.Kind != providers.Transient {
		t.Fatalf("look-up of an answer without the evidence = %v, want unknown (the send: %v)", out, sent)
	}
	wantApplied(t, h, order)
}

func wrongAmount(t *testing.T, h *Harness, d *driver) {
	if h.WrongAmount == nil {
		t.Skip("the provider's answers carry no refund amount in this shape")
	}
	r, order := d.newRefund(1000, 1000)
	h.WrongAmount(order)
	out := d.send(&r)
	wantKind(t, "success for another amount", out, providers.Review)
	if len(h.Applied(order)) != 1 {
		t.Fatalf("ledger %v: the simulator did not apply the short refund", h.Applied(order))
	}
}
