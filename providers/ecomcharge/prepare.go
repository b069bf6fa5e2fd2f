package ecomcharge

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/refundq/refundq/providers"
)

// before is what Prepare read of the parent payment, kept with the attempt.
type before struct {
	Payment  string `json:"payment"`
	Currency string `json:"currency"`
}

// Prepare reads the parent payment (GET /transactions/{parent_uid}) just
// before a send. The refund request carries no currency, ecomCharge refunds
// in the payment's: a payment in another currency than the refund is
// Rejected (nothing sent). A payment of a shop in the other mode is Blocked.
// A read that fails, or does not show the currency, is Transient (a read
// sends nothing). A 404 is told apart by paymentNotFound.
func (c *Client) Prepare(ctx context.Context, r providers.Refund) ([]byte, providers.Outcome, bool) {
	if strings.TrimSpace(r.TransactionID) == "" {
		return nil, providers.Outcome{Kind: providers.Rejected, Reason: "ecomcharge needs transaction_id: the parent payment uid (nothing sent)"}, false
	}
	resp, err := c.do(ctx, http.MethodGet, transactionPath+url.PathEscape(r.TransactionID), nil)
	if err != nil {
		out := providers.TransportOutcome(err)
		out.Kind, out.Reason = providers.Transient, "reading the payment before the send: "+out.Reason
		return nil, out, false
	}
	if o, ok := guardOutcome(resp, "reading the payment before the send: "); ok {
		return nil, o, false
	}
	out := providers.Outcome{Kind: providers.Transient, HTTPStatus: resp.Status, RequestID: resp.RequestID()}
	switch {
	case resp.Status == http.StatusNotFound:
		return nil, c.paymentNotFound(ctx, r, resp, out), false
	case resp.Status != http.StatusOK:
		out.Reason = fmt.Sprintf("reading the payment before the send: HTTP %d: %s", resp.Status, providers.Snippet(resp.Body))
		return nil, out, false
	}
	t, ok := parseTransaction(resp.Body)
	switch {
	case !ok || t.UID != r.TransactionID:
		out.Reason = "reading the payment before the send: no transaction " + r.TransactionID + " in the answer: " + providers.Snippet(resp.Body)
	case c.otherMode(t.Test) != "":
		out.Kind, out.Reason = providers.Blocked, c.otherMode(t.Test)
	case strings.TrimSpace(t.Currency) == "":
		out.Reason = "payment " + t.UID + " shows no currency: the refund's (" + r.Amount.Currency + ") cannot be checked before the send"
	case !strings.EqualFold(t.Currency, r.Amount.Currency):
		out.Kind, out.Reason = providers.Rejected, currencyReason(t.UID, t.Currency, r.Amount.Currency)
	default:
		b, _ := json.Marshal(before{Payment: t.UID, Currency: strings.ToUpper(t.Currency)})
		return b, providers.Outcome{}, true
	}
	return nil, out, false
}

func currencyReason(payment, paid, asked string) string {
	return fmt.Sprintf("payment %s is in %s, the refund in %s: ecomCharge refunds in the payment's currency (nothing sent)", payment, strings.ToUpper(paid), asked)
}

// paymentNotFound reads a 404 to the payment read. It is either a payment
// ecomCharge does not know or a wrong base URL (or path); the look-up by
// tracking_id, documented on the same host, tells them apart: where the base
// URL is right it answers 200 with a list (empty for a tracking_id nobody
// used), anywhere else 404 too. A base URL proven right and ecomCharge's
// error body make the payment unknown: Rejected before a first attempt; once
// an attempt was sent (it found the payment then) a contradiction for a
// human (Review).
func (c *Client) paymentNotFound(ctx context.Context, r providers.Refund, resp *providers.Response, out providers.Outcome) providers.Outcome {
	e, parsed := parseError(resp.Body)
	msg := providers.Snippet(resp.Body)
	if parsed {
		msg = e.text()
	}
	id := r.Key
	if strings.TrimSpace(id) == "" {
		id = baseCheckID
	}
	check, err := c.do(ctx, http.MethodGet, trackingPath+url.PathEscape(id), nil)
	if err != nil {
		out.Reason = fmt.Sprintf("reading the payment before the send: HTTP 404 (%s), and the base URL could not be checked: %v", msg, err)
		return out
	}
	_, listed := parseList(check.Body)
	switch {
	case check.Status == http.StatusUnauthorized || check.Status == http.StatusForbidden:
		o := authOutcome(check.Status)
		o.RequestID = out.RequestID
		return o
	case check.Status == http.StatusNotFound:
		return baseURLOutcome(out, msg)
	case check.Status != http.StatusOK || !listed:
		out.Reason = fmt.Sprintf("reading the payment before the send: HTTP 404 (%s), and the look-up that checks the base URL answered HTTP %d: %s",
			msg, check.Status, providers.Snippet(check.Body))
	case !parsed:
		out.Reason = "reading the payment before the send: HTTP 404 without ecomCharge's error body: " + msg
	case r.Attempt >= 1:
		out.Kind, out.Reason = providers.Review, fmt.Sprintf("ecomCharge does not know payment %s (HTTP 404: %s), yet %d attempt(s) of this refund were sent: a human must look",
			r.TransactionID, msg, r.Attempt)
	default:
		out.Kind, out.Reason = providers.Rejected, fmt.Sprintf("ecomCharge does not know payment %s (HTTP 404: %s); nothing sent", r.TransactionID, msg)
	}
	return out
}
