package ecomcharge

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/tasks"
)

// transaction is the part of ecomCharge's transaction the adapter reads.
type transaction struct {
	UID             string       `json:"uid"`
	Status          string       `json:"status"`
	Type            string       `json:"type"`
	Amount          *json.Number `json:"amount"` // integer minor units; nil when absent
	Currency        string       `json:"currency"`
	Message         string       `json:"message"`
	ParentUID       string       `json:"parent_uid"`
	TrackingID      string       `json:"tracking_id"` // documented on payments; a guess on refunds
	Test            *bool        `json:"test"`        // the shop's mode; nil when absent
	Code            string       `json:"code"`
	FriendlyMessage string       `json:"friendly_message"`
}

// notOurs says why a transaction is not a refund of ours ("" if it may be):
// another tracking_id, another type, another parent payment.
func notOurs(t transaction, r providers.Refund) string {
	switch {
	case t.TrackingID != "" && t.TrackingID != r.Key:
		return fmt.Sprintf("transaction %s has tracking_id %q", t.UID, t.TrackingID)
	case t.Type != "" && t.Type != refundType:
		return fmt.Sprintf("transaction %s is of type %q", t.UID, t.Type)
	case t.ParentUID != "" && r.TransactionID != "" && t.ParentUID != r.TransactionID:
		return fmt.Sprintf("transaction %s refunds payment %s", t.UID, t.ParentUID)
	}
	return ""
}

// classify maps a refund transaction to an outcome, checking a success's
// amount and currency against the request.
func classify(t transaction, r providers.Refund, out providers.Outcome) providers.Outcome {
	out.Reference, out.Status = t.UID, t.Status
	switch {
	case t.Status == statusSuccessful:
		out.Kind, out.Reason = providers.Succeeded, ""
		if why := mismatch(t, r.Amount); why != "" {
			out.Kind, out.Reason = providers.Review, why
		}
	case t.Status == statusFailed && isDuplicate(t.Message+" "+t.FriendlyMessage, t.Code):
		out = duplicateOutcome(r.Attempt, firstOf(t.Message, t.FriendlyMessage, t.Code), out)
		out.Reference, out.Status = t.UID, t.Status
	case t.Status == statusFailed:
		out.Kind, out.Reason = providers.Rejected, "refund failed at ecomCharge: "+firstOf(t.Message, t.FriendlyMessage, "no message")
		if t.Code != "" {
			out.Reason += " (code " + t.Code + ")"
		}
	case isPending(t.Status):
		out.Kind, out.Reason = providers.Pending, "ecomCharge has not finished the refund"
	default: // error, expired (guess) or undocumented: fail closed
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("refund transaction status %q: whether money moved is not known", t.Status)
	}
	return out
}

// mismatch says how a successful refund differs from what was asked: its
// amount (integer minor units) and, when the answer has one, its currency.
// An absent or non-integer amount cannot be checked, and is a mismatch.
func mismatch(t transaction, want tasks.Money) string {
	if t.Currency != "" && !strings.EqualFold(t.Currency, want.Currency) {
		return fmt.Sprintf("ecomCharge refunded %s while %s was asked: another currency", amountText(t.Amount, t.Currency), want)
	}
	if t.Amount == nil {
		return fmt.Sprintf("ecomCharge answered refund %s successful without an amount; %s was asked", t.UID, want)
	}
	got, err := t.Amount.Int64()
	if err != nil {
		return fmt.Sprintf("ecomCharge answered refund %s successful with amount %q, not an integer in minor units; %s was asked", t.UID, t.Amount.String(), want)
	}
	if got != want.Minor {
		return fmt.Sprintf("ecomCharge refunded %s while %s was asked", providers.MinorText(got, want.Currency), want)
	}
	return ""
}

// amountText shows an answer's amount (minor units of currency) in major
// units where it is an integer; anything else as ecomCharge wrote it.
func amountText(n *json.Number, currency string) string {
	if n == nil {
		return "(no amount) " + currency
	}
	if v, err := n.Int64(); err == nil {
		return providers.MinorText(v, currency)
	}
	return n.String() + " " + currency
}

// rank orders the statuses of several refunds with our tracking id: one
// that moved money wins, then one still running, then an uncertain one.
func rank(status string) int {
	switch {
	case status == statusSuccessful:
		return 4
	case isPending(status):
		return 3
	case status == statusFailed:
		return 1
	}
	return 2
}

func isPending(status string) bool {
	for _, s := range statusPending {
		if status == s {
			return true
		}
	}
	return false
}

// parseTransaction reads {"transaction": {...}} with a uid and a status.
func parseTransaction(body []byte) (transaction, bool) {
	var env struct {
		Transaction *transaction `json:"transaction"`
	}
	if json.Unmarshal(body, &env) != nil || env.Transaction == nil || env.Transaction.UID == "" || env.Transaction.Status == "" {
		return transaction{}, false
	}
	return *env.Transaction, true
}

// parseList reads {"transactions": [...]} (or one {"transaction": {...}});
// every entry must have a uid and a status. An answer without either key
// (e.g. {}) is unreadable, never an empty list.
func parseList(body []byte) ([]transaction, bool) {
	var env struct {
		Transactions *[]transaction `json:"transactions"`
		Transaction  *transaction   `json:"transaction"`
	}
	if json.Unmarshal(body, &env) != nil {
		return nil, false
	}
	var list []transaction
	switch {
	case env.Transactions != nil && *env.Transactions != nil:
		list = *env.Transactions
	case env.Transaction != nil:
		list = []transaction{*env.Transaction}
	default:
		return nil, false
	}
	for _, t := range list {
		if t.UID == "" || t.Status == "" {
			return nil, false
		}
	}
	return list, true
}

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
