package fatora

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/refundq/refundq/providers"
)

// Refund verifies the payment, refuses a partial amount or an already
// refunded payment before anything is sent, then asks for the refund.
func (c *Client) Refund(ctx context.Context, r providers.Refund) providers.Outcome {
	v, out, ok := c.verify(ctx, r)
	if !ok {
		// Nothing was sent yet: a failed verify can always be retried.
		if out.Kind == providers.Unknown {
			out.Kind = providers.Transient
		}
		return out
	}
	if v.showsRefundField() {
		observeShown(&out, v, "verify before a send")
		out.Status = v.refundStatus()
		if r.Attempt > 1 {
			// An earlier attempt of ours may be that refund: look it up,
			// do not call it a refusal.
			out.Kind, out.Reason = providers.Unknown, fmt.Sprintf(
				"verify shows the payment refunded (refund_status %q) before attempt %d: likely an earlier attempt's; look it up",
				v.refundStatus(), r.Attempt)
			return out
		}
		out.Kind, out.Reason = providers.Rejected, fmt.Sprintf(
			"the payment is already refunded (refund_status %q); Fatora refunds a payment once", v.refundStatus())
		return out
	}
	paid, err := v.paid()
	if err != nil {
		out.Kind, out.Reason = providers.Transient, err.Error()+"; nothing sent"
		return out
	}
	if err := wholePayment(paid, r.Amount); err != nil {
		out.Kind, out.Reason = providers.Rejected, err.Error()
		return out
	}
	resp, err := c.post(ctx, refundPath, r)
	if err != nil {
		return providers.TransportOutcome(err)
	}
	env, o := parse(resp)
	if o.Kind != providers.Succeeded {
		return refusal(o, resp.Status, env, r.Attempt)
	}
	var rr refundResult
	if err := json.Unmarshal(env.Result, &rr); err != nil {
		return providers.Outcome{Kind: providers.Unknown, HTTPStatus: resp.Status, RequestID: o.RequestID,
			Reason: "unreadable refund result: " + providers.Snippet(resp.Body)}
	}
	out = providers.Outcome{HTTPStatus: resp.Status, RequestID: o.RequestID, Status: rr.RefundStatus, Reference: providers.IDText(rr.RefundTransactionID)}
	if kind, reason, ok := c.checkMode(rr.Mode); !ok {
		// Applied, if at all, in the other mode: by a test key, nothing
		// was paid; by a live key in a test configuration, a human must
		// see it before anything else is sent.
		if kind == providers.Unknown {
			reason += "; the refund may have been applied"
		}
		out.Kind, out.Reason = kind, reason
		return out
	}
	switch rr.RefundStatus {
	case refundCompleted:
		// The answer carries no amount: the verify above showed the
		// payment is exactly what we asked, and Fatora refunds it whole.
		out.Kind = providers.Succeeded
		if r.Known.Open(GuessVerifyShowsCompleted) {
			c.learn(ctx, r, &out, GuessVerifyShowsCompleted)
		}
	case refundProcessing:
		out.Kind, out.Reason = providers.Pending, "the bank is processing the refund (can take 2-4 weeks)"
		if r.Known.Open(GuessVerifyShowsProcessing) {
			c.learn(ctx, r, &out, GuessVerifyShowsProcessing)
		}
	default:
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("undocumented refund_status %q", rr.RefundStatus)
	}
	return out
}

// refusal classifies a documented refusal of a refund call. A refusal that
// says the payment already has a refund, or one under process, is evidence
// that a refund exists: Fatora refunds a payment once and refundq sends one
// refund of its own per order, so after an earlier attempt of ours that
// refund is most likely ours. It is then Pending (under process: poll, the
// bank may take weeks) or Unknown (look it up), never a refusal the worker
// could fail the refund on. Only on the first attempt, when nothing of this
// refund was ever sent (the worker records each attempt before it leaves),
// is it a refusal of this refund: the payment was refunded before it.
func refusal(o providers.Outcome, status int, env envelope, attempt int) providers.Outcome {
	if o.Kind != providers.Rejected {
		return o
	}
	msg := errorText(env.Error)
	exists, processing := refundExists(status, msg)
	switch {
	case !exists:
		if status == http.StatusNotFound {
			o.Reason = fmt.Sprintf("Fatora refused: payment not found (HTTP %d): %s", status, msg)
		}
	case attempt > 1 && processing:
		o.Kind, o.Reason = providers.Pending, fmt.Sprintf("Fatora says a refund of the payment is already under process "+
			"(HTTP %d: %s): an earlier attempt of ours, at the bank (2-4 weeks); poll it, never send it again", status, msg)
	case attempt > 1:
		o.Kind, o.Reason = providers.Unknown, fmt.Sprintf("Fatora says the payment already has a refund (HTTP %d: %s): "+
			"likely an earlier attempt of ours; look it up", status, msg)
	default:
		o.Reason = fmt.Sprintf("Fatora refused: the payment already has a refund (HTTP %d: %s), made before refundq's "+
			"first attempt of this refund (outside refundq, or by an earlier refund of this order); Fatora refunds a payment once",
			status, msg)
	}
	return o
}

// refundExists reads a refusal for what it says about a refund of the
// payment: exists when it says one exists (HTTP 409, "already refunded",
// "already under process", "refund exists", …), processing when it says
// one is still being processed. Read broadly on purpose: after an earlier
// attempt a wrong "exists" only makes the worker look before it acts.
func refundExists(status int, msg string) (exists, processing bool) {
	m := strings.ToLower(msg)
	has := func(words ...string) bool {
		for _, w := range words {
			if strings.Contains(m, w) {
				return true
			}
		}
		return false
	}
	processing = has("under process", "under_process", "under proccess", "under_proccession", "in process", "processing",
		"in progress", "pending")
	exists = processing || status == http.StatusConflict || has("already", "refunded", "duplicate") ||
		(has("refund") && has("exist"))
	return exists, processing
}
