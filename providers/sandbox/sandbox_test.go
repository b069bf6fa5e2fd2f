package sandbox_test

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/refundq/refundq/enqueue"
	"github.com/refundq/refundq/internal/durability"
	"github.com/refundq/refundq/internal/redistest"
	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/providers/catalog"
	"github.com/refundq/refundq/providers/sandbox"
	"github.com/refundq/refundq/tasks"
	"github.com/refundq/refundq/worker"
)

// run serves a sandbox and runs a real worker on it, configured the way the
// sandbox command tells a worker to be: through its environment lines.
type run struct {
	sb  *sandbox.Sandbox
	enq *enqueue.Client
	st  *store.Store
}

func startSandbox(t *testing.T, cfg sandbox.Config) *run {
	t.Helper()
	cfg.KeyDir = t.TempDir()
	sb, err := sandbox.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sb.Handler())
	t.Cleanup(srv.Close)
	env := map[string]string{}
	for _, line := range sb.Env(srv.URL) {
		k, v, _ := strings.Cut(line, "=")
		env[k] = v
	}
	reg := catalog.FromEnv(func(k string) string { return env[k] })
	e := redistest.New(t)
	log := logrus.New()
	log.SetOutput(io.Discard)
	w, err := worker.New(worker.Config{AcceptRedisLoss: true, Redis: e.Asynq, RDB: e.Client, Registry: reg, Prefix: e.Prefix, Queue: e.Queue, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Shutdown)
	enq := enqueue.New(e.Asynq, e.Client, enqueue.WithQueue(e.Queue), enqueue.WithPrefix(e.Prefix), enqueue.WithRegistry(reg), enqueue.AcceptRedisLoss())
	t.Cleanup(func() { enq.Close() })
	return &run{sb: sb, enq: enq, st: store.New(e.Client, e.Prefix)}
}

