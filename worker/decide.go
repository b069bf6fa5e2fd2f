package worker

import (
	"fmt"
	"time"

	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/providers"
)

// One place decides what a provider's answer means for a refund: decide maps
// (the call made, its outcome, what the record says of earlier attempts) to
// the next step. It does no I/O, so a reviewer can check each rule here and in
// its table test — "a refusal after an unknown never becomes failed", "not
// found is believed only after the settle delay" — without Redis or HTTP.

// step is what the worker does next with a refund.
type step int

const (
	sendNow       step = iota // send a new attempt
	lookUp                    // ask the provider what became of the attempt in flight
	retrySend                 // nothing was applied: wait, then send again
	retryLookup               // nothing is proven: wait, then look up again
	notApplied                // proven that nothing of the attempt in flight was applied: record it, then send
	firstNotFound             // a keyless provider's first "not found": record it, wait, look again
	firstUnsure               // the provider's first answer that cannot show the outcome: record it, wait, look again
	succeed                   // final: the provider paid it
	pend                      // the provider has it and has not finished: poll later
	fail                      // final: the provider refused it and nothing of ours was applied
	review                    // automation stops; a human decides
	block                     // our configuration is wrong: keep the refund, try again much later
)

var stepNames = [...]string{"send", "look up", "retry send", "retry look-up", "not applied", "first not found",
	"first unsure", "succeed", "pend", "fail", "review", "block"}

func (s step) String() string {
	if int(s) < len(stepNames) {
		return stepNames[s]
	}
	return fmt.Sprintf("step(%d)", int(s))
}

// call is the kind of provider call an outcome came from.
type call string

const (
	callPrepare call = "prepare" // a read just before a send: nothing was sent
	callSend    call = "send"
	callLookup  call = "lookup"
)

// facts is what decide needs to know.
type facts struct {
	call call
	out  providers.Outcome
	// attempt is the number of the attempt the call is about (for a send,
	// the one just sent; 1 for the first).
	attempt int
	// pending: the provider said earlier that it has the refund and is
	// still working on it.
	pending bool
	// refused is a refusal the provider gave to a resend, waiting for this
	// look-up to show whether anything of ours was applied before.
	refused string
	// sinceSent is how long ago the attempt in flight was sent.
	sinceSent time.Duration
	// sinceNotFound is how long ago a look-up first showed nothing of the
	// attempt in flight; negative when none has.
	sinceNotFound time.Duration
	// sinceUnsure is how long ago a look-up first got an answer that could
	// not show what became of the attempt in flight; negative when none has.
	sinceUnsure time.Duration
	settle      time.Duration // the provider's settle delay
	keyless     bool          // the provider keeps no key of ours
	idempotent  bool          // a resend with our key replays the first request
}

// decision is the next step, with what it waits for and why.
type decision struct {
	step step
	// wait is a delay the rule itself requires (a settle delay); 0 lets the
	// run's backoff choose.
	wait time.Duration
	// hint is the provider's Retry-After: the backoff waits at least this.
	hint   time.Duration
	reason string
	// kind, for review, says why: whether a later look-up may settle it.
	kind store.ReviewKind
}

// maxAttempts bounds the sends of one refund. Each resend needs a proof that
// the previous attempt was not applied, or a refusal or a 429 that says so,
// so a refund that gets here is caught in something no rule foresaw: a human
// looks, rather than a loop.
const maxAttempts = 50

// maxReplays bounds the resends that stand in for a look-up (an idempotent
// key): faults that hide five answers in a row are rare (4 % each in the
// chaos runs), an answer that stays unreadable will not change on a sixth,
// and a human looks after the settle rules instead of a loop.
const maxReplays = 5

func decide(f facts) decision {
	d := rule(f)
	if (d.step == notApplied || d.step == retrySend) && f.call != callPrepare && f.attempt >= maxAttempts {
		return decision{step: review, kind: store.ReviewStuck, reason: fmt.Sprintf("sent %d times without a final answer (last: %s); a human must look", f.attempt, f.out)}
	}
	return d
}

