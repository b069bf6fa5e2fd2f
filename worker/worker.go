// Package worker runs the asynq server that turns refund tasks into provider
// calls and records what came of them.
package worker

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/hibiken/asynq"
	asynqmetrics "github.com/hibiken/asynq/x/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"

	"github.com/refundq/refundq/internal/durability"
	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/providers"
)

// Config configures a Worker. Redis, RDB and Registry are required.
type Config struct {
	Redis    asynq.RedisConnOpt    // for asynq
	RDB      redis.UniversalClient // for the refund records
	Registry *providers.Registry   // the providers refunds go to
	Prefix   string                // refund record key prefix; default "refundq:"
	Queue    string                // queue to read and to schedule polls on; default "default"
	Logger   *logrus.Logger        // default: logrus.StandardLogger()
	// Concurrency is the number of refunds handled at once; default 10.
	// Provider calls wait on the network, not the CPU.
	Concurrency int
	// Attempt bounds the retries inside one handler run before the task is
	// handed back to asynq; default DefaultAttemptPolicy.
	Attempt AttemptPolicy
	// BlockedRetry is the longest a refund blocked by configuration
	// (credentials refused, provider not configured here) waits before it is
	// tried again; default 5 minutes. The first wait is 30 s and each next
	// one doubles up to it, so a short key rotation costs seconds. It spends
	// none of the task's retries.
	BlockedRetry time.Duration
	// BreakerOpen is how long a provider that failed 5 calls in a row (no
	// answer, 5xx) is not called, per worker; then one trial call tests it.
	// Default 30 s. Refunds wait meanwhile without spending retries.
	BreakerOpen time.Duration
	// InRunWait is the longest wait a handler sleeps through between two
	// provider calls; longer ones (a settle delay, a Retry-After) hand the
	// task back to asynq for later. Default 5 s.
	InRunWait time.Duration
	// RecoverEvery is how often the worker looks for open refunds whose task
	// is missing or was archived or deleted by hand; default 15 s (a pass
	// with nothing overdue is one cheap script). It also looks once at start.
	RecoverEvery time.Duration
	// Metrics is where the worker registers its Prometheus metrics (and
	// asynq's queue metrics); default a registry of its own, served by
	// HTTPHandler's /metrics.
	Metrics *prometheus.Registry
	// Ready, when set, is one more condition of /readyz (e.g. Redis still
	// has the persistence refundq requires).
	Ready func(context.Context) error
	// Webhook, when its URL is set, sends every refund's final state (and
	// needs_review) to the merchant, signed (package webhook).
	Webhook WebhookConfig
	// AcceptRedisLoss starts the worker on a Redis that cannot promise to
	// keep a write it acknowledged (a lone Redis before 7.2 without
	// appendfsync always). By default New refuses such a Redis: a crash could
	// undo the mark that an attempt is in flight, and the refund would be
	// sent, and paid, again. With it set, New logs the risk as an error.
	AcceptRedisLoss bool
	// Retention is how long a succeeded or failed refund (record and
	// history) is kept after it became final; default 90 days. The refund id
	// is free again after it, so idempotency by refund id lasts this long.
	// needs_review refunds are kept until settled.
	Retention time.Duration
	// AuditDir, when set, is where each refund is appended (JSON Lines, a
	// file per day) before it is deleted.
	AuditDir string
	// EventsRetention is how long the events stream (Store.EventsKey) keeps
	// a state change; default 7 days. Every consumer group (the webhook
	// dispatcher, an order system) must take and acknowledge an event within
	// it: the janitor logs and counts what it trims that a group had not
	// (refundq_events_trimmed_undelivered_total). It costs about 120 bytes
	// an event (MEMORY USAGE of 100,000 final events with 15-byte refund
	// ids and references: 101 bytes each) times 3 or 4 events a refund
	// (queued, processing, pending, final) times the refunds in the window:
	// 100,000 refunds a day for 7 days is about 300 MB. A fleet that
	// sustains hundreds of refunds a second needs a shorter one.
	EventsRetention time.Duration
	// DueMargin is how long after a refund's task should have run the
	// recoverer looks for it; default 15 s (asynq moves a due task within a
	// second): with RecoverEvery, a refund whose task disappeared is given a
	// new one within 30 s of when the task would have run. A check that
	// comes early costs a look at asynq.
	DueMargin time.Duration
	// PollInterval is how often asynq looks for due poll and retry tasks;
	// default 1s (asynq's own default is 5s).
	PollInterval time.Duration
	// ReviewRecheck is when a refund in needs_review whose outcome no answer
	// has shown (an attempt sent, or in progress past the provider's
	// horizon) is looked up again: each wait counts from the look-up
	// before (the first from when it entered review); past the last, that
	// last wait again (daily, by default), for ReviewRecheckFor (at least
	// the provider's poll horizon). A look-up that proves the outcome settles
	// it. Default DefaultReviewRecheck; an empty non-nil slice turns
	// look-ups in review off.
	ReviewRecheck []time.Duration
	// ReviewRecheckFor is how long look-ups in review go on; default
	// DefaultReviewRecheckFor.
	ReviewRecheckFor time.Duration
	// ResumeAfterReview sends a refund in needs_review again, with no
	// person, once a look-up proves nothing of it was applied. Off by
	// default: such a refund stays for a person, with the proof in its
	// history.
	ResumeAfterReview bool
}

