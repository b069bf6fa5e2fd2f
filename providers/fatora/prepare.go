package fatora

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/tasks"
)

// prepared is what Prepare read of the payment, kept with the attempt for
// the refund's history.
type prepared struct {
	PaymentStatus string `json:"payment_status,omitempty"`
	Amount        string `json:"amount"`
	Currency      string `json:"currency"`
	RefundStatus  string `json:"refund_status,omitempty"`
}

// Prepare reads the payment through verify just before each send and
// refuses (Rejected: nothing was sent) a refund that is not the whole
// payment in the payment's currency: Fatora's refund request carries
// neither, and refunds the whole payment in its own currency. A failed read
// is Transient, a refused key or an answer in the other mode Blocked.
// Refund checks the same again right before it sends.
func (c *Client) Prepare(ctx context.Context, r providers.Refund) ([]byte, providers.Outcome, bool) {
	v, out, ok := c.verify(ctx, r)
	if !ok {
		switch {
		case out.Kind == providers.Blocked:
		case out.Kind == providers.Rejected && r.Attempt == 0:
			// Fatora refused the payment's ids, and no attempt of ours
			// was ever sent.
		case out.Kind == providers.Rejected:
			// After an attempt of ours, a refusal of verify proves
			// nothing of it: Refund reads again and the worker looks up.
			return nil, providers.Outcome{}, true
		default:
			out.Kind = providers.Transient
			out.Reason = "reading the payment before the send: " + out.Reason
		}
		return nil, out, false
	}
	paid, err := v.paid()
	if err != nil {
		out.Kind, out.Reason = providers.Transient, err.Error()+"; nothing sent"
		return nil, out, false
	}
	if err := wholePayment(paid, r.Amount); err != nil {
		out.Kind, out.Reason = providers.Rejected, err.Error()+"; nothing sent"
		return nil, out, false
	}
	before, _ := json.Marshal(prepared{PaymentStatus: v.paymentStatus(), Amount: v.Amount.String(), Currency: v.Currency,
		RefundStatus: v.refundStatus()})
	return before, out, true
}

// Precheck refuses, at enqueue time, a refund that is not the whole payment
// (amount and currency), as Prepare and Refund would before sending. Any
// answer short of a readable payment decides nothing. The mode is not
// compared here: refusing to enqueue sends nothing, and the worker checks
// the mode before any send.
func (c *Client) Precheck(ctx context.Context, r providers.Refund) error {
	v, _, ok := c.read(ctx, r)
	if !ok {
		return nil
	}
	paid, err := v.paid()
	if err != nil {
		return nil
	}
	return wholePayment(paid, r.Amount)
}

func wholePayment(paid, asked tasks.Money) error {
	if paid.Currency != asked.Currency {
		return fmt.Errorf("Fatora refunds a payment in its own currency: the payment is %s, the refund asks %s", paid, asked)
	}
	if paid != asked {
		return fmt.Errorf("Fatora refunds whole payments only: the payment is %s, the refund asks %s", paid, asked)
	}
	return nil
}
