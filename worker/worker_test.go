package worker_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/sirupsen/logrus"

	"github.com/refundq/refundq/enqueue"
	"github.com/refundq/refundq/internal/redistest"
	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/providers/moyasarpg"
	"github.com/refundq/refundq/providers/moyasarpg/moyasarpgsim"
	"github.com/refundq/refundq/providers/sim"
	"github.com/refundq/refundq/store"
	"github.com/refundq/refundq/tasks"
	"github.com/refundq/refundq/worker"
)

const apiKey = "sk_test_7hPqSECRETx9Zt"

// syncBuffer collects log output from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type harness struct {
	env    *redistest.Env
	sim    *moyasarpgsim.Simulator
	store  *store.Store
	enq    *enqueue.Client
	logs   *syncBuffer
	insp   *asynq.Inspector
	simURL string
	worker *worker.Worker
}

// setup says how start builds its worker.
type setup struct {
	key       string // the worker's Moyasar PG API key; default apiKey
	noStart   bool   // build, but let the test start the worker
	webhook   worker.WebhookConfig
	retention time.Duration
	auditDir  string
	// eventsRetention is the worker's Config.EventsRetention; 0: the default.
	eventsRetention time.Duration
}

// start runs a real worker against a real Redis and the Moyasar PG simulator
// over real HTTP.
func start(t *testing.T, opts ...func(*setup)) *harness {
	t.Helper()
	env := redistest.New(t)
	sim := moyasarpgsim.New(apiKey)
	// MPG's answers with our transaction_id as the refund's id (a guess the
	// adapter confirms at run time), so look-ups can find our refund.
	sim.Guessed(true)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	h := &harness{env: env, sim: sim, store: store.New(env.Client, env.Prefix), logs: &syncBuffer{}, simURL: srv.URL}
	h.worker = h.newWorker(t, opts...)
	reg := h.registry(t, apiKey)
	enq := enqueue.New(env.Asynq, env.Client, enqueue.WithQueue(env.Queue), enqueue.WithPrefix(env.Prefix), enqueue.WithRegistry(reg), enqueue.AcceptRedisLoss())
	t.Cleanup(func() { enq.Close() })
	insp := asynq.NewInspector(env.Asynq)
	t.Cleanup(func() { insp.Close() })
	h.enq, h.insp = enq, insp
	return h
}

// settleDelay is the test registry's settle delay: short, but longer than
// the simulator's late applies.
const settleDelay = 300 * time.Millisecond

func (h *harness) registry(t *testing.T, key string) *providers.Registry {
	client, err := moyasarpg.New(moyasarpg.Config{BaseURL: h.simURL, APIKey: key})
	if err != nil {
		t.Fatal(err)
	}
	return providers.NewRegistry(providers.Entry{
		Name: providers.MoyasarPG, Provider: client, SettleDelay: settleDelay, Idempotent: true, Guesses: moyasarpg.Guesses,
		Schedule: providers.Schedule{First: time.Second, Max: time.Second, Horizon: time.Minute},
	}, providers.Entry{Name: providers.Fatora, Missing: []string{"FATORA_API_KEY"}, OncePerOrder: true})
}