// AttemptPolicy is the exponential backoff used inside one handler run.
type AttemptPolicy struct {
	Initial    time.Duration
	Max        time.Duration
	MaxElapsed time.Duration // after this, give the task back to asynq
	MaxTries   uint64        // provider calls per run at most
}

// DefaultAttemptPolicy keeps one run under a minute or so, far inside
// tasks.Timeout, so asynq never re-runs a task while its first run still
// talks to the provider.
var DefaultAttemptPolicy = AttemptPolicy{Initial: 200 * time.Millisecond, Max: 5 * time.Second, MaxElapsed: 30 * time.Second, MaxTries: 5}

// DefaultRetention is how long a final refund is kept (Config.Retention).
const DefaultRetention = 90 * 24 * time.Hour

// DefaultEventsRetention is how long a state change stays in the events
// stream (Config.EventsRetention): long enough for a consumer group that was
// down over a long weekend to catch up.
const DefaultEventsRetention = 7 * 24 * time.Hour

// Sweep runs one pass of the janitor now (refunds past their retention, then
// events past theirs) and returns how many refunds it deleted.
func (w *Worker) Sweep(ctx context.Context) (int, error) { return w.janitor.pass(ctx) }

// ShutdownTimeout is how long SIGTERM waits for running handlers: longer than
// the longest provider call, so a call in flight finishes and its outcome is
// recorded before the process exits.
const ShutdownTimeout = providers.OperationTimeout + 10*time.Second

// Worker is a running refund worker.
type Worker struct {
	cfg       Config
	rdb       redis.UniversalClient
	srv       *asynq.Server
	h         *Handler
	recoverer *recoverer
	announcer *announcer
	hooks     *dispatcher
	janitor   *janitor
	rechecker *rechecker
	insp      *asynq.Inspector
	health    *health
	gatherer  prometheus.Gatherer
	keeper    *durability.Keeper
}

