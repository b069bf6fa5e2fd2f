package ecomcharge

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/refundq/refundq/providers"
)

// The guesses (see the package doc).
const (
	// GuessTrackingEcho: a refund request accepts our tracking_id and its
	// answer echoes it. Informational: an echo proves the field was
	// accepted, not that anything can find the refund by it.
	GuessTrackingEcho providers.Guess = "ecomcharge.tracking_id"
	// GuessTrackingLookup: GET /v2/transactions/tracking_id/{tracking_id}
	// lists our refunds. The only guess a look-up's "none" rests on.
	GuessTrackingLookup providers.Guess = "ecomcharge.tracking_lookup"
)

// Guesses are the undocumented facts the adapter relies on.
var Guesses = []providers.GuessInfo{{
	Guess: GuessTrackingEcho,
	Means: "ecomCharge accepts the tracking_id sent with a refund (the refund page does not list it) and echoes it in " +
		"the refund's answer. Confirmed by a refund answer echoing it, refuted by a successful one without it. " +
		"Nothing is decided on it: an echo does not show that the look-up by tracking_id lists refunds " +
		"(see ecomcharge.tracking_lookup).",
}, {
	Guess: GuessTrackingLookup,
	Means: "GET /v2/transactions/tracking_id/{tracking_id} lists our refunds (the status query page documents it for " +
		"tracking_ids of authorization and payment requests). Confirmed only by that look-up showing a successful " +
		"refund of ours (our tracking_id, our amount, type refund); refuted when the look-up made right after a " +
		"successful refund answer does not list that refund. Until confirmed, a look-up listing nothing is unknown, " +
		"never not found: a refund whose answer was lost is not resent and waits for reconciliation or a human.",
}}

// learnLookup looks our refund up by tracking_id right after ecomCharge
// answered it successful: the refund is there to be listed. Listed as a
// successful refund of ours (showsOurs) confirms GuessTrackingLookup; not
// listed at all refutes it. Anything else (a failed look-up, an unreadable
// answer, our refund listed in another state or amount) teaches nothing. A
// refutation that was only a slow index costs look-ups that stay Unknown
// (fail closed), never a resend; an operator can clear it.
func (c *Client) learnLookup(ctx context.Context, r providers.Refund, uid string, out *providers.Outcome) {
	resp, err := c.do(ctx, http.MethodGet, trackingPath+url.PathEscape(r.Key), nil)
	if err != nil || resp.Status != http.StatusOK {
		return
	}
	list, ok := parseList(resp.Body)
	if !ok {
		return
	}
	for _, t := range list {
		if t.UID != uid {
			continue
		}
		if c.showsOurs(t, r) {
			out.Observe(GuessTrackingLookup, true, "the look-up by tracking_id right after lists successful refund "+uid+" of ours")
		}
		return
	}
	out.Observe(GuessTrackingLookup, false, fmt.Sprintf("refund %s was answered successful, and the look-up by its tracking_id right after does not list it (%d other transaction(s) listed)", uid, len(list)))
}

// showsOurs reports whether a listed transaction is a successful refund of
// ours, field by field: our tracking_id, type refund, status successful, our
// amount (and currency and parent payment where shown), in our mode. Only
// such a row shows that the look-up by tracking_id lists our refunds.
func (c *Client) showsOurs(t transaction, r providers.Refund) bool {
	return r.Key != "" && t.TrackingID == r.Key && t.Type == refundType && t.Status == statusSuccessful &&
		notOurs(t, r) == "" && mismatch(t, r.Amount) == "" && c.otherMode(t.Test) == ""
}

func verdict(k providers.Knowledge, g providers.Guess) string {
	if k == nil {
		return providers.Unconfirmed.String()
	}
	return k[g].String()
}