// newWorker builds (and, unless told otherwise, starts) a worker on the
// harness's Redis and simulator.
func (h *harness) newWorker(t *testing.T, opts ...func(*setup)) *worker.Worker {
	t.Helper()
	cfg := setup{key: apiKey}
	for _, o := range opts {
		o(&cfg)
	}
	log := logrus.New()
	log.SetOutput(h.logs)
	log.SetFormatter(&logrus.JSONFormatter{})
	log.SetLevel(logrus.DebugLevel)
	w, err := worker.New(worker.Config{AcceptRedisLoss: true,
		Redis: h.env.Asynq, RDB: h.env.Client, Registry: h.registry(t, cfg.key), Prefix: h.env.Prefix, Queue: h.env.Queue, Logger: log,
		Attempt:      worker.AttemptPolicy{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond, MaxElapsed: 2 * time.Second, MaxTries: 5},
		BlockedRetry: 500 * time.Millisecond, InRunWait: time.Second, RecoverEvery: time.Hour,
		Webhook: cfg.webhook, Retention: cfg.retention, AuditDir: cfg.auditDir, EventsRetention: cfg.eventsRetention,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.noStart {
		if err := w.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(w.Shutdown)
	}
	return w
}

// await polls the record until it reaches a final state; it fails the test
// after 30 s. Polling the record is the condition, not a fixed sleep.
func (h *harness) await(t *testing.T, id string) store.Record {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		rec, err := h.store.Get(context.Background(), id)
		if err == nil && rec.State.Final() {
			return rec
		}
		if time.Now().After(deadline) {
			hist, _ := h.store.History(context.Background(), id)
			t.Fatalf("refund %s not final after 30s: %+v, %v\nhistory: %+v\nlogs:\n%s", id, rec, err, hist, h.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func req(id, order, amount string) enqueue.Request {
	return enqueue.Request{RefundID: id, Provider: providers.MoyasarPG, OrderID: order, Amount: amount, Currency: "SAR", Reason: "requested_by_customer"}
}

func mustMoney(t *testing.T, amount, currency string) tasks.Money {
	t.Helper()
	m, err := tasks.ParseMoney(amount, currency)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

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

func TestRejectedIsFailedAndArchivedWithoutRetry(t *testing.T) {
	h := start(t)
	h.sim.AddOrder("ord-small", mustMoney(t, "10.00", "SAR"))
	if _, err := h.enq.Enqueue(context.Background(), req("rf-big", "ord-small", "99.00")); err != nil {
		t.Fatal(err)
	}
	rec := h.await(t, "rf-big")
	if rec.State != store.Failed || rec.LastError == "" || rec.Attempts != 1 {
		t.Fatalf("record = %+v, want failed after one attempt with a reason", rec)
	}
	info := h.awaitArchived(t, tasks.RefundTaskID("rf-big"))
	if info.Retried != 0 || !strings.Contains(info.LastErr, "amount") {
		t.Fatalf("archived task retried %d times, last error %q; want 0 retries and the provider's reason", info.Retried, info.LastErr)
	}
	if got := h.sim.RefundsFor("ord-small"); len(got) != 0 {
		t.Fatalf("ledger has %d refunds, want 0", len(got))
	}
}

func (h *harness) awaitArchived(t *testing.T, taskID string) *asynq.TaskInfo {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		info, err := h.insp.GetTaskInfo(h.env.Queue, taskID)
		if err == nil && info.State == asynq.TaskStateArchived {
			return info
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %s not archived: %+v, %v\nlogs:\n%s", taskID, info, err, h.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
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
	rec := h.await(t, "rf-lost")
	if rec.State != store.Succeeded || rec.Attempts != 1 {
		t.Fatalf("record = %+v, want succeeded from a look-up, with the single attempt", rec)
	}
	if got := h.sim.RefundsFor("ord-lost"); len(got) != 1 {
		t.Fatalf("ledger has %d refunds, want 1", len(got))
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
	rec = h.await(t, "rf-crash")
	if rec.State != store.Succeeded || rec.Attempts != 1 {
		t.Fatalf("record = %+v, want succeeded without a second send", rec)
	}
	if got := h.sim.RefundsFor("ord-crash"); len(got) != 1 {
		t.Fatalf("ledger has %d refunds, want 1", len(got))
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

// enqueueWithRetries bypasses the producer's default MaxRetry so a test can
// reach the last retry quickly.
func (h *harness) enqueueWithRetries(t *testing.T, r tasks.Refund, maxRetry int) {
	t.Helper()
	if _, _, err := h.store.Create(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	h.enqueueTask(t, r, asynq.MaxRetry(maxRetry))
}

// enqueueTask enqueues r's task directly, around the producers' client;
// opts come after refundq's own (a test may shorten the retries).
func (h *harness) enqueueTask(t *testing.T, r tasks.Refund, opts ...asynq.Option) {
	t.Helper()
	payload, err := tasks.EncodeRefund(r)
	if err != nil {
		t.Fatal(err)
	}
	c := asynq.NewClient(h.env.Asynq)
	defer c.Close()
	base := []asynq.Option{asynq.TaskID(tasks.RefundTaskID(r.RefundID)), asynq.MaxRetry(tasks.MaxRetry), asynq.Queue(h.env.Queue)}
	if _, err := c.Enqueue(asynq.NewTask(tasks.TypeRefund, payload, append(base, opts...)...)); err != nil {
		t.Fatal(err)
	}
}

// diedAfterSending records refund r as a worker leaves it when it is killed
// right after marking an attempt sent: in flight, no outcome, lease gone
// (expired; here released).
func diedAfterSending(t *testing.T, st *store.Store, r tasks.Refund) store.Record {
	t.Helper()
	ctx := context.Background()
	if _, _, err := st.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	lease, _, err := st.Acquire(ctx, r.RefundID, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lease.MarkSent(ctx, store.Send{Sent: "test"}); err != nil {
		t.Fatal(err)
	}
	if err := lease.Release(ctx); err != nil {
		t.Fatal(err)
	}
	rec, err := st.Get(ctx, r.RefundID)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

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

func (h *harness) awaitBlocked(t *testing.T, id string) store.Record {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		rec, err := h.store.Get(context.Background(), id)
		if err == nil && rec.Blocked != "" {
			return rec
		}
		if time.Now().After(deadline) {
			t.Fatalf("refund %s never blocked: %+v, %v\nlogs:\n%s", id, rec, err, h.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// awaitHistory waits until refund id's history has n entries whose detail
// contains word.
func (h *harness) awaitHistory(t *testing.T, id string, n int, word string) []store.Entry {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		hist, _ := h.store.History(context.Background(), id)
		count := 0
		for _, e := range hist {
			if strings.Contains(e.Detail, word) {
				count++
			}
		}
		if count >= n {
			return hist
		}
		if time.Now().After(deadline) {
			t.Fatalf("refund %s: %d of %d history entries with %q: %+v", id, count, n, word, hist)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A producer died between recording the refund and enqueueing its task: the
// recoverer finds the refund overdue without a task and creates it.
func TestRecovererEnqueuesARefundLeftWithoutATask(t *testing.T) {
	h := start(t)
	ctx := context.Background()
	h.sim.AddOrder("ord-orphan", mustMoney(t, "7.00", "SAR"))
	r := tasks.Refund{Version: 1, RefundID: "rf-orphan", Provider: providers.MoyasarPG, OrderID: "ord-orphan", AmountMinor: 700, Currency: "SAR"}
	if _, _, err := h.store.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	if n := h.worker.Recover(ctx); n != 0 {
		t.Fatalf("recoverer repaired %d refunds before any was overdue", n)
	}
	if err := h.store.Postpone(ctx, "rf-orphan", -time.Second); err != nil { // as if DueQueued passed
		t.Fatal(err)
	}
	if n := h.worker.Recover(ctx); n != 1 {
		t.Fatalf("recoverer repaired %d refunds, want 1", n)
	}
	rec := h.await(t, "rf-orphan")
	if rec.State != store.Succeeded {
		t.Fatalf("orphaned refund = %+v, want succeeded via the recoverer", rec)
	}
	if got := h.sim.RefundsFor("ord-orphan"); len(got) != 1 {
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

// overdue makes refund id due for the recoverer now, as if its due time had
// passed, and runs one recoverer pass.
func (h *harness) recoverNow(t *testing.T, id string) int {
	t.Helper()
	h.worker.AwaitStartPass()
	if err := h.store.Postpone(context.Background(), id, -time.Second); err != nil {
		t.Fatal(err)
	}
	return h.worker.Recover(context.Background())
}

// The poll chain broke: the record says pending with poll 2 scheduled, but
// the poll task never made it to asynq (the worker died between the two
// writes, or the enqueue failed). The recoverer re-creates the poll and the
// refund finishes.
func TestRecovererRestartsABrokenPollChain(t *testing.T) {
	h := start(t)
	ctx := context.Background()
	h.sim.AddOrder("ord-chain", mustMoney(t, "30.00", "SAR"))
	h.sim.SetProcessing("ord-chain", 4) // pending for the send and three more answers
	if _, err := h.enq.Enqueue(ctx, req("rf-chain", "ord-chain", "30.00")); err != nil {
		t.Fatal(err)
	}
	var rec store.Record
	for deadline := time.Now().Add(20 * time.Second); ; {
		rec, _ = h.store.Get(ctx, "rf-chain")
		if rec.State == store.Pending {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never pending: %+v", rec)
		}
		time.Sleep(20 * time.Millisecond)
	}
	h.worker.Shutdown() // no worker runs the poll meanwhile
	rec, _ = h.store.Get(ctx, "rf-chain")
	if err := h.insp.DeleteTask(h.env.Queue, rec.Task); err != nil {
		t.Fatalf("delete the scheduled poll %s: %v", rec.Task, err)
	}
	h.worker = h.newWorker(t)
	if n := h.recoverNow(t, "rf-chain"); n != 1 {
		t.Fatalf("recoverer re-created %d tasks, want the poll", n)
	}
	if rec := h.await(t, "rf-chain"); rec.State != store.Succeeded {
		t.Fatalf("after the repair: %+v", rec)
	}
	if got := h.sim.RefundsFor("ord-chain"); len(got) != 1 {
		t.Fatalf("ledger has %d refunds, want 1", len(got))
	}
}

// An operator archives a refund's task in asynqmon while it waits for a
// retry: the refund is open, its task archived by hand (not out of
// retries), so the recoverer brings it back and it finishes, paid once.
func TestRecovererUndoesAnOperatorsArchive(t *testing.T) {
	h := start(t, func(s *setup) { s.noStart = true })
	ctx := context.Background()
	h.sim.AddOrder("ord-arch", mustMoney(t, "11.00", "SAR"))
	if _, err := h.enq.Enqueue(ctx, req("rf-arch", "ord-arch", "11.00")); err != nil {
		t.Fatal(err)
	}
	if err := h.insp.ArchiveTask(h.env.Queue, tasks.RefundTaskID("rf-arch")); err != nil {
		t.Fatal(err)
	}
	if err := h.worker.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.worker.Shutdown)
	if n := h.recoverNow(t, "rf-arch"); n != 1 {
		t.Fatalf("recoverer re-created %d tasks, want 1", n)
	}
	if rec := h.await(t, "rf-arch"); rec.State != store.Succeeded {
		t.Fatalf("after the repair: %+v", rec)
	}
	if got := h.sim.RefundsFor("ord-arch"); len(got) != 1 {
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

// A task archived with its retries spent (its last run handed it back, died,
// or a person archived it while it waited for that run) leaves the refund
// open: the recoverer gives it a new task, up to maxResumes (3) times; after
// that automation has given up and the refund goes to a human.
func TestRecovererResumesASpentTaskThenEscalates(t *testing.T) {
	h := start(t, func(s *setup) { s.noStart = true })
	ctx := context.Background()
	r := tasks.Refund{Version: 1, RefundID: "rf-spent", Provider: providers.MoyasarPG, OrderID: "ord-spent", AmountMinor: 100, Currency: "SAR"}
	rec := diedAfterSending(t, h.store, r)
	payload, _ := tasks.EncodeRefund(r)
	c := asynq.NewClient(h.env.Asynq)
	defer c.Close()
	spend := func() {
		t.Helper()
		// As asynq leaves a task whose last run failed: archived, retries
		// spent (here none were allowed).
		_ = h.insp.DeleteTask(h.env.Queue, rec.Task)
		if _, err := c.Enqueue(asynq.NewTask(tasks.TypeRefund, payload), asynq.TaskID(rec.Task), asynq.Queue(h.env.Queue), asynq.MaxRetry(0)); err != nil {
			t.Fatal(err)
		}
		if err := h.insp.ArchiveTask(h.env.Queue, rec.Task); err != nil {
			t.Fatal(err)
		}
	}
	for round := 1; round <= 3; round++ {
		spend()
		if n := h.recoverNow(t, "rf-spent"); n != 1 {
			t.Fatalf("round %d: recoverer re-created %d tasks, want 1", round, n)
		}
		info, err := h.insp.GetTaskInfo(h.env.Queue, rec.Task)
		if err != nil || info.State != asynq.TaskStatePending {
			t.Fatalf("round %d: task %+v, %v; want it pending again", round, info, err)
		}
		if now, _ := h.store.Get(ctx, "rf-spent"); now.State.Final() || now.Resumes != round {
			t.Fatalf("round %d: record = %+v; want open, resumed %d times", round, now, round)
		}
	}
	spend()
	if n := h.recoverNow(t, "rf-spent"); n != 0 {
		t.Fatalf("recoverer re-created %d tasks after %d resumes", n, 3)
	}
	rec, _ = h.store.Get(ctx, "rf-spent")
	if rec.State != store.NeedsReview || !strings.Contains(rec.LastError, "ran out of retries 4 times") || rec.InFlight != 1 {
		t.Fatalf("record = %+v; want needs_review, the attempt still in flight", rec)
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