// New builds a worker; Start or Run starts it.
func New(cfg Config) (*Worker, error) {
	if cfg.Redis == nil || cfg.RDB == nil || cfg.Registry == nil {
		return nil, errors.New("worker: Redis, RDB and Registry are required")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "refundq:"
	}
	if cfg.Queue == "" {
		cfg.Queue = "default"
	}
	if cfg.Logger == nil {
		cfg.Logger = logrus.StandardLogger()
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 10
	}
	if cfg.Attempt == (AttemptPolicy{}) {
		cfg.Attempt = DefaultAttemptPolicy
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.BlockedRetry <= 0 {
		cfg.BlockedRetry = 5 * time.Minute
	}
	if cfg.BreakerOpen <= 0 {
		cfg.BreakerOpen = DefaultBreakerOpen
	}
	if cfg.InRunWait <= 0 {
		cfg.InRunWait = 5 * time.Second
	}
	if cfg.RecoverEvery <= 0 {
		cfg.RecoverEvery = 15 * time.Second
	}
	if cfg.DueMargin <= 0 {
		cfg.DueMargin = 15 * time.Second
	}
	if cfg.Retention <= 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.ReviewRecheck == nil {
		cfg.ReviewRecheck = DefaultReviewRecheck
	}
	if cfg.ReviewRecheckFor <= 0 {
		cfg.ReviewRecheckFor = DefaultReviewRecheckFor
	}
	if cfg.EventsRetention <= 0 {
		cfg.EventsRetention = DefaultEventsRetention
	}
	// Every write that guards money (a mark before a send, a final state, a
	// record created from a task) waits until Redis keeps it; Start refuses
	// a Redis that promises nothing.
	keeper := durability.NewKeeper(cfg.RDB, cfg.AcceptRedisLoss, cfg.Logger)
	st := store.New(cfg.RDB, cfg.Prefix).WithQueue(cfg.Queue).WithDurability(keeper.Wait)
	h := &Handler{
		store:        st,
		registry:     cfg.Registry,
		client:       asynq.NewClient(cfg.Redis),
		queue:        cfg.Queue,
		log:          cfg.Logger,
		attempt:      cfg.Attempt,
		blockedRetry: cfg.BlockedRetry,
		inRunWait:    cfg.InRunWait,
		dueMargin:    cfg.DueMargin,
		knowledge:    newKnowledge(st, cfg.Logger),
		guards:       guards{open: cfg.BreakerOpen},
		review:       reviewPolicy{schedule: cfg.ReviewRecheck, horizon: cfg.ReviewRecheckFor, resume: cfg.ResumeAfterReview},
		quit:         make(chan struct{}),
	}
	if cfg.Metrics == nil {
		cfg.Metrics = prometheus.NewRegistry()
	}
	insp := asynq.NewInspector(cfg.Redis)
	w := &Worker{cfg: cfg, rdb: cfg.RDB, h: h, insp: insp, gatherer: cfg.Metrics, keeper: keeper,
		recoverer: &recoverer{h: h, insp: insp, every: cfg.RecoverEvery, started: make(chan struct{})},
		announcer: &announcer{h: h},
		rechecker: &rechecker{h: h, every: recheckEvery(h.review)},
		janitor: &janitor{h: h, retention: cfg.Retention, eventsRetention: cfg.EventsRetention, auditDir: cfg.AuditDir,
			every: time.Minute},
	}
	w.health = &health{w: w}
	h.metrics = newMetrics(cfg.Metrics, st, w.recoverer, &h.guards, cfg.Registry.Names())
	for _, name := range cfg.Registry.Names() {
		h.metrics.resends.WithLabelValues(name) // at 0 from the start, so a rate is defined
	}
	cfg.Metrics.MustRegister(asynqmetrics.NewQueueMetricsCollector(insp))
	if cfg.Webhook.URL != "" {
		w.hooks = newDispatcher(h, cfg.Webhook)
	}
	srv := asynq.NewServer(cfg.Redis, asynq.Config{
		Concurrency:              cfg.Concurrency,
		Queues:                   map[string]int{cfg.Queue: 1},
		Logger:                   asynqLogger{cfg.Logger},
		LogLevel:                 asynq.WarnLevel,
		ErrorHandler:             errorHandler(cfg.Logger),
		RetryDelayFunc:           retryDelay,
		IsFailure:                func(err error) bool { return !isSnooze(err) },
		ShutdownTimeout:          ShutdownTimeout,
		DelayedTaskCheckInterval: cfg.PollInterval,
		TaskCheckInterval:        cfg.PollInterval,
		HealthCheckFunc:          w.health.asynqCheck,
	})
	w.srv = srv
	return w, nil
}

// Handler returns the worker's task handler, e.g. to mount next to others.
func (w *Worker) Handler() *Handler { return w.h }

// Start starts processing in the background. It refuses a Redis that
// cannot promise to keep what it acknowledges (see Config.AcceptRedisLoss).
func (w *Worker) Start() error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	_, err := w.keeper.Promise(ctx)
	if err == nil {
		w.h.resultsInStore = sameRedis(ctx, w.rdb, w.cfg.Redis, w.cfg.Prefix)
	}
	cancel()
	if err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	mux := w.h.Mux()
	if w.hooks != nil {
		mux.HandleFunc(TypeWebhook, w.hooks.deliver)
	}
	if err := w.srv.Start(mux); err != nil {
		return fmt.Errorf("worker: start: %w", err)
	}
	w.recoverer.start()
	w.announcer.start()
	w.janitor.start()
	w.rechecker.start()
	if w.hooks != nil {
		w.hooks.start()
	}
	return nil
}

