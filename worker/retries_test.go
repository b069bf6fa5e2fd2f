package worker_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/providers/sim"
	"github.com/refundq/refundq/tasks"
)

// An outcome that stays unknown through every retry is handed to a human,
// never guessed as failed (it may have been paid) and never resent blindly.
func TestUnknownThroughEveryRetryNeedsReview(t *testing.T) {
	h := start(t)
	h.sim.AddOrder("ord-dark", mustMoney(t, "9.00", "SAR"))
	// The read before the send answers; the send is applied and its answer
	// held, then lost; from then on every look-up fails.
	h.sim.Faults().HangFor = time.Second
	h.sim.Faults().Next(1, "POST", "/v1/orders/ord-dark/refund", sim.AppliedThenTimeout)
	h.enqueueWithRetries(t, tasks.Refund{Version: 1, RefundID: "rf-dark", Provider: providers.MoyasarPG, OrderID: "ord-dark", AmountMinor: 900, Currency: "SAR"}, 1)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if rec, err := h.store.Get(context.Background(), "rf-dark"); err == nil && rec.InFlight == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the attempt was never marked in flight")
		}
	}
	h.sim.Faults().Next(1000, "GET", "/v1/orders/ord-dark", sim.Status5xx)
	rec := h.await(t, "rf-dark")
	if rec.State != store.NeedsReview || !strings.Contains(rec.LastError, "unknown") || rec.Attempts != 1 || rec.InFlight != 1 {
		t.Fatalf("record = %+v; want needs_review after one attempt, naming the unknown outcome", rec)
	}
	if got := h.sim.RefundsFor("ord-dark"); len(got) != 1 {
		t.Fatalf("ledger has %d refunds, want the 1 applied before the answer was lost", len(got))
	}
}

// A provider whose every read before a send fails (503) was never sent
// anything: after the last retry the refund goes to a human, saying nothing
// was applied and how to send it again; never silently open.
func TestUnreachableProviderNeedsReviewSayingNothingWasApplied(t *testing.T) {
	h := start(t)
	h.sim.AddOrder("ord-down", mustMoney(t, "9.00", "SAR"))
	h.sim.Faults().Next(1000, "GET", "/v1/orders/ord-down", sim.Status5xx)
	h.enqueueWithRetries(t, tasks.Refund{Version: 1, RefundID: "rf-down", Provider: providers.MoyasarPG, OrderID: "ord-down", AmountMinor: 900, Currency: "SAR"}, 1)
	rec := h.await(t, "rf-down")
	if rec.State != store.NeedsReview || !strings.Contains(rec.LastError, "nothing was applied") || rec.InFlight != 0 {
		t.Fatalf("record = %+v; want needs_review, saying nothing was applied", rec)
	}
	if got := h.sim.RefundsFor("ord-down"); len(got) != 0 {
		t.Fatalf("ledger has %d refunds, want 0", len(got))
	}
}

// A refund for a provider this worker has no credentials for is blocked, not
// failed: it keeps its state, names what to set, and spends no retries.
func TestDisabledProviderBlocksNamingTheVariables(t *testing.T) {
	h := start(t)
	h.enqueueWithRetries(t, tasks.Refund{Version: 1, RefundID: "rf-off", Provider: providers.Fatora, OrderID: "o", TransactionID: "t", AmountMinor: 100, Currency: "QAR"}, 1)
	rec := h.awaitBlocked(t, "rf-off")
	if rec.State != store.Queued || !strings.Contains(rec.Blocked, "FATORA_API_KEY") || rec.Attempts != 0 {
		t.Fatalf("record = %+v; want queued, blocked naming FATORA_API_KEY, never sent", rec)
	}
	// Tried again on the blocked schedule without spending its one retry.
	h.awaitHistory(t, "rf-off", 3, "blocked")
	info, err := h.insp.GetTaskInfo(h.env.Queue, tasks.RefundTaskID("rf-off"))
	if err != nil || info.Retried != 0 || info.State == asynq.TaskStateArchived {
		t.Fatalf("blocked task: %+v, %v; want it alive with no retry spent", info, err)
	}
}

// A worker with a wrong key leaves its refunds blocked (not failed, never
// sent twice); restarted with the right key, it finishes them.
func TestWrongKeyBlocksThenTheRightKeyFinishes(t *testing.T) {
	h := start(t, func(s *setup) { s.key = "sk_test_rotated_away" })
	h.sim.AddOrder("ord-key", mustMoney(t, "12.00", "SAR"))
	if _, err := h.enq.Enqueue(context.Background(), req("rf-key", "ord-key", "12.00")); err != nil {
		t.Fatal(err)
	}
	rec := h.awaitBlocked(t, "rf-key")
	if rec.State.Final() || !strings.Contains(rec.Blocked, "MOYASAR_PG_API_KEY") || rec.InFlight != 0 {
		t.Fatalf("record = %+v; want open, blocked naming the key, nothing in flight", rec)
	}
	h.worker.Shutdown()
	h.newWorker(t) // the right key
	rec = h.await(t, "rf-key")
	if rec.State != store.Succeeded || rec.Blocked != "" {
		t.Fatalf("after the key was fixed: %+v", rec)
	}
	if got := h.sim.RefundsFor("ord-key"); len(got) != 1 {
		t.Fatalf("ledger has %d refunds, want 1", len(got))
	}
}

