// Command refund-worker is the refundq worker daemon: it takes refund tasks
// from Redis and drives each refund to a final state with its provider.
//
// Configuration is from the environment; see README.md.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/refundq/refundq/internal/durability"
	"github.com/refundq/refundq/internal/rediscfg"
	"github.com/refundq/refundq/providers/catalog"
	"github.com/refundq/refundq/worker"
)

func main() {
	log := logrus.New()
	log.SetFormatter(&logrus.JSONFormatter{})
	log.SetOutput(os.Stderr)
	if lvl, err := logrus.ParseLevel(os.Getenv("LOG_LEVEL")); err == nil {
		log.SetLevel(lvl)
	}
	if err := run(log); err != nil {
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
	rdb := rc.NewClient()
	defer rdb.Close()
	// Refuse to take refunds from a Redis that may forget or evict them
	// (REFUNDQ_SKIP_REDIS_CHECK=1 turns this into a warning, for managed
	// Redis that hides CONFIG).
	checkCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	err = durability.Require(checkCtx, rdb, os.Getenv, log.WithField("redis", rc.String()))
	cancel()
	if err != nil {
		return fmt.Errorf("redis %s: %w", rc.String(), err)
	}

	reg := catalog.FromEnv(os.Getenv)
	for _, name := range reg.Names() {
		e, err := reg.Get(name)
		switch {
		case e.Err != nil:
			// Configured but unusable: better to stop (and be restarted)
			// than to fail its refunds for a missing provider.
			return fmt.Errorf("provider %s: %w", name, e.Err)
		case err != nil:
			log.WithField("provider", name).Warn(err.Error())
		default:
			log.WithField("provider", name).Info("provider enabled")
		}
	}
	cfg := worker.Config{
		Redis: rc.Asynq, RDB: rdb, Registry: reg, Logger: log,
		Queue:  envOr("REFUNDQ_QUEUE", "default"),
		Prefix: envOr("REFUNDQ_PREFIX", "refundq:"),
	}
	if s := os.Getenv("WORKER_CONCURRENCY"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return fmt.Errorf("WORKER_CONCURRENCY=%q: want a positive integer", s)
		}
		cfg.Concurrency = n
	}
	w, err := worker.New(cfg)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	log.WithFields(logrus.Fields{"redis": rc.String(), "queue": cfg.Queue}).Info("refund-worker started")
	err = w.Run(ctx)
	log.Info("refund-worker stopped cleanly")
	return err
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
