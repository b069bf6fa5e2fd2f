package worker_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/sirupsen/logrus"

	"github.com/refundq/refundq/enqueue"
	"github.com/refundq/refundq/internal/logs/logstest"
	"github.com/refundq/refundq/internal/redistest"
	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/providers/ecartpay"
	"github.com/refundq/refundq/providers/ecartpay/ecartpaysim"
	"github.com/refundq/refundq/providers/sim"
	"github.com/refundq/refundq/tasks"
	"github.com/refundq/refundq/worker"
)

// keyless runs a worker for Ecart Pay (no refund key of ours: lost answers
// are judged from the order) against its simulator in the documented shape.
func keyless(t *testing.T, guessed bool, opts ...func(*worker.Config)) (*harness, *ecartpaysim.Simulator) {
	t.Helper()
	env := redistest.New(t)
	s := ecartpaysim.New("pub", "prv")
	s.Guessed(guessed)
	s.Faults().LateBy, s.Faults().HangFor = 100*time.Millisecond, 2*time.Second
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	client, err := ecartpay.New(ecartpay.Config{BaseURL: srv.URL, PublicKey: "pub", PrivateKey: "prv",
		HTTPClient: &http.Client{Timeout: 200 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	e := ecartpay.Entry(func(string) string { return "" })
	e.Provider, e.SettleDelay = client, settleDelay
	reg := providers.NewRegistry(e)
	logs := &logstest.Buffer{}
	log := logrus.New()
	log.SetOutput(logs)
	log.SetFormatter(&logrus.JSONFormatter{})
	log.SetLevel(logrus.DebugLevel)
	cfg := worker.Config{AcceptRedisLoss: true,
		Redis: env.Asynq, RDB: env.Client, Registry: reg, Prefix: env.Prefix, Queue: env.Queue, Logger: log,
		Attempt:   worker.AttemptPolicy{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond, MaxElapsed: 2 * time.Second, MaxTries: 5},
		InRunWait: time.Second, RecoverEvery: time.Hour, BlockedRetry: 500 * time.Millisecond,
		ReviewRecheck: []time.Duration{}, // tests look up themselves
	}
	for _, o := range opts {
		o(&cfg)
	}
	w, err := worker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Shutdown)
	enq := enqueue.New(env.Asynq, env.Client, enqueue.WithQueue(env.Queue), enqueue.WithPrefix(env.Prefix), enqueue.WithRegistry(reg), enqueue.AcceptRedisLoss())
	t.Cleanup(func() { enq.Close() })
	insp := asynq.NewInspector(env.Asynq)
	t.Cleanup(func() { insp.Close() })
	return &harness{env: env, store: store.New(env.Client, env.Prefix), enq: enq, logs: logs, worker: w, insp: insp, simURL: srv.URL}, s
}

func mxn(t *testing.T, amount string) tasks.Money { return mustMoney(t, amount, "MXN") }

func ecartReq(id, order, amount string) enqueue.Request {
	return enqueue.Request{RefundID: id, Provider: providers.EcartPay, OrderID: order, Amount: amount, Currency: "MXN", Reason: "requested"}
}

// The provider applies the refund after our client gave up. A look-up made at
// once shows nothing; the worker believes "not applied" only after the settle
// delay and a second look-up, by which time the refund shows, so it is paid
// once and recorded succeeded.
func TestLateApplyIsNotPaidTwice(t *testing.T) {
	h, s := keyless(t, false)
	s.AddOrder("ord-late", mxn(t, "100.00"))
	s.Faults().Next(1, http.MethodPost, ecartpaysim.RefundPath("ord-late"), sim.AppliedLate)
	if _, err := h.enq.Enqueue(context.Background(), ecartReq("rf-late", "ord-late", "100.00")); err != nil {
		t.Fatal(err)
	}
	rec := h.await(t, "rf-late")
	s.Faults().WaitLate()
	if rec.State != store.Succeeded || rec.Attempts != 1 {
		t.Fatalf("record = %+v; want succeeded from a look-up after the late apply, one attempt", rec)
	}
	if got := s.Refunded("ord-late"); len(got) != 1 {
		t.Fatalf("ledger = %v, want one refund", got)
	}
}

// A lost answer that was never applied (the connection reset before the
// provider read it): two look-ups a settle delay apart show the order
// unchanged, and only then is the refund sent again.
func TestKeylessResendOnlyAfterTwoLookups(t *testing.T) {
	h, s := keyless(t, false)
	s.AddOrder("ord-rst", mxn(t, "50.00"))
	s.Faults().Next(1, http.MethodPost, ecartpaysim.RefundPath("ord-rst"), sim.ResetBeforeApply)
	if _, err := h.enq.Enqueue(context.Background(), ecartReq("rf-rst", "ord-rst", "50.00")); err != nil {
		t.Fatal(err)
	}
	rec := h.await(t, "rf-rst")
	if rec.State != store.Succeeded || rec.Attempts != 2 {
		t.Fatalf("record = %+v; want succeeded on the second attempt", rec)
	}
	hist, _ := h.store.History(context.Background(), "rf-rst")
	var notFound []time.Time
	for _, e := range hist {
		if e.Event == "lookup" && e.Outcome == "not_found" {
			notFound = append(notFound, e.At)
		}
	}
	if len(notFound) < 2 || notFound[len(notFound)-1].Sub(notFound[0]) < settleDelay {
		t.Fatalf("resent after %d not-found look-ups (%v); want two, a settle delay apart: %+v", len(notFound), notFound, hist)
	}
	if got := s.Refunded("ord-rst"); len(got) != 1 {
		t.Fatalf("ledger = %v, want one refund", got)
	}
}

// Two equal refunds on one order, the first one's answer lost. With no key to
// tell them apart, the second waits until the first is settled, so each
// look-up has one refund of ours to explain: two refunds paid, each once.
// (The order's refund list, a guess, is on and learned first: without it a
// partial refund whose answer was lost cannot be attributed, and goes to a
// human.)
func TestEqualRefundsOnOneOrderOneAtATime(t *testing.T) {
	h, s := keyless(t, true)
	s.AddOrder("ord-warm", mxn(t, "1.00"))
	if _, err := h.enq.Enqueue(context.Background(), ecartReq("rf-warm", "ord-warm", "1.00")); err != nil {
		t.Fatal(err)
	}
	if rec := h.await(t, "rf-warm"); rec.State != store.Succeeded {
		t.Fatalf("warm-up refund: %+v", rec)
	}
	s.AddOrder("ord-eq", mxn(t, "100.00"))
	s.Faults().Next(1, http.MethodPost, ecartpaysim.RefundPath("ord-eq"), sim.AppliedThenReset)
	var wg sync.WaitGroup
	for _, id := range []string{"rf-eq-1", "rf-eq-2"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := h.enq.Enqueue(context.Background(), ecartReq(id, "ord-eq", "10.00")); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	a, b := h.await(t, "rf-eq-1"), h.await(t, "rf-eq-2")
	if got := s.Refunded("ord-eq"); len(got) != 2 {
		t.Fatalf("ledger = %v, want exactly two refunds", got)
	}
	if a.State != store.Succeeded || b.State != store.Succeeded || a.ProviderRef == b.ProviderRef {
		t.Fatalf("rf-eq-1 %s (%s), rf-eq-2 %s (%s); want both succeeded with refunds of their own", a.State, a.ProviderRef, b.State, b.ProviderRef)
	}
	var waited bool
	for _, id := range []string{"rf-eq-1", "rf-eq-2"} {
		hist, _ := h.store.History(context.Background(), id)
		for _, e := range hist {
			waited = waited || strings.Contains(e.Detail, "in flight on order ord-eq")
		}
	}
	if !waited {
		t.Fatal("neither refund waited for the other: both were in flight on one order at once")
	}
}

// A refund in needs_review keeps its attempt in flight, and so its order
// (one refund of ours in flight per order at Ecart Pay). A second refund on
// that order is blocked, naming the refund to settle first — visible in
// list, the API and metrics, not snoozing unseen — and goes on once a person
// has settled the first.
func TestARefundInReviewHoldingTheOrderBlocksTheNext(t *testing.T) {
	h, s := keyless(t, false)
	ctx := context.Background()
	s.AddOrder("ord-held", mxn(t, "100.00"))
	// The documented shape cannot attribute a partial refund whose answer
	// was lost: it goes to a person, its attempt still in flight.
	s.Faults().Next(1, http.MethodPost, ecartpaysim.RefundPath("ord-held"), sim.AppliedThenReset)
	if _, err := h.enq.Enqueue(ctx, ecartReq("rf-held-1", "ord-held", "10.00")); err != nil {
		t.Fatal(err)
	}
	if rec := h.await(t, "rf-held-1"); rec.State != store.NeedsReview || rec.InFlight == 0 {
		t.Fatalf("first refund: %+v; want needs_review with its attempt in flight", rec)
	}
	if _, err := h.enq.Enqueue(ctx, ecartReq("rf-held-2", "ord-held", "5.00")); err != nil {
		t.Fatal(err)
	}
	rec := h.awaitBlocked(t, "rf-held-2")
	if !strings.Contains(rec.Blocked, "rf-held-1") || !strings.Contains(rec.Blocked, "needs_review") || rec.Attempts != 0 {
		t.Fatalf("second refund: %+v; want blocked naming rf-held-1 in needs_review, never sent", rec)
	}
	blocked, _, err := h.store.ListState(ctx, store.Queued, 0, 10)
	if err != nil || len(blocked) != 1 || blocked[0].Blocked == "" {
		t.Fatalf("list of queued refunds = %+v, %v; want the blocked one, with its reason", blocked, err)
	}
	// A person finds the refund in Ecart Pay's dashboard and settles with
	// its reference, which tells the next refund's read whose it is.
	ids := s.RefundIDs("ord-held")
	if len(ids) != 1 {
		t.Fatalf("refunds on the order: %v", ids)
	}
	if err := h.store.Settle(ctx, "rf-held-1", store.Settlement{State: store.Succeeded, ProviderRef: ids[0], Note: "seen in the Ecart Pay dashboard", Actor: "alice"}); err != nil {
		t.Fatal(err)
	}
	if rec := h.await(t, "rf-held-2"); rec.State != store.Succeeded {
		t.Fatalf("second refund after the first was settled: %+v", rec)
	}
	if got := s.Refunded("ord-held"); len(got) != 2 {
		t.Fatalf("ledger = %v; want the two refunds, each once", got)
	}
}
