package bbmsl

import (
	"context"
	"fmt"
	"strings"

	"github.com/refundq/refundq/providers"
)

// Lookup queries the order. Where the refund has BBMSL's id of its
// transaction (r.Reference) and the answer names a refund transaction
// beside the order, that id alone decides (see byReference). Otherwise
// BBMSL refunds an order once, so the order shows our refund or none:
//
//	non-0000, a credential refusal                Blocked
//	non-0000 (order not found, …)                 Unknown
//	no order, no status                           Unknown
//	REFUNDED, maybe another refund of ours'       Unknown (r.OtherRefs; BBMSL refunds an order once)
//	REFUNDED, amount − netAmount == ours          Succeeded
//	REFUNDED, another refunded amount             Review
//	REFUNDED, amounts missing or unreadable       Unknown
//	SUCCESS/SETTLED, with a reference             Unknown (the refund the reference names may show late)
//	SUCCESS/SETTLED, netAmount == amount          NotFound if bbmsl.query_order is confirmed, else Unknown
//	SUCCESS/SETTLED otherwise, other statuses     Unknown
//
// What Prepare read before the send (r.Before) is named in the reasons.
func (c *Client) Lookup(ctx context.Context, r providers.Refund) providers.Outcome {
	a, out, ok := c.query(ctx, r)
	if !ok {
		return out
	}
	return lookupOutcome(a, r, out)
}

func lookupOutcome(a answer, r providers.Refund, out providers.Outcome) providers.Outcome {
	out = lookupKind(a, r, out)
	if before, err := readSnapshot(r.Before); err == nil && out.Kind != providers.Blocked {
		out.Reason = strings.TrimPrefix(out.Reason+"; before the send the order was "+before.String(), "; ")
	}
	return out
}

func lookupKind(a answer, r providers.Refund, out providers.Outcome) providers.Outcome {
	if a.ResponseCode != successCode {
		if credentialRefusal(a.Message) {
			out.Kind, out.Reason = providers.Blocked, authReason(a)
			return out
		}
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("query answered code %s: %s", a.ResponseCode, a.Message)
		return out
	}
	o := a.Order
	if o == nil || o.Status == "" {
		out.Kind, out.Reason = providers.Unknown, "query answer shows no order status"
		return out
	}
	out.Status = o.Status
	if r.Reference != "" {
		if out, ok := byReference(a, r, out); ok {
			return out
		}
	}
	refunded, amount, net, err := o.refunded()
	switch o.Status {
	case orderRefunded:
		other, why := heldByOther(a, r)
		switch {
		case other:
			out.Kind, out.Reason = providers.Unknown, "order REFUNDED: "+why
		case err != nil:
			out.Kind, out.Reason = providers.Unknown, "order REFUNDED, but "+err.Error()
		case r.Known[GuessQueryOrder] == providers.Refuted:
			out.Kind, out.Reason = providers.Unknown, fmt.Sprintf(
				"order REFUNDED, amount %s, netAmount %s; %s is refuted, so what was refunded is unknown", amount, net, GuessQueryOrder)
		case refunded != r.Amount:
			out.Kind, out.Reason = providers.Review, fmt.Sprintf(
				"order REFUNDED %s (amount %s, netAmount %s); the refund asks %s", refunded, amount, net, r.Amount)
		default:
			out.Kind = providers.Succeeded
			if t := a.Transaction; t != nil && t.Type == txnRefund {
				out.Reference = providers.IDText(t.ID)
			}
			if before, err := readSnapshot(r.Before); err == nil && before.Status == orderRefunded {
				out.Reason = fmt.Sprintf("the order was already REFUNDED before this attempt was sent; its one refund is of our "+
					"%s and no other refund of ours is on it, so it is this refund's, from an earlier attempt", r.Amount)
			}
		}
	case orderPaid, orderSettled:
		switch {
		case r.Reference != "":
			out.Kind, out.Reason = providers.Unknown, fmt.Sprintf(
				"order %s shows no refund, but refund transaction %s is recorded as this refund's: BBMSL may show it late, so this proves nothing", o.Status, r.Reference)
		case !r.Known.Holds(GuessQueryOrder):
			out.Kind, out.Reason = providers.Unknown, fmt.Sprintf(
				"order %s shows no refund; whether the query shows refunds is unconfirmed (%s), so this proves nothing", o.Status, GuessQueryOrder)
		case err != nil:
			out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("order %s, but %s", o.Status, err)
		case refunded.Minor != 0:
			out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("order %s with amount %s and netAmount %s", o.Status, amount, net)
		default:
			out.Kind, out.Reason = providers.NotFound, fmt.Sprintf("order %s, amount %s, nothing refunded", o.Status, amount)
		}
	default: // OPEN, VOIDED, CLOSED or undocumented
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("order status %q", o.Status)
	}
	return out
}
