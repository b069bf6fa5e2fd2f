package worker

import (
	"strings"
	"testing"
	"time"

	"github.com/refundq/refundq/providers"
)

// Every (call, outcome kind) pair, and the rules about what a "not found"
// is worth. Reading top to bottom is the review of refundq's money rules.
func TestDecide(t *testing.T) {
	const settle = 30 * time.Second
	out := func(k providers.Kind) providers.Outcome { return providers.Outcome{Kind: k, Reason: "r"} }
	base := func(c call, k providers.Kind) facts {
		return facts{call: c, out: out(k), attempt: 1, sinceSent: time.Hour, sinceNotFound: -1, sinceUnsure: -1, settle: settle}
	}
	with := func(f facts, edit func(*facts)) facts { edit(&f); return f }
	P, S, L := callPrepare, callSend, callLookup
	cases := []struct {
		name string
		f    facts
		want step
		wait time.Duration
	}{
		{"send transient passes Retry-After on as a hint", with(base(S, providers.Transient), func(f *facts) { f.out.RetryAfter = 7 * time.Second }), retrySend, 0},
		// A read before a send: nothing was sent, whatever it answered.
		{"prepare unknown: read again", base(P, providers.Unknown), retrySend, 0},
		{"prepare transient", base(P, providers.Transient), retrySend, 0},
		{"prepare blocked", base(P, providers.Blocked), block, 0},
		{"prepare rejected (no such order)", base(P, providers.Rejected), fail, 0},
		{"prepare review", base(P, providers.Review), review, 0},
		{"prepare succeeded is no answer", base(P, providers.Succeeded), retrySend, 0},
		{"prepare pending is no answer", base(P, providers.Pending), retrySend, 0},
		{"prepare not found is no answer", base(P, providers.NotFound), retrySend, 0},

		{"send succeeded", base(S, providers.Succeeded), succeed, 0},
		{"send pending", base(S, providers.Pending), pend, 0},
		{"send rejected on the first attempt", base(S, providers.Rejected), fail, 0},
		{"send rejected after an earlier attempt: look up first, never failed", with(base(S, providers.Rejected), func(f *facts) { f.attempt = 2 }), lookUp, 0},
		{"send transient: nothing applied, send again", base(S, providers.Transient), retrySend, 0},
		{"send unknown: look up before anything", base(S, providers.Unknown), retryLookup, 0},
		{"send not found (no adapter should): look up", base(S, providers.NotFound), retryLookup, 0},
		{"send blocked", base(S, providers.Blocked), block, 0},
		{"send review", base(S, providers.Review), review, 0},

		{"lookup succeeded", base(L, providers.Succeeded), succeed, 0},
		{"lookup succeeded after a refusal: ours was applied", with(base(L, providers.Succeeded), func(f *facts) { f.refused = "already refunded" }), succeed, 0},
		{"lookup pending", base(L, providers.Pending), pend, 0},
		{"lookup rejected: failed at the provider", base(L, providers.Rejected), fail, 0},
		{"lookup unknown: ask again", base(L, providers.Unknown), retryLookup, 0},
		{"lookup unknown after a refusal: still not failed", with(base(L, providers.Unknown), func(f *facts) { f.refused = "already refunded" }), retryLookup, 0},
		{"lookup transient", base(L, providers.Transient), retryLookup, 0},
		{"lookup answered but inconclusive: record it, ask again a settle delay later", with(base(L, providers.Unknown), func(f *facts) { f.out.HTTPStatus = 200 }), firstUnsure, settle},
		{"inconclusive again too soon", with(base(L, providers.Unknown), func(f *facts) { f.out.HTTPStatus = 200; f.sinceUnsure = time.Second }), retryLookup, settle - time.Second},
		{"inconclusive again a settle delay later: a human decides", with(base(L, providers.Unknown), func(f *facts) { f.out.HTTPStatus = 200; f.sinceUnsure = settle }), review, 0},
		{"inconclusive, idempotent key: a resend replays the first request", with(base(L, providers.Unknown), func(f *facts) { f.out.HTTPStatus = 200; f.idempotent = true }), notApplied, 0},
		{"inconclusive, idempotent key, at once: the resend is answered from the first request", with(base(L, providers.Unknown), func(f *facts) { f.out.HTTPStatus = 200; f.idempotent = true; f.sinceSent = time.Second }), notApplied, 0},
		{"not found soon after the send, idempotent key: resend at once", with(base(L, providers.NotFound), func(f *facts) { f.idempotent = true; f.sinceSent = time.Second }), notApplied, 0},
		{"inconclusive after a refusal, idempotent key: no resend loop, a human decides", with(base(L, providers.Unknown), func(f *facts) { f.out.HTTPStatus = 200; f.idempotent = true; f.refused = "422" }), firstUnsure, settle},
		{"50 sends without an answer: a human looks", with(base(L, providers.NotFound), func(f *facts) { f.attempt = 50 }), review, 0},
		{"5xx is no answer: keep asking", with(base(L, providers.Unknown), func(f *facts) { f.out.HTTPStatus = 503; f.sinceUnsure = settle }), retryLookup, 0},
		{"send uncertain: never resent, asked again a settle delay later", base(S, providers.Uncertain), firstUnsure, settle},
		{"lookup uncertain, idempotent key: no resend (it would replay the uncertainty)", with(base(L, providers.Uncertain), func(f *facts) { f.idempotent = true }), firstUnsure, settle},
		{"lookup uncertain a settle delay later: a human decides", with(base(L, providers.Uncertain), func(f *facts) { f.idempotent = true; f.sinceUnsure = settle }), review, 0},
		{"lookup blocked", base(L, providers.Blocked), block, 0},
		{"lookup review", base(L, providers.Review), review, 0},

		{"not found, settled: resend", base(L, providers.NotFound), notApplied, 0},
		{"not found too soon after the send: wait out the settle delay", with(base(L, providers.NotFound), func(f *facts) { f.sinceSent = 5 * time.Second }), retryLookup, 25 * time.Second},
		{"not found while the provider had it pending: review", with(base(L, providers.NotFound), func(f *facts) { f.pending = true }), review, 0},
		{"not found while pending, idempotent key: a resend replays", with(base(L, providers.NotFound), func(f *facts) { f.pending = true; f.idempotent = true }), notApplied, 0},
		{"keyless, first not found: record it, ask again a settle delay later", with(base(L, providers.NotFound), func(f *facts) { f.keyless = true }), firstNotFound, settle},
		{"keyless, second not found too soon", with(base(L, providers.NotFound), func(f *facts) { f.keyless = true; f.sinceNotFound = 10 * time.Second }), retryLookup, 20 * time.Second},
		{"keyless, second not found a settle delay later: resend", with(base(L, providers.NotFound), func(f *facts) { f.keyless = true; f.sinceNotFound = settle }), notApplied, 0},
		{"not found after a refusal: the refusal was real", with(base(L, providers.NotFound), func(f *facts) { f.refused = "already refunded" }), fail, 0},
		{"keyless not found after a refusal, first look: not yet failed", with(base(L, providers.NotFound), func(f *facts) { f.refused = "x"; f.keyless = true }), firstNotFound, settle},
		{"not found after a refusal, too soon: not yet failed", with(base(L, providers.NotFound), func(f *facts) { f.refused = "x"; f.sinceSent = time.Second }), retryLookup, settle - time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := decide(c.f)
			if d.step != c.want || d.wait != c.wait || d.hint != c.f.out.RetryAfter && d.step != fail && d.step != succeed {
				t.Fatalf("decide = %s (wait %s, %q), want %s (wait %s)", d.step, d.wait, d.reason, c.want, c.wait)
			}
		})
	}
}

