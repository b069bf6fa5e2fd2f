// Package providertest is the conformance suite every provider adapter must
// pass against its simulator: one shared test function, run per provider and
// per answer shape (the shape the provider's documents show, and the same
// with the fields we only guess at switched on), asserting on the simulator's
// ledger and not only on the outcome returned.
package providertest

import (
	"context"
	"testing"
	"time"

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
