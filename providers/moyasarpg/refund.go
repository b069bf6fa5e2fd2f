package moyasarpg

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/refundq/refundq/providers"
)

// Refund sends the refund with r.Key as transaction_id; a resend with the
// same key is answered from MPG's record of the first. r.Before is the
// snapshot Prepare took for this attempt.
func (c *Client) Refund(ctx context.Context, r providers.Refund) providers.Outcome {
	if strings.TrimSpace(r.OrderID) == "" || strings.TrimSpace(r.Key) == "" {
		return providers.Outcome{Kind: providers.Rejected, Reason: "moyasarpg needs the order id and a transaction_id (nothing sent)"}
	}
	snap := readSnapshot(r)
	if snap != nil && !strings.EqualFold(snap.Currency, r.Amount.Currency) {
		return providers.Outcome{Kind: providers.Rejected, Reason: currencyReason(r.OrderID, snap.Currency, r.Amount)}
	}
	body, err := json.Marshal(struct {
		Amount        int64  `json:"amount"`
		TransactionID string `json:"transaction_id"`
	}{r.Amount.Minor, r.Key})
	if err != nil {
		return providers.Outcome{Kind: providers.Rejected, Reason: "cannot encode the refund: " + err.Error()}
	}
	resp, err := c.do(ctx, http.MethodPost, refundPath(r.OrderID), body)
	if err != nil {
		return providers.TransportOutcome(err)
	}
	return refundOutcome(resp, r, snap)
}

// refundOutcome classifies the answer to a refund request.
func refundOutcome(resp *providers.Response, r providers.Refund, snap *snapshot) providers.Outcome {
	out := providers.Outcome{HTTPStatus: resp.Status, RequestID: resp.RequestID()}
	if resp.Status == http.StatusOK {
		return fromRefundOrder(resp.Body, r, snap, out)
	}
	e, parsed := parseError(resp.Body)
	said := errText(e, parsed, resp.Body) + amountReading(e, r.Amount.Currency)
	switch {
	case resp.Status == http.StatusBadRequest && parsed && e.Message == stillProcessing:
		out.Kind, out.Status, out.Reason = providers.Pending, "still_processing", "MPG is still processing the first request with this transaction_id"
	case resp.Status == http.StatusBadRequest:
		// MPG's page gives 400 as "fails when retries are exhausted", and
		// its pages use 400 for business rules in general; none says that
		// nothing was applied. Unknown, on a first attempt as on a resend.
		out.Kind, out.Reason = providers.Unknown, "HTTP 400 (MPG: retries exhausted, or a business rule), and MPG does not say whether anything was applied: "+said
	case resp.Status == http.StatusUnauthorized || resp.Status == http.StatusForbidden:
		out.Kind, out.Reason = providers.Blocked, authReason(resp.Status)
	case resp.Status == http.StatusUnprocessableEntity:
		// A validation failure refuses this request. On a resend it says
		// nothing of the earlier attempt: MPG may validate a resend before
		// replaying it, and an applied first attempt is what makes the
		// amount too much. (The worker looks up before believing it.)
		out.Kind, out.Reason = providers.Rejected, "MPG refused the refund: "+said
		if r.Attempt > 1 {
			out.Reason = "MPG refused this resend: " + said +
				"; this may be MPG validating the resend against a refund an earlier attempt already made, and proves nothing about that attempt"
		}
	case resp.Status == http.StatusTooManyRequests:
		out.Kind, out.RetryAfter, out.Reason = providers.Transient, providers.RetryAfter(resp.Header), "rate limited by MPG"
	default:
		// 5xx, 404 (no such order, or a wrong base URL) and anything else
		// the document does not list: MPG may have applied it.
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("HTTP %d after the refund was sent: %s", resp.Status, said)
	}
	return out
}

// fromRefundOrder classifies the order MPG answers a refund request with.
// Our refund is the refund transaction with our transaction_id. Without
// one, the answer still says MPG processed our request (idempotency: the
// answer to a transaction_id is that request's result), so our refund is the
// one refund transaction of our amount that appeared since the snapshot and
// that refundq does not know as another refund's (see match); seeing it
// under another id refutes GuessRefundID. Anything less clear is Review or,
// when the order shows no new refund at all, Unknown.
func fromRefundOrder(body []byte, r providers.Refund, snap *snapshot, out providers.Outcome) providers.Outcome {
	o, txns, why := parseOrder(body, r)
	if why != "" {
		out.Kind, out.Reason = providers.Unknown, why
		return out
	}
	t, why := ours(txns, r.Key)
	if why != "" {
		out.Kind, out.Reason = providers.Unknown, why
		return out
	}
	if t != nil {
		out.Observe(GuessRefundID, true, "refund answer lists refund transaction "+t.ID+", our transaction_id")
		return classify(*t, o, r, snap, out)
	}
	m := match(txns, r, snap)
	if len(m.same) > 0 {
		out.Observe(GuessRefundID, false, fmt.Sprintf("refund answer lists new refund transaction %s of our amount, and none with our transaction_id %s", m.same[0].ID, r.Key))
	}
	var refunds []transaction
	for _, t := range txns {
		if t.Type == refundType && !slices.Contains(r.OtherRefs, t.ID) {
			refunds = append(refunds, t)
		}
	}
	switch {
	case m.why != "" && len(refunds) > 0:
		out.Kind, out.Reason = providers.Review, fmt.Sprintf("MPG answered our refund with order %s listing refund transaction(s) %s and none with our transaction_id %s; %s",
			o.ID, ids(refunds), r.Key, m.why)
	case len(m.same) == 1:
		out = classify(m.same[0], o, r, snap, out)
		out.Reason = strings.TrimPrefix(out.Reason+"; matched by amount: MPG did not give the refund transaction our transaction_id", "; ")
	case len(m.same) > 1:
		out.Kind, out.Reason = providers.Review, fmt.Sprintf("MPG answered our refund with order %s listing %d new refund transactions of %s that refundq does not know (%s) and none with our transaction_id %s: which is ours cannot be told",
			o.ID, len(m.same), r.Amount, ids(m.same), r.Key)
	case len(m.others) > 0:
		out.Kind, out.Reason = providers.Review, fmt.Sprintf("MPG answered our refund of %s with order %s listing new refund transaction(s) %s of other amounts, and none with our transaction_id %s",
			r.Amount, o.ID, ids(m.others), r.Key)
	default:
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("MPG answered our refund with order %s without a new refund transaction of ours", o.ID)
	}
	return out
}
