package worker_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/refundq/refundq/internal/redistest"
	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/providers/ecartpay"
	"github.com/refundq/refundq/store"
	"github.com/refundq/refundq/tasks"
	"github.com/refundq/refundq/worker"
)

// Ecart Pay has no refund key: a lost answer is matched by amount among the
// order's refunds that are not already another refund's. Two equal refunds
// on one order, both with an attempt in flight, race for the one refund that
// was applied. The loser must not record it as its own too, or one of them
// is never paid.
func TestEqualRefundsOnOneOrderNeverShareOneProviderRefund(t *testing.T) {
	env := redistest.New(t)
	ctx := context.Background()
	st := store.New(env.Client, env.Prefix)
	sim := ecartpay.NewSimulator("pub", "prv")
	amount := tasks.Money{Minor: 1000, Currency: "MXN"}
	sim.AddOrder("ord-eq", tasks.Money{Minor: 5000, Currency: "MXN"})

	// A's worker died after sending; its request was applied (ref1). B's
	// lost attempt was not applied.
	newRefund := func(id string) tasks.Refund {
		r := tasks.Refund{Version: 1, RefundID: id, Provider: providers.EcartPay, OrderID: "ord-eq", AmountMinor: amount.Minor, Currency: amount.Currency, Reason: "requested"}
		diedAfterSending(t, st, r)
		return r
	}
	a := newRefund("rf-a")
	newRefund("rf-b")
	directSrv := httptest.NewServer(sim)
	t.Cleanup(directSrv.Close)
	direct, err := ecartpay.New(ecartpay.Config{BaseURL: directSrv.URL, PublicKey: "pub", PrivateKey: "prv"})
	if err != nil {
		t.Fatal(err)
	}
	out := direct.Refund(ctx, providers.Refund{OrderID: "ord-eq", Amount: amount, Reason: "requested"})
	if out.Kind != providers.Succeeded || out.Reference == "" {
		t.Fatalf("setup refund: %v", out)
	}
	ref1 := out.Reference

	// B's look-up, in another worker, records ref1 as B's while A's
	// look-up is on the wire: A read the order before B's claim.
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == "/api/orders/ord-eq" {
			once.Do(func() {
				l, err := st.Acquire(ctx, "rf-b", time.Minute)
				if err != nil {
					t.Error(err)
					return
				}
				defer l.Release(ctx)
				if err := l.Apply(ctx, store.Change{State: store.Succeeded, ProviderRef: ref1, Settled: true, Entry: store.Entry{Event: "lookup"}}); err != nil {
					t.Error(err)
				}
			})
		}
		sim.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	client, err := ecartpay.New(ecartpay.Config{BaseURL: srv.URL, PublicKey: "pub", PrivateKey: "prv"})
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	log := logrus.New()
	log.SetOutput(logs)
	log.SetFormatter(&logrus.JSONFormatter{})
	w, err := worker.New(worker.Config{
		Redis: env.Asynq, RDB: env.Client, Prefix: env.Prefix, Queue: env.Queue, Logger: log,
		Registry:      providers.NewRegistry(providers.Entry{Name: providers.EcartPay, Provider: client, Check: ecartpay.Check}),
		Attempt:       worker.AttemptPolicy{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond, MaxElapsed: 2 * time.Second, MaxTries: 5},
		InFlightGrace: 100 * time.Millisecond,
		SweepEvery:    time.Hour, SweepAfter: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Shutdown)
	h := &harness{env: env, store: st, logs: logs}
	h.enqueueTask(t, a)

	rec := h.await(t, "rf-a")
	if rec.State != store.Succeeded || rec.ProviderRef == ref1 || rec.ProviderRef == "" {
		t.Fatalf("rf-a = %s with ref %q; want succeeded with a refund of its own, not B's %s", rec.State, rec.ProviderRef, ref1)
	}
	if got := sim.Refunded("ord-eq"); len(got) != 2 {
		t.Fatalf("ledger has %d refunds for two succeeded refunds, want 2: %v", len(got), got)
	}
	hist, err := st.History(ctx, "rf-a")
	if err != nil {
		t.Fatal(err)
	}
	var saw bool
	for _, e := range hist {
		saw = saw || strings.Contains(e.Detail, "already belongs to refund rf-b")
	}
	if !saw {
		t.Fatalf("rf-a's history does not say why it looked again: %+v", hist)
	}
}
