package worker

import (
	"context"
	"fmt"
	"os"
	"time"
)

// workerName tells workers apart in what they publish.
var workerName = func() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s-%d", host, os.Getpid())
}()

// AnnounceEvery is how often a worker tells producers, through Redis, which
// providers it has configured; the announcement lasts three times as long.
const AnnounceEvery = 20 * time.Second

// announcer lets producers, which hold no provider credentials, refuse at
// enqueue time a refund for a provider no running worker has configured.
type announcer struct {
	h    *Handler
	stop context.CancelFunc
	done chan struct{}
}

func (a *announcer) start() {
	ctx, cancel := context.WithCancel(context.Background())
	a.stop, a.done = cancel, make(chan struct{})
	go func() {
		defer close(a.done)
		h := a.h
		var enabled []string
		for _, name := range h.registry.Names() {
			if e, err := h.registry.Get(name); err == nil {
				enabled = append(enabled, name)
				h.guards.of(e) // so its health is published before its first call
			}
		}
		t := time.NewTicker(AnnounceEvery)
		defer t.Stop()
		for {
			if err := h.store.AnnounceWorker(ctx, h.queue, enabled, 3*AnnounceEvery); err != nil && ctx.Err() == nil {
				h.log.WithError(err).Warn("cannot announce this worker's providers")
			}
			if err := h.store.PublishHealth(ctx, workerName, h.guards.health(), 3*AnnounceEvery); err != nil && ctx.Err() == nil {
				h.log.WithError(err).Warn("cannot publish what this worker knows of its providers")
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

func (a *announcer) shutdown() {
	if a.stop != nil {
		a.stop()
		<-a.done
	}
}
