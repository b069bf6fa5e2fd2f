package worker

import "time"

// reviewPolicy is when a refund in needs_review whose outcome nothing has
// shown yet is looked up again, and what a look-up that proves nothing
// was applied may do.
type reviewPolicy struct {
	// schedule is the wait before each look-up after the refund entered
	// review; past its end, its last wait again, until horizon.
	schedule []time.Duration
	// horizon is how long after entering review look-ups go on (at least
	// the provider's own poll horizon).
	horizon time.Duration
	// resume sends a refund again once a look-up proves nothing of it was
	// applied (Config.ResumeAfterReview); otherwise a person decides.
	resume bool
}

// DefaultReviewRecheck is Config.ReviewRecheck's default: soon enough that a
// refund still being written at the provider is found the same hour, then
// further apart.
var DefaultReviewRecheck = []time.Duration{10 * time.Minute, time.Hour, 6 * time.Hour, 24 * time.Hour}

// DefaultReviewRecheckFor is Config.ReviewRecheckFor's default.
const DefaultReviewRecheckFor = 30 * 24 * time.Hour

// first is the wait before the first look-up in review (0: none).
func (p reviewPolicy) first() time.Duration { return p.after(0) }

// after is the wait before look-up n+1, after n have been made: past the
// schedule's end, its last wait again (daily, by default). 0: look-ups are
// off. The caller also checks the horizon.
func (p reviewPolicy) after(n int) time.Duration {
	if len(p.schedule) == 0 {
		return 0
	}
	return p.schedule[min(n, len(p.schedule)-1)]
}
