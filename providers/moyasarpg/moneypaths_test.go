package moyasarpg_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/providers/moyasarpg"
	"github.com/refundq/refundq/providers/moyasarpg/moyasarpgsim"
	"github.com/refundq/refundq/providers/sim"
	"github.com/refundq/refundq/tasks"
)

// The money paths of the team's issue, each against the simulator over real
// HTTP, asserting on its ledger and on the outcome kind. mpg plays the
// worker's part (Prepare before every send, learn the guesses from every
// answer); each test spells out the calls the worker makes.

func sar(minor int64) tasks.Money { return tasks.Money{Minor: minor, Currency: "SAR"} }

// mpg is one adapter against one simulator, counting the requests the
// simulator was sent ("GET", "POST").
type mpg struct {
	t     *testing.T
	s     *moyasarpgsim.Simulator
	c     providers.Provider
	known providers.Knowledge

	url string

	mu    sync.Mutex
	calls map[string]int
}

func newMPG(t *testing.T, guessed, quirks bool) *mpg {
	t.Helper()
	m := &mpg{t: t, s: moyasarpgsim.New(key), known: providers.Knowledge{}, calls: map[string]int{}}
	m.s.Guessed(guessed)
	m.s.Quirks(quirks)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.mu.Lock()
		m.calls[r.Method]++
		m.mu.Unlock()
		m.s.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	c, err := moyasarpg.New(moyasarpg.Config{BaseURL: srv.URL, APIKey: key})
	if err != nil {
		t.Fatal(err)
	}
	m.c, m.url = c, srv.URL
	return m
}

func (m *mpg) count(method string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.calls[method]
}

func (m *mpg) learn(out providers.Outcome) providers.Outcome {
	for _, o := range out.Observed {
		switch {
		case !o.Holds:
			m.known[o.Guess] = providers.Refuted
		case m.known[o.Guess] != providers.Refuted:
			m.known[o.Guess] = providers.Confirmed
		}
	}
	return out
}

func (m *mpg) refund(order string, amount int64) providers.Refund {
	return providers.Refund{RefundID: "rf-" + uuid.NewString()[:8], OrderID: order, Amount: sar(amount),
		Key: uuid.Must(uuid.NewV7()).String()}
}

// prepare is the worker's read before a send, where the adapter has one
// (TestPrepareChecksTheOrderCurrency requires it); ok false when it refused.
func (m *mpg) prepare(r *providers.Refund) (providers.Outcome, bool) {
	m.t.Helper()
	p, ok := m.c.(providers.Preparer)
	if !ok {
		return providers.Outcome{}, true
	}
	r.Known = m.known
	before, out, ok := p.Prepare(context.Background(), *r)
	if ok {
		r.Before = before
	}
	return m.learn(out), ok
}

// send is one attempt: Prepare, then the refund.
func (m *mpg) send(r *providers.Refund) providers.Outcome {
	m.t.Helper()
	if out, ok := m.prepare(r); !ok {
		m.t.Fatalf("prepare = %v", out)
	}
	r.Attempt++
	r.Known = m.known
	return m.learn(m.c.Refund(context.Background(), *r))
}

func (m *mpg) lookup(r *providers.Refund) providers.Outcome {
	r.Known = m.known
	return m.learn(m.c.Lookup(context.Background(), *r))
}

// warmUp makes one refund on an order of its own, as production has before
// anything goes wrong, so the adapter learns what MPG's answers show.
func (m *mpg) warmUp() {
	m.t.Helper()
	order := "warm-" + uuid.NewString()
	m.s.AddOrder(order, sar(5000))
	r := m.refund(order, 5000)
	if out := m.send(&r); out.Kind != providers.Succeeded {
		m.t.Fatalf("warm-up refund = %v", out)
	}
}

func shapes(t *testing.T, run func(t *testing.T, guessed bool)) {
	for _, guessed := range []bool{false, true} {
		name := "documented"
		if guessed {
			name = "guessed"
		}
		t.Run(name, func(t *testing.T) { run(t, guessed) })
	}
}

func wantLedger(t *testing.T, s *moyasarpgsim.Simulator, order string, want ...int64) []sim.Entry {
	t.Helper()
	got := s.RefundsFor(order)
	ok := len(got) == len(want)
	for i := 0; ok && i < len(want); i++ {
		ok = got[i].Amount == sar(want[i])
	}
	if !ok {
		t.Fatalf("ledger of %s = %+v, want %v", order, got, want)
	}
	return got
}

