package bbmsl_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/providers/bbmsl"
	"github.com/refundq/refundq/providers/bbmsl/bbmslsim"
	"github.com/refundq/refundq/providers/sim"
	"github.com/refundq/refundq/tasks"
)

func hkd(minor int64) tasks.Money { return tasks.Money{Minor: minor, Currency: "HKD"} }

// bench is a simulator in one shape, served over real HTTP, with the adapter
// pointed at it and what the adapter has learned so far.
type bench struct {
	s     *bbmslsim.Simulator
	c     *bbmsl.Client
	known providers.Knowledge
	n     int
}

// newBench serves a simulator in the given shape. In the guessed shape one
// refund is made first (quirks off), so the adapter confirms what the query
// shows, as it would in production before anything goes wrong.
func newBench(t *testing.T, guessed bool) *bench {
	t.Helper()
	key, _ := keys(t)
	s := bbmslsim.New("3", &key.PublicKey)
	s.Guessed(guessed)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	c, _ := bbmsl.New(bbmsl.Config{BaseURL: srv.URL, MerchantID: "3", Key: key})
	b := &bench{s: s, c: c, known: providers.Knowledge{}}
	s.AddOrder("mref-warm", hkd(100))
	b.learn(c.Refund(context.Background(), providers.Refund{OrderID: "mref-warm", Amount: hkd(100), Attempt: 1, Known: b.known}))
	if guessed != b.known.Holds(bbmsl.GuessQueryOrder) {
		t.Fatalf("guessed=%v: warm-up left %s %s", guessed, bbmsl.GuessQueryOrder, b.known[bbmsl.GuessQueryOrder])
	}
	return b
}

// learn folds an answer's observations into what is known, as the worker does.
func (b *bench) learn(out providers.Outcome) providers.Outcome {
	for _, o := range out.Observed {
		switch {
		case !o.Holds:
			b.known[o.Guess] = providers.Refuted
		case b.known[o.Guess] != providers.Refuted:
			b.known[o.Guess] = providers.Confirmed
		}
	}
	return out
}

// order pays an order of amount whose BBMSL id meets the simulator's
// applied quirk (applied true) or its busy quirk (false), and returns its
// merchant reference.
func (b *bench) order(t *testing.T, amount tasks.Money, applied bool) string {
	t.Helper()
	for {
		b.n++
		ref := "mref-" + strconv.Itoa(b.n)
		id := b.s.AddOrder(ref, amount)
		if applied && bbmslsim.QuirkApplied(id) || !applied && bbmslsim.QuirkBusy(id) {
			return ref
		}
	}
}

// send makes one attempt as the worker does: Prepare (where the adapter has
// it), then Refund with what Prepare read. ok is false when Prepare stopped
// the send; out is then Prepare's outcome.
func (b *bench) send(t *testing.T, r *providers.Refund) (out providers.Outcome, sent bool) {
	t.Helper()
	r.Known = b.known
	if p, ok := any(b.c).(providers.Preparer); ok {
		before, out, ok := p.Prepare(context.Background(), *r)
		if !ok {
			return out, false
		}
		r.Before = before
	}
	r.Attempt++
	return b.learn(b.c.Refund(context.Background(), *r)), true
}

func (b *bench) lookup(r providers.Refund) providers.Outcome {
	r.Known = b.known
	return b.learn(b.c.Lookup(context.Background(), r))
}

// A refund BBMSL applied and answered with a code no page documents (a
// system error, "please query") is not a refusal: the worker looks the order
// up, which shows it paid. The code as found read it Rejected on the first
// attempt, and the worker failed a paid refund.
func TestUndocumentedCodeAfterApplyIsLookedUp(t *testing.T) {
	for _, guessed := range []bool{false, true} {
		b := newBench(t, guessed)
		b.s.Quirks(true)
		order := b.order(t, hkd(1500), true)
		r := providers.Refund{RefundID: "rf-q", OrderID: order, Amount: hkd(1500)}
		out, sent := b.send(t, &r)
		if !sent || out.Kind != providers.Unknown || !strings.Contains(out.Reason, "9999") {
			t.Fatalf("guessed=%v: refund answered 9999 after it was applied = %v (sent %v); want unknown, naming the code", guessed, out, sent)
		}
		look := b.lookup(r)
		switch {
		case guessed && look.Kind != providers.Succeeded:
			t.Fatalf("look-up = %v; the query shows the order refunded by our amount", look)
		case !guessed && look.Kind != providers.Unknown:
			// The documented query has no netAmount: what was refunded
			// cannot be read, and the worker hands it to a human.
			t.Fatalf("documented shape: look-up = %v, want unknown", look)
		}
		if got := b.s.Refunded(order); len(got) != 1 || got[0] != hkd(1500) {
			t.Fatalf("ledger = %v, want one refund of 15.00", got)
		}
	}
}