// No outcome of any call ever turns into "failed" except a refusal the
// provider gave on a first attempt, a refund the provider shows failed, or a
// refusal a look-up has shown to be real: the property behind "a refusal
// after an unknown never becomes failed".
func TestDecideFailsOnlyOnProof(t *testing.T) {
	kinds := []providers.Kind{providers.Unknown, providers.Succeeded, providers.Pending, providers.Rejected,
		providers.Transient, providers.NotFound, providers.Blocked, providers.Review, providers.Uncertain}
	for _, c := range []call{callPrepare, callSend, callLookup} {
		for _, k := range kinds {
			for _, attempt := range []int{1, 2} {
				for _, refused := range []string{"", "refused"} {
					for _, since := range []time.Duration{0, time.Hour} {
						f := facts{call: c, out: providers.Outcome{Kind: k}, attempt: attempt, refused: refused,
							sinceSent: since, sinceNotFound: -1, sinceUnsure: -1, settle: time.Minute}
						d := decide(f)
						if d.step != fail {
							continue
						}
						ok := (c == callPrepare && k == providers.Rejected) ||
							(c == callSend && k == providers.Rejected && attempt == 1) ||
							(c == callLookup && k == providers.Rejected) ||
							(c == callLookup && k == providers.NotFound && refused != "" && since >= time.Minute)
						if !ok {
							t.Errorf("%s %s attempt %d refused %q since %s → failed", c, k, attempt, refused, since)
						}
					}
				}
			}
		}
	}
}

// Every (record state, call, outcome kind) has a rule: none falls through to
// the "no rule" review.
func TestDecideCoversEveryStateAndOutcome(t *testing.T) {
	kinds := []providers.Kind{providers.Unknown, providers.Succeeded, providers.Pending, providers.Rejected,
		providers.Transient, providers.NotFound, providers.Blocked, providers.Review, providers.Uncertain}
	for _, pending := range []bool{false, true} { // queued/processing vs pending
		for _, c := range []call{callPrepare, callSend, callLookup} {
			for _, k := range kinds {
				d := decide(facts{call: c, out: providers.Outcome{Kind: k}, attempt: 1, pending: pending,
					sinceNotFound: -1, sinceUnsure: -1, sinceSent: time.Hour, settle: time.Minute})
				if strings.HasPrefix(d.reason, "no rule") {
					t.Errorf("pending=%v %s %s: no rule", pending, c, k)
				}
			}
		}
	}
}
