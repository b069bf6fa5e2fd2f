package fatora

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/refundq/refundq/providers"
)

// Lookup reads the payment through verify.
func (c *Client) Lookup(ctx context.Context, r providers.Refund) providers.Outcome {
	v, out, ok := c.verify(ctx, r)
	if !ok {
		if out.Kind == providers.Rejected {
			// A 400/404/409/422 of verify says nothing about our refund.
			out.Kind = providers.Unknown
		}
		return out
	}
	return lookupOutcome(v, r, out)
}

// lookupOutcome classifies a verify answer for a look-up.
func lookupOutcome(v verifyResult, r providers.Refund, out providers.Outcome) providers.Outcome {
	out.Status = v.refundStatus()
	switch {
	case v.showsRefundField():
		observeShown(&out, v, "verify")
		switch v.refundStatus() {
		case refundCompleted:
			paid, err := v.paid()
			switch {
			case err != nil:
				out.Kind, out.Reason = providers.Unknown, "verify shows the refund completed, but "+err.Error()
			case paid != r.Amount:
				out.Kind, out.Reason = providers.Review, fmt.Sprintf(
					"verify shows a completed refund of a payment of %s; the refund asks %s", paid, r.Amount)
			default:
				out.Kind, out.Reference = providers.Succeeded, providers.IDText(v.RefundTransactionID)
			}
		case refundProcessing:
			out.Kind, out.Reason = providers.Pending, "the bank is processing the refund"
		default:
			out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("undocumented refund_status %q", v.refundStatus())
		}
	case v.PaymentStatus == nil:
		out.Kind, out.Reason = providers.Unknown, "verify shows neither payment_status nor refund_status"
	case !showsEveryRefund(r.Known):
		out.Kind, out.Status = providers.Unknown, v.paymentStatus()
		out.Reason = fmt.Sprintf("verify shows payment_status %q and no refund field; that verify shows a refund in every "+
			"status is not confirmed (%s: %s, %s: %s), so this proves nothing (a refund of ours may be under_proccession)",
			v.paymentStatus(), GuessVerifyShowsCompleted, r.Known[GuessVerifyShowsCompleted],
			GuessVerifyShowsProcessing, r.Known[GuessVerifyShowsProcessing])
	case v.paymentStatus() == paymentPaid:
		out.Kind, out.Status, out.Reason = providers.NotFound, v.paymentStatus(), "payment is paid and shows no refund"
	default:
		out.Kind, out.Status = providers.Unknown, v.paymentStatus()
		out.Reason = fmt.Sprintf("payment_status %q and no refund_status", v.paymentStatus())
	}
	return out
}

// verify calls /v1/payments/verify; ok is false with a classified outcome
// when there is no usable answer, or one in the other mode (Blocked).
func (c *Client) verify(ctx context.Context, r providers.Refund) (verifyResult, providers.Outcome, bool) {
	v, out, ok := c.read(ctx, r)
	if !ok {
		return v, out, false
	}
	if _, reason, ok := c.checkMode(v.Mode); !ok {
		// A read: nothing was applied, and nothing is sent on the word of
		// a key in the other mode (or one whose mode nobody documents).
		out.Kind, out.Reason = providers.Blocked, reason
		return verifyResult{}, out, false
	}
	return v, out, true
}

// read is verify without the mode check.
func (c *Client) read(ctx context.Context, r providers.Refund) (verifyResult, providers.Outcome, bool) {
	resp, err := c.post(ctx, verifyPath, r)
	if err != nil {
		return verifyResult{}, providers.TransportOutcome(err), false
	}
	env, out := parse(resp)
	if out.Kind != providers.Succeeded {
		if resp.Status == http.StatusNotFound && env.Status == "" {
			// Not Fatora's answer: no such path here. A read changes
			// nothing, and the base URL is ours to fix.
			out.Kind, out.Reason = providers.Blocked, fmt.Sprintf("verify answered HTTP 404 without Fatora's envelope (%s): "+
				"check FATORA_BASE_URL (Fatora's pages use %s, the seed's samples /api%s)", providers.Snippet(resp.Body), verifyPath, verifyPath)
		}
		return verifyResult{}, out, false
	}
	var v verifyResult
	if err := json.Unmarshal(env.Result, &v); err != nil {
		out.Kind, out.Reason = providers.Unknown, "unreadable verify result: "+providers.Snippet(resp.Body)
		return verifyResult{}, out, false
	}
	return v, providers.Outcome{HTTPStatus: resp.Status, RequestID: out.RequestID}, true
}

// checkMode compares the mode an answer shows with the configured one. An
// answer that shows none is taken as it is (the mode was compared where
// verify showed it). The other documented mode is Blocked; an undocumented
// one is Unknown (its caller decides what a read of it is worth).
func (c *Client) checkMode(shown string) (providers.Kind, string, bool) {
	m := strings.ToLower(strings.TrimSpace(shown))
	switch {
	case m == "" || m == c.mode:
		return 0, "", true
	case m == ModeTest:
		return providers.Blocked, fmt.Sprintf("Fatora answered in test mode, but %s is live: a test key in a live configuration "+
			"records refunds that pay nothing (set %s=test or use the live key)", EnvMode, EnvMode), false
	case m == ModeLive:
		return providers.Blocked, fmt.Sprintf("Fatora answered in live mode, but %s is test: a live key in a test configuration "+
			"moves real money (set %s=live or use a test key)", EnvMode, EnvMode), false
	}
	return providers.Unknown, fmt.Sprintf("Fatora answered in mode %q (documented: live, test) and %s is %s: check the key",
		shown, EnvMode, c.mode), false
}
