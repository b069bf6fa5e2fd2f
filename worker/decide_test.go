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
							(c == callLookup && k == providers.Rejected && since >= time.Minute) ||
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

// The whole decision table, written out: every call × outcome × kind of
// provider (keyed: a key of ours finds the refund; keyless: only the order
// shows it; idempotent: a resend with our key replays the first request) ×
// what the record says (pending at the provider; a refusal of a resend
// waiting for this look-up) × time (before or after the settle delay since
// the last send). Each line is one row of the table; its 24 cells are the
// expected steps, in this order:
//
//	keyed                        keyless                      idempotent
//	-- b a  r- b a  p- b a  pr b a   (same)                       (same)
//
// "-" nothing, "r" a refusal waits (so this is attempt 2 at least), "p"
// pending, "pr" both; "b" half a
// settle delay after the send, "a" two settle delays after it. Codes: OK
// succeed, PE pend, FA fail, RE review, BL block, RS retry send, RL retry
// look-up, NA not applied (resend), NF first not found, FU first unsure, LU
// look up. The expectations come from the rules in docs/GUARANTEES.md ("How a
// refund moves"), not from the code: a change to decide that moves a cell must move
// it here too, on purpose.
func TestDecideTable(t *testing.T) {
	const settle = 40 * time.Second
	codes := map[string]step{"OK": succeed, "PE": pend, "FA": fail, "RE": review, "BL": block, "RS": retrySend,
		"RL": retryLookup, "NA": notApplied, "NF": firstNotFound, "FU": firstUnsure, "LU": lookUp}
	rows := []struct {
		call  call
		kind  providers.Kind
		how   string // variant of the row's facts, see below
		cells string
	}{
		// A read before a send: nothing was sent, whatever it answered.
		{callPrepare, providers.Unknown, "", "RS RS RS RS RS RS RS RS  RS RS RS RS RS RS RS RS  RS RS RS RS RS RS RS RS"},
		{callPrepare, providers.Succeeded, "", "RS RS RS RS RS RS RS RS  RS RS RS RS RS RS RS RS  RS RS RS RS RS RS RS RS"},
		{callPrepare, providers.Pending, "", "RS RS RS RS RS RS RS RS  RS RS RS RS RS RS RS RS  RS RS RS RS RS RS RS RS"},
		{callPrepare, providers.Rejected, "", "FA FA FA FA FA FA FA FA  FA FA FA FA FA FA FA FA  FA FA FA FA FA FA FA FA"},
		{callPrepare, providers.Transient, "", "RS RS RS RS RS RS RS RS  RS RS RS RS RS RS RS RS  RS RS RS RS RS RS RS RS"},
		{callPrepare, providers.NotFound, "", "RS RS RS RS RS RS RS RS  RS RS RS RS RS RS RS RS  RS RS RS RS RS RS RS RS"},
		{callPrepare, providers.Blocked, "", "BL BL BL BL BL BL BL BL  BL BL BL BL BL BL BL BL  BL BL BL BL BL BL BL BL"},
		{callPrepare, providers.Review, "", "RE RE RE RE RE RE RE RE  RE RE RE RE RE RE RE RE  RE RE RE RE RE RE RE RE"},
		{callPrepare, providers.Uncertain, "", "RS RS RS RS RS RS RS RS  RS RS RS RS RS RS RS RS  RS RS RS RS RS RS RS RS"},

		// The answer to a send. A refusal of a first attempt is believed; of
		// a resend, looked up first ("2nd"). An unknown is looked up.
		{callSend, providers.Unknown, "", "RL RL RL RL RL RL RL RL  RL RL RL RL RL RL RL RL  RL RL RL RL RL RL RL RL"},
		{callSend, providers.Succeeded, "", "OK OK OK OK OK OK OK OK  OK OK OK OK OK OK OK OK  OK OK OK OK OK OK OK OK"},
		{callSend, providers.Pending, "", "PE PE PE PE PE PE PE PE  PE PE PE PE PE PE PE PE  PE PE PE PE PE PE PE PE"},
		{callSend, providers.Rejected, "", "FA FA LU LU FA FA LU LU  FA FA LU LU FA FA LU LU  FA FA LU LU FA FA LU LU"},
		{callSend, providers.Rejected, "2nd", "LU LU LU LU LU LU LU LU  LU LU LU LU LU LU LU LU  LU LU LU LU LU LU LU LU"},
		{callSend, providers.Transient, "", "RS RS RS RS RS RS RS RS  RS RS RS RS RS RS RS RS  RS RS RS RS RS RS RS RS"},
		{callSend, providers.NotFound, "", "RL RL RL RL RL RL RL RL  RL RL RL RL RL RL RL RL  RL RL RL RL RL RL RL RL"},
		{callSend, providers.Blocked, "", "BL BL BL BL BL BL BL BL  BL BL BL BL BL BL BL BL  BL BL BL BL BL BL BL BL"},
		{callSend, providers.Review, "", "RE RE RE RE RE RE RE RE  RE RE RE RE RE RE RE RE  RE RE RE RE RE RE RE RE"},
		{callSend, providers.Uncertain, "", "FU FU FU FU FU FU FU FU  FU FU FU FU FU FU FU FU  FU FU FU FU FU FU FU FU"},

		// A look-up, the first since the send. "200": the provider answered
		// and the answer cannot show the refund ("5th": the fifth attempt);
		// otherwise no answer (503).
		{callLookup, providers.Unknown, "", "RL RL RL RL RL RL RL RL  RL RL RL RL RL RL RL RL  RL RL RL RL RL RL RL RL"},
		{callLookup, providers.Unknown, "200", "FU FU FU FU PE PE PE PE  FU FU FU FU PE PE PE PE  NA NA FU FU NA NA PE PE"},
		{callLookup, providers.Unknown, "200 5th", "FU FU FU FU PE PE PE PE  FU FU FU FU PE PE PE PE  FU FU FU FU PE PE PE PE"},
		{callLookup, providers.Succeeded, "", "OK OK OK OK OK OK OK OK  OK OK OK OK OK OK OK OK  OK OK OK OK OK OK OK OK"},
		{callLookup, providers.Pending, "", "PE PE PE PE PE PE PE PE  PE PE PE PE PE PE PE PE  PE PE PE PE PE PE PE PE"},
		{callLookup, providers.Rejected, "", "RL FA RL FA RL FA RL FA  RL FA RL FA RL FA RL FA  RL FA RL FA RL FA RL FA"},
		{callLookup, providers.Transient, "", "RL RL RL RL RL RL RL RL  RL RL RL RL RL RL RL RL  RL RL RL RL RL RL RL RL"},
		{callLookup, providers.NotFound, "", "RL NA RL FA RE RE RE RE  RL NF RL NF RE RE RE RE  NA NA RL FA NA NA RL FA"},
		{callLookup, providers.Blocked, "", "BL BL BL BL BL BL BL BL  BL BL BL BL BL BL BL BL  BL BL BL BL BL BL BL BL"},
		{callLookup, providers.Review, "", "RE RE RE RE RE RE RE RE  RE RE RE RE RE RE RE RE  RE RE RE RE RE RE RE RE"},
		{callLookup, providers.Uncertain, "", "FU FU FU FU FU FU FU FU  FU FU FU FU FU FU FU FU  FU FU FU FU FU FU FU FU"},

		// A later look-up: "again" when an earlier one had the same answer
		// ("b": half a settle delay before, "a": a settle delay before; the
		// send two settle delays ago in both).
		{callLookup, providers.NotFound, "again", "NA NA FA FA RE RE RE RE  RL NA RL FA RE RE RE RE  NA NA FA FA NA NA FA FA"},
		{callLookup, providers.Unknown, "200 again", "RL RE RL RE PE PE PE PE  RL RE RL RE PE PE PE PE  NA NA RL RE NA NA PE PE"},
		{callLookup, providers.Uncertain, "again", "RL RE RL RE RL RE RL RE  RL RE RL RE RL RE RL RE  RL RE RL RE RL RE RL RE"},
	}
	kinds := []string{"keyed", "keyless", "idempotent"}
	seen := map[string]bool{}
	for _, row := range rows {
		cells := strings.Fields(row.cells)
		if len(cells) != 24 {
			t.Fatalf("%s %s %q: %d cells, want 24", row.call, row.kind, row.how, len(cells))
		}
		seen[string(row.call)+" "+row.kind.String()] = true
		i := 0
		for _, kind := range kinds {
			for _, pending := range []bool{false, true} {
				for _, refused := range []bool{false, true} {
					for _, after := range []bool{false, true} {
						f := facts{call: row.call, out: providers.Outcome{Kind: row.kind, Reason: "r"}, attempt: 1,
							pending: pending, sinceNotFound: -1, sinceUnsure: -1, settle: settle,
							keyless: kind == "keyless", idempotent: kind == "idempotent"}
						if refused {
							f.refused, f.attempt = "refused: already refunded", 2
						}
						f.sinceSent = settle / 2
						if after {
							f.sinceSent = 2 * settle
						}
						if strings.Contains(row.how, "200") {
							f.out.HTTPStatus = 200
						} else if row.kind == providers.Unknown {
							f.out.HTTPStatus = 503
						}
						if row.how == "2nd" {
							f.attempt = 2
						}
						if strings.Contains(row.how, "5th") {
							f.attempt = 5
						}
						if strings.Contains(row.how, "again") {
							f.sinceSent, f.sinceNotFound, f.sinceUnsure = 2*settle, settle/2, settle/2
							if after {
								f.sinceNotFound, f.sinceUnsure = settle, settle
							}
						}
						want := codes[cells[i]]
						got := decide(f)
						if got.step != want {
							t.Errorf("%s %s %s, %s provider, pending %v, refused %v, after %v: %s (%q), want %s",
								row.call, row.kind, row.how, kind, pending, refused, after, got.step, got.reason, want)
						}
						if strings.HasPrefix(got.reason, "no rule") {
							t.Errorf("%s %s: no rule", row.call, row.kind)
						}
						i++
					}
				}
			}
		}
	}
	for _, c := range []call{callPrepare, callSend, callLookup} {
		for k := providers.Unknown; k <= providers.Uncertain; k++ {
			if !seen[string(c)+" "+k.String()] {
				t.Errorf("no row for %s %s", c, k)
			}
		}
	}
}
