package bbmsl

import (
	"fmt"
	"slices"
	"strings"

	"github.com/refundq/refundq/providers"
)

// heldByOther reports whether the order's one refund may be another refund
// of ours (r.OtherRefs): yes when the answer names the refund transaction
// and it is one of them, or names none and other refunds of ours exist.
func heldByOther(a answer, r providers.Refund) (bool, string) {
	if len(r.OtherRefs) == 0 {
		return false, ""
	}
	if t := a.Transaction; t != nil && t.Type == txnRefund && providers.IDText(t.ID) != "" {
		if id := providers.IDText(t.ID); slices.Contains(r.OtherRefs, id) {
			return true, fmt.Sprintf("its refund %s is another refund of ours", id)
		}
		return false, ""
	}
	return true, fmt.Sprintf("BBMSL refunds an order once, and another refund of ours (%s) is recorded on it", strings.Join(r.OtherRefs, ", "))
}

// byReference reads our refund by BBMSL's id of its transaction,
// r.Reference: the id an answer of BBMSL's gave it, or the reference a
// person settled the refund with. It applies when the query answer names a
// refund transaction beside the order (only the refund answer documents
// one, so the query may or may not): the transaction with exactly that id is
// ours without any guess, so no amount is matched:
//
//	the answer names no transaction, or one that    ok false: the order decides, as without a
//	  is not a refund and has another id              reference, but never NotFound (see lookupKind)
//	a refund transaction with another id            Unknown (this refund may show late: it proves nothing)
//	our id on a transaction that is not a refund    Review (the reference names something else)
//	no currency in the answer or in what Prepare    Unknown (the currency cannot be checked)
//	  read before the send
//	an amount that cannot be read, another amount   Review (another refund's, or a wrong reference)
//	  or currency
//	SUCCESS                                         Succeeded
//	DECLINED                                        Rejected (no reference: nothing of it is on the order)
//	any other status                                Unknown
func byReference(a answer, r providers.Refund, out providers.Outcome) (providers.Outcome, bool) {
	t, ref := a.Transaction, r.Reference
	if t == nil || providers.IDText(t.ID) == "" || (providers.IDText(t.ID) != ref && t.Type != txnRefund) {
		return out, false
	}
	if id := providers.IDText(t.ID); id != ref {
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("the order's refund transaction is %s, not %s, BBMSL's id of this refund: this proves nothing by itself", id, ref)
		return out, true
	}
	currency := t.Currency
	if currency == "" && a.Order != nil {
		currency = a.Order.Currency
	}
	if before, err := readSnapshot(r.Before); currency == "" && err == nil {
		currency = before.Currency
	}
	out.Status = t.Status
	if t.Type != txnRefund {
		out.Kind, out.Reason = providers.Review, fmt.Sprintf("transaction %s, recorded as BBMSL's id of this refund, is of type %q, not a refund: the reference names something else", ref, t.Type)
		return out, true
	}
	if currency == "" {
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("refund transaction %s shows no currency, nor does its order, so it cannot be checked against the refund's %s", ref, r.Amount.Currency)
		return out, true
	}
	got, err := t.money(a.Order, currency)
	switch {
	case err != nil:
		out.Kind, out.Reason = providers.Review, fmt.Sprintf("refund transaction %s, recorded as BBMSL's id of this refund: %s; the refund asks %s", ref, err, r.Amount)
	case got != r.Amount:
		out.Kind, out.Reason = providers.Review, fmt.Sprintf("refund transaction %s, recorded as BBMSL's id of this refund, is a refund of %s; the refund asks %s: it is another refund, or the reference is wrong",
			ref, got, r.Amount)
	case t.Status == txnSuccess:
		out.Kind, out.Reference, out.Reason = providers.Succeeded, ref, "found by BBMSL's id of this refund, "+ref
	case t.Status == txnDeclined:
		out.Kind, out.Reason = providers.Rejected, fmt.Sprintf("BBMSL declined the refund (transaction %s, BBMSL's id of this refund, DECLINED by the scheme or issuer)", ref)
	default:
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("refund transaction %s, BBMSL's id of this refund, in status %q", ref, t.Status)
	}
	return out, true
}