// A provider that answers 429 with a Retry-After is waited out for as long
// as it asks, without spending the task's retries: three runs' worth of 429s
// on a task allowed one counted run still ends in one refund paid.
func TestThrottledProviderIsWaitedOutWithoutSpendingRetries(t *testing.T) {
	h := start(t)
	h.sim.AddOrder("ord-slow", mustMoney(t, "9.00", "SAR"))
	h.sim.Faults().Next(12, "POST", "/v1/orders/ord-slow/refund", sim.RateLimited)
	h.enqueueWithRetries(t, tasks.Refund{Version: 1, RefundID: "rf-slow", Provider: providers.MoyasarPG, OrderID: "ord-slow", AmountMinor: 900, Currency: "SAR"}, 1)
	h.awaitPaidOnce(t, "rf-slow", "ord-slow")
	h.awaitHistory(t, "rf-slow", 1, "provider asked to slow down")
}

// A shutdown that comes while the read before a send is slow sends nothing:
// the read may have used most of the shutdown's grace, and a send started
// after it could be cut off mid-flight. The refund stays queued, unsent,
// for the next worker.
func TestShutdownDuringTheReadBeforeASendSendsNothing(t *testing.T) {
	h := start(t)
	ctx := context.Background()
	h.sim.AddOrder("ord-read", mustMoney(t, "8.00", "SAR"))
	h.sim.Faults().SlowFor = time.Second
	h.sim.Faults().Next(1, "GET", "/v1/orders/ord-read", sim.Slow)
	if _, err := h.enq.Enqueue(ctx, req("rf-read", "ord-read", "8.00")); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); h.sim.Faults().Counts()[sim.Slow] == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the read before the send never started")
		}
	}
	h.worker.Shutdown()
	rec, err := h.store.Get(ctx, "rf-read")
	if err != nil || rec.Attempts != 0 || rec.InFlight != 0 || rec.State.Final() {
		t.Fatalf("after shutdown: %+v, %v; want the refund open with nothing sent", rec, err)
	}
	if got := h.sim.RefundsFor("ord-read"); len(got) != 0 {
		t.Fatalf("ledger has %d refunds, want none: nothing may be sent after the read once shutdown began", len(got))
	}
}

// A provider that stops answering (every call a 503) opens the breaker.
// While it is open, and through its trial calls that fail again, refunds
// whose attempts are in flight wait without spending their task's retries:
// an outage many times longer than the breaker's period (here 15 periods;
// in production 15 periods is 7.5 minutes) ends with every refund paid
// once, none handed to a human. Each task may fail one counted run (its
// budget is 2 runs: MaxRetry 2).
func TestAnOutageBehindAnOpenBreakerSpendsNoRetries(t *testing.T) {
	const period = 200 * time.Millisecond
	h := start(t, func(s *setup) { s.breakerOpen = period })
	var ids []string
	for i := range 4 {
		id, order := fmt.Sprintf("rf-out-%d", i), fmt.Sprintf("ord-out-%d", i)
		h.sim.AddOrder(order, mustMoney(t, "6.00", "SAR"))
		// Applied, and the answer lost: each refund then looks up.
		h.sim.Faults().Next(1, "POST", "/v1/orders/"+order+"/refund", sim.AppliedThenReset)
		ids = append(ids, id)
	}
	h.sim.Faults().Outage(sim.Status5xx, 15*period)
	for i, id := range ids {
		h.enqueueWithRetries(t, tasks.Refund{Version: 1, RefundID: id, Provider: providers.MoyasarPG,
			OrderID: fmt.Sprintf("ord-out-%d", i), AmountMinor: 600, Currency: "SAR"}, 2)
	}
	// The breaker's gauge shows it open during the outage, and not once
	// the provider answers again.
	srv := httptest.NewServer(h.worker.HTTPHandler())
	defer srv.Close()
	breaker := `refundq_provider_breaker_open{provider="moyasarpg"}`
	awaitGauge := func(want float64, within time.Duration) {
		t.Helper()
		for deadline := time.Now().Add(within); ; {
			_, body := get(t, srv.URL+"/metrics")
			if v, ok := metricValue(body, breaker); ok && v == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never %v within %s", breaker, want, within)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	awaitGauge(1, 15*period)
	for i, id := range ids {
		h.awaitPaidOnce(t, id, fmt.Sprintf("ord-out-%d", i))
	}
	awaitGauge(0, 5*time.Second)
	if !strings.Contains(h.logs.String(), "circuit open") {
		t.Fatal("the breaker never opened: the outage did not test it")
	}
}
