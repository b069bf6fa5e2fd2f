// Command refund-worker is the refundq worker daemon: it takes refund tasks
// from Redis and drives each refund to a final state with its provider.
//
// Configuration is from the environment; see docs/CONFIGURATION.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/refundq/refundq/internal/durability"
	"github.com/refundq/refundq/internal/listen"
	"github.com/refundq/refundq/internal/logs"
	"github.com/refundq/refundq/internal/rediscfg"
	"github.com/refundq/refundq/internal/tracing"
	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/providers/catalog"
	"github.com/refundq/refundq/webhook"
	"github.com/refundq/refundq/worker"
)

func main() {
	log, err := logs.New(os.Stderr, os.Getenv("LOG_LEVEL"))
	if err == nil {
		err = run(log)
	}
	if err != nil {
		log.WithError(err).Error("refund-worker stopped")
		os.Exit(1)
	}
}

func run(log *logrus.Logger) error {
	url := os.Getenv("REDIS_URL")
	if url == "" {
		url = "redis://127.0.0.1:6379/0"
	}
	rc, err := rediscfg.Parse(url)
	if err != nil {
		return err
	}
	// Off unless an OTLP endpoint is set (docs/TRACING.md).
	stopTracing, err := tracing.Setup(context.Background(), "refund-worker", os.Getenv, log)
	if err != nil {
		return err
	}
	defer flushTraces(stopTracing, log)
	rdb := rc.NewClient()
	defer rdb.Close()
	// Refuse to take refunds from a Redis that may forget or evict them:
	// the check every refundq process runs (REFUNDQ_SKIP_REDIS_CHECK=1 for
	// managed Redis that hides CONFIG, REFUNDQ_ACCEPT_REDIS_LOSS=1 to run
	// anyway, both said in the log).
	checkCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	promise, err := durability.Require(checkCtx, rdb, os.Getenv, log.WithField("redis", rc.String()))
	cancel()
	if err != nil {
		return fmt.Errorf("redis %s: %w", rc.String(), err)
	}

	cfg := worker.Config{
		Redis: rc.Asynq, RDB: rdb, Logger: log,
		Queue:  envOr("REFUNDQ_QUEUE", "default"),
		Prefix: envOr("REFUNDQ_PREFIX", "refundq:"),
		// The settings again at every probe, quietly: a Redis replaced
		// by one that keeps nothing takes the worker out of service.
		Ready: func(ctx context.Context) error {
			return durability.Ready(ctx, rdb, os.Getenv)
		},
		AuditDir: os.Getenv("REFUNDQ_AUDIT_DIR"),
	}
	if s := os.Getenv("WORKER_CONCURRENCY"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return fmt.Errorf("WORKER_CONCURRENCY=%q: want a positive integer", s)
		}
		cfg.Concurrency = n
	}
	// Each provider keeps as many idle connections as refunds run at once.
	providers.PoolSize = max(cfg.Concurrency, 10)
	reg := catalog.FromEnv(os.Getenv)
	for _, name := range reg.Names() {
		e, err := reg.Get(name)
		switch {
		case e.Err != nil:
			// Configured but unusable: better to stop (and be restarted)
			// than to block its refunds for a missing provider.
			return fmt.Errorf("provider %s: %w", name, e.Err)
		case err != nil:
			log.WithField("provider", name).Warn(err.Error())
		default:
			log.WithField("provider", name).Info("provider enabled")
		}
	}
	cfg.Registry = reg
	for _, d := range []struct {
		env string
		dst *time.Duration
	}{
		{"REFUNDQ_RETENTION", &cfg.Retention},
		{"REFUNDQ_EVENTS_RETENTION", &cfg.EventsRetention},
		{"REFUNDQ_REVIEW_RECHECK_FOR", &cfg.ReviewRecheckFor},
		// Knobs for sandboxes, tests and the chaos harness; production
		// leaves them unset.
		{"REFUNDQ_BLOCKED_RETRY", &cfg.BlockedRetry},
		{"REFUNDQ_RECOVER_EVERY", &cfg.RecoverEvery},
		{"REFUNDQ_DUE_MARGIN", &cfg.DueMargin},
	} {
		if v := os.Getenv(d.env); v != "" {
			n, err := time.ParseDuration(v)
			if err != nil || n <= 0 {
				return fmt.Errorf("%s=%q: want a positive duration like 5s", d.env, v)
			}
			*d.dst = n
		}
	}
	if cfg.ReviewRecheck, err = reviewSchedule(os.Getenv("REFUNDQ_REVIEW_RECHECK")); err != nil {
		return err
	}
	switch v := os.Getenv("REFUNDQ_RESUME_AFTER_REVIEW"); v {
	case "", "0":
	case "1":
		cfg.ResumeAfterReview = true
		log.Warn("REFUNDQ_RESUME_AFTER_REVIEW=1: a refund in needs_review that a look-up proves was not applied is sent again without a person")
	default:
		return fmt.Errorf("REFUNDQ_RESUME_AFTER_REVIEW=%q: want 1 (send again once a look-up proves nothing was applied) or 0", v)
	}
	// Every write that guards money waits until Redis keeps it; a Redis
	// that can promise nothing is refused unless the operator accepts the
	// risk, which every start then logs as an error.
	cfg.AcceptRedisLoss = os.Getenv(durability.AcceptLossEnv) == "1"
	if cfg.Webhook, err = webhookConfig(os.Getenv); err != nil {
		return err
	}
	w, err := worker.New(cfg)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	// /healthz, /readyz and /metrics for probes and scrapes. The default is
	// fixed, as probes and scrape configurations need a known port; several
	// workers on one host each set their own (the error says so).
	ln, err := listen.TCP("HEALTH_LISTEN", envOr("HEALTH_LISTEN", ":8081"), "worker")
	if err != nil {
		return err
	}
	hsrv := &http.Server{Handler: w.HTTPHandler(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := hsrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.WithError(err).Error("health server stopped")
		}
	}()
	defer hsrv.Close()

	log.WithFields(logrus.Fields{"redis": rc.String(), "queue": cfg.Queue, "health": ln.Addr().String(),
		"durability": promise.String()}).Info("refund-worker started")
	err = w.Run(ctx)
	log.Info("refund-worker stopped cleanly")
	return err
}

