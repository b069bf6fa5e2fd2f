package worker

import (
	"testing"
	"time"

	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/providers"
)

// What a look-up of a refund in needs_review proves, answer by answer. It
// settles on proof alone: an answer that cannot show the refund, a resend
// an idempotent key would allow, a first "not found" at a provider without
// our key — none of them settles anything.
func TestJudgeALookupInReview(t *testing.T) {
	const settle = 30 * time.Second
	base := func(k providers.Kind) facts {
		return facts{call: callLookup, out: providers.Outcome{Kind: k, Reason: "r"}, attempt: 1, sinceSent: time.Hour,
			sinceNotFound: -1, sinceUnsure: -1, settle: settle}
	}
	with := func(f facts, edit func(*facts)) facts { edit(&f); return f }
	ok200 := func(f *facts) { f.out.HTTPStatus = 200 }
	cases := []struct {
		name string
		f    facts
		want finding
	}{
		{"listed now: settled succeeded", base(providers.Succeeded), paid},
		{"pending refund completed: settled succeeded", with(base(providers.Succeeded), func(f *facts) { f.pending = true }), paid},
		{"shown failed at the provider: settled failed", base(providers.Rejected), refused},
		{"pending refund declined: settled failed", with(base(providers.Rejected), func(f *facts) { f.pending = true }), refused},
		{"not found, keyed provider, long after the send: nothing applied (proof for a person)", base(providers.NotFound), nothingApplied},
		{"not found, keyed and idempotent: nothing applied", with(base(providers.NotFound), func(f *facts) { f.idempotent = true }), nothingApplied},
		{"not found after a refusal of a resend: settled failed", with(base(providers.NotFound), func(f *facts) { f.refused = "already refunded" }), refused},
		{"not found, keyless, first time: a second look-up must agree", with(base(providers.NotFound), func(f *facts) { f.keyless = true }), notFoundOnce},
		{"not found, keyless, a settle delay after the first: nothing applied", with(base(providers.NotFound), func(f *facts) { f.keyless = true; f.sinceNotFound = settle }), nothingApplied},
		{"not found, keyless, too soon after the first: unknown", with(base(providers.NotFound), func(f *facts) { f.keyless = true; f.sinceNotFound = time.Second }), stillUnknown},
		{"not found while it was in progress: contradiction", with(base(providers.NotFound), func(f *facts) { f.pending = true }), contradicted},
		{"not found while in progress, idempotent: contradiction (a run's resend would replay it; a person is told no proof)", with(base(providers.NotFound), func(f *facts) { f.pending = true; f.idempotent = true }), contradicted},
		{"another amount: contradiction", base(providers.Review), contradicted},
		{"still pending: unknown", with(base(providers.Pending), func(f *facts) { f.pending = true }), stillUnknown},
		{"pending now (was unknown): unknown (Recheck then records it pending_too_long)", base(providers.Pending), stillUnknown},
		{"answer cannot show it: unknown", with(base(providers.Unknown), ok200), stillUnknown},
		{"answer cannot show it, idempotent: unknown (nothing is sent from review)", with(base(providers.Unknown), func(f *facts) { ok200(f); f.idempotent = true }), stillUnknown},
		{"answer cannot show it, long unsure: unknown", with(base(providers.Unknown), func(f *facts) { ok200(f); f.sinceUnsure = time.Hour }), stillUnknown},
		{"uncertain at the provider: unknown", base(providers.Uncertain), stillUnknown},
		{"5xx: unknown", with(base(providers.Unknown), func(f *facts) { f.out.HTTPStatus = 503 }), stillUnknown},
		{"no answer: unknown", base(providers.Unknown), stillUnknown},
		{"transient: unknown", base(providers.Transient), stillUnknown},
		{"credentials refused: unknown", base(providers.Blocked), stillUnknown},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, why := judgeReview(c.f)
			if got != c.want {
				t.Errorf("judgeReview = %s (%s), want %s", got, why, c.want)
			}
		})
	}
}

// Every decision that hands a refund to a person says why, and the kinds a
// later look-up may settle are exactly the ones where nothing was shown.
func TestReviewDecisionsCarryTheirKind(t *testing.T) {
	const settle = 30 * time.Second
	f := func(c call, k providers.Kind, edit func(*facts)) facts {
		x := facts{call: c, out: providers.Outcome{Kind: k, HTTPStatus: 200}, attempt: 1, sinceSent: time.Hour,
			sinceNotFound: -1, sinceUnsure: time.Hour, settle: settle}
		if edit != nil {
			edit(&x)
		}
		return x
	}
	cases := []struct {
		name string
		f    facts
		want store.ReviewKind
	}{
		{"answers cannot show it", f(callLookup, providers.Unknown, nil), store.ReviewUnknown},
		{"uncertain at the provider", f(callLookup, providers.Uncertain, nil), store.ReviewUnknown},
		{"another amount on a look-up", f(callLookup, providers.Review, nil), store.ReviewContradiction},
		{"another amount on a send", f(callSend, providers.Review, nil), store.ReviewContradiction},
		{"a read before a send contradicts", f(callPrepare, providers.Review, nil), store.ReviewContradiction},
		{"in progress, now gone", f(callLookup, providers.NotFound, func(x *facts) { x.pending = true }), store.ReviewContradiction},
		{"50 attempts", f(callLookup, providers.NotFound, func(x *facts) { x.attempt = maxAttempts }), store.ReviewStuck},
		{"no rule", f(call("other"), providers.Unknown, nil), store.ReviewStuck},
	}
	for _, c := range cases {
		d := decide(c.f)
		if d.step != review || d.kind != c.want {
			t.Errorf("%s: decision %s kind %q, want review kind %q", c.name, d.step, d.kind, c.want)
		}
	}
}

func TestReviewScheduleGrowsThenDaily(t *testing.T) {
	p := reviewPolicy{schedule: DefaultReviewRecheck}
	want := []time.Duration{10 * time.Minute, time.Hour, 6 * time.Hour, 24 * time.Hour, 24 * time.Hour, 24 * time.Hour}
	for n, w := range want {
		if got := p.after(n); got != w {
			t.Errorf("after(%d) = %s, want %s", n, got, w)
		}
	}
	if got := (reviewPolicy{schedule: []time.Duration{}}).first(); got != 0 {
		t.Errorf("an empty schedule looks up after %s, want never (0)", got)
	}
	if got := (reviewPolicy{schedule: []time.Duration{time.Second, 2 * time.Second}}).after(5); got != 2*time.Second {
		t.Errorf("past the schedule's end: %s, want its last wait again", got)
	}
}
