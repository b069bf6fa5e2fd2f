package worker

import (
	"context"
	"time"
)

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
			if _, err := h.registry.Get(name); err == nil {
				enabled = append(enabled, name)
			}
		}
		t := time.NewTicker(AnnounceEvery)
		defer t.Stop()
		for {
			if err := h.store.AnnounceWorker(ctx, h.queue, enabled, 3*AnnounceEvery); err != nil && ctx.Err() == nil {
				h.log.WithError(err).Warn("cannot announce this worker's providers")
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
