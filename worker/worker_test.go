package worker_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/refundq/refundq/enqueue"
	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/providers/moyasarpg"
	"github.com/refundq/refundq/providers/sim"
	"github.com/refundq/refundq/tasks"
)

func TestRefundEndToEnd(t *testing.T) {
	h := start(t)
	h.sim.AddOrder("ord-e2e", mustMoney(t, "2623.46", "SAR"))
	if _, err := h.enq.Enqueue(context.Background(), req("rf-e2e", "ord-e2e", "2623.46")); err != nil {
		t.Fatal(err)
	}
	rec := h.await(t, "rf-e2e")
	if rec.State != store.Succeeded || rec.ProviderRef == "" || rec.Attempts != 1 {
		t.Fatalf("record = %+v, want succeeded after one attempt with a provider reference", rec)
	}
	got := h.sim.RefundsFor("ord-e2e")
	if len(got) != 1 || got[0].Amount != (tasks.Money{Minor: 262346, Currency: "SAR"}) {
		t.Fatalf("ledger = %+v, want exactly one refund of 2623.46 SAR", got)
	}
}

func TestSameRefundTwiceIsOneRefund(t *testing.T) {
	h := start(t)
	h.sim.AddOrder("ord-dup", mustMoney(t, "100.00", "SAR"))
	var wg sync.WaitGroup
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := h.enq.Enqueue(context.Background(), req("rf-dup", "ord-dup", "40.00")); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	h.await(t, "rf-dup")
	// After the refund is done (its task finished), the same id is still one refund.
	res, err := h.enq.Enqueue(context.Background(), req("rf-dup", "ord-dup", "40.00"))
	if err != nil || res.Created || res.Record.State != store.Succeeded {
		t.Fatalf("re-enqueue after success = %+v, %v; want the existing succeeded refund", res, err)
	}
	if _, err := h.enq.Enqueue(context.Background(), req("rf-dup", "ord-dup", "41.00")); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("same id, other amount: err = %v, want ErrConflict", err)
	}
	if got := h.sim.RefundsFor("ord-dup"); len(got) != 1 {
		t.Fatalf("ledger has %d refunds, want 1: %+v", len(got), got)
	}
}

func TestStillProcessingThenAppliedViaPolls(t *testing.T) {
	h := start(t)
	h.sim.AddOrder("ord-slow", mustMoney(t, "50.00", "SAR"))
	h.sim.SetProcessing("ord-slow", 2)
	if _, err := h.enq.Enqueue(context.Background(), req("rf-slow", "ord-slow", "50.00")); err != nil {
		t.Fatal(err)
	}
	rec := h.await(t, "rf-slow")
	if rec.State != store.Succeeded {
		t.Fatalf("state = %s (%s), want succeeded", rec.State, rec.LastError)
	}
	hist, err := h.store.History(context.Background(), "rf-slow")
	if err != nil {
		t.Fatal(err)
	}
	var pendings, lookups int
	for _, e := range hist {
		if e.Outcome == "pending" {
			pendings++
		}
		if e.Event == "lookup" {
			lookups++
		}
	}
	if pendings < 2 || lookups < 1 || rec.PollStep < 2 {
		t.Fatalf("want ≥2 pending outcomes answered by poll tasks; pendings=%d lookups=%d poll_step=%d history=%+v", pendings, lookups, rec.PollStep, hist)
	}
	if got := h.sim.RefundsFor("ord-slow"); len(got) != 1 {
		t.Fatalf("ledger has %d refunds, want 1", len(got))
	}
}

// A provider's refusal is an ordinary outcome: the refund is failed, its
// task completed (not archived, not an asynq failure) with the state as its
// result, and nothing was retried.
func TestRejectedIsFailedAndItsTaskCompleted(t *testing.T) {
	h := start(t)
	h.sim.AddOrder("ord-small", mustMoney(t, "10.00", "SAR"))
	if _, err := h.enq.Enqueue(context.Background(), req("rf-big", "ord-small", "99.00")); err != nil {
		t.Fatal(err)
	}
	rec := h.await(t, "rf-big")
	if rec.State != store.Failed || rec.LastError == "" || rec.Attempts != 1 {
		t.Fatalf("record = %+v, want failed after one attempt with a reason", rec)
	}
	info := h.awaitTaskState(t, tasks.RefundTaskID("rf-big"), asynq.TaskStateCompleted)
	if info.Retried != 0 || info.LastErr != "" || !strings.Contains(string(info.Result), `"state":"failed"`) {
		t.Fatalf("completed task retried %d times, last error %q, result %s; want 0 retries, no error, the failed state", info.Retried, info.LastErr, info.Result)
	}
	q, err := h.insp.GetQueueInfo(h.env.Queue)
	if err != nil || q.FailedTotal != 0 || q.Archived != 0 {
		t.Fatalf("queue %+v, %v: want no asynq failure and nothing archived", q, err)
	}
	// A final refund with a completed task is nothing for the recoverer.
	if n := h.recoverNow(t, "rf-big"); n != 0 {
		t.Fatalf("the recoverer acted on %d refunds after a failed one completed its task", n)
	}
	if got := h.sim.RefundsFor("ord-small"); len(got) != 0 {
		t.Fatalf("ledger has %d refunds, want 0", len(got))
	}
}