// Item 1: a refund of ours in timeout or system_error is Uncertain, from the
// refund answer and from the look-up, with a reason that names the
// transaction and MPG's reversal; it is never sent again. With quirks on,
// look-ups inside the lag cannot show it (unknown) and then show it
// uncertain.
func TestUncertainStatusesAreNeverResent(t *testing.T) {
	shapes(t, func(t *testing.T, guessed bool) {
		for _, tc := range []struct {
			status string
			quirks bool
		}{{"timeout", false}, {"system_error", false}, {"timeout", true}} {
			status := tc.status
			t.Run(fmt.Sprintf("%s quirks=%v", status, tc.quirks), func(t *testing.T) {
				m := newMPG(t, guessed, tc.quirks)
				m.warmUp()
				order := "ord-" + uuid.NewString()
				m.s.AddOrder(order, sar(1000))
				m.s.SetUncertain(order, status)
				r := m.refund(order, 1000)
				posts := m.count(http.MethodPost)
				out := m.send(&r)
				check := func(what string, out providers.Outcome) {
					t.Helper()
					if out.Kind != providers.Uncertain || out.Status != status || out.Reference == "" {
						t.Fatalf("%s = %v, want uncertain (%s) naming the transaction", what, out, status)
					}
					for _, want := range []string{out.Reference, "revers", "/v1/transactions/" + out.Reference + "/reverse"} {
						if !strings.Contains(out.Reason, want) {
							t.Errorf("%s: reason %q does not say %q", what, out.Reason, want)
						}
					}
				}
				check("refund answer", out)
				// The worker looks again a settle delay later, and sends
				// nothing: the look-up says the same.
				look := m.lookup(&r)
				for i := 0; tc.quirks && look.Kind == providers.Unknown && i < moyasarpgsim.QuirkLag; i++ {
					look = m.lookup(&r)
				}
				check("look-up", look)
				check("look-up again", m.lookup(&r))
				if n := m.count(http.MethodPost) - posts; n != 1 {
					t.Fatalf("%d refund requests for one refund, want 1", n)
				}
				wantLedger(t, m.s, order) // MPG could not say; nothing recorded as paid
			})
		}
	})
}

// Item 2: with the simulator's quirks on (a resend validated before it is
// replayed; an applied refund shown in the look-up only some answers
// later), a refund whose first answer is lost and whose resend is refused
// ends Succeeded after the look-up, paid once, and no answer along the way
// says it was not applied. lookupsFirst is how many look-ups the lag eats
// before the resend (one: the refund is still hidden when the resend's
// Prepare reads the order; two: it shows there already).
func TestQuirkRefusedResendAfterLostAnswerEndsSucceeded(t *testing.T) {
	shapes(t, func(t *testing.T, guessed bool) {
		for _, lookupsFirst := range []int{1, moyasarpgsim.QuirkLag} {
			t.Run(strings.Repeat("look-up,", lookupsFirst)+"resend", func(t *testing.T) {
				m := newMPG(t, guessed, true)
				m.warmUp()
				order := "ord-" + uuid.NewString()
				m.s.AddOrder(order, sar(1000))
				m.s.Faults().Next(1, http.MethodPost, "/v1/orders/"+order+"/refund", sim.AppliedThenReset)
				r := m.refund(order, 1000)
				if out := m.send(&r); out.Kind != providers.Unknown {
					t.Fatalf("refund whose answer was lost = %v, want unknown", out)
				}
				paid := wantLedger(t, m.s, order, 1000)[0]
				never := func(what string, out providers.Outcome) {
					t.Helper()
					switch out.Kind {
					case providers.NotFound, providers.Rejected:
						if what != "resend" || out.Kind != providers.Rejected {
							t.Fatalf("%s = %v, but the first attempt was applied (%s)", what, out, paid.Ref)
						}
					case providers.Succeeded:
						if out.Reference != paid.Ref {
							t.Fatalf("%s = %v, but the refund applied is %s", what, out, paid.Ref)
						}
					}
				}
				for range lookupsFirst {
					out := m.lookup(&r)
					never("look-up before the resend", out)
					if out.Kind == providers.Succeeded {
						t.Fatalf("look-up inside the lag = %v: the simulator shows the refund too early", out)
					}
				}
				// The worker resends on a look-up that cannot show the
				// refund (MPG's transaction_id is its idempotency key); the
				// quirk validates the resend and refuses it.
				posts := m.count(http.MethodPost)
				resend := m.send(&r)
				never("resend", resend)
				if resend.Kind == providers.Succeeded || m.count(http.MethodPost) != posts+1 {
					t.Fatalf("resend = %v: the quirk did not refuse it", resend)
				}
				wantLedger(t, m.s, order, 1000)
				var out providers.Outcome
				for i := 0; i < 4 && (i == 0 || out.Kind == providers.Unknown); i++ {
					out = m.lookup(&r)
					never("look-up after the refused resend", out)
				}
				if out.Kind != providers.Succeeded {
					t.Fatalf("look-up after the refused resend = %v, want succeeded (%s)", out, paid.Ref)
				}
				wantLedger(t, m.s, order, 1000)
			})
		}
	})
}

