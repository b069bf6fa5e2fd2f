package main

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"

	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/worker"
)

// pollEvery is the poll schedule of the pending refunds: short, so many
// polls fit in a run.
const pollEvery = 100 * time.Millisecond

// memoryScenario: scenario 6, Redis memory (used_memory delta) per queued
// refund, and per pending refund at one poll and at --mem-polls polls,
// against asynq tasks: queued ones, and ones that re-schedule themselves as a
// poll would. The pending figures are measured twice, after every refund
// was polled at least once and at least --mem-polls times, and put on the
// line through both measures at exactly 1 and --mem-polls polls, so runs
// whose polls went faster or slower compare.
func (b *bench) memoryScenario(ctx context.Context) error {
	nq, np, k := b.cfg.memQueued, b.cfg.memPending, b.cfg.memPolls
	var polls [len(armNames)][2]float64
	at1 := fmt.Sprintf("Redis memory per pending refund, %s pending, at 1 poll (B)", thousands(int64(np)))
	atK := fmt.Sprintf("  … at %d polls (B)", k)
	const growth = "  growth per poll (B)"
	for rep := 1; rep <= b.cfg.reps; rep++ {
		for _, a := range []arm{refundq, handRolled} {
			q, err := b.memQueued(ctx, a, nq)
			if err != nil {
				return fmt.Errorf("%s arm, queued: %w", a, err)
			}
			b.res.add(fmt.Sprintf("Redis memory per queued refund, %s queued (B)", thousands(int64(nq))), a, q)
			pend := b.pendingRefundq
			if a == handRolled {
				pend = b.pendingAsynq
			}
			m, p, err := pend(ctx, np, k)
			if err != nil {
				return fmt.Errorf("%s arm, pending: %w", a, err)
			}
			b.logf("memory rep %d %s: queued %.0f B, pending %.0f B after %.2f polls, %.0f B after %.2f polls", rep, a, q, m[0], p[0], m[1], p[1])
			if p[1]-p[0] < 0.5 {
				return fmt.Errorf("%s arm: polls per refund went only from %.2f to %.2f between the measures", a, p[0], p[1])
			}
			g := (m[1] - m[0]) / (p[1] - p[0])
			b.res.add(at1, a, m[0]-(p[0]-1)*g)
			b.res.add(atK, a, m[0]+(float64(k)-p[0])*g)
			b.res.add(growth, a, g)
			b.res.noRatio(growth)
			polls[a] = p
		}
	}
	b.res.tag(at1, tagPend1)
	b.res.tag(atK, tagPendK)
	b.res.note("\nMemory: the asynq arm is shown as hand-rolled; its tasks are the bare arm's too (the same payload, the same "+
		"client). Pending refunds: polls every %s, worker c=50; hand-rolled: each poll is a task that schedules the next one "+
		"(its handler makes no provider call: the bytes in Redis are the same). Measured (last rep) at a mean of %.2f and "+
		"%.2f polls per refund (refundq), %.2f and %.2f (hand-rolled); the rows put both measures on one line at exactly 1 "+
		"and %d polls.",
		pollEvery, polls[refundq][0], polls[refundq][1], polls[handRolled][0], polls[handRolled][1], k)
	return nil
}

// warmUp refunds (asynq tasks) go through each memory arm run before its
// baseline is taken, in the same key prefix and queue, and are final (done)
// by then: the scripts, the queue's keys and the prefix's indexes exist
// already, so the delta is what each further refund costs.
const warmUp = 200

// memQueued returns the bytes of Redis memory per refund (asynq task) queued.
func (b *bench) memQueued(ctx context.Context, a arm, n int) (float64, error) {
	space := b.newNS()
	defer b.cleanup(space)
	enqueue := func(first, count int) error {
		if a == refundq {
			return b.enqueueRefunds(ctx, space, first, count)
		}
		ac := asynq.NewClient(b.asynqOpt())
		defer ac.Close()
		_, err := enqueueBare(ctx, ac, space.queue, first, count, 16)
		return err
	}
	if err := enqueue(0, warmUp); err != nil {
		return 0, err
	}
	base, err := usedMemory(ctx, b.admin)
	if err != nil {
		return 0, err
	}
	if err := enqueue(warmUp, n); err != nil {
		return 0, err
	}
	m, err := usedMemory(ctx, b.admin)
	return float64(m-base) / float64(n), err
}

