package worker

import (
	"testing"

	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/providers"
)

// Every (state here, what the provider shows) pair of the reconciliation
// report. Reading top to bottom is the review of what counts as a
// disagreement.
func TestJudge(t *testing.T) {
	S, F := store.Succeeded, store.Failed
	out := func(k providers.Kind, ref string) providers.Outcome {
		return providers.Outcome{Kind: k, Reference: ref}
	}
	cases := []struct {
		name   string
		state  store.State
		ourRef string
		out    providers.Outcome
		want   agreement
		why    string
	}{
		{"succeeded, same reference", S, "ref-1", out(providers.Succeeded, "ref-1"), agree, ""},
		{"succeeded, the look-up names no reference", S, "ref-1", out(providers.Succeeded, ""), agree, ""},
		{"succeeded, we kept no reference", S, "", out(providers.Succeeded, "ref-1"), agree, ""},
		{"succeeded, another reference", S, "ref-1", out(providers.Succeeded, "ref-2"), disagree, whyRefs},
		{"succeeded, the provider positively shows nothing", S, "ref-1", out(providers.NotFound, ""), disagree, whyNothing},
		{"succeeded, another amount or currency", S, "ref-1", out(providers.Review, "ref-1"), disagree, whyAmount},
		{"succeeded, the provider shows it failed", S, "ref-1", out(providers.Rejected, "ref-1"), disagree, whyFailedThere},
		{"succeeded, still pending at the provider", S, "ref-1", out(providers.Pending, "ref-1"), disagree, whyPendingThere},
		{"succeeded, no answer that shows anything", S, "ref-1", out(providers.Unknown, ""), unchecked, ""},
		{"succeeded, provider busy", S, "ref-1", out(providers.Transient, ""), unchecked, ""},
		{"succeeded, our credentials refused", S, "ref-1", out(providers.Blocked, ""), unchecked, ""},
		{"succeeded, outcome uncertain at the provider", S, "ref-1", out(providers.Uncertain, "ref-1"), unchecked, ""},

		{"failed, applied at the provider: the worst", F, "", out(providers.Succeeded, "ref-1"), disagree, whyAppliedThere},
		{"failed, pending at the provider: it may yet be applied", F, "", out(providers.Pending, "ref-1"), disagree, whyPendingFailed},
		{"failed, a refund of ours of another amount", F, "", out(providers.Review, "ref-1"), disagree, whyAmountFailed},
		{"failed, the provider shows nothing", F, "", out(providers.NotFound, ""), agree, ""},
		{"failed, the provider shows it failed", F, "", out(providers.Rejected, ""), agree, ""},
		{"failed, no answer that shows anything", F, "", out(providers.Unknown, ""), unchecked, ""},
		{"failed, provider busy", F, "", out(providers.Transient, ""), unchecked, ""},
		{"failed, our credentials refused", F, "", out(providers.Blocked, ""), unchecked, ""},
		{"failed, outcome uncertain at the provider", F, "", out(providers.Uncertain, ""), unchecked, ""},
	}
	for _, c := range cases {
		got, why := judge(c.state, c.ourRef, c.out)
		if got != c.want || (c.want != unchecked && why != c.why) || (c.want == unchecked && why == "") {
			t.Errorf("%s: judge = %s %q, want %s %q", c.name, got, why, c.want, c.why)
		}
	}
}

// A failed refund nothing of which was sent is agreed without a call;
// every other final refund is looked up.
func TestLookupNeeded(t *testing.T) {
	cases := []struct {
		rec  store.Record
		want bool
	}{
		{store.Record{State: store.Failed}, false},
		{store.Record{State: store.Failed, Attempts: 1}, true},
		{store.Record{State: store.Failed, InFlight: 1}, true},
		{store.Record{State: store.Succeeded}, true}, // settled by a person: check what they saw
		{store.Record{State: store.Succeeded, Attempts: 2}, true},
	}
	for _, c := range cases {
		if got := lookupNeeded(c.rec); got != c.want {
			t.Errorf("lookupNeeded(%+v) = %v, want %v", c.rec, got, c.want)
		}
	}
}
