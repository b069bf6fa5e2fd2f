package moyasarpgsim

import (
	"time"

	"github.com/refundq/refundq/providers/sim"
	"github.com/refundq/refundq/tasks"
)

// What a reconciliation must catch: the provider's books changing after
// refundq recorded a refund final. Neither is anything MPG documents; both
// are what a finance team's daily check exists for.

// ShortenApplied makes the approved refund transaction with this id (our
// transaction_id, with Guessed on) on the order show one minor unit less
// than it did: "another amount" found after the refund succeeded. It
// reports whether there was such a transaction.
func (s *Simulator) ShortenApplied(orderID, txnID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.orders[orderID]
	if o == nil {
		return false
	}
	for _, t := range o.txns {
		if t.id == txnID && t.typ == refundType && t.status == approved {
			t.amount--
			o.refunded--
			o.updated = time.Now().UTC()
			return true
		}
	}
	return false
}

// ApplyLate records on the order an approved refund of amount carrying
// transaction_id key, as if a request refundq recorded failed had been
// applied after all, and moves its money in the ledger.
func (s *Simulator) ApplyLate(orderID, key string, amount tasks.Money) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.order(orderID)
	if o == nil {
		return
	}
	id := s.newID()
	if s.guessed {
		id = key
	}
	t := &simTxn{id: id, key: key, typ: refundType, status: approved, message: "APPROVED",
		amount: amount.Minor, stan: s.nextStan(), created: time.Now().UTC()}
	o.txns = append(o.txns, t)
	o.refunded += amount.Minor
	o.updated = t.created
	s.Record(sim.Entry{OrderID: o.id, Ref: t.id, Key: key, Amount: amount})
}
