package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/refundq/refundq/enqueue"
	"github.com/refundq/refundq/internal/redistest"
	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/providers/moyasarpg"
	"github.com/refundq/refundq/providers/moyasarpg/moyasarpgsim"
	"github.com/refundq/refundq/tasks"
	"github.com/refundq/refundq/worker"
)

// paidWithWorker runs a worker on the Moyasar PG simulator, pays one
// refund per id through it and returns the simulator.
func paidWithWorker(t *testing.T, env *redistest.Env, ids ...string) *moyasarpgsim.Simulator {
	t.Helper()
	sim := moyasarpgsim.New("sk_test_reconcile")
	sim.Guessed(true)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	client, err := moyasarpg.New(moyasarpg.Config{BaseURL: srv.URL, APIKey: "sk_test_reconcile"})
	if err != nil {
		t.Fatal(err)
	}
	reg := providers.NewRegistry(providers.Entry{Name: providers.MoyasarPG, Provider: client, SettleDelay: 300 * time.Millisecond,
		Idempotent: true, Guesses: moyasarpg.Guesses, Schedule: providers.Schedule{First: time.Second, Max: time.Second, Horizon: time.Minute}})
	log := logrus.New()
	log.SetOutput(io.Discard)
	w, err := worker.New(worker.Config{AcceptRedisLoss: true, Redis: env.Asynq, RDB: env.Client, Registry: reg,
		Prefix: env.Prefix, Queue: env.Queue, Logger: log, RecoverEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Shutdown)
	enq := enqueue.New(env.Asynq, env.Client, enqueue.WithQueue(env.Queue), enqueue.WithPrefix(env.Prefix),
		enqueue.WithRegistry(reg), enqueue.AcceptRedisLoss())
	t.Cleanup(func() { enq.Close() })
	st := store.New(env.Client, env.Prefix)
	for _, id := range ids {
		sim.AddOrder("ord-"+id, tasks.Money{Minor: 1000, Currency: "SAR"})
		if _, err := enq.Enqueue(context.Background(), enqueue.Request{RefundID: id, Provider: providers.MoyasarPG,
			OrderID: "ord-" + id, Amount: "10.00", Currency: "SAR"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range ids {
		deadline := time.Now().Add(30 * time.Second)
		for {
			rec, err := st.Get(context.Background(), id)
			if err == nil && rec.State == store.Succeeded {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("refund %s not succeeded: %+v, %v", id, rec, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return sim
}

// A disagreement planted at the provider comes out in every format, with
// its own exit status; --run follows the same run again.
func TestReconcileReportsAndExitsOnDisagreement(t *testing.T) {
	env := redistest.New(t)
	sim := paidWithWorker(t, env, "rf-a", "rf-b")
	rec, _ := store.New(env.Client, env.Prefix).Get(context.Background(), "rf-b")
	if !sim.ShortenApplied("ord-rf-b", rec.ProviderRef) {
		t.Fatal("nothing to shorten")
	}

	r := cli(t, env, "", "reconcile", "--since", "1h", "--csv")
	if r.code != exitDisagree || !strings.Contains(r.err, "reconciliation rc-") {
		t.Fatalf("reconcile --csv: %s", r)
	}
	rows, err := csv.NewReader(strings.NewReader(r.out)).ReadAll()
	if err != nil || len(rows) != 2 {
		t.Fatalf("CSV: %v, %v", rows, err)
	}
	row := map[string]string{}
	for i, h := range rows[0] {
		row[h] = rows[1][i]
	}
	if row["refund_id"] != "rf-b" || row["amount"] != "10.00" || row["currency"] != "SAR" || row["verdict"] != "disagree" ||
		row["reason"] != "provider shows another amount or currency" || row["state"] != "succeeded" || row["provider_shows"] != "review" {
		t.Fatalf("CSV row: %v", row)
	}
	runID := strings.Fields(strings.TrimPrefix(r.err, "reconciliation "))[0]

	r = cli(t, env, "", "reconcile", "--run", runID, "--json")
	var got reconcileRunJSON
	if r.code != exitDisagree || json.Unmarshal([]byte(r.out), &got) != nil {
		t.Fatalf("reconcile --run --json: %s", r)
	}
	if got.ID != runID || got.Checked != 2 || got.Agree != 1 || got.Disagree != 1 || len(got.Findings) != 1 || got.Findings[0].RefundID != "rf-b" {
		t.Fatalf("JSON: %+v", got)
	}
	r = cli(t, env, "", "reconcile", "--run", runID)
	if r.code != exitDisagree || !strings.Contains(r.out, "1 disagree") || !strings.Contains(r.out, "rf-b") {
		t.Fatalf("table: %s", r)
	}
	// Only another provider's refunds: nothing to disagree with.
	r = cli(t, env, "", "reconcile", "--since", "1h", "--provider", "ecomcharge")
	if r.code != exitFailed || !strings.Contains(r.err, "ecomcharge") {
		t.Fatalf("a provider no worker has: %s", r)
	}
}

func TestReconcileAgreesAndRefusesClearly(t *testing.T) {
	env := redistest.New(t)
	if r := cli(t, env, "", "reconcile", "--since", "1h"); r.code != exitFailed || !strings.Contains(r.err, "no worker") {
		t.Fatalf("without a worker: %s", r)
	}
	for _, args := range [][]string{{"reconcile"}, {"reconcile", "--since", "yesterday"}, {"reconcile", "--since", "1h", "--json", "--csv"},
		{"reconcile", "--since", "1h", "--run", "rc-1"}} {
		if r := cli(t, env, "", args...); r.code != exitUsage {
			t.Errorf("%v: %s", args, r)
		}
	}
	paidWithWorker(t, env, "rf-ok")
	r := cli(t, env, "", "reconcile", "--since", "1h", "--provider", "moyasarpg")
	if r.code != exitOK || !strings.Contains(r.out, "1 checked: 1 agree, 0 disagree, 0 unchecked") {
		t.Fatalf("all agree: %s", r)
	}
}
