package worker_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/providers/sim"
	"github.com/refundq/refundq/store"
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
	rec := h.await(t, "rf-slow")
	if rec.State != store.Succeeded {
		t.Fatalf("record = %+v; want succeeded once the provider stopped throttling", rec)
	}
	if got := h.sim.RefundsFor("ord-slow"); len(got) != 1 {
		t.Fatalf("ledger has %d refunds, want 1", len(got))
	}
	h.awaitHistory(t, "rf-slow", 1, "provider asked to slow down")
}