// webhookConfig reads WEBHOOK_URL and its secret (WEBHOOK_SECRET, or
// WEBHOOK_SECRET_FILE): one, or two separated by a comma (or a line break in
// the file) while the merchant rotates it, the new one first; every
// delivery is then signed with both. A URL without a secret is refused: an
// unsigned notification could be forged by anyone who finds the endpoint.
func webhookConfig(getenv func(string) string) (worker.WebhookConfig, error) {
	url := strings.TrimSpace(getenv("WEBHOOK_URL"))
	if url == "" {
		return worker.WebhookConfig{}, nil
	}
	text, from := getenv("WEBHOOK_SECRET"), "WEBHOOK_SECRET"
	if text != "" && getenv("WEBHOOK_SECRET_FILE") != "" {
		return worker.WebhookConfig{}, errors.New("set WEBHOOK_SECRET or WEBHOOK_SECRET_FILE, not both")
	}
	if f := getenv("WEBHOOK_SECRET_FILE"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return worker.WebhookConfig{}, fmt.Errorf("WEBHOOK_SECRET_FILE: %w", errors.Unwrap(err))
		}
		text, from = strings.ReplaceAll(strings.TrimSpace(string(b)), "\n", ","), "WEBHOOK_SECRET_FILE"
	}
	if strings.TrimSpace(text) == "" {
		return worker.WebhookConfig{}, fmt.Errorf("WEBHOOK_URL is set: set WEBHOOK_SECRET (or WEBHOOK_SECRET_FILE) to a secret of at least %d characters", webhook.MinSecretLen)
	}
	secrets, err := webhook.ParseSecrets(text)
	if err != nil {
		return worker.WebhookConfig{}, fmt.Errorf("%s: %w", from, err)
	}
	if len(secrets) > 2 {
		return worker.WebhookConfig{}, fmt.Errorf("%s holds %d secrets: one, or two while rotating (new,old)", from, len(secrets))
	}
	return worker.WebhookConfig{URL: url, Secrets: secrets}, nil
}

// flushTraces exports the spans not yet sent, for at most 5 s: a
// collector that is down must not hold the exit up.
func flushTraces(shutdown func(context.Context) error, log *logrus.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := shutdown(ctx); err != nil {
		log.WithError(err).Warn("tracing: spans not flushed at exit")
	}
}

// reviewSchedule reads REFUNDQ_REVIEW_RECHECK: the waits, from when a refund
// entered needs_review, before each look-up ("10m,1h,6h,24h"), or "off".
// Unset keeps the default (nil).
func reviewSchedule(v string) ([]time.Duration, error) {
	switch strings.TrimSpace(v) {
	case "":
		return nil, nil
	case "off":
		return []time.Duration{}, nil
	}
	var out []time.Duration
	for _, part := range strings.Split(v, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(part))
		if err != nil || d <= 0 || (len(out) > 0 && d < out[len(out)-1]) {
			return nil, fmt.Errorf("REFUNDQ_REVIEW_RECHECK=%q: want growing positive durations like 10m,1h,6h,24h, or off", v)
		}
		out = append(out, d)
	}
	return out, nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
