package moyasarpg

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/tasks"
)

// order is the part of MPG's order object the adapter reads.
type order struct {
	ID           string         `json:"id"`
	Currency     string         `json:"currency"`
	Transactions *[]transaction `json:"transactions"` // nil when the key is absent
}

type transaction struct {
	ID      string       `json:"id"`
	Type    string       `json:"type"`
	Status  string       `json:"status"`
	Amount  *json.Number `json:"amount"` // integer minor units; nil when absent
	Message string       `json:"message"`
}

// parseOrder reads a 200 order: it must have an id (ours, where it says)
// and a transactions array, whose entries must have an id, a type and a
// status.
func parseOrder(body []byte, r providers.Refund) (order, []transaction, string) {
	var o order
	if err := json.Unmarshal(body, &o); err != nil || o.ID == "" {
		return order{}, nil, "unreadable order: " + providers.Snippet(body)
	}
	if o.ID != r.OrderID {
		return order{}, nil, fmt.Sprintf("MPG answered with order %s, not %s", o.ID, r.OrderID)
	}
	if o.Transactions == nil {
		return order{}, nil, "order " + o.ID + " answered without its transactions: nothing shows whether our refund is there"
	}
	for _, t := range *o.Transactions {
		if t.ID == "" || t.Type == "" || t.Status == "" {
			return order{}, nil, "order " + o.ID + " lists a transaction without id, type or status: " + providers.Snippet(body)
		}
	}
	return o, *o.Transactions, ""
}

// classify maps our refund transaction to an outcome, checking an approved
// one's amount and the order's currency (the snapshot's, where the answer
// has none) against the request.
func classify(t transaction, o order, r providers.Refund, snap *snapshot, out providers.Outcome) providers.Outcome {
	out.Reference, out.Status = t.ID, t.Status
	if o.Currency == "" && snap != nil {
		o.Currency = snap.Currency
	}
	switch t.Status {
	case statusApproved:
		out.Kind, out.Reason = providers.Succeeded, ""
		if why := mismatch(t, o, r.Amount); why != "" {
			out.Kind, out.Reason = providers.Review, why
		}
	case statusFailed:
		out.Kind, out.Reason = providers.Rejected, "refund failed at MPG: "+orDefault(t.Message, "no message")
	case statusInitiated:
		out.Kind, out.Reason = providers.Pending, "MPG is processing the refund"
	case statusTimeout, statusSystemError:
		// MPG's own documents call these "outcome uncertain" and offer a
		// reversal, not a resend (which would replay the same answer).
		out.Kind = providers.Uncertain
		out.Reason = fmt.Sprintf("MPG shows refund transaction %s of order %s in status %q, which its documents call outcome uncertain: "+
			"whether the money left is not known. Do not resend; check transaction %s with MPG, which offers to reverse it (POST %s)",
			t.ID, o.ID, t.Status, t.ID, reversePath(t.ID))
	default: // a status MPG has not documented
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("refund transaction %s status %q, which MPG does not document: whether money moved is not known", t.ID, t.Status)
	}
	return out
}

// mismatch says how an approved refund differs from what was asked: the
// order's currency (where given) and the refund transaction's amount, in
// integer minor units. An absent or non-integer amount cannot be checked,
// and is a mismatch.
func mismatch(t transaction, o order, want tasks.Money) string {
	if o.Currency != "" && !strings.EqualFold(o.Currency, want.Currency) {
		return fmt.Sprintf("MPG refunded on an order in %s while %s was asked: another currency", o.Currency, want)
	}
	n, err := minor(t.Amount)
	if err != nil {
		return fmt.Sprintf("MPG approved refund %s with %s; %s was asked", t.ID, err, want)
	}
	if n != want.Minor {
		return fmt.Sprintf("MPG refunded %s while %s was asked", providers.MinorText(n, want.Currency), want)
	}
	return ""
}

func minor(n *json.Number) (int64, error) {
	if n == nil {
		return 0, errors.New("no amount")
	}
	v, err := n.Int64()
	if err != nil {
		return 0, fmt.Errorf("amount %q, not an integer in minor units", n.String())
	}
	return v, nil
}
