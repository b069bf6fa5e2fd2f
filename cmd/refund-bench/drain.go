package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"

	"github.com/refundq/refundq/providers/moyasarpg"
	"github.com/refundq/refundq/store"
	"github.com/refundq/refundq/worker"
)

// drainRun is what one arm's drain measured.
type drainRun struct {
	rate     float64          // tasks/s
	trips    int64            // client round trips, every client of the arm
	ownTrips int64            // of which refundq's own go-redis client
	sent     map[string]int64 // round trips by command (or "pipeline")
	calls    map[string]int64 // INFO commandstats delta
	conns    int64            // TCP connections the simulator accepted
}

// drainScenario: scenario 1 (drain N at each concurrency) and scenario 3
// (Redis work per refund, taken from the drains at the first concurrency).
func (b *bench) drainScenario(ctx context.Context) error {
	n := b.cfg.drainN
	for ci, c := range b.cfg.drainC {
		label := fmt.Sprintf("drain %s, instant simulator, c=%d (tasks/s)", thousands(int64(n)), c)
		var last [2]drainRun
		for rep := 1; rep <= b.cfg.reps; rep++ {
			for _, a := range []arm{refundq, bare} {
				var r drainRun
				var err error
				if a == refundq {
					r, err = b.drainRefundq(ctx, n, c)
				} else {
					r, err = b.drainBare(ctx, n, c)
				}
				if err != nil {
					return fmt.Errorf("%s arm, c=%d: %w", a, c, err)
				}
				b.logf("drain c=%d rep %d %s: %.0f tasks/s", c, rep, a, r.rate)
				b.res.add(label, a, r.rate)
				if a == refundq {
					b.res.add(fmt.Sprintf("TCP connections opened to the provider, drain c=%d", c), a, float64(r.conns))
				}
				if ci == 0 {
					b.res.add("client→Redis round trips per refund (go-redis hooks)", a, float64(r.trips)/float64(n))
					if a == refundq {
						b.res.add("  of which refundq's own client (the rest: asynq's)", a, float64(r.ownTrips)/float64(n))
					}
					b.res.add("commands executed in Redis per refund (INFO commandstats)", a, float64(sum(r.calls))/float64(n))
				}
				last[a] = r
			}
		}
		if ci == 0 {
			b.res.note("\nDrain: refunds enqueued first (untimed), timed from the worker's start until every refund is final; " +
				"bare: a no-op handler on an asynq server of the same concurrency and poll intervals, tasks with the same payload bytes.")
			b.res.note("\nRedis work per refund, drain c=%d, last rep (round trips counted by go-redis hooks on every client, asynq's too; "+
				"commandstats include commands run inside scripts):", c)
			for _, a := range []arm{refundq, bare} {
				b.res.note("  %-7s round trips: %s", a, top(last[a].sent, n, 8))
				b.res.note("  %-7s commands:    %s", a, top(last[a].calls, n, 10))
			}
		}
	}
	return nil
}

func (b *bench) drainRefundq(ctx context.Context, n, c int) (drainRun, error) {
	space := b.newNS()
	defer b.cleanup(space)
	sim, err := startSim(0)
	if err != nil {
		return drainRun{}, err
	}
	defer sim.close()
	if err := b.enqueueRefunds(ctx, space, 0, n); err != nil {
		return drainRun{}, err
	}
	reg, err := registry(sim.url, moyasarpg.Schedule, c)
	if err != nil {
		return drainRun{}, err
	}
	own, asy := newTripCounter(), newTripCounter()
	rdb := b.client(own)
	defer rdb.Close()
	w, err := worker.New(worker.Config{AcceptRedisLoss: true, Redis: countedOpt{b.asynqOpt(), asy}, RDB: rdb, Registry: reg,
		Prefix: space.prefix, Queue: space.queue, Logger: quietLogger(), Concurrency: c, PollInterval: time.Second})
	if err != nil {
		return drainRun{}, err
	}
	st := store.New(b.admin, space.prefix)
	before, err := commandCalls(ctx, b.admin)
	if err != nil {
		return drainRun{}, err
	}
	o0, s0 := own.snapshot()
	a0, sa0 := asy.snapshot()
	start := time.Now()
	if err := w.Start(); err != nil {
		return drainRun{}, err
	}
	err = waitFinal(ctx, st, n, &sim.posts)
	elapsed := time.Since(start)
	after, ierr := commandCalls(ctx, b.admin)
	o1, s1 := own.snapshot()
	a1, sa1 := asy.snapshot()
	w.Shutdown()
	if err != nil {
		return drainRun{}, err
	}
	if ierr != nil {
		return drainRun{}, ierr
	}
	if err := checkSucceeded(ctx, st, n); err != nil {
		return drainRun{}, err
	}
	sent := callsSince(s0, s1)
	for k, v := range callsSince(sa0, sa1) {
		sent[k] += v
	}
	return drainRun{rate: float64(n) / elapsed.Seconds(), trips: (o1 - o0) + (a1 - a0), ownTrips: o1 - o0,
		sent: sent, calls: callsSince(before, after), conns: sim.accepts.Load()}, nil
}

func (b *bench) drainBare(ctx context.Context, n, c int) (drainRun, error) {
	space := b.newNS()
	defer b.cleanup(space)
	ac := asynq.NewClient(b.asynqOpt())
	_, err := enqueueBare(ctx, ac, space.queue, 0, n, 16)
	ac.Close()
	if err != nil {
		return drainRun{}, err
	}
	tc := newTripCounter()
	srv := bareServer(countedOpt{b.asynqOpt(), tc}, space.queue, c, time.Second)
	var done atomic.Int64
	finished := make(chan struct{})
	handler := asynq.HandlerFunc(func(context.Context, *asynq.Task) error {
		if done.Add(1) == int64(n) {
			close(finished)
		}
		return nil
	})
	before, err := commandCalls(ctx, b.admin)
	if err != nil {
		return drainRun{}, err
	}
	t0, s0 := tc.snapshot()
	start := time.Now()
	if err := srv.Start(handler); err != nil {
		return drainRun{}, err
	}
	select {
	case <-finished:
	case <-ctx.Done():
	case <-time.After(waitLimit):
	}
	elapsed := time.Since(start)
	after, ierr := commandCalls(ctx, b.admin)
	t1, s1 := tc.snapshot()
	srv.Shutdown()
	if done.Load() < int64(n) {
		return drainRun{}, fmt.Errorf("%d of %d bare tasks ran (%v)", done.Load(), n, ctx.Err())
	}
	if ierr != nil {
		return drainRun{}, ierr
	}
	return drainRun{rate: float64(n) / elapsed.Seconds(), trips: t1 - t0, sent: callsSince(s0, s1),
		calls: callsSince(before, after)}, nil
}

func sum(m map[string]int64) int64 {
	var s int64
	for _, v := range m {
		s += v
	}
	return s
}

// top lists the k largest counts per refund, largest first; the rest, and
// any below 0.01 per refund, as "others".
func top(m map[string]int64, n, k int) string {
	keys := slices.SortedFunc(maps.Keys(m), func(a, b string) int {
		if m[a] != m[b] {
			return int(m[b] - m[a])
		}
		return strings.Compare(a, b)
	})
	var parts []string
	var rest int64
	for i, key := range keys {
		if i >= k || float64(m[key])/float64(n) < 0.01 {
			rest += m[key]
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %.2f", key, float64(m[key])/float64(n)))
	}
	if rest > 0 {
		parts = append(parts, fmt.Sprintf("others %.2f", float64(rest)/float64(n)))
	}
	return strings.Join(parts, ", ")
}