func TestMalformedTaskIsArchivedWithReadableReason(t *testing.T) {
	h := start(t)
	c := asynq.NewClient(h.env.Asynq)
	defer c.Close()
	for id, payload := range map[string]string{
		"bad-json":   `{"v":1,"refund_id":`,
		"bad-amount": `{"v":1,"refund_id":"r1","provider":"moyasarpg","order_id":"o","amount_minor":-5,"currency":"SAR"}`,
		"bad-poll":   `not json`,
	} {
		typ := tasks.TypeRefund
		if id == "bad-poll" {
			typ = tasks.TypePoll
		}
		if _, err := c.Enqueue(asynq.NewTask(typ, []byte(payload)), asynq.Queue(h.env.Queue), asynq.TaskID(id), asynq.MaxRetry(5)); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"bad-json", "bad-amount", "bad-poll"} {
		info := h.awaitArchived(t, id)
		if info.Retried != 0 || !strings.Contains(info.LastErr, "malformed") {
			t.Errorf("%s: retried %d, last error %q; want archived at once with a readable reason", id, info.Retried, info.LastErr)
		}
	}
	info := h.awaitArchived(t, "bad-amount")
	if !strings.Contains(info.LastErr, "amount: must be greater than zero") {
		t.Errorf("bad-amount reason %q does not name the field", info.LastErr)
	}
}

func TestSecondRefundOnAOnceOnlyOrderIsArchivedNotSent(t *testing.T) {
	h := start(t)
	ctx := context.Background()
	first := tasks.Refund{Version: 1, RefundID: "rf-once-1", Provider: providers.Fatora, OrderID: "ord-once", TransactionID: "t-1", AmountMinor: 500, Currency: "QAR"}
	if _, _, err := h.store.Create(ctx, first); err != nil {
		t.Fatal(err)
	}
	// A task for a second refund on the order, enqueued around the
	// producers' client.
	second := first
	second.RefundID = "rf-once-2"
	h.enqueueTask(t, second)
	info := h.awaitArchived(t, tasks.RefundTaskID("rf-once-2"))
	if info.Retried != 0 || !strings.Contains(info.LastErr, "fatora refunds an order once, and order ord-once already has refund rf-once-1 (queued)") {
		t.Fatalf("second refund's task: retried %d, last error %q", info.Retried, info.LastErr)
	}
	if _, err := h.store.Get(ctx, "rf-once-2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second refund was recorded: %v", err)
	}
}

func TestAppliedThenResponseLostIsReconciledNotResent(t *testing.T) {
	h := start(t)
	h.sim.AddOrder("ord-lost", mustMoney(t, "30.00", "SAR"))
	h.sim.Faults().Next(1, "POST", "/v1/orders/ord-lost/refund", sim.AppliedThenReset)
	if _, err := h.enq.Enqueue(context.Background(), req("rf-lost", "ord-lost", "30.00")); err != nil {
		t.Fatal(err)
	}
	if rec := h.awaitPaidOnce(t, "rf-lost", "ord-lost"); rec.Attempts != 1 {
		t.Fatalf("record = %+v, want succeeded from a look-up, with the single attempt", rec)
	}
}

// A worker died after MarkSent, with the refund applied at the provider and
// nothing recorded. The re-run must find it with a look-up and not send again.
func TestRerunAfterCrashReconcilesFirst(t *testing.T) {
	h := start(t)
	ctx := context.Background()
	h.sim.AddOrder("ord-crash", mustMoney(t, "20.00", "SAR"))
	r := tasks.Refund{Version: 1, RefundID: "rf-crash", Provider: providers.MoyasarPG, OrderID: "ord-crash", AmountMinor: 2000, Currency: "SAR"}
	rec := diedAfterSending(t, h.store, r)
	// The dead worker's request, which reached the provider.
	client, _ := moyasarpg.New(moyasarpg.Config{BaseURL: h.simURL, APIKey: apiKey})
	if out := client.Refund(ctx, providers.Refund{OrderID: "ord-crash", Amount: r.Money(), Key: rec.Key}); out.Kind != providers.Succeeded {
		t.Fatalf("setup refund: %v", out)
	}
	h.enqueueTask(t, r)
	if rec = h.awaitPaidOnce(t, "rf-crash", "ord-crash"); rec.Attempts != 1 {
		t.Fatalf("record = %+v, want succeeded without a second send", rec)
	}
}

