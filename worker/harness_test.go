package worker_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/sirupsen/logrus"

	"github.com/refundq/refundq/enqueue"
	"github.com/refundq/refundq/internal/logs/logstest"
	"github.com/refundq/refundq/internal/redistest"
	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/providers/moyasarpg"
	"github.com/refundq/refundq/providers/moyasarpg/moyasarpgsim"
	"github.com/refundq/refundq/tasks"
	"github.com/refundq/refundq/worker"
)

const apiKey = "sk_test_7hPqSECRETx9Zt"

type harness struct {
	env    *redistest.Env
	sim    *moyasarpgsim.Simulator
	store  *store.Store
	enq    *enqueue.Client
	logs   *logstest.Buffer
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
	// recoverEvery is the worker's Config.RecoverEvery (and so a pass's
	// time box); default an hour: tests run passes themselves.
	recoverEvery time.Duration
	// breakerOpen is the worker's Config.BreakerOpen; 0: the default.
	breakerOpen time.Duration
	// reviewRecheck and resume are Config.ReviewRecheck and
	// ResumeAfterReview; nil: look-ups in review are off (tests make them).
	reviewRecheck []time.Duration
	resume        bool
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
	h := &harness{env: env, sim: sim, store: store.New(env.Client, env.Prefix), logs: &logstest.Buffer{}, simURL: srv.URL}
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
	cfg := setup{key: apiKey, recoverEvery: time.Hour, reviewRecheck: []time.Duration{}}
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
		BlockedRetry: 500 * time.Millisecond, InRunWait: time.Second, RecoverEvery: cfg.recoverEvery, BreakerOpen: cfg.breakerOpen,
		Webhook: cfg.webhook, Retention: cfg.retention, AuditDir: cfg.auditDir, EventsRetention: cfg.eventsRetention,
		ReviewRecheck: cfg.reviewRecheck, ResumeAfterReview: cfg.resume,
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
	return h.awaitState(t, id, func(r store.Record) bool { return r.State.Final() }, "final")
}

// awaitState waits until refund id satisfies want (a condition, not a sleep);
// it fails the test after 30 s.
func (h *harness) awaitState(t *testing.T, id string, want func(store.Record) bool, what string) store.Record {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		rec, err := h.store.Get(context.Background(), id)
		if err == nil && want(rec) {
			return rec
		}
		if time.Now().After(deadline) {
			hist, _ := h.store.History(context.Background(), id)
			t.Fatalf("refund %s never %s: %+v, %v\nhistory: %+v\nlogs:\n%s", id, what, rec, err, hist, h.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// awaitPaidOnce waits until refund id is final and fails the test unless
// it succeeded and order's ledger holds exactly one refund.
func (h *harness) awaitPaidOnce(t *testing.T, id, order string) store.Record {
	t.Helper()
	rec := h.await(t, id)
	if rec.State != store.Succeeded {
		t.Fatalf("refund %s = %+v; want succeeded", id, rec)
	}
	if got := h.sim.RefundsFor(order); len(got) != 1 {
		t.Fatalf("ledger of %s has %d refunds, want 1: %+v", order, len(got), got)
	}
	return rec
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

func (h *harness) awaitArchived(t *testing.T, taskID string) *asynq.TaskInfo {
	t.Helper()
	return h.awaitTaskState(t, taskID, asynq.TaskStateArchived)
}

func (h *harness) awaitTaskState(t *testing.T, taskID string, state asynq.TaskState) *asynq.TaskInfo {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		info, err := h.insp.GetTaskInfo(h.env.Queue, taskID)
		if err == nil && info.State == state {
			return info
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %s not %s: %+v, %v\nlogs:\n%s", taskID, state, info, err, h.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
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

func (h *harness) awaitBlocked(t *testing.T, id string) store.Record {
	t.Helper()
	rec := h.awaitState(t, id, func(r store.Record) bool { return r.Blocked != "" }, "blocked")
	if rec.BlockedAt.IsZero() {
		t.Fatalf("refund %s blocked with no blocked_at: %+v", id, rec)
	}
	return rec
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
