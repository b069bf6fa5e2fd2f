package bbmsl

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/refundq/refundq/providers"
)

// Refund asks for the refund, signed. What Prepare read (r.Before) is
// checked again first: a refund in another currency than the order's is
// never sent.
func (c *Client) Refund(ctx context.Context, r providers.Refund) providers.Outcome {
	inner, err := c.target(r)
	if err != nil {
		return providers.Outcome{Kind: providers.Rejected, Reason: err.Error() + "; nothing sent"}
	}
	if before, err := readSnapshot(r.Before); err == nil && before.Currency != r.Amount.Currency {
		return providers.Outcome{Kind: providers.Rejected, Reason: currencyReason(before.Currency, r.Amount)}
	}
	inner["amount"] = json.Number(r.Amount.Decimal())
	a, out, ok := c.post(ctx, refundPath, inner)
	if !ok {
		return out
	}
	out = refundOutcome(a, r, out)
	if out.Kind == providers.Succeeded && r.Known.Open(GuessQueryOrder) {
		c.learn(ctx, r, &out)
	}
	return out
}

// refundOutcome classifies a refund answer with a responseCode:
//
//	non-0000, a credential refusal      Blocked (nothing applied; see credentialRefusals)
//	non-0000, any other                 Unknown (undocumented: look the order up)
//	0000 without a transaction          Unknown
//	transaction.type not REFUND         Unknown
//	transaction SUCCESS, our amount     Succeeded (reference transaction.id)
//	transaction SUCCESS, other amount   Review
//	transaction DECLINED                Rejected (no reference: nothing of it is on the order)
//	any other transaction status        Unknown
func refundOutcome(a answer, r providers.Refund, out providers.Outcome) providers.Outcome {
	if a.ResponseCode != successCode {
		return refusal(a, out)
	}
	t := a.Transaction
	if t == nil {
		out.Kind, out.Reason = providers.Unknown, `responseCode "0000" without a transaction: nothing says what was refunded`
		return out
	}
	out.Status, out.Reference = t.Status, providers.IDText(t.ID)
	if t.Type != txnRefund {
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("transaction type %q, not %q", t.Type, txnRefund)
		return out
	}
	switch t.Status {
	case txnSuccess:
		got, err := t.money(a.Order, r.Amount.Currency)
		switch {
		case err != nil:
			out.Kind, out.Reason = providers.Unknown, "refund transaction SUCCESS, but "+err.Error()
		case got != r.Amount:
			out.Kind, out.Reason = providers.Review, fmt.Sprintf("BBMSL refunded %s; the refund asks %s", got, r.Amount)
		default:
			out.Kind = providers.Succeeded
		}
	case txnDeclined:
		// The declined transaction is no refund on the order: its id is not
		// the refund's reference (a later refund of the order would take it
		// for the order's one refund), only a word in the reason.
		out.Kind, out.Reason = providers.Rejected, fmt.Sprintf("BBMSL declined the refund (transaction %s DECLINED by the scheme or issuer)", out.Reference)
		out.Reference = ""
		if a.Message != "" {
			out.Reason += ": " + a.Message
		}
	default:
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("refund transaction status %q", t.Status)
	}
	return out
}

// learn makes one query right after a successful refund: the order has our
// refund now, so the query either shows it as the refund answer did, or
// the guess does not hold.
func (c *Client) learn(ctx context.Context, r providers.Refund, out *providers.Outcome) {
	a, _, ok := c.query(ctx, r)
	if !ok || a.ResponseCode != successCode || a.Order == nil {
		return // no usable answer: nothing learned this time
	}
	o := a.Order
	switch o.Status {
	case orderRefunded:
		refunded, amount, net, err := o.refunded()
		switch {
		case err != nil:
			out.Observe(GuessQueryOrder, false, "query after a refund shows the order REFUNDED, but "+err.Error())
		case refunded == r.Amount:
			out.Observe(GuessQueryOrder, true, fmt.Sprintf("query after a refund of %s shows the order REFUNDED, amount %s, netAmount %s", r.Amount, amount, net))
		default:
			out.Observe(GuessQueryOrder, false, fmt.Sprintf("query after a refund of %s shows the order REFUNDED, amount %s, netAmount %s", r.Amount, amount, net))
		}
	case orderPaid, orderSettled:
		out.Observe(GuessQueryOrder, false, fmt.Sprintf("query after a refund of %s shows the order %s", r.Amount, o.Status))
	}
}
