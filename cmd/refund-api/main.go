// Command refund-api serves refundq's HTTP API (package api), asynqmon at
// /monitoring and the review console at /console, behind bearer tokens.
//
// Configuration is from the environment: docs/CONFIGURATION.md; the API
// itself is docs/API.md.
package main

import (
	"context"
	"errors"
	"fmt"
	stdlog "log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/refundq/refundq/enqueue"
	"github.com/refundq/refundq/internal/api"
	"github.com/refundq/refundq/internal/durability"
	"github.com/refundq/refundq/internal/listen"
	"github.com/refundq/refundq/internal/logs"
	"github.com/refundq/refundq/internal/rediscfg"
	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/internal/tracing"
	"github.com/refundq/refundq/providers/catalog"
)

func main() {
	// One JSON stream on stderr: ours, go-redis's, and the log package's
	// (asynqmon, net/http).
	log, err := logs.New(os.Stderr, os.Getenv("LOG_LEVEL"))
	if err == nil {
		err = run(log, os.Getenv)
	}
	if err != nil {
		log.WithError(err).Error("refund-api stopped")
		os.Exit(1)
	}
}

// config is what the environment says.
type config struct {
	redisURL, prefix, queue, listen string
	tokens                          *api.Tokens
	writable                        bool
	level                           logrus.Level
}

func loadConfig(getenv func(string) string) (config, error) {
	c := config{
		redisURL: envOr(getenv, "REDIS_URL", "redis://127.0.0.1:6379/0"),
		prefix:   envOr(getenv, "REFUNDQ_PREFIX", "refundq:"),
		queue:    envOr(getenv, "REFUNDQ_QUEUE", "default"),
		listen:   envOr(getenv, "API_LISTEN", "127.0.0.1:8080"),
	}
	var err error
	if c.level, err = logs.ParseLevel(getenv("LOG_LEVEL")); err != nil {
		return c, err
	}
	if _, _, err := net.SplitHostPort(c.listen); err != nil {
		return c, fmt.Errorf("API_LISTEN=%q: want host:port", c.listen)
	}
	if s := getenv("API_MONITORING_WRITABLE"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return c, fmt.Errorf("API_MONITORING_WRITABLE=%q: want true or false", s)
		}
		c.writable = b
	}
	inline, file := getenv("API_TOKENS"), getenv("API_TOKENS_FILE")
	var text, from string
	switch {
	case inline != "" && file != "":
		return c, errors.New("set API_TOKENS or API_TOKENS_FILE, not both")
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return c, fmt.Errorf("API_TOKENS_FILE: %w", err)
		}
		text, from = string(b), "API_TOKENS_FILE"
	default:
		text, from = inline, "API_TOKENS"
	}
	toks, err := api.ParseTokens(text)
	if err != nil {
		return c, fmt.Errorf("%s: %w (set API_TOKENS or API_TOKENS_FILE)", from, err)
	}
	c.tokens = toks
	return c, nil
}

func run(log *logrus.Logger, getenv func(string) string) error {
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	log.SetLevel(cfg.level)
	rc, err := rediscfg.Parse(cfg.redisURL)
	if err != nil {
		return err
	}
	// Off unless an OTLP endpoint is set (docs/TRACING.md).
	stopTracing, err := tracing.Setup(context.Background(), "refund-api", getenv, log)
	if err != nil {
		return err
	}
	defer flushTraces(stopTracing, log)
	aopt, rdb := rc.Asynq, rc.NewClient()
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	err = rdb.Ping(ctx).Err()
	cancel()
	if err != nil {
		return fmt.Errorf("Redis at %s does not answer: %w", rc, err)
	}

	// A refund the API answers 201 for is kept through a Redis crash: the
	// same check and the same wait as every producer and worker.
	ctx, cancel = context.WithTimeout(context.Background(), 15*time.Second)
	promise, err := durability.Require(ctx, rdb, getenv, log)
	cancel()
	if err != nil {
		return fmt.Errorf("Redis at %s: %w", rc, err)
	}
	keeper := durability.NewKeeperWith(rdb, promise)
	accept := getenv(durability.AcceptLossEnv) == "1"
	enqOpts := []enqueue.Option{enqueue.WithQueue(cfg.queue), enqueue.WithPrefix(cfg.prefix),
		enqueue.WithRegistry(catalog.FromEnv(getenv).RulesOnly())}
	if accept {
		enqOpts = append(enqOpts, enqueue.AcceptRedisLoss())
	}
	// Producers need no provider credentials: each provider's own rules are
	// checked here, and a provider configured in this process anyway is
	// asked what it can tell (as refundctl does).
	enq := enqueue.New(aopt, rdb, enqOpts...)
	defer enq.Close()
	mon := api.NewMonitoring(aopt, cfg.writable)
	defer mon.Close()
	srv, err := api.New(api.Config{
		Enqueue: enq, Store: store.New(rdb, cfg.prefix).WithDurability(keeper.Wait), Tokens: cfg.tokens, Redis: rdb, Monitoring: mon, Logger: log,
	})
	if err != nil {
		return err
	}
	httpErrors := log.WriterLevel(logrus.WarnLevel)
	defer httpErrors.Close()
	hs := &http.Server{
		Addr:              cfg.listen,
		Handler:           srv,
		ReadHeaderTimeout: 10 * time.Second,
		// A 64 MiB bulk file over a slow link, and its enqueueing (~12k
		// rows/s), fit in these.
		ReadTimeout:  5 * time.Minute,
		WriteTimeout: 10 * time.Minute,
		IdleTimeout:  2 * time.Minute,
		// net/http's own complaints (bad TLS handshakes, …) as JSON lines
		// like the rest, not plain text in the stream.
		ErrorLog: stdlog.New(httpErrors, "", 0),
	}
	ln, err := listen.TCP("API_LISTEN", cfg.listen, "refund-api")
	if err != nil {
		return err
	}
	sig, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- hs.Serve(ln) }()
	log.WithFields(logrus.Fields{"listen": ln.Addr().String(), "redis": rc.String(), "queue": cfg.queue,
		"monitoring_writable": cfg.writable, "tokens": cfg.tokens.Describe(), "durability": promise.String()}).Info("refund-api started")
	select {
	case err := <-done:
		return err
	case <-sig.Done():
	}
	log.Info("refund-api stopping: finishing requests in flight")
	ctx, cancel = context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(ctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("refund-api stopped cleanly")
	return nil
}

// shutdownTimeout lets requests in flight finish on SIGTERM; a bulk file cut
// short is safe to send again.
const shutdownTimeout = 30 * time.Second

// flushTraces exports the spans not yet sent, for at most 5 s: a
// collector that is down must not hold the exit up.
func flushTraces(shutdown func(context.Context) error, log *logrus.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := shutdown(ctx); err != nil {
		log.WithError(err).Warn("tracing: spans not flushed at exit")
	}
}

func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}
