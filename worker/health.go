package worker

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// health is what /healthz and /readyz answer from.
type health struct {
	w *Worker

	mu       sync.Mutex
	asynqErr error // asynq's last health check of Redis
}

func (hl *health) asynqCheck(err error) {
	hl.mu.Lock()
	hl.asynqErr = err
	hl.mu.Unlock()
}

// ready says why the worker should not get traffic, or nil: Redis must
// answer (and pass Config.Ready, e.g. the persistence check), at least one
// provider must be configured, and the worker must not be shutting down.
func (hl *health) ready(ctx context.Context) error {
	w := hl.w
	if w.h.stopping() {
		return fmt.Errorf("shutting down")
	}
	if err := w.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	hl.mu.Lock()
	aerr := hl.asynqErr
	hl.mu.Unlock()
	if aerr != nil {
		return fmt.Errorf("asynq cannot reach redis: %w", aerr)
	}
	if w.cfg.Ready != nil {
		if err := w.cfg.Ready(ctx); err != nil {
			return err
		}
	}
	for _, name := range w.h.registry.Names() {
		if _, err := w.h.registry.Get(name); err == nil {
			return nil
		}
	}
	return fmt.Errorf("no provider is configured")
}

// HTTPHandler serves /healthz (the process is up), /readyz (see ready) and
// /metrics (Prometheus), for probes and scrapes; mount it on an address of
// its own (HEALTH_LISTEN).
func (w *Worker) HTTPHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(rw http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(rw, "ok")
	})
	mux.HandleFunc("GET /readyz", func(rw http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := w.health.ready(ctx); err != nil {
			http.Error(rw, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(rw, "ready")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(w.gatherer, promhttp.HandlerOpts{}))
	return mux
}
