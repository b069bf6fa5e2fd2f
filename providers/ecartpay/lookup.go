package ecartpay

import (
	"context"
	"fmt"
	"net/http"
	"slices"

	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/tasks"
)

// Verify is what a reconciliation asks of a final refund with a reference.
var _ providers.Verifier = (*Client)(nil)

// Lookup reads the order and compares it with r.Before (see judgeLookup).
// Without a snapshot from before the send nothing can be proven: Unknown.
func (c *Client) Lookup(ctx context.Context, r providers.Refund) providers.Outcome {
	before, err := readSnapshot(r.Before)
	if err != nil {
		return providers.Outcome{Kind: providers.Unknown, Reason: err.Error() + "; a look-up cannot tell what changed"}
	}
	o, resp, out, ok := c.readOrder(ctx, r)
	if !ok {
		return out
	}
	return answered(judgeLookup(before, o, r), o, resp)
}

// Verify checks a final refund by Ecart Pay's id of it, r.Reference, for a
// reconciliation (providers.Verifier). Comparing the order with r.Before
// stops working once the order has moved on: a second refund on the order
// after ours leaves two changes since that snapshot, and Lookup can then
// attribute neither. A reference needs no comparison, but only the refunds
// list shows a refund by id with its amount, and only once the list is
// confirmed (GuessOrderRefunds): the documented order shows its latest
// refund_id and no refund's amount, so it cannot show that a refund was of
// our amount. So, on one read of the order:
//
//	the confirmed list shows r.Reference           byReference decides
//	otherwise                                      as Lookup (judgeLookup against r.Before)
//
// It never answers NotFound from the list: a reference the list does not
// show is left to Lookup's rules.
func (c *Client) Verify(ctx context.Context, r providers.Refund) providers.Outcome {
	o, resp, out, ok := c.readOrder(ctx, r)
	if !ok {
		return out
	}
	if r.Reference != "" && r.Known.Holds(GuessOrderRefunds) {
		if now, err := o.snap(); err == nil && now.Refunds != nil {
			if out, ok := byReference(now, r); ok {
				return answered(out, o, resp)
			}
		}
	}
	before, err := readSnapshot(r.Before)
	if err != nil {
		out = providers.Outcome{Kind: providers.Unknown, Reason: fmt.Sprintf(
			"the order's refunds list does not show refund %q (or is not confirmed), and %s: what became of it cannot be told", r.Reference, err)}
		return answered(out, o, resp)
	}
	return answered(judgeLookup(before, o, r), o, resp)
}

// byReference reads our refund from the confirmed refunds list by Ecart
// Pay's id of it. ok is false when the list does not show that id.
//
//	the id is also recorded for another refund of ours   Unknown (which one it is cannot be told)
//	listed in another currency or of another amount      Review
//	the order is not refunded, or its status contradicts Unknown, Review
//	  a refund of our amount
//	otherwise                                            Succeeded
func byReference(now snapshot, r providers.Refund) (providers.Outcome, bool) {
	ref := r.Reference
	minor, listed := now.listed()[ref]
	if !listed {
		return providers.Outcome{}, false
	}
	out := providers.Outcome{Status: now.Status}
	got := tasks.Money{Minor: minor, Currency: now.Currency}
	switch {
	case slices.Contains(r.OtherRefs, ref):
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("refund %s is recorded for this refund and for another refund of ours on the order", ref)
	case got != r.Amount:
		out.Kind, out.Reason = providers.Review, fmt.Sprintf("the order lists refund %s, Ecart Pay's id of this refund, of %s; the refund is of %s", ref, got, r.Amount)
	case !refundedStatus(now.Status):
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("the order lists refund %s but its status is %q", ref, now.Status)
	default:
		if why := contradiction(r.Amount, now.total(), "", now.Status); why != "" {
			out.Kind, out.Reason = providers.Review, why+"; "+now.String()
			break
		}
		out.Kind, out.Reference = providers.Succeeded, ref
		out.Reason = fmt.Sprintf("the order's refunds list shows refund %s, Ecart Pay's id of this refund, of %s", ref, got)
	}
	return out, true
}

// readOrder reads the order; ok is false with an outcome that proves
// nothing (Transient, Unknown or Blocked) when there is no readable order.
func (c *Client) readOrder(ctx context.Context, r providers.Refund) (order, *providers.Response, providers.Outcome, bool) {
	resp, out, ok := c.call(ctx, http.MethodGet, orderPath(r.OrderID), nil)
	if !ok {
		return order{}, nil, out, false
	}
	if resp.Status != http.StatusOK {
		out = providers.Outcome{Kind: providers.Unknown, HTTPStatus: resp.Status, RequestID: resp.RequestID(),
			Reason: fmt.Sprintf("look-up answered HTTP %d: %s", resp.Status, providers.Snippet(resp.Body))}
		if resp.Status == http.StatusTooManyRequests {
			out.Kind, out.RetryAfter = providers.Transient, providers.RetryAfter(resp.Header)
		}
		return order{}, nil, out, false
	}
	o, err := parseOrder(resp.Body)
	if err != nil {
		return order{}, nil, providers.Outcome{Kind: providers.Unknown, HTTPStatus: resp.Status, RequestID: resp.RequestID(), Reason: err.Error()}, false
	}
	return o, resp, providers.Outcome{}, true
}

// answered adds to out what every read of the order shows: whether it
// refutes the refunds-list guess, and the HTTP exchange.
func answered(out providers.Outcome, o order, resp *providers.Response) providers.Outcome {
	if refundedStatus(o.Status) && o.Refunds == nil {
		out.Observe(GuessOrderRefunds, false, "an order with a refund has no refunds list")
	}
	out.HTTPStatus, out.RequestID = resp.Status, resp.RequestID()
	return out
}
