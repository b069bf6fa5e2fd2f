package moyasarpg

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/tasks"
)

// snapshot is what Prepare read of the order just before a send, kept by
// the worker with the attempt and handed back as r.Before.
//
// A refund's key never changes, so a snapshot is written without it: a
// record whose values are all 64 bytes or less is kept by Redis as a
// listpack, a quarter of the memory of a hash table, and with the key the
// snapshot of a fresh order was 71. Key is read from snapshots written
// before, and a snapshot naming another key is no snapshot of this refund.
type snapshot struct {
	Key      string `json:"key,omitempty"`
	Currency string `json:"currency"` // the order's
	// Listed: the order showed its transactions, so Refunds is every refund
	// transaction on the order before this refund's first send: one that is
	// not in it appeared since, and may be ours.
	Listed  bool     `json:"listed"`
	Refunds []string `json:"refunds,omitempty"`
}

// readSnapshot returns the snapshot taken for r's key; nil when there is
// none (no Prepare, or one of another refund).
func readSnapshot(r providers.Refund) *snapshot {
	var s snapshot
	if len(r.Before) == 0 || json.Unmarshal(r.Before, &s) != nil || s.Key != "" && s.Key != r.Key || s.Currency == "" {
		return nil
	}
	return &s
}

// Prepare reads the order (GET /v1/orders/{id}) before a send: the refund
// call carries no currency, so a refund in another currency than the
// order's is refused here (Rejected, nothing sent). A read that fails is
// Transient (a read changes nothing); credentials refused are Blocked.
//
// The snapshot it returns lists the refund transactions on the order before
// this refund's first send: on a resend (r.Before holds the previous
// attempt's snapshot of the same key) the list is carried over, since any
// refund that appeared after the first send may be that attempt's, ours.
func (c *Client) Prepare(ctx context.Context, r providers.Refund) ([]byte, providers.Outcome, bool) {
	if strings.TrimSpace(r.OrderID) == "" || strings.TrimSpace(r.Key) == "" {
		return nil, providers.Outcome{Kind: providers.Rejected, Reason: "moyasarpg needs the order id and a transaction_id (nothing sent)"}, false
	}
	resp, err := c.do(ctx, http.MethodGet, orderPath(r.OrderID), nil)
	if err != nil {
		out := providers.TransportOutcome(err)
		out.Kind, out.Reason = providers.Transient, "reading the order before the send: "+out.Reason
		return nil, out, false
	}
	out := providers.Outcome{Kind: providers.Transient, HTTPStatus: resp.Status, RequestID: resp.RequestID()}
	switch {
	case resp.Status == http.StatusUnauthorized || resp.Status == http.StatusForbidden:
		out.Kind, out.Reason = providers.Blocked, authReason(resp.Status)
		return nil, out, false
	case resp.Status == http.StatusTooManyRequests:
		out.RetryAfter, out.Reason = providers.RetryAfter(resp.Header), "reading the order before the send: rate limited by MPG"
		return nil, out, false
	case resp.Status != http.StatusOK:
		e, parsed := parseError(resp.Body)
		out.Reason = fmt.Sprintf("reading the order before the send: HTTP %d: %s", resp.Status, errText(e, parsed, resp.Body))
		return nil, out, false
	}
	var o order
	if err := json.Unmarshal(resp.Body, &o); err != nil || o.ID == "" {
		out.Reason = "reading the order before the send: unreadable order: " + providers.Snippet(resp.Body)
		return nil, out, false
	}
	if o.ID != r.OrderID {
		out.Reason = fmt.Sprintf("reading the order before the send: MPG answered with order %s, not %s", o.ID, r.OrderID)
		return nil, out, false
	}
	if strings.TrimSpace(o.Currency) == "" {
		out.Reason = "reading the order before the send: order " + o.ID + " shows no currency, so the refund's cannot be checked (nothing sent)"
		return nil, out, false
	}
	if !strings.EqualFold(o.Currency, r.Amount.Currency) {
		out.Kind, out.Reason = providers.Rejected, currencyReason(o.ID, o.Currency, r.Amount)
		return nil, out, false
	}
	s := snapshot{Currency: strings.ToUpper(o.Currency)}
	if prev := readSnapshot(r); prev != nil && prev.Listed {
		s.Listed, s.Refunds = true, prev.Refunds
	} else if o.Transactions != nil {
		s.Listed = true
		for _, t := range *o.Transactions {
			if t.Type == refundType && t.ID != "" {
				s.Refunds = append(s.Refunds, t.ID)
			}
		}
	}
	b, err := json.Marshal(s)
	if err != nil {
		out.Reason = "cannot keep the order read before the send: " + err.Error()
		return nil, out, false
	}
	return b, providers.Outcome{}, true
}

func currencyReason(order, currency string, want tasks.Money) string {
	return fmt.Sprintf("order %s is in %s and the refund is asked in %s: MPG refunds in the order's currency (its refund call carries none), so nothing was sent",
		order, strings.ToUpper(currency), want)
}
