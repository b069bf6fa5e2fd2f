package sim

import (
	"sync"
	"time"

	"github.com/refundq/refundq/tasks"
)

// Entry is one refund that moved money at a simulated provider.
type Entry struct {
	OrderID string // the order (or payment) the refund is on
	Ref     string // the provider's id of the refund transaction
	Key     string // the id refundq sent with it, where the API takes one (Moyasar PG transaction_id, ecomCharge tracking_id)
	Amount  tasks.Money
	At      time.Time
}

// Ledger is a simulator's record of the refunds that moved money, which tests
// and the chaos harness check against refundq's records. Safe for
// concurrent use; a simulator embeds it.
type Ledger struct {
	mu      sync.Mutex
	entries []Entry
}

// Record adds a refund that moved money, stamped now.
func (l *Ledger) Record(e Entry) {
	e.At = time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = append(l.entries, e)
}

// Entries returns every refund that moved money, in the order it did.
func (l *Ledger) Entries() []Entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Entry(nil), l.entries...)
}

// RefundsFor returns the refunds that moved money on one order.
func (l *Ledger) RefundsFor(orderID string) []Entry {
	var out []Entry
	for _, e := range l.Entries() {
		if e.OrderID == orderID {
			out = append(out, e)
		}
	}
	return out
}

// Refunded lists the amounts of the refunds that moved money on one order:
// the ledger question every simulator answers.
func (l *Ledger) Refunded(orderID string) []tasks.Money {
	var out []tasks.Money
	for _, e := range l.RefundsFor(orderID) {
		out = append(out, e.Amount)
	}
	return out
}