// Item 3: the refund call carries no currency; Prepare reads the order and
// refuses another currency before anything is sent, and a read that fails
// is Transient. Item 5: on the happy path a send is one GET and one POST.
func TestPrepareChecksTheOrderCurrency(t *testing.T) {
	shapes(t, func(t *testing.T, guessed bool) {
		m := newMPG(t, guessed, false)
		if _, ok := m.c.(providers.Preparer); !ok {
			t.Fatal("the adapter does not read the order before the send (providers.Preparer)")
		}
		m.s.AddOrder("ord-usd", tasks.Money{Minor: 1000, Currency: "USD"})
		r := m.refund("ord-usd", 1000)
		out, ok := m.prepare(&r)
		if ok || out.Kind != providers.Rejected || !strings.Contains(out.Reason, "USD") || !strings.Contains(out.Reason, "SAR") {
			t.Fatalf("prepare of a SAR refund on a USD order = %v (ok %v), want rejected naming both", out, ok)
		}
		if m.count(http.MethodPost) != 0 {
			t.Fatal("a refund was sent")
		}
		wantLedger(t, m.s, "ord-usd")

		m.s.AddOrder("ord-sar", sar(1000))
		r = m.refund("ord-sar", 1000)
		for _, fault := range []sim.Kind{sim.Status5xx, sim.RateLimited} {
			m.s.Faults().Next(1, http.MethodGet, "/v1/orders/ord-sar", fault)
			if out, ok := m.prepare(&r); ok || out.Kind != providers.Transient {
				t.Errorf("prepare met by %s = %v (ok %v), want transient", fault, out, ok)
			}
		}
		m.s.HideEvidence() // an order without its transactions still shows its currency
		m.s.AddOrder("ord-other", sar(1000))
		if out, ok := m.prepare(&providers.Refund{OrderID: "ord-other", Amount: tasks.Money{Minor: 1000, Currency: "USD"}, Key: "k"}); ok || out.Kind != providers.Rejected {
			t.Errorf("prepare of a USD refund on a SAR order without its transactions = %v (ok %v), want rejected", out, ok)
		}
		if m.count(http.MethodPost) != 0 {
			t.Fatal("a refund was sent")
		}
		// A read that never reaches MPG.
		down := httptest.NewServer(http.NotFoundHandler())
		down.Close()
		dc, _ := moyasarpg.New(moyasarpg.Config{BaseURL: down.URL, APIKey: key})
		if _, out, ok := dc.Prepare(context.Background(), r); ok || out.Kind != providers.Transient {
			t.Errorf("prepare with MPG unreachable = %v (ok %v), want transient", out, ok)
		}
		// Credentials refused: our configuration, not the refund's fault.
		bad, _ := moyasarpg.New(moyasarpg.Config{BaseURL: m.url, APIKey: "sk_test_wrong"})
		if _, out, ok := bad.Prepare(context.Background(), r); ok || out.Kind != providers.Blocked || strings.Contains(out.Reason, "sk_test") {
			t.Errorf("prepare with a wrong key = %v (ok %v), want blocked", out, ok)
		}
		m = newMPG(t, guessed, false)
		m.s.AddOrder("ord-sar", sar(1000))
		r = m.refund("ord-sar", 1000)

		gets, posts := m.count(http.MethodGet), m.count(http.MethodPost)
		if out := m.send(&r); out.Kind != providers.Succeeded {
			t.Fatalf("refund = %v", out)
		}
		if g, p := m.count(http.MethodGet)-gets, m.count(http.MethodPost)-posts; g != 1 || p != 1 {
			t.Fatalf("one send made %d GET and %d POST, want 1 and 1", g, p)
		}
		wantLedger(t, m.s, "ord-sar", 1000)
	})
}

