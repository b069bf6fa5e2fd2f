package worker

import (
	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/providers"
)

// agreement is what a reconciliation makes of one final refund (its
// verdict: worker has a verdict function already).
type agreement string

const (
	agree     agreement = "agree"
	disagree  agreement = "disagree"
	unchecked agreement = "unchecked" // the provider's answer could not show it; not a disagreement
)

// Why a refund disagrees, as the report says it. They are part of the
// report's contract (a finance team filters on them): add, never reword.
const (
	whyNothing       = "provider shows nothing"
	whyAmount        = "provider shows another amount or currency"
	whyFailedThere   = "provider shows it failed"
	whyPendingThere  = "still pending at the provider"
	whyRefs          = "references differ"
	whyAppliedThere  = "failed here, applied at the provider"
	whyPendingFailed = "failed here, pending at the provider"
	whyAmountFailed  = "failed here, the provider shows a refund of another amount or currency"
)

// lookupNeeded says whether a final refund must be looked up at all: a
// failed refund nothing of which was ever sent cannot be applied anywhere.
func lookupNeeded(rec store.Record) bool {
	return !(rec.State == store.Failed && rec.Attempts == 0 && rec.InFlight == 0)
}

// verifiable says whether a final refund is checked by the provider's
// reference (providers.Verifier) rather than by Lookup: a succeeded refund
// with one. A failed refund's reference, if any, names an attempt the
// provider refused; what the report must show of it is that nothing of
// ours was applied, Lookup's question.
func verifiable(rec store.Record) bool {
	return rec.State == store.Succeeded && rec.ProviderRef != ""
}

// judge compares what refundq recorded of a final refund (its state and
// the provider's reference it kept) with what a look-up shows now. It is
// the whole of the report's rules, read top to bottom:
//
//	here       provider shows                 verdict
//	succeeded  succeeded, same reference      agree (no reference on one side: nothing to compare)
//	succeeded  succeeded, another reference   disagree: references differ
//	succeeded  not found (positive proof)     disagree: provider shows nothing
//	succeeded  review (another amount, …)     disagree: another amount or currency
//	succeeded  rejected                       disagree: provider shows it failed
//	succeeded  pending                        disagree: still pending (see below)
//	failed     succeeded                      disagree: failed here, applied there (the worst)
//	failed     pending                        disagree: it may yet be applied
//	failed     review                         disagree: something of ours moved money
//	failed     not found, rejected            agree
//	either     unknown, transient, blocked,   unchecked: the answer shows nothing either way
//	           uncertain
//
// A succeeded refund still pending at the provider is a disagreement, not a
// note: refundq told the merchant (and its customer) the money is back, the
// record is final, and nothing will ever look at it again; only this report
// can say the provider has not finished it.
func judge(state store.State, ourRef string, out providers.Outcome) (agreement, string) {
	switch out.Kind {
	case providers.Unknown, providers.Transient, providers.Blocked, providers.Uncertain:
		return unchecked, "the provider's answer shows nothing either way (" + out.Kind.String() + ")"
	}
	if state == store.Failed {
		switch out.Kind {
		case providers.Succeeded:
			return disagree, whyAppliedThere
		case providers.Pending:
			return disagree, whyPendingFailed
		case providers.Review:
			return disagree, whyAmountFailed
		case providers.NotFound, providers.Rejected:
			return agree, ""
		}
		return unchecked, "unexpected outcome " + out.Kind.String()
	}
	switch out.Kind {
	case providers.Succeeded:
		if ourRef != "" && out.Reference != "" && ourRef != out.Reference {
			return disagree, whyRefs
		}
		return agree, ""
	case providers.NotFound:
		return disagree, whyNothing
	case providers.Review:
		return disagree, whyAmount
	case providers.Rejected:
		return disagree, whyFailedThere
	case providers.Pending:
		return disagree, whyPendingThere
	}
	return unchecked, "unexpected outcome " + out.Kind.String()
}
