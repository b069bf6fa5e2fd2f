package worker

import (
	"context"

	"github.com/refundq/refundq/internal/store"
)

// AwaitStartPass waits until the recoverer's pass at start is over (at once
// for a worker not started), so a test's own pass does not race it for the
// same refunds.
func (w *Worker) AwaitStartPass() {
	if w.recoverer.stop != nil {
		<-w.recoverer.started
	}
}

// QueueWebhook queues the delivery of ev as the dispatcher does when it
// reads (or claims again) the event.
func (w *Worker) QueueWebhook(ctx context.Context, ev store.Event) error {
	return w.hooks.queue(ctx, ev)
}