// Recover runs one pass of the recoverer now and returns how many tasks it
// re-created (tests, and an operator's "repair now").
func (w *Worker) Recover(ctx context.Context) int { return w.recoverer.recover(ctx) }

// Shutdown stops taking tasks, tells running handlers to start no new
// provider call, and waits up to ShutdownTimeout for them to record their
// outcome.
func (w *Worker) Shutdown() {
	w.recoverer.shutdown()
	w.announcer.shutdown()
	w.janitor.shutdown()
	w.rechecker.shutdown()
	if w.hooks != nil {
		w.hooks.shutdown()
	}
	w.h.stop()
	w.srv.Shutdown()
	w.h.client.Close()
	w.insp.Close()
}

// Run starts the worker and blocks until ctx ends, then shuts down.
func (w *Worker) Run(ctx context.Context) error {
	if err := w.Start(); err != nil {
		return err
	}
	<-ctx.Done()
	w.Shutdown()
	return nil
}

// retryDelay honours the delay the handler passed back (a provider's
// Retry-After, or the one it chose and told the recoverer about), else grows
// exponentially to ten minutes, with jitter.
func retryDelay(n int, err error, t *asynq.Task) time.Duration {
	var sn *snoozeError
	if errors.As(err, &sn) {
		return sn.after
	}
	var ra *retryAfterError
	if errors.As(err, &ra) && ra.after > 0 {
		return ra.after
	}
	return jittered(baseRetryDelay(n))
}

// jittered adds up to a quarter of d, so a provider outage does not end in
// a thundering herd.
func jittered(d time.Duration) time.Duration { return d + rand.N(d/4+time.Millisecond) }

// baseRetryDelay grows exponentially to ten minutes; retryDelay adds up to a
// quarter of it as jitter.
func baseRetryDelay(n int) time.Duration { return min(time.Second<<min(n, 10), 10*time.Minute) }

// retryAfterError carries a provider's Retry-After hint to retryDelay.
type retryAfterError struct {
	err   error
	after time.Duration
}

func (e *retryAfterError) Error() string { return e.err.Error() }
func (e *retryAfterError) Unwrap() error { return e.err }

func isSkipRetry(err error) bool { return errors.Is(err, asynq.SkipRetry) }

// snoozeError hands a task back to asynq to run again after a delay without
// counting a failure (river's JobSnooze): a settle delay to wait out, a
// blocked refund, another run holding the refund. The refund's record says
// why; its due time makes the recoverer look if the task went missing.
type snoozeError struct {
	err   error
	after time.Duration
}

func (e *snoozeError) Error() string { return e.err.Error() }
func (e *snoozeError) Unwrap() error { return e.err }

func isSnooze(err error) bool {
	var sn *snoozeError
	return errors.As(err, &sn)
}