// refund enqueues a refund and waits for it to be final, noting every state
// it was seen in.
func (r *run) refund(t *testing.T, id, provider, order, txn, amount, currency string) (store.Record, map[store.State]bool) {
	t.Helper()
	ctx := context.Background()
	_, err := r.enq.Enqueue(ctx, enqueue.Request{RefundID: id, Provider: provider, OrderID: order, TransactionID: txn,
		Amount: amount, Currency: currency, Reason: "requested"})
	if err != nil {
		t.Fatalf("enqueue %s: %v", id, err)
	}
	seen := map[store.State]bool{}
	deadline := time.Now().Add(40 * time.Second)
	for time.Now().Before(deadline) {
		rec, err := r.st.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		seen[rec.State] = true
		if rec.State.Final() {
			return rec, seen
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s not final after 40 s (seen %v)", id, seen)
	return store.Record{}, nil
}

// The sandbox tells its orders and rules, and they hold: the orders it
// prints can be refunded with the ids it prints, a pending- order's refund
// goes through pending, a lost- order's first answer is lost and the refund
// still paid once, more than the payment is rejected, and a review- order
// stops at needs_review. (Issue 11, finding 2.)
func TestSandboxRulesAreTheOnesItPrints(t *testing.T) {
	r := startSandbox(t, sandbox.Config{Auto: 10000, PendingPolls: 2})
	var b strings.Builder
	r.sb.Describe(&b)
	text := b.String()
	for _, want := range []string{
		"fatora (Fatora): payments in QAR; whole payments only, once",
		"fat-1001", "txn-fat-1001", "500.00 QAR",
		"pending-mpg-1003", "stays pending for 2 look-ups, then succeeds",
		"lost-mpg-1004", "review-bb-1005", "needs_review",
		"rejected: more than is left to refund",
		"(any other id)", "10000.00 SAR",
		"another currency than SAR:",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the sandbox's description lacks %q:\n%s", want, text)
		}
	}
	orders := map[string]sandbox.Order{}
	for _, o := range r.sb.Orders() {
		orders[o.OrderID] = o
	}
	fat := orders["fat-1001"]
	if fat.TransactionID != "txn-fat-1001" || fat.Amount != (tasks.Money{Minor: 50000, Currency: "QAR"}) {
		t.Fatalf("fat-1001 = %+v", fat)
	}

	t.Run("fatora with the printed transaction id", func(t *testing.T) {
		rec, _ := r.refund(t, "sb-fat", "fatora", "fat-1001", fat.TransactionID, "500.00", "QAR")
		if rec.State != store.Succeeded {
			t.Fatalf("state %s: %s", rec.State, rec.LastError)
		}
	})
	t.Run("pending", func(t *testing.T) {
		rec, seen := r.refund(t, "sb-pending", "moyasarpg", "pending-mpg-1003", "", "150.00", "SAR")
		if rec.State != store.Succeeded || !seen[store.Pending] {
			t.Fatalf("state %s, seen %v: %s", rec.State, seen, rec.LastError)
		}
	})
	t.Run("lost in flight", func(t *testing.T) {
		rec, _ := r.refund(t, "sb-lost", "moyasarpg", "lost-mpg-1004", "", "300.00", "SAR")
		paid := r.sb.Sim("moyasarpg").Applied("lost-mpg-1004")
		if rec.State != store.Succeeded || len(paid) != 1 {
			t.Fatalf("state %s, paid %v: %s", rec.State, paid, rec.LastError)
		}
	})
	t.Run("more than the payment is rejected", func(t *testing.T) {
		rec, _ := r.refund(t, "sb-much", "moyasarpg", "mpg-1002", "", "120.01", "SAR")
		if rec.State != store.Failed || len(r.sb.Sim("moyasarpg").Applied("mpg-1002")) != 0 {
			t.Fatalf("state %s: %s", rec.State, rec.LastError)
		}
	})
	t.Run("review", func(t *testing.T) {
		rec, _ := r.refund(t, "sb-review", "bbmsl", "review-bb-1005", "", "80.00", "HKD")
		if rec.State != store.NeedsReview {
			t.Fatalf("state %s: %s", rec.State, rec.LastError)
		}
	})
	t.Run("unknown ids are paid orders of the auto amount", func(t *testing.T) {
		rec, _ := r.refund(t, "sb-auto", "ecomcharge", "anything", "pay-77", "9999.99", "EUR")
		if rec.State != store.Succeeded {
			t.Fatalf("state %s: %s", rec.State, rec.LastError)
		}
	})
	t.Run("another currency at Ecart Pay is refused before sending", func(t *testing.T) {
		rec, _ := r.refund(t, "sb-usd", "ecartpay", "ep-1001", "", "5.00", "USD")
		if rec.State != store.Failed || len(r.sb.Sim("ecartpay").Applied("ep-1001")) != 0 ||
			!strings.Contains(rec.LastError, "the order is in MXN, the refund in USD") {
			t.Fatalf("state %s: %s", rec.State, rec.LastError)
		}
	})
}

// Orders added by hand are known by their ids, with their own amount and
// currency; with Auto off an unknown order is not found.
func TestSandboxAddedOrders(t *testing.T) {
	r := startSandbox(t, sandbox.Config{NoSeed: true})
	o, err := r.sb.Add("fatora", "inv-9", tasks.Money{Minor: 12345, Currency: "QAR"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.sb.Add("paypal", "x", tasks.Money{Minor: 1, Currency: "USD"}); err == nil || !strings.Contains(err.Error(), "known: bbmsl") {
		t.Fatalf("unknown provider: %v", err)
	}
	rec, _ := r.refund(t, "sb-inv", "fatora", "inv-9", o.TransactionID, "123.45", "QAR")
	if rec.State != store.Succeeded {
		t.Fatalf("state %s: %s", rec.State, rec.LastError)
	}
	// MPG's refund page documents no 404: a refund to an order it does not
	// know is an outcome refundq cannot read (a wrong base URL answers the
	// same), so it is looked up and asked again, never failed on a guess.
	if _, err := r.enq.Enqueue(context.Background(), enqueue.Request{RefundID: "sb-none", Provider: "moyasarpg",
		OrderID: "nobody", Amount: "1.00", Currency: "SAR"}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		rec, _ = r.st.Get(context.Background(), "sb-none")
		if strings.Contains(rec.LastError, "HTTP 404") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("unknown order with Auto off: %+v", rec)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if rec.State.Final() || len(r.sb.Sim("moyasarpg").Applied("nobody")) != 0 {
		t.Fatalf("unknown order with Auto off: state %s: %s", rec.State, rec.LastError)
	}
}

// Where a look-up rests on a guess, the sandbox says a lost answer cannot be
// proven in the documented shape (--guessed=false); with the guessed fields
// on (the default) it is looked up and paid once.
func TestSandboxLostAnswerAtKeylessProviders(t *testing.T) {
	var b strings.Builder
	documented, err := sandbox.Open(sandbox.Config{KeyDir: t.TempDir(), Documented: true})
	if err != nil {
		t.Fatal(err)
	}
	documented.Describe(&b)
	lineOf := func(order string) string {
		for _, l := range strings.Split(b.String(), "\n") {
			if strings.HasPrefix(strings.TrimSpace(l), order+" ") {
				return l
			}
		}
		return ""
	}
	if l := lineOf("lost-fat-1004"); !strings.Contains(l, "txn-lost-fat-1004") || !strings.Contains(l, "its documented answer cannot show the outcome") {
		t.Errorf("lost-fat-1004: %q", l)
	}
	if l := lineOf("lost-mpg-1004"); !strings.Contains(l, "the worker looks it up, then succeeds") {
		t.Errorf("lost-mpg-1004: %q", l)
	}
	r := startSandbox(t, sandbox.Config{})
	for _, tc := range []struct{ provider, order, txn, amount, cur string }{
		{"fatora", "lost-fat-1004", "txn-lost-fat-1004", "300.00", "QAR"},
		{"bbmsl", "lost-bb-1004", "", "300.00", "HKD"},
	} {
		rec, _ := r.refund(t, "sb-"+tc.provider, tc.provider, tc.order, tc.txn, tc.amount, tc.cur)
		paid := r.sb.Sim(tc.provider).Applied(tc.order)
		if rec.State != store.Succeeded || len(paid) != 1 {
			t.Errorf("%s: state %s, paid %v: %s", tc.order, rec.State, paid, rec.LastError)
		}
	}
}

// The sandbox stands in for the providers in the README's walk-through, so
// by default its answers bear out every guess the adapters make: a refund
// at each provider (and a pending one at Fatora, whose guesses are per
// refund status) confirms each guess and refutes none. A refuted guess
// would keep every later look-up resting on it unknown and send lost
// answers to needs_review. With Documented (--guessed=false) the same
// answers confirm none, and refute the guesses of the providers whose
// documented answers can show them false.
func TestSandboxAnswersBearTheGuessesOut(t *testing.T) {
	refunds := []struct{ provider, order, amount, cur string }{
		{"moyasarpg", "mpg-1001", "100.00", "SAR"},
		{"ecomcharge", "ec-1001", "25.00", "EUR"},
		{"fatora", "fat-1001", "500.00", "QAR"},
		{"bbmsl", "bb-1001", "80.00", "HKD"},
		{"ecartpay", "ep-1001", "40.00", "MXN"},
	}
	verdicts := func(t *testing.T, r *run) map[string]string {
		t.Helper()
		got := map[string]string{}
		for _, name := range catalog.Rules().Names() {
			gs, err := r.st.Guesses(context.Background(), name)
			if err != nil {
				t.Fatal(err)
			}
			for _, g := range gs {
				got[g.Guess] = g.Verdict() + ": " + g.Confirmed + g.Refuted
			}
		}
		return got
	}
	pay := func(t *testing.T, r *run, refunds []struct{ provider, order, amount, cur string }) {
		t.Helper()
		txn := map[string]string{}
		for _, o := range r.sb.Orders() {
			txn[o.Provider+"/"+o.OrderID] = o.TransactionID
		}
		for _, tc := range refunds {
			rec, _ := r.refund(t, "sb-"+tc.order, tc.provider, tc.order, txn[tc.provider+"/"+tc.order], tc.amount, tc.cur)
			if rec.State != store.Succeeded {
				t.Fatalf("%s at %s: state %s: %s", tc.order, tc.provider, rec.State, rec.LastError)
			}
		}
	}

	t.Run("default", func(t *testing.T) {
		r := startSandbox(t, sandbox.Config{})
		pay(t, r, append(refunds, struct{ provider, order, amount, cur string }{"fatora", "pending-fat-1003", "150.00", "QAR"}))
		got := verdicts(t, r)
		for _, name := range catalog.Rules().Names() {
			e, _ := catalog.Rules().Get(name)
			for _, g := range e.Guesses {
				if v := got[string(g.Guess)]; !strings.HasPrefix(v, "confirmed") {
					t.Errorf("%s after a refund at each provider: %q, want confirmed", g.Guess, v)
				}
			}
		}
	})
	t.Run("documented", func(t *testing.T) {
		r := startSandbox(t, sandbox.Config{Documented: true})
		pay(t, r, refunds[:3])
		got := verdicts(t, r)
		for g, v := range got {
			if strings.HasPrefix(v, "confirmed") {
				t.Errorf("%s: %q; the documented shape shows no guessed field", g, v)
			}
		}
		for _, g := range []string{"moyasarpg.refund_id", "ecomcharge.tracking_lookup", "fatora.verify_refund_status"} {
			if v := got[g]; !strings.HasPrefix(v, "refuted") {
				t.Errorf("%s in the documented shape: %q, want refuted", g, v)
			}
		}
	})
}

// The sandbox's environment lifts nothing of the Redis check: sourced into a
// shell, it points a worker at the simulators and leaves Redis to be one
// that keeps what it acknowledges (refundctl dev-redis).
func TestSandboxEnvKeepsTheRedisCheck(t *testing.T) {
	sb, err := sandbox.Open(sandbox.Config{KeyDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range sb.Env("http://127.0.0.1:8090") {
		k, _, _ := strings.Cut(line, "=")
		if k == durability.SkipEnv || k == durability.AcceptLossEnv {
			t.Errorf("the sandbox's environment sets %s", line)
		}
	}
}
