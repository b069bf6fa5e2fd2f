// Package providertest is the conformance suite every provider adapter must
// pass against its simulator: one shared test function, run per provider and
// per answer shape (the shape the provider's documents show, and the same
// with the fields we only guess at switched on), asserting on the simulator's
// ledger and not only on the outcome returned.
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

// Shape is how a simulator answers.
type Shape int

const (
	// Documented: exactly the fields the provider's documents show.
	Documented Shape = iota
	// Guessed: the documented answer plus every field the adapter only
	// guesses at (a refund list on the order, our key echoed, …).
	Guessed
)

func (s Shape) String() string {
	if s == Guessed {
		return "guessed"
	}
	return "documented"
}

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
	// HideEvidence makes the simulator leave out of its look-up answers the
	// part that would show a refund (a status, a list, a field), as a
	// provider that changed its answer might. A look-up must then be Unknown.
	HideEvidence func()
	// WrongAmount makes the simulator apply the next refund on the order one
	// minor unit short, and say so in its answer; nil when the provider's
	// answers carry no refund amount.
	WrongAmount func(orderID string)

	Partial   bool // partial refunds exist
	Multiple  bool // more than one refund per payment
	AmountSet bool // the refund request carries an amount the provider checks
	// Keyless mirrors the registry entry: "not applied" is trusted only from
	// two look-ups SettleDelay apart.
	Keyless bool
	// ProvesAbsence: in this shape, once the adapter has learned what it can,
	// a look-up can prove a refund was never applied. Where it cannot (the
	// documented answer has no such field), an uncertain refund must stay
	// Unknown, never be resent.
	ProvesAbsence bool
	// Guesses are the adapter's guesses (its registry entry's).
	Guesses []providers.GuessInfo
}

// SettleDelay is the settle delay the suite's driver uses; the simulators'
// late applies (Faults.LateBy) must land well inside it.
const SettleDelay = 400 * time.Millisecond

// Run runs the conformance suite in both shapes; newHarness is called once
// per case so cases do not share ledgers or faults.
func Run(t *testing.T, newHarness func(t *testing.T, shape Shape) *Harness) {
	cases := []struct {
		name string
		run  func(t *testing.T, h *Harness, d *driver)
	}{
		{"full refund", fullRefund},
		{"partial refunds", partialRefunds},
		{"amount too big is rejected", amountTooBig},
		{"already refunded is rejected", alreadyRefunded},
		{"pending then terminal", pendingThenTerminal},
		{"auth failure blocks", authFailure},
		{"5xx then settled, reconciled first", func(t *testing.T, h *Harness, d *driver) { notApplied(t, h, d, sim.Status5xx) }},
		{"reset before apply", func(t *testing.T, h *Harness, d *driver) { notApplied(t, h, d, sim.ResetBeforeApply) }},
		{"429 honoured", rateLimited},
		{"applied then reset is reconciled", func(t *testing.T, h *Harness, d *driver) { appliedThenLost(t, h, d, sim.AppliedThenReset) }},
		{"applied then timeout is reconciled", func(t *testing.T, h *Harness, d *driver) { appliedThenLost(t, h, d, sim.AppliedThenTimeout) }},
		{"applied after the client gave up", lateApply},
		{"refusal after an unknown", refusalAfterUnknown},
		{"look-up of a refund never sent", neverSent},
		{"look-up without the evidence is unknown", evidenceAbsent},
		{"success with the wrong amount goes to review", wrongAmount},
	}
	for _, shape := range []Shape{Documented, Guessed} {
		t.Run(shape.String(), func(t *testing.T) {
			t.Run("guesses learned", func(t *testing.T) { learnGuesses(t, newHarness(t, shape), shape) })
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					h := newHarness(t, shape)
					h.Faults.LateBy, h.Faults.HangFor = SettleDelay/4, 2*time.Second
					d := newDriver(t, h)
					d.warmUp()
					c.run(t, h, d)
				})
			}
		})
	}
}

