package fatora

import (
	"context"
	"fmt"

	"github.com/refundq/refundq/providers"
)

// The guesses, one per refund status: Fatora's verify page shows no refund
// field, and a verify that shows refunds in one status proves nothing of
// the other.
const (
	// GuessVerifyShowsCompleted: verify shows a payment's completed refund
	// as refund_status "completed". (Its name predates the split; what is
	// stored under it was learned from completed refunds.)
	GuessVerifyShowsCompleted providers.Guess = "fatora.verify_refund_status"
	// GuessVerifyShowsProcessing: verify shows a payment's refund that the
	// bank is still processing as refund_status "under_proccession".
	GuessVerifyShowsProcessing providers.Guess = "fatora.verify_refund_status.under_proccession"
)

// Guesses are the undocumented facts the adapter relies on.
var Guesses = []providers.GuessInfo{{
	Guess: GuessVerifyShowsCompleted,
	Means: "verify (/v1/payments/verify) shows a payment's completed refund as refund_status \"completed\". Confirmed only by " +
		"a verify that shows a completed refund (one is made right after a refund answered completed); a verify then without " +
		"refund_status refutes it. With " + string(GuessVerifyShowsProcessing) + " it lets a paid payment without refund_status " +
		"prove that no refund of ours exists; until both are confirmed, such a verify is unknown, and a refund whose answer " +
		"was lost is left for a human rather than resent.",
}, {
	Guess: GuessVerifyShowsProcessing,
	Means: "verify shows a payment's refund while the bank still processes it (2-4 weeks) as refund_status " +
		"\"under_proccession\". Confirmed only by a verify that shows an under_proccession refund (one is made right after a " +
		"refund answered under_proccession; a verify then without refund_status refutes it); a verify that shows completed " +
		"refunds says nothing of it. Until confirmed, a paid payment without refund_status is unknown: a refund whose " +
		"answer was lost may be at the bank.",
}}

// learn makes one verify right after a refund answered in the status guess
// g is about: the payment has a refund in that status now, so verify shows
// it (g holds) or, showing no refund field, does not show refunds in that
// status (g refuted). A verify that shows the refund in the other status
// (it completed meanwhile) says something of that status only.
func (c *Client) learn(ctx context.Context, r providers.Refund, out *providers.Outcome, g providers.Guess) {
	v, _, ok := c.verify(ctx, r)
	status := map[providers.Guess]string{GuessVerifyShowsCompleted: refundCompleted, GuessVerifyShowsProcessing: refundProcessing}[g]
	switch {
	case !ok:
		// No answer: nothing learned this time.
	case v.showsRefundField():
		observeShown(out, v, fmt.Sprintf("verify after a refund answered %s", status))
	case v.PaymentStatus != nil:
		out.Observe(g, false, fmt.Sprintf(
			"verify after a refund answered %s shows payment_status %q and no refund_status", status, v.paymentStatus()))
	}
}

// observeShown records what a verify that shows a refund field proves: that
// verify shows refunds in the status it shows, and nothing of the other.
func observeShown(out *providers.Outcome, v verifyResult, what string) {
	switch v.refundStatus() {
	case refundCompleted:
		out.Observe(GuessVerifyShowsCompleted, true, fmt.Sprintf("%s shows refund_status %q", what, v.refundStatus()))
	case refundProcessing:
		out.Observe(GuessVerifyShowsProcessing, true, fmt.Sprintf("%s shows refund_status %q", what, v.refundStatus()))
	}
}

// showsEveryRefund reports whether what refundq has learned lets a verify
// without refund_status prove that the payment has no refund: verify has
// been seen to show refunds in both statuses a refund can be in.
func showsEveryRefund(k providers.Knowledge) bool {
	return k.Holds(GuessVerifyShowsCompleted) && k.Holds(GuessVerifyShowsProcessing)
}
