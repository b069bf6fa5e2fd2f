package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

	"github.com/refundq/refundq/store"
)

// procsScenario: scenario 2, the drain with several worker processes on one
// queue, each a child process; the simulator and the timing stay here.
func (b *bench) procsScenario(ctx context.Context) error {
	n, p, c := b.cfg.drainN, b.cfg.procs, b.cfg.procsC
	label := fmt.Sprintf("drain %s, %d worker processes × c=%d (tasks/s)", thousands(int64(n)), p, c)
	for rep := 1; rep <= b.cfg.reps; rep++ {
		for _, a := range []arm{refundq, bare} {
			r, err := b.childDrain(ctx, a, n, p, c, 0)
			if err != nil {
				return fmt.Errorf("%s arm: %w", a, err)
			}
			b.logf("procs rep %d %s: %.0f tasks/s", rep, a, r.rate)
			b.res.add(label, a, r.rate)
		}
	}
	b.res.note("\nWorker processes: child processes of the bench on one queue, started together; the simulator and the timing stay in the bench.")
	return nil
}

// childRun is what a drain by child worker processes measured.
type childRun struct {
	rate      float64
	conns     int64 // TCP connections the simulator accepted
	rss, peak int64 // of the first child, at the end of the drain
}

// childDrain enqueues n refunds (or bare tasks), starts procs child workers
// of concurrency c, and times them from "go" until every refund is final
// (every bare task done). With delay > 0 the simulator answers that late and
// the bare tasks call it too.
func (b *bench) childDrain(ctx context.Context, a arm, n, procs, c int, delay time.Duration) (childRun, error) {
	space := b.newNS()
	defer b.cleanup(space)
	sim, err := startSim(delay)
	if err != nil {
		return childRun{}, err
	}
	defer sim.close()
	if a == refundq {
		err = b.enqueueRefunds(ctx, space, 0, n)
	} else {
		ac := asynq.NewClient(b.asynqOpt())
		_, err = enqueueBare(ctx, ac, space.queue, 0, n, 16)
		ac.Close()
	}
	if err != nil {
		return childRun{}, err
	}
	var kids []*child
	defer func() {
		for _, k := range kids {
			k.stop()
		}
	}()
	for range procs {
		k, err := startChild(ctx, childSpec{arm: a, addr: b.addr, db: b.db, space: space, conc: c, simURL: sim.url, http: delay > 0})
		if err != nil {
			return childRun{}, err
		}
		kids = append(kids, k)
	}
	st := store.New(b.admin, space.prefix)
	start := time.Now()
	for _, k := range kids {
		if err := k.start(); err != nil {
			return childRun{}, err
		}
	}
	switch {
	case a == refundq:
		err = waitFinal(ctx, st, n, &sim.posts)
	case delay > 0:
		err = waitQueueDone(ctx, b.admin, space.queue, n, &sim.posts)
	default:
		err = waitQueueDone(ctx, b.admin, space.queue, n, nil)
	}
	elapsed := time.Since(start)
	if err != nil {
		return childRun{}, err
	}
	rss, peak, err := kids[0].memory()
	if err != nil {
		return childRun{}, err
	}
	var stopErr error
	for _, k := range kids {
		stopErr = errors.Join(stopErr, k.stop())
	}
	kids = nil
	if stopErr != nil {
		return childRun{}, stopErr
	}
	if a == refundq {
		if err := checkSucceeded(ctx, st, n); err != nil {
			return childRun{}, err
		}
	}
	return childRun{rate: float64(n) / elapsed.Seconds(), conns: sim.accepts.Load(), rss: rss, peak: peak}, nil
}
