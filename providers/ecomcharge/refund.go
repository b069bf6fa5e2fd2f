package ecomcharge

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/refundq/refundq/providers"
)

// refundRequest is the body of the refund call.
type refundRequest struct {
	Request struct {
		ParentUID      string `json:"parent_uid"`
		Amount         int64  `json:"amount"`
		Reason         string `json:"reason"`
		DuplicateCheck bool   `json:"duplicate_check"`
		TrackingID     string `json:"tracking_id"`
	} `json:"request"`
}

// Refund sends the refund with duplicate_check on and r.Key as tracking_id,
// unless what Prepare read (r.Before) shows the payment in another currency.
// While GuessTrackingLookup is open, a successful answer is followed by one
// look-up by tracking_id, to learn whether it lists refunds.
func (c *Client) Refund(ctx context.Context, r providers.Refund) providers.Outcome {
	if strings.TrimSpace(r.TransactionID) == "" {
		return providers.Outcome{Kind: providers.Rejected, Reason: "ecomcharge needs transaction_id: the parent payment uid (nothing sent)"}
	}
	var b before
	if len(r.Before) > 0 && json.Unmarshal(r.Before, &b) == nil && b.Currency != "" && !strings.EqualFold(b.Currency, r.Amount.Currency) {
		return providers.Outcome{Kind: providers.Rejected, Reason: currencyReason(r.TransactionID, b.Currency, r.Amount.Currency)}
	}
	var req refundRequest
	req.Request.ParentUID = r.TransactionID
	req.Request.Amount = r.Amount.Minor
	req.Request.Reason = orDefault(strings.TrimSpace(r.Reason), defaultReason)
	req.Request.DuplicateCheck = true
	req.Request.TrackingID = r.Key
	body, err := json.Marshal(req)
	if err != nil {
		return providers.Outcome{Kind: providers.Rejected, Reason: "cannot encode the refund: " + err.Error()}
	}
	resp, err := c.do(ctx, http.MethodPost, refundPath, body)
	if err != nil {
		return providers.TransportOutcome(err)
	}
	out, probe := c.refundOutcome(resp, r)
	if probe && r.Known.Open(GuessTrackingLookup) && r.Key != "" {
		c.learnLookup(ctx, r, out.Reference, &out)
	}
	return out
}

// refundOutcome classifies the answer to a refund request. probe says the
// answer is a successful refund of ours in our mode, so a look-up right
// after can learn GuessTrackingLookup.
func (c *Client) refundOutcome(resp *providers.Response, r providers.Refund) (out providers.Outcome, probe bool) {
	if o, ok := guardOutcome(resp, ""); ok {
		return o, false
	}
	out = providers.Outcome{HTTPStatus: resp.Status, RequestID: resp.RequestID()}
	if resp.Status >= 500 {
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("HTTP %d after the refund was sent: %s", resp.Status, providers.Snippet(resp.Body))
		return out, false
	}
	// A transaction answer is read on 2xx; on 4xx only a failed one is
	// (anything else there, or under a 1xx/3xx, contradicts the status and
	// stays unknown).
	if t, ok := parseTransaction(resp.Body); ok && (resp.Status >= 200 && resp.Status < 300 || resp.Status >= 400 && t.Status == statusFailed) {
		if why := notOurs(t, r); why != "" {
			out.Kind, out.Reason = providers.Unknown, "the answer is not our refund: "+why
			return out, false
		}
		if why := c.otherMode(t.Test); why != "" {
			// A test shop's refund pays nothing, and a failed one moved
			// nothing: this attempt is settled, and blocked until the
			// configuration is fixed. A live shop's answer to a test
			// configuration may have moved real money: Unknown, and the
			// look-up that follows is blocked by the same mismatch, keeping
			// the attempt open until the configuration is fixed.
			out.Reference, out.Status = t.UID, t.Status
			out.Kind, out.Reason = providers.Blocked, why
			if !*t.Test && t.Status != statusFailed {
				out.Kind, out.Reason = providers.Unknown, why+"; this refund may have moved money: look it up once that is fixed"
			}
			return out, false
		}
		out = classify(t, r, out)
		if t.Status == statusSuccessful {
			if r.Key != "" && t.TrackingID == r.Key {
				out.Observe(GuessTrackingEcho, true, "refund answer "+t.UID+" echoes our tracking_id")
			} else {
				out.Observe(GuessTrackingEcho, false, "successful refund answer "+t.UID+" does not show our tracking_id")
			}
			probe = true
		}
		return out, probe
	}
	e, ok := parseError(resp.Body)
	switch {
	case resp.Status == http.StatusNotFound:
		out = refundNotFound(e, ok, resp.Body, r, out)
	case !ok:
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("unreadable answer (HTTP %d): %s", resp.Status, providers.Snippet(resp.Body))
	case resp.Status < 400:
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("HTTP %d without a refund transaction: %s%s", resp.Status, e.text(), e.amountReading(r.Amount.Currency))
	case isDuplicate(e.text()+" "+e.FriendlyMessage, e.Code):
		out = duplicateOutcome(r.Attempt, e.text(), out)
	case refused(resp.Status):
		out.Kind, out.Reason = providers.Rejected, fmt.Sprintf("ecomCharge refused the refund (HTTP %d): %s%s", resp.Status, e.text(), e.amountReading(r.Amount.Currency))
	default:
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("undocumented HTTP %d: %s%s", resp.Status, e.text(), e.amountReading(r.Amount.Currency))
	}
	return out, false
}

// refundNotFound reads a 404 to the refund request. The refund path is
// fixed, so a 404 there is a wrong base URL or path (Blocked), unless the
// body has ecomCharge's documented error shape ({"message", "errors":
// {...}}) saying "not found" and the payment was not read fine just before
// (r.Before): that is the parent payment unknown, Rejected on a first
// attempt; on a resend it could be anything (Unknown).
func refundNotFound(e apiError, parsed bool, body []byte, r providers.Refund, out providers.Outcome) providers.Outcome {
	msg := providers.Snippet(body)
	if parsed {
		msg = e.text()
	}
	if !parsed || flattenErrors(e.Errors) == "" || len(r.Before) > 0 || !strings.Contains(strings.ToLower(e.text()), notFoundWords) {
		return baseURLOutcome(out, msg)
	}
	if r.Attempt <= 1 {
		out.Kind, out.Reason = providers.Rejected, fmt.Sprintf("ecomCharge does not know payment %s (HTTP 404): %s", r.TransactionID, msg)
		return out
	}
	out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("HTTP 404 to a resend, saying %s: an earlier attempt may have been applied", msg)
	return out
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