// A code no page documents that applied nothing is not a refusal either: it
// is looked up, and only a look-up that proves nothing was applied lets the
// worker send again; the refund is paid once and never failed without proof.
func TestUndocumentedCodeThatAppliedNothingIsResolvedByTheQuery(t *testing.T) {
	for _, guessed := range []bool{false, true} {
		b := newBench(t, guessed)
		b.s.Quirks(true)
		order := b.order(t, hkd(1500), false)
		r := providers.Refund{RefundID: "rf-b", OrderID: order, Amount: hkd(1000)}
		out, sent := b.send(t, &r)
		if !sent || out.Kind != providers.Unknown {
			t.Fatalf("guessed=%v: refund answered 9100 = %v (sent %v); want unknown", guessed, out, sent)
		}
		look := b.lookup(r)
		if !guessed {
			if look.Kind != providers.Unknown {
				t.Fatalf("documented shape: look-up = %v; a paid order proves nothing there", look)
			}
			if got := b.s.Refunded(order); len(got) != 0 {
				t.Fatalf("ledger = %v", got)
			}
			continue
		}
		if look.Kind != providers.NotFound {
			t.Fatalf("look-up = %v; the query proves the order paid and unrefunded", look)
		}
		// The worker resends only once two look-ups a settle delay apart
		// agree; the second would read the same order.
		out, sent = b.send(t, &r)
		if !sent || out.Kind != providers.Succeeded || r.Attempt != 2 {
			t.Fatalf("resend = %v (sent %v, attempt %d)", out, sent, r.Attempt)
		}
		if got := b.s.Refunded(order); len(got) != 1 || got[0] != hkd(1000) {
			t.Fatalf("ledger = %v, want one refund of 10.00", got)
		}
	}
}

// The refund request carries no currency: BBMSL would refund the amount in
// the order's. The order is read before the send and a refund in another
// currency is refused there, with nothing sent; a refund of more than the
// order is refused the same way. A read that fails sends nothing and may be
// tried again; a query that shows no currency goes to a human.
func TestCurrencyIsCheckedBeforeTheSend(t *testing.T) {
	b := newBench(t, false)
	p, ok := any(b.c).(providers.Preparer)
	if !ok {
		t.Fatal("the adapter does not read the order before a send")
	}
	b.s.AddOrder("mref-usd", tasks.Money{Minor: 1500, Currency: "USD"})
	b.s.AddOrder("mref-hkd", hkd(1500))
	sentBefore := b.s.RefundRequests()
	for _, tt := range []struct {
		name, order string
		amount      tasks.Money
		reason      string
	}{
		{"another currency", "mref-usd", hkd(1500), "USD"},
		{"more than the order", "mref-hkd", hkd(1501), "15.00 HKD"},
	} {
		_, out, ok := p.Prepare(context.Background(), providers.Refund{OrderID: tt.order, Amount: tt.amount, Known: b.known})
		if ok || out.Kind != providers.Rejected || !strings.Contains(out.Reason, tt.reason) {
			t.Fatalf("%s: prepare = %v, %v; want rejected naming %s", tt.name, out, ok, tt.reason)
		}
	}
	// What Prepare read is handed back to Refund: another currency there is
	// refused too, without a request.
	before, out, ok := p.Prepare(context.Background(), providers.Refund{OrderID: "mref-hkd", Amount: hkd(1500)})
	if !ok {
		t.Fatalf("prepare of a good refund = %v", out)
	}
	if out := b.c.Refund(context.Background(), providers.Refund{OrderID: "mref-hkd", Amount: tasks.Money{Minor: 1500, Currency: "USD"}, Before: before, Attempt: 1}); out.Kind != providers.Rejected {
		t.Fatalf("refund in USD of an order read in HKD = %v", out)
	}
	if n := b.s.RefundRequests(); n != sentBefore {
		t.Fatalf("%d refund requests reached BBMSL; none should have", n-sentBefore)
	}

	b.s.Faults().Next(1, http.MethodPost, bbmslsim.QueryPath, sim.ResetBeforeApply)
	if _, out, ok := p.Prepare(context.Background(), providers.Refund{OrderID: "mref-hkd", Amount: hkd(1500)}); ok || out.Kind != providers.Transient {
		t.Fatalf("prepare whose read failed = %v, %v; want transient", out, ok)
	}
	b.s.HideEvidence()
	_, out, ok = p.Prepare(context.Background(), providers.Refund{OrderID: "mref-hkd", Amount: hkd(1500)})
	if ok || out.Kind != providers.Review || !strings.Contains(out.Reason, "currency") {
		t.Fatalf("prepare of an answer without the order = %v, %v; want review saying what is missing", out, ok)
	}
	if len(b.s.Refunded("mref-hkd")) != 0 || len(b.s.Refunded("mref-usd")) != 0 {
		t.Fatal("money moved")
	}
}