// Item 4: two equal partial refunds of ours on one order. Matching by
// amount (MPG's documented shape gives refunds ids of its own) must never
// take a refund that was on the order before this refund's send, nor one in
// OtherRefs; two candidates of our amount are no match.
func TestTwoEqualPartialRefundsOnOneOrder(t *testing.T) {
	shapes(t, func(t *testing.T, guessed bool) {
		m := newMPG(t, guessed, false)
		m.warmUp()
		order := "ord-" + uuid.NewString()
		m.s.AddOrder(order, sar(10000))
		a := m.refund(order, 3000)
		if out := m.send(&a); out.Kind != providers.Succeeded {
			t.Fatalf("first partial refund = %v", out)
		}
		refA := wantLedger(t, m.s, order, 3000)[0].Ref

		b := m.refund(order, 3000)
		m.s.Faults().Next(1, http.MethodPost, "/v1/orders/"+order+"/refund", sim.AppliedThenReset)
		if out := m.send(&b); out.Kind != providers.Unknown {
			t.Fatalf("second partial refund whose answer was lost = %v, want unknown", out)
		}
		refB := wantLedger(t, m.s, order, 3000, 3000)[1].Ref
		if out := m.lookup(&b); out.Kind != providers.Succeeded || out.Reference != refB {
			t.Fatalf("look-up of the second = %v, want succeeded as %s (the first is %s)", out, refB, refA)
		}
		// The worker may also resend to reconcile: the replay is read the
		// same way.
		if out := m.send(&b); out.Kind != providers.Succeeded || out.Reference != refB {
			t.Fatalf("resend of the second = %v, want succeeded as %s (the first is %s)", out, refB, refA)
		}
		wantLedger(t, m.s, order, 3000, 3000)
		if !guessed {
			// refundq knows refB as another refund's: never ours then.
			other := b
			other.OtherRefs = []string{refB}
			if out := m.lookup(&other); out.Kind != providers.Unknown {
				t.Fatalf("look-up with the only candidate in OtherRefs = %v, want unknown", out)
			}
		}

		// Two refunds read the order before either was sent: after both
		// are applied, each sees two candidates of its amount.
		order2 := "ord-" + uuid.NewString()
		m.s.AddOrder(order2, sar(5000))
		c, d := m.refund(order2, 2000), m.refund(order2, 2000)
		m.prepare(&c)
		m.prepare(&d)
		d.Attempt = 1
		if out := m.learn(m.c.Refund(context.Background(), d)); out.Kind != providers.Succeeded {
			t.Fatalf("refund d = %v", out)
		}
		m.s.Faults().Next(1, http.MethodPost, "/v1/orders/"+order2+"/refund", sim.AppliedThenReset)
		c.Attempt = 1
		if out := m.learn(m.c.Refund(context.Background(), c)); out.Kind != providers.Unknown {
			t.Fatalf("refund c whose answer was lost = %v, want unknown", out)
		}
		refC := wantLedger(t, m.s, order2, 2000, 2000)[1].Ref
		out := m.lookup(&c)
		switch {
		case guessed && (out.Kind != providers.Succeeded || out.Reference != refC):
			t.Fatalf("look-up of c by its transaction_id = %v, want succeeded as %s", out, refC)
		case !guessed && out.Kind != providers.Unknown:
			t.Fatalf("look-up of c with two refunds of its amount since its read = %v, want unknown", out)
		}

		// A refund never applied, on an order where an earlier refund of
		// ours of the same amount was: not found by amount either.
		e := m.refund(order, 3000)
		m.s.Faults().Next(1, http.MethodPost, "/v1/orders/"+order+"/refund", sim.ResetBeforeApply)
		m.send(&e)
		if out := m.lookup(&e); out.Kind == providers.Succeeded || out.Kind == providers.Rejected {
			t.Fatalf("look-up of a refund never applied = %v; the refunds of its amount on the order are older", out)
		}
		wantLedger(t, m.s, order, 3000, 3000)
	})
}