// pendingRefundq keeps n refunds pending at the simulator and returns the
// memory per refund and the mean polls per refund, after at least one poll
// each and after at least k. The worker is stopped for each measure, so
// nothing moves while it is taken.
func (b *bench) pendingRefundq(ctx context.Context, n, k int) (mem, polls [2]float64, err error) {
	space := b.newNS()
	defer b.cleanup(space)
	sim, err := startSim(0)
	if err != nil {
		return mem, polls, err
	}
	defer sim.close()
	for i := warmUp; i < warmUp+n; i++ {
		sim.sim.SetProcessing(orderID(i), 1<<30) // the warm-up refunds succeed
	}
	reg, err := registry(sim.url, providers.Schedule{First: pollEvery, Max: pollEvery, Horizon: time.Hour}, 50)
	if err != nil {
		return mem, polls, err
	}
	st := store.New(b.admin, space.prefix)
	// run starts a worker, waits, and shuts the worker down.
	run := func(wait func() error) error {
		rdb := b.client(nil)
		defer rdb.Close()
		w, err := worker.New(worker.Config{AcceptRedisLoss: b.acceptLoss, Redis: b.asynqOpt(), RDB: rdb, Registry: reg, Prefix: space.prefix,
			Queue: space.queue, Logger: quietLogger(), Concurrency: 50, PollInterval: pollEvery})
		if err != nil {
			return err
		}
		if err := w.Start(); err != nil {
			return err
		}
		defer w.Shutdown()
		return wait()
	}
	if err := b.enqueueRefunds(ctx, space, 0, warmUp); err != nil {
		return mem, polls, err
	}
	if err := run(func() error { return waitFinal(ctx, st, warmUp, &sim.posts) }); err != nil {
		return mem, polls, fmt.Errorf("warm-up: %w", err)
	}
	if err := checkSucceeded(ctx, st, warmUp); err != nil {
		return mem, polls, fmt.Errorf("warm-up: %w", err)
	}
	base, err := usedMemory(ctx, b.admin)
	if err != nil {
		return mem, polls, err
	}
	if err := b.enqueueRefunds(ctx, space, warmUp, n); err != nil {
		return mem, polls, err
	}
	read := func() ([]int, error) {
		if _, done, err := finals(ctx, st, warmUp+1); err != nil || done > warmUp {
			return nil, fmt.Errorf("a refund meant to stay pending became final (%d final, %d of them warm-up): %v", done, warmUp, err)
		}
		recs, _, err := st.ListState(ctx, store.Pending, 0, n)
		if err != nil {
			return nil, err
		}
		steps := make([]int, len(recs))
		for i, r := range recs {
			steps[i] = r.PollStep
		}
		return steps, nil
	}
	for i, want := range []int{1, k} {
		if err := run(func() error { return waitPolls(ctx, read, n, want) }); err != nil {
			return mem, polls, err
		}
		m, err := usedMemory(ctx, b.admin)
		if err != nil {
			return mem, polls, err
		}
		steps, err := read()
		if err != nil {
			return mem, polls, err
		}
		mem[i], polls[i] = float64(m-base)/float64(n), mean(steps)
	}
	return mem, polls, nil
}

// pendingAsynq is pendingRefundq's asynq arm: n tasks, each of which enqueues
// its next poll (a new task, pollEvery later) when it runs; the warm-up
// tasks just run.
func (b *bench) pendingAsynq(ctx context.Context, n, k int) (mem, polls [2]float64, err error) {
	space := b.newNS()
	defer b.cleanup(space)
	steps := make([]atomic.Int64, n)
	read := func() ([]int, error) {
		out := make([]int, n)
		for i := range steps {
			out[i] = int(steps[i].Load())
		}
		return out, nil
	}
	// run starts an asynq server, waits, and shuts it down.
	run := func(wait func() error) error {
		ac := asynq.NewClient(b.asynqOpt())
		defer ac.Close()
		srv := bareServer(b.asynqOpt(), space.queue, 50, pollEvery)
		h := asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
			id, _ := asynq.GetTaskID(ctx)
			var x, step int
			if _, err := fmt.Sscanf(id, "bare:%d:%d", &x, &step); err != nil || x < 0 || x >= warmUp+n {
				return fmt.Errorf("task id %q: %v: %w", id, err, asynq.SkipRetry)
			}
			if x < warmUp {
				return nil
			}
			steps[x-warmUp].Store(int64(step))
			next := asynq.NewTask(t.Type(), t.Payload(), asynq.TaskID(fmt.Sprintf("bare:%d:%d", x, step+1)),
				asynq.Queue(space.queue), asynq.ProcessIn(pollEvery))
			_, err := ac.EnqueueContext(ctx, next)
			return err
		})
		if err := srv.Start(h); err != nil {
			return err
		}
		defer srv.Shutdown()
		return wait()
	}
	enqueue := func(first, count int) error {
		ac := asynq.NewClient(b.asynqOpt())
		defer ac.Close()
		_, err := enqueueBare(ctx, ac, space.queue, first, count, 16)
		return err
	}
	if err := enqueue(0, warmUp); err != nil {
		return mem, polls, err
	}
	if err := run(func() error { return waitQueueDone(ctx, b.admin, space.queue, warmUp, nil) }); err != nil {
		return mem, polls, fmt.Errorf("warm-up: %w", err)
	}
	base, err := usedMemory(ctx, b.admin)
	if err != nil {
		return mem, polls, err
	}
	if err := enqueue(warmUp, n); err != nil {
		return mem, polls, err
	}
	for i, want := range []int{1, k} {
		if err := run(func() error { return waitPolls(ctx, read, n, want) }); err != nil {
			return mem, polls, err
		}
		m, err := usedMemory(ctx, b.admin)
		if err != nil {
			return mem, polls, err
		}
		s, _ := read()
		mem[i], polls[i] = float64(m-base)/float64(n), mean(s)
	}
	return mem, polls, nil
}

// waitPolls waits until read shows n refunds each polled at least want
// times. It reads at most a tenth of the time: reading every pending record
// is itself work for the Redis being measured.
func waitPolls(ctx context.Context, read func() ([]int, error), n, want int) error {
	deadline := time.Now().Add(waitLimit)
	for time.Now().Before(deadline) {
		start := time.Now()
		steps, err := read()
		if err != nil {
			return err
		}
		if len(steps) == n && slices.Min(steps) >= want {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(max(pollEvery, 10*time.Since(start))):
		}
	}
	return fmt.Errorf("not every refund polled %d times after %s", want, waitLimit)
}

func mean(v []int) float64 {
	if len(v) == 0 {
		return 0
	}
	var s int
	for _, x := range v {
		s += x
	}
	return float64(s) / float64(len(v))
}