func rule(f facts) decision {
	o := f.out
	switch f.call {
	case callPrepare:
		switch o.Kind {
		case providers.Blocked:
			return decision{step: block, reason: o.Reason}
		case providers.Rejected:
			return decision{step: fail, reason: o.Reason}
		case providers.Review:
			return decision{step: review, kind: store.ReviewContradiction, reason: o.Reason}
		}
		// A read that failed sent nothing: try again.
		return decision{step: retrySend, hint: o.RetryAfter, reason: o.Reason}

	case callSend:
		switch o.Kind {
		case providers.Succeeded:
			return decision{step: succeed}
		case providers.Pending:
			return decision{step: pend, hint: o.RetryAfter}
		case providers.Review:
			return decision{step: review, kind: store.ReviewContradiction, reason: o.Reason}
		case providers.Blocked:
			return decision{step: block, reason: o.Reason}
		case providers.Transient:
			return decision{step: retrySend, hint: o.RetryAfter, reason: o.Reason}
		case providers.Uncertain:
			return unsure(f)
		case providers.Rejected:
			if f.attempt > 1 {
				// An earlier attempt of this refund was sent: "already
				// refunded" may well be that attempt, applied. Believe the
				// refusal only once a look-up shows nothing of ours.
				return decision{step: lookUp, reason: "refused after an earlier attempt: " + o.Reason}
			}
			return decision{step: fail, reason: o.Reason}
		}
		// Unknown (or a NotFound no send should return): it may have been
		// applied. Ask before anything else.
		return decision{step: retryLookup, hint: o.RetryAfter, reason: o.Reason}

	case callLookup:
		switch o.Kind {
		case providers.Succeeded:
			return decision{step: succeed}
		case providers.Pending:
			return decision{step: pend, hint: o.RetryAfter}
		case providers.Review:
			return decision{step: review, kind: store.ReviewContradiction, reason: o.Reason}
		case providers.Rejected:
			// The provider shows our refund failed. An attempt of ours sent
			// less than a settle delay ago may still land (the failure shown
			// may be a resend's own, refused as a duplicate): wait it out.
			if f.sinceSent < f.settle {
				return decision{step: retryLookup, wait: f.settle - f.sinceSent,
					reason: fmt.Sprintf("shown failed %s after the send; believed once %s have passed: %s", f.sinceSent.Round(time.Second), f.settle, o.Reason)}
			}
			return decision{step: fail, reason: o.Reason}
		case providers.Blocked:
			return decision{step: block, reason: o.Reason}
		case providers.NotFound:
			return notFound(f)
		case providers.Uncertain:
			// The provider shows our refund and says itself that its outcome
			// is uncertain: a resend replays that, so only time (or a human)
			// can tell.
			return unsure(f)
		}
		if o.Kind == providers.Unknown && o.HTTPStatus >= 200 && o.HTTPStatus < 300 {
			if f.idempotent && f.refused == "" && f.attempt < maxReplays {
				// The answer cannot show our refund, but sending it again
				// can: the provider answers a resend with our key from the
				// first request (or says it is still processing).
				return decision{step: notApplied, reason: "the provider's answer cannot show the refund; a resend with the same key replays the first request"}
			}
			if f.pending {
				// The provider said it has the refund and is working on it;
				// an answer that cannot show it changes nothing: poll on the
				// provider's schedule, up to its horizon.
				return decision{step: pend, hint: o.RetryAfter}
			}
			return unsure(f)
		}
		return decision{step: retryLookup, hint: o.RetryAfter, reason: o.Reason}
	}
	return decision{step: review, kind: store.ReviewStuck, reason: fmt.Sprintf("no rule for a %s answered %v", f.call, o)}
}

// unsure decides what an answer the provider gave, and that cannot show
// what became of the refund, is worth. Asking again soon may find the
// provider done (a refund still being written); the same answer a settle
// delay later will not change by asking: a human decides, with the answers
// in the history.
func unsure(f facts) decision {
	switch {
	case f.sinceUnsure < 0:
		return decision{step: firstUnsure, wait: f.settle,
			reason: fmt.Sprintf("the provider's answer cannot show whether the refund was applied; asking again in %s", f.settle)}
	case f.sinceUnsure < f.settle:
		return decision{step: retryLookup, wait: f.settle - f.sinceUnsure, reason: "waiting to ask again: " + f.out.Reason}
	}
	kind := store.ReviewUnknown
	if f.pending {
		// What it was is what a look-up in review must remember: a refund
		// the provider had in progress is not proven unapplied by one
		// "not found".
		kind = store.ReviewPending
	}
	return decision{step: review, kind: kind, reason: "the provider's answers cannot show whether the refund was applied: " + f.out.Reason}
}

// notFound decides when a look-up's "not applied" is believed.
func notFound(f facts) decision {
	switch {
	case f.pending && !f.idempotent:
		return decision{step: review, kind: store.ReviewContradiction, reason: "the provider had reported this refund in progress and now shows none of it"}
	case f.sinceSent < f.settle && (!f.idempotent || f.refused != ""):
		// The provider may still be working on a request our client gave up
		// on; what it shows now proves nothing yet. With an idempotency key
		// a resend is answered from that request, so no wait is needed
		// before one; but a refusal of a resend is believed only once every
		// attempt of ours has had the settle delay to show (a provider may
		// validate a resend before it replays it: "exceeds refundable"
		// while the first attempt lands).
		return decision{step: retryLookup, wait: f.settle - f.sinceSent,
			reason: fmt.Sprintf("not found %s after the send; asking again once %s have passed", f.sinceSent.Round(time.Second), f.settle)}
	case f.keyless && f.sinceNotFound < 0:
		return decision{step: firstNotFound, wait: f.settle,
			reason: fmt.Sprintf("not found; with no key of ours at the provider, believed only if a look-up %s later agrees", f.settle)}
	case f.keyless && f.sinceNotFound < f.settle:
		return decision{step: retryLookup, wait: f.settle - f.sinceNotFound, reason: "waiting for the second look-up"}
	case f.refused != "":
		return decision{step: fail, reason: f.refused + "; a look-up shows nothing of ours applied"}
	}
	return decision{step: notApplied, reason: "the provider shows nothing of the attempt applied"}
}