func money(h *Harness, minor int64) tasks.Money {
	return tasks.Money{Minor: minor, Currency: h.Currency}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// driver makes the calls the worker makes, by the worker's rules: Prepare
// before each send, learn from every answer, trust a look-up's NotFound only
// SettleDelay after the send (and, for a keyless provider, only from two
// look-ups that far apart), and resend only then.
type driver struct {
	t      *testing.T
	h      *Harness
	known  providers.Knowledge
	sentAt time.Time
	// refs holds, per order, the provider's reference of each refund that
	// succeeded (by refund id): for a keyless provider the worker hands
	// the others' to every call about a refund on the order (OtherRefs).
	refs map[string]map[string]string
}

func newDriver(t *testing.T, h *Harness) *driver {
	return &driver{t: t, h: h, known: providers.Knowledge{}, refs: map[string]map[string]string{}}
}

// others sets r.OtherRefs as the worker does: for a keyless provider, the
// references of the other refunds of ours known on the order.
func (d *driver) others(r *providers.Refund) {
	if !d.h.Keyless {
		return
	}
	r.OtherRefs = nil
	for id, ref := range d.refs[r.OrderID] {
		if id != r.RefundID {
			r.OtherRefs = append(r.OtherRefs, ref)
		}
	}
}

// record keeps the reference of a refund that succeeded.
func (d *driver) record(r *providers.Refund, out providers.Outcome) providers.Outcome {
	if out.Kind == providers.Succeeded && out.Reference != "" {
		if d.refs[r.OrderID] == nil {
			d.refs[r.OrderID] = map[string]string{}
		}
		d.refs[r.OrderID][r.RefundID] = out.Reference
	}
	return out
}

func (d *driver) learn(out providers.Outcome) providers.Outcome {
	for _, o := range out.Observed {
		switch {
		case !o.Holds:
			d.known[o.Guess] = providers.Refuted
		case d.known[o.Guess] != providers.Refuted:
			d.known[o.Guess] = providers.Confirmed
		}
	}
	return out
}

// warmUp makes one refund on a payment of its own, so the adapter learns
// what the provider's answers show, as it would in production before any
// refund goes wrong.
func (d *driver) warmUp() {
	r, _ := d.newRefund(5000, 5000)
	d.settle(&r, d.send(&r))
}

func (d *driver) newRefund(paid, refund int64) (providers.Refund, string) {
	order, txn := d.h.Pay(d.t, money(d.h, paid))
	return providers.Refund{
		RefundID: "rf-" + uuid.NewString()[:8], OrderID: order, TransactionID: txn,
		Amount: money(d.h, refund), Reason: "requested", Key: uuid.Must(uuid.NewV7()).String(),
	}, order
}

// send makes one attempt: Prepare (where the adapter has it), then Refund.
func (d *driver) send(r *providers.Refund) providers.Outcome {
	return d.sendWith(ctx(d.t), r)
}

func (d *driver) sendWith(c context.Context, r *providers.Refund) providers.Outcome {
	r.Known = d.known
	d.others(r)
	if p, ok := d.h.Provider.(providers.Preparer); ok {
		before, out, ok := p.Prepare(ctx(d.t), *r)
		if !ok {
			return d.learn(out)
		}
		r.Before = before
	}
	r.Attempt++
	d.sentAt = time.Now()
	return d.record(r, d.learn(d.h.Provider.Refund(c, *r)))
}

// lookup asks what became of r, and returns NotFound only once it is proven
// by the settle rules.
func (d *driver) lookup(r *providers.Refund) providers.Outcome {
	r.Known = d.known
	d.others(r)
	out := d.record(r, d.learn(d.h.Provider.Lookup(ctx(d.t), *r)))
	if out.Kind != providers.NotFound || d.sentAt.IsZero() {
		return out
	}
	if wait := time.Until(d.sentAt.Add(SettleDelay)); wait > 0 {
		time.Sleep(wait)
		return d.lookup(r)
	}
	if d.h.Keyless {
		time.Sleep(SettleDelay)
		r.Known = d.known
		out = d.record(r, d.learn(d.h.Provider.Lookup(ctx(d.t), *r)))
	}
	return out
}

// settle drives a refund to an answer the worker would act on: Succeeded,
// Rejected, Blocked or Review; or Unknown when nothing can prove what
// happened (the worker then hands it to a human).
func (d *driver) settle(r *providers.Refund, out providers.Outcome) providers.Outcome {
	d.t.Helper()
	for range 12 {
		switch out.Kind {
		case providers.Succeeded, providers.Rejected, providers.Blocked, providers.Review:
			return out
		case providers.Transient:
			out = d.send(r)
		case providers.Pending, providers.Unknown:
			if out.Reference != "" {
				// What the worker records and hands back: the provider's id
				// of the refund, for a look-up by id.
				r.Reference = out.Reference
			}
			out = d.lookup(r)
			if out.Kind == providers.NotFound {
				out = d.send(r)
			}
		default:
			d.t.Fatalf("unexpected outcome %v", out)
		}
	}
	if out.Kind == providers.Unknown {
		return out
	}
	d.t.Fatalf("refund not settled after 12 calls: %v", out)
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

// wantSettledOnce checks the end of a refund that may or may not have been
// applied: paid exactly once and Succeeded; or, where the shape cannot prove
// absence, Unknown and paid at most once — never paid and recorded refused,
// never paid twice.
func wantSettledOnce(t *testing.T, h *Harness, order string, out providers.Outcome, amount int64) {
	t.Helper()
	got := h.Applied(order)
	switch {
	case len(got) > 1:
		t.Fatalf("paid %d times: %v (outcome %v)", len(got), got, out)
	case out.Kind == providers.Succeeded:
		wantApplied(t, h, order, amount)
	case out.Kind == providers.Unknown && !h.ProvesAbsence:
		// Left for a human: acceptable, as long as nothing was paid twice.
	case len(got) == 1:
		t.Fatalf("paid once but the outcome is %v", out)
	default:
		t.Fatalf("outcome %v, ledger %v; want the refund settled", out, got)
	}
}

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