// BBMSL refunds an order once. A first attempt refused because the order
// already has its refund is not believed: the refund on the order may be
// this one's, sent by an attempt whose record was lost (a Redis that lost
// the "in flight" mark). The look-up decides: our amount is Succeeded (paid
// once), another amount Review; never failed.
func TestAlreadyRefundedOnAFirstAttemptIsLookedUp(t *testing.T) {
	for _, guessed := range []bool{false, true} {
		for _, earlier := range []int64{1000, 600} {
			b := newBench(t, guessed)
			order := b.order(t, hkd(1500), true)
			// An earlier attempt whose record was lost: applied, its answer
			// never recorded.
			lost := providers.Refund{RefundID: "rf-l", OrderID: order, Amount: hkd(earlier)}
			b.send(t, &lost)
			r := providers.Refund{RefundID: "rf-l", OrderID: order, Amount: hkd(1000)}
			out, sent := b.send(t, &r)
			if out.Kind == providers.Rejected || out.Kind == providers.Succeeded {
				t.Fatalf("guessed=%v earlier=%d: first attempt on a refunded order = %v (sent %v); want it looked up", guessed, earlier, out, sent)
			}
			look := b.lookup(r)
			want := providers.Unknown // documented: what was refunded cannot be read
			if guessed {
				want = providers.Succeeded
				if earlier != 1000 {
					want = providers.Review
				}
			}
			if look.Kind != want {
				t.Fatalf("guessed=%v earlier=%d: look-up = %v, want %s", guessed, earlier, look, want)
			}
			if got := b.s.Refunded(order); len(got) != 1 || got[0] != hkd(earlier) {
				t.Fatalf("ledger = %v, want the one earlier refund", got)
			}
		}
	}
}

// An order already refunded while another refund of ours holds its
// reference: BBMSL refunds an order once and that refund is the other's, so
// this one is refused before the send.
func TestOrderRefundedByAnotherRefundOfOurs(t *testing.T) {
	b := newBench(t, true)
	order := b.order(t, hkd(1500), true)
	first := providers.Refund{RefundID: "rf-1", OrderID: order, Amount: hkd(1500)}
	done, _ := b.send(t, &first)
	if done.Kind != providers.Succeeded || done.Reference == "" {
		t.Fatalf("first refund = %v", done)
	}
	r := providers.Refund{RefundID: "rf-2", OrderID: order, Amount: hkd(1500), OtherRefs: []string{done.Reference}}
	if out, sent := b.send(t, &r); sent || out.Kind != providers.Rejected {
		t.Fatalf("second refund = %v (sent %v); want rejected before the send", out, sent)
	}
	if out := b.lookup(r); out.Kind == providers.Succeeded {
		t.Fatalf("look-up took another refund of ours for this one: %v", out)
	}
	if got := b.s.Refunded(order); len(got) != 1 {
		t.Fatalf("ledger = %v", got)
	}
}