func TestSecretsNeverReachLogs(t *testing.T) {
	h := start(t)
	h.sim.AddOrder("ord-log", mustMoney(t, "10.00", "SAR"))
	h.sim.AddOrder("ord-log2", mustMoney(t, "10.00", "SAR"))
	h.sim.Faults().Next(1, "POST", "/v1/orders/ord-log2/refund", sim.Status5xx)
	for _, r := range []enqueue.Request{req("rf-log", "ord-log", "10.00"), req("rf-log2", "ord-log2", "10.00"), req("rf-log3", "ord-log", "99.00")} {
		if _, err := h.enq.Enqueue(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"rf-log", "rf-log2", "rf-log3"} {
		h.await(t, id)
	}
	logs := h.logs.String()
	if !strings.Contains(logs, "rf-log2") {
		t.Fatalf("log capture saw nothing; the test would prove nothing:\n%s", logs)
	}
	for _, secret := range []string{apiKey, "SECRET", "Bearer", "Authorization"} {
		if strings.Contains(logs, secret) {
			t.Errorf("log output contains %q:\n%s", secret, logs)
		}
	}
	for _, id := range []string{"rf-log", "rf-log2", "rf-log3"} {
		rec, _ := h.store.Get(context.Background(), id)
		hist, _ := h.store.History(context.Background(), id)
		if all := fmt.Sprintf("%+v %+v", rec, hist); strings.Contains(all, "SECRET") || strings.Contains(all, "Bearer") {
			t.Errorf("refund record %s holds a secret: %s", id, all)
		}
	}
}

// SIGTERM while a provider call is in flight: the call finishes and its
// outcome is recorded before Shutdown returns.
func TestShutdownLetsTheCallInFlightFinish(t *testing.T) {
	h := start(t)
	ctx := context.Background()
	h.sim.AddOrder("ord-term", mustMoney(t, "8.00", "SAR"))
	h.sim.Faults().SlowFor = time.Second
	h.sim.Faults().Next(1, "POST", "/v1/orders/ord-term/refund", sim.Slow)
	if _, err := h.enq.Enqueue(ctx, req("rf-term", "ord-term", "8.00")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		rec, _ := h.store.Get(ctx, "rf-term")
		if rec.InFlight > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("refund never went in flight: %+v", rec)
		}
		time.Sleep(5 * time.Millisecond)
	}
	h.worker.Shutdown()
	rec, err := h.store.Get(ctx, "rf-term")
	if err != nil || rec.State != store.Succeeded || rec.InFlight != 0 {
		t.Fatalf("after shutdown: %+v, %v; want the in-flight call finished and recorded", rec, err)
	}
	if got := h.sim.RefundsFor("ord-term"); len(got) != 1 {
		t.Fatalf("ledger has %d refunds, want 1", len(got))
	}
}

func TestWorkerAnnouncesItsProviders(t *testing.T) {
	h := start(t)
	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Second)
	for {
		enabled, anyWorker, err := h.store.Serving(ctx, h.env.Queue, providers.MoyasarPG)
		if err != nil {
			t.Fatal(err)
		}
		if enabled && anyWorker {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("worker never announced moyasarpg: enabled %v, any worker %v", enabled, anyWorker)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Fatora is in its registry without credentials: not announced.
	if enabled, _, err := h.store.Serving(ctx, h.env.Queue, providers.Fatora); err != nil || enabled {
		t.Fatalf("fatora announced by a worker without its credentials: %v, %v", enabled, err)
	}
}

// A task from a newer producer (payload version 2) reaching this older
// worker during a rolling deploy is handed back for a newer worker, not
// archived, and costs none of its retries.
func TestNewerPayloadIsHandedBack(t *testing.T) {
	h := start(t)
	c := asynq.NewClient(h.env.Asynq)
	defer c.Close()
	payload := `{"v":2,"refund_id":"rf-v2","provider":"moyasarpg","order_id":"o","amount_minor":100,"currency":"SAR","new_field":1}`
	if _, err := c.Enqueue(asynq.NewTask(tasks.TypeRefund, []byte(payload)), asynq.Queue(h.env.Queue), asynq.TaskID("refund:rf-v2"), asynq.MaxRetry(1)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		info, err := h.insp.GetTaskInfo(h.env.Queue, "refund:rf-v2")
		if err == nil && info.State == asynq.TaskStateRetry {
			if info.Retried != 0 || !strings.Contains(info.LastErr, "newer") {
				t.Fatalf("task %+v; want handed back without a retry spent", info)
			}
			return
		}
		if err == nil && info.State == asynq.TaskStateArchived || time.Now().After(deadline) {
			t.Fatalf("task %+v, %v; want it waiting for a newer worker", info, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
