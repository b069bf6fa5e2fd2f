package worker

import (
	"github.com/refundq/refundq/providers"
)

// What a look-up of a refund in needs_review proves. It reads the answer
// with the very rules a run uses (rule), so a look-up in review believes
// nothing a run would not; and it settles only on what proves the outcome.
// A resend standing in for a look-up (an idempotent key) proves nothing
// here: nothing is sent from review.

// finding is what a look-up in review found.
type finding int

const (
	stillUnknown   finding = iota // nothing proven: look again later
	paid                          // the provider shows the refund applied: settle succeeded
	refused                       // the provider shows it failed, or refused with nothing of ours applied: settle failed
	nothingApplied                // proven that nothing of the attempt in flight was applied
	notFoundOnce                  // a keyless provider's first "not found": a second, a settle delay later, must agree
	contradicted                  // the answer contradicts the request: a person weighs it; no more look-ups
)

var findingNames = [...]string{"unknown", "succeeded", "failed", "not_applied", "not_found_once", "contradiction"}

func (f finding) String() string { return findingNames[f] }

// judgeReview maps a look-up's facts (f.call is callLookup) to what it proves.
func judgeReview(f facts) (finding, string) {
	d := rule(f)
	switch d.step {
	case succeed:
		return paid, "the provider shows the refund applied"
	case fail:
		return refused, d.reason
	case notApplied:
		if f.out.Kind == providers.NotFound && f.pending {
			// A run may resend it (a resend with the key replays whatever
			// the provider holds), but to a person "it was in progress and
			// is gone" proves nothing.
			return contradicted, "the provider had reported this refund in progress and now shows none of it"
		}
		if f.out.Kind == providers.NotFound {
			return nothingApplied, d.reason
		}
	case firstNotFound:
		return notFoundOnce, d.reason
	case review:
		if f.out.Kind == providers.Review || f.out.Kind == providers.NotFound {
			return contradicted, d.reason
		}
	case pend:
		return stillUnknown, "still in progress at the provider"
	}
	return stillUnknown, "the answer cannot show whether the refund was applied"
}
