package moyasarpg

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/refundq/refundq/providers"
)

// Lookup reads the order and finds our refund transaction. Once an answer
// of MPG's has named it (r.Reference), by that id alone (see byReference);
// until then by our key or, while GuessRefundID is not confirmed, by amount
// among the refund transactions that appeared since the snapshot (see
// match).
//
// It never answers NotFound. MPG's pages do not promise that an applied
// refund shows in the order at once, so an order without our refund proves
// nothing, even once refunds are known to carry our transaction_id; such a
// look-up is Unknown, which the worker reconciles by resending with the same
// transaction_id (MPG's documented idempotency key: the resend is answered
// from the first request). An order without a transactions array shows
// nothing at all: Unknown too.
func (c *Client) Lookup(ctx context.Context, r providers.Refund) providers.Outcome {
	if strings.TrimSpace(r.OrderID) == "" || strings.TrimSpace(r.Key) == "" {
		return providers.Outcome{Kind: providers.Unknown, Reason: "refund has no order id or transaction_id to look it up by"}
	}
	resp, err := c.do(ctx, http.MethodGet, orderPath(r.OrderID), nil)
	if err != nil {
		return providers.TransportOutcome(err)
	}
	return lookupOutcome(resp, r, readSnapshot(r))
}

// lookupOutcome classifies the answer to GET /v1/orders/{id}.
func lookupOutcome(resp *providers.Response, r providers.Refund, snap *snapshot) providers.Outcome {
	out := providers.Outcome{HTTPStatus: resp.Status, RequestID: resp.RequestID()}
	switch {
	case resp.Status == http.StatusTooManyRequests:
		out.Kind, out.RetryAfter, out.Reason = providers.Transient, providers.RetryAfter(resp.Header), "look-up rate limited by MPG"
		return out
	case resp.Status == http.StatusUnauthorized || resp.Status == http.StatusForbidden:
		out.Kind, out.Reason = providers.Blocked, authReason(resp.Status)
		return out
	case resp.Status != http.StatusOK:
		// A 404, a 5xx, a validation error of a read: none proves anything.
		e, parsed := parseError(resp.Body)
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("look-up failed (HTTP %d): %s", resp.Status, errText(e, parsed, resp.Body))
		return out
	}
	o, txns, why := parseOrder(resp.Body, r)
	if why != "" {
		out.Kind, out.Reason = providers.Unknown, why
		return out
	}
	if r.Reference != "" {
		return byReference(txns, o, r, snap, out)
	}
	if t, why := ours(txns, r.Key); why != "" {
		out.Kind, out.Reason = providers.Unknown, why
		return out
	} else if t != nil {
		out.Observe(GuessRefundID, true, "order "+o.ID+" lists refund transaction "+t.ID+", our transaction_id")
		return classify(*t, o, r, snap, out)
	}
	out.Kind = providers.Unknown
	if r.Known.Holds(GuessRefundID) {
		out.Reason = fmt.Sprintf("order %s lists no refund transaction %s (yet): MPG does not promise that an applied refund shows in the order at once, so this proves nothing",
			o.ID, r.Key)
		return out
	}
	m := match(txns, r, snap)
	switch {
	case m.why != "":
		out.Reason = fmt.Sprintf("order %s lists no refund transaction %s, and %s", o.ID, r.Key, m.why)
	case len(m.same) == 1 && m.same[0].Status == statusFailed:
		// A failed refund found only by its amount may be anyone's, and
		// failed rows say nothing of where an applied one would be.
		out.Reason = fmt.Sprintf("order %s lists no refund transaction %s; the one new refund of %s, %s, failed, and being matched only by amount it proves nothing about ours",
			o.ID, r.Key, r.Amount, m.same[0].ID)
	case len(m.same) == 1:
		out = classify(m.same[0], o, r, snap, out)
		out.Reason = strings.TrimPrefix(out.Reason+"; matched by amount: the one refund transaction of "+r.Amount.String()+" that appeared on the order since the read before our send", "; ")
	case len(m.same) > 1:
		out.Reason = fmt.Sprintf("order %s lists %d refund transactions of %s since the read before our send (%s) and none with our transaction_id %s: which is ours cannot be told",
			o.ID, len(m.same), r.Amount, ids(m.same), r.Key)
	default:
		out.Reason = fmt.Sprintf("order %s lists no refund transaction %s and no new refund of %s (yet): MPG does not promise that an applied refund shows in the order at once, so this proves nothing",
			o.ID, r.Key, r.Amount)
	}
	return out
}
