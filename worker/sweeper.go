package worker

import (
	"context"
	"errors"
	"time"

	"github.com/hibiken/asynq"

	"github.com/refundq/refundq/tasks"
)

// DefaultSweepAfter is how long a refund may stay queued before the sweeper
// makes sure its task exists. Producers write the record, then the task; one
// that dies in between would otherwise leave the refund queued forever.
const DefaultSweepAfter = 2 * time.Minute

// sweep enqueues the task of every refund queued for longer than sweepAfter.
// A task that exists is refused by its id, so sweeping is always safe, and
// several workers may sweep at once.
func (h *Handler) sweep(ctx context.Context) int {
	recs, err := h.store.Queued(ctx, time.Now().Add(-h.sweepAfter), 500)
	if err != nil {
		h.log.WithError(err).Warn("sweep: cannot list queued refunds")
		return 0
	}
	n := 0
	for _, rec := range recs {
		task, err := tasks.NewRefundTask(rec.Refund(), asynq.Queue(h.queue))
		if err != nil {
			continue
		}
		_, err = h.client.EnqueueContext(ctx, task)
		switch {
		case errors.Is(err, asynq.ErrTaskIDConflict):
		case err != nil:
			h.log.WithError(err).WithField("refund_id", rec.RefundID).Warn("sweep: cannot enqueue")
		default:
			n++
			h.log.WithField("refund_id", rec.RefundID).Warn("sweep: refund was queued without a task; task enqueued")
		}
	}
	return n
}

func (h *Handler) sweepEvery(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			h.sweep(ctx)
		}
	}
}

// AnnounceEvery is how often a worker tells producers, through Redis, which
// providers it has configured; the announcement lasts three times as long.
const AnnounceEvery = 20 * time.Second

// announce lets producers, which hold no provider credentials, refuse at
// enqueue time a refund for a provider no running worker has configured.
func (h *Handler) announce(ctx context.Context) {
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
}
