package worker

import (
	"context"
	"time"
)

// ticking runs a background component's pass every period, in a goroutine
// of its own, until shutdown; the recoverer and the janitor are each one.
type ticking struct {
	stop context.CancelFunc
	done chan struct{}
}

// start runs pass at once, then every period. The first pass runs at once
// so that a worker that lives less than a period (a crash loop, an
// autoscaler, a rolling deploy) still makes one.
func (t *ticking) start(every time.Duration, pass func(context.Context)) {
	ctx, cancel := context.WithCancel(context.Background())
	t.stop, t.done = cancel, make(chan struct{})
	go func() {
		defer close(t.done)
		pass(ctx)
		tk := time.NewTicker(every)
		defer tk.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
				pass(ctx)
			}
		}
	}()
}

// shutdown stops the passes and waits for the one running, if any.
func (t *ticking) shutdown() {
	if t.stop != nil {
		t.stop()
		<-t.done
	}
}
