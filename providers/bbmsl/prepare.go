package bbmsl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/tasks"
)

// snapshot is what Prepare read of the order just before a send. It travels
// with the attempt and comes back in r.Before to Refund (which checks the
// currency again) and Lookup (which names it). Amounts stay as BBMSL wrote
// them.
type snapshot struct {
	Status    string `json:"status"`
	Currency  string `json:"currency"`
	Amount    string `json:"amount"`
	NetAmount string `json:"netAmount,omitempty"`
}

func (s snapshot) String() string {
	out := fmt.Sprintf("{%s amount=%s %s", s.Status, s.Amount, s.Currency)
	if s.NetAmount != "" {
		out += " netAmount=" + s.NetAmount
	}
	return out + "}"
}

// readSnapshot reads what Prepare stored; an error when there is none or it
// lacks the currency.
func readSnapshot(b []byte) (snapshot, error) {
	var s snapshot
	if len(b) == 0 {
		return s, errors.New("no state of the order was read before the send")
	}
	if err := json.Unmarshal(b, &s); err != nil || s.Currency == "" {
		return s, errors.New("the order's state before the send is unreadable")
	}
	return s, nil
}

func currencyReason(orderCurrency string, asked tasks.Money) string {
	return fmt.Sprintf("the order is in %s, the refund of %s is not (BBMSL's refund request carries no currency: it refunds in the order's); nothing sent",
		orderCurrency, asked)
}

// Prepare reads the order (the signed query) just before a send. The refund
// request carries no currency, so this is where a refund in another currency
// is refused, with nothing sent:
//
//	no answer, or a non-0000 code                   Transient (a read sends nothing)
//	  … a credential refusal, HTTP 401/403           Blocked
//	no order, or no currency or amount in it         Review (nothing sent; what is missing and what was read)
//	order in another currency than the refund        Rejected
//	refund of more than the order's amount           Rejected (a refund is at most the order)
//	REFUNDED, and another refund of ours holds it    Rejected (BBMSL refunds an order once)
//	anything else                                    ok: the snapshot, for Refund and Lookup
//
// An order already REFUNDED with no other refund of ours on it is sent: BBMSL
// refunds an order once, so the send cannot pay again, and its refusal is
// Unknown; the look-up then decides whether the order's refund is this one's
// (an earlier attempt whose record was lost) or someone else's.
func (c *Client) Prepare(ctx context.Context, r providers.Refund) ([]byte, providers.Outcome, bool) {
	if _, err := c.target(r); err != nil {
		return nil, providers.Outcome{Kind: providers.Rejected, Reason: err.Error() + "; nothing sent"}, false
	}
	a, out, ok := c.query(ctx, r)
	if !ok {
		if out.Kind == providers.Unknown {
			out.Kind = providers.Transient // a read changes nothing
		}
		out.Reason = "reading the order before the send: " + out.Reason
		return nil, out, false
	}
	if a.ResponseCode != successCode {
		out.Kind, out.Reason = providers.Transient, fmt.Sprintf("reading the order before the send: BBMSL answered code %s: %s; nothing sent", a.ResponseCode, a.Message)
		if credentialRefusal(a.Message) {
			out.Kind, out.Reason = providers.Blocked, authReason(a)
		}
		return nil, out, false
	}
	o := a.Order
	if o == nil {
		out.Kind, out.Reason = providers.Review, "nothing sent: BBMSL's query answered without the order, so its currency cannot be checked before the send (read: responseCode 0000, no order)"
		return nil, out, false
	}
	s := snapshot{Status: o.Status, Currency: o.Currency}
	if o.Amount != nil {
		s.Amount = o.Amount.String()
	}
	if o.NetAmount != nil {
		s.NetAmount = o.NetAmount.String()
	}
	amount, err := tasks.ParseProviderAmount(s.Amount, s.Currency)
	switch {
	case s.Currency == "":
		out.Kind, out.Reason = providers.Review, "nothing sent: the order BBMSL's query shows has no currency, so the refund's cannot be checked before the send; read "+s.String()
		return nil, out, false
	case s.Currency != r.Amount.Currency:
		out.Kind, out.Reason = providers.Rejected, currencyReason(s.Currency, r.Amount)
		return nil, out, false
	case err != nil:
		out.Kind, out.Reason = providers.Review, fmt.Sprintf("nothing sent: the order BBMSL's query shows has no readable amount (%v); read %s", err, s)
		return nil, out, false
	case r.Amount.Minor > amount.Minor:
		out.Kind, out.Reason = providers.Rejected, fmt.Sprintf("the refund of %s is more than the order's amount, %s; nothing sent", r.Amount, amount)
		return nil, out, false
	}
	if o.Status == orderRefunded {
		if other, why := heldByOther(a, r); other {
			out.Kind, out.Reason = providers.Rejected, "the order is already REFUNDED: "+why+"; nothing sent"
			return nil, out, false
		}
	}
	b, _ := json.Marshal(s)
	return b, providers.Outcome{}, true
}
