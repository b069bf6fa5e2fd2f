package main

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"

	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/store"
	"github.com/refundq/refundq/worker"
)

// pollEvery is the poll schedule of the pending refunds: short, so many
// polls fit in a run.
const pollEvery = 100 * time.Millisecond

// memoryScenario: scenario 6, Redis memory (used_memory delta) per queued
// refund, and per pending refund after about one poll and after about
// --mem-polls polls, against bare tasks: queued ones, and ones that
// re-schedule themselves as a poll would.
func (b *bench) memoryScenario(ctx context.Context) error {
	nq, np, k := b.cfg.memQueued, b.cfg.memPending, b.cfg.memPolls
	var polls [2][2]float64
	const growth = "  growth per poll (B)"
	for rep := 1; rep <= b.cfg.reps; rep++ {
		for _, a := range []arm{refundq, bare} {
			q, err := b.memQueued(ctx, a, nq)
			if err != nil {
				return fmt.Errorf("%s arm, queued: %w", a, err)
			}
			b.res.add(fmt.Sprintf("Redis memory per queued refund, %s queued (B)", thousands(int64(nq))), a, q)
			pend := b.pendingRefundq
			if a == bare {
				pend = b.pendingBare
			}
			m, p, err := pend(ctx, np, k)
			if err != nil {
				return fmt.Errorf("%s arm, pending: %w", a, err)
			}
			b.logf("memory rep %d %s: queued %.0f B, pending %.0f B after %.1f polls, %.0f B after %.1f polls", rep, a, q, m[0], p[0], m[1], p[1])
			b.res.add(fmt.Sprintf("Redis memory per pending refund, %s pending, after ≥1 poll (B)", thousands(int64(np))), a, m[0])
			b.res.add(fmt.Sprintf("  … after ≥%d polls (B)", k), a, m[1])
			if p[1] > p[0] {
				b.res.add(growth, a, (m[1]-m[0])/(p[1]-p[0]))
				b.res.noRatio(growth)
			}
			polls[a] = p
		}
	}
	b.res.note("\nPending refunds, last rep: polls per refund at the two memory measures (mean): refundq %.1f and %.1f, bare %.1f and %.1f; "+
		"polls every %s, worker c=50; bare: each poll is a task that schedules the next one.",
		polls[refundq][0], polls[refundq][1], polls[bare][0], polls[bare][1], pollEvery)
	return nil
}

// memQueued returns the bytes of Redis memory per refund (bare task) queued.
func (b *bench) memQueued(ctx context.Context, a arm, n int) (float64, error) {
	space := b.newNS()
	defer b.cleanup(space)
	base, err := usedMemory(ctx, b.admin)
	if err != nil {
		return 0, err
	}
	if a == refundq {
		err = b.enqueueRefunds(ctx, space, n)
	} else {
		ac := asynq.NewClient(b.asynqOpt())
		_, err = enqueueBare(ctx, ac, space.queue, n, 16)
		ac.Close()
	}
	if err != nil {
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
	for i := range n {
		sim.sim.SetProcessing(orderID(i), 1<<30)
	}
	reg, err := registry(sim.url, providers.Schedule{First: pollEvery, Max: pollEvery, Horizon: time.Hour})
	if err != nil {
		return mem, polls, err
	}
	base, err := usedMemory(ctx, b.admin)
	if err != nil {
		return mem, polls, err
	}
	if err := b.enqueueRefunds(ctx, space, n); err != nil {
		return mem, polls, err
	}
	st := store.New(b.admin, space.prefix)
	for i, want := range []int{1, k} {
		rdb := b.client(nil)
		w, err := worker.New(worker.Config{Redis: b.asynqOpt(), RDB: rdb, Registry: reg, Prefix: space.prefix,
			Queue: space.queue, Logger: quietLogger(), Concurrency: 50, PollInterval: pollEvery})
		if err != nil {
			return mem, polls, err
		}
		if err := w.Start(); err != nil {
			return mem, polls, err
		}
		err = waitPolls(ctx, func() ([]int, error) { return pendingSteps(ctx, st, n) }, n, want)
		w.Shutdown()
		rdb.Close()
		if err != nil {
			return mem, polls, err
		}
		m, err := usedMemory(ctx, b.admin)
		if err != nil {
			return mem, polls, err
		}
		steps, err := pendingSteps(ctx, st, n)
		if err != nil {
			return mem, polls, err
		}
		mem[i], polls[i] = float64(m-base)/float64(n), mean(steps)
	}
	return mem, polls, nil
}

// pendingSteps returns the poll count of every pending refund.
func pendingSteps(ctx context.Context, st *store.Store, n int) ([]int, error) {
	recs, _, err := st.ListState(ctx, store.Pending, 0, n)
	if err != nil {
		return nil, err
	}
	out := make([]int, len(recs))
	for i, r := range recs {
		out[i] = r.PollStep
	}
	return out, nil
}

// pendingBare is pendingRefundq's bare arm: n tasks, each of which enqueues
// its next poll (a new task, pollEvery later) when it runs.
func (b *bench) pendingBare(ctx context.Context, n, k int) (mem, polls [2]float64, err error) {
	space := b.newNS()
	defer b.cleanup(space)
	base, err := usedMemory(ctx, b.admin)
	if err != nil {
		return mem, polls, err
	}
	ac := asynq.NewClient(b.asynqOpt())
	_, err = enqueueBare(ctx, ac, space.queue, n, 16)
	ac.Close()
	if err != nil {
		return mem, polls, err
	}
	steps := make([]atomic.Int64, n)
	for i, want := range []int{1, k} {
		ac := asynq.NewClient(b.asynqOpt())
		srv := bareServer(b.asynqOpt(), space.queue, 50, pollEvery)
		h := asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
			id, _ := asynq.GetTaskID(ctx)
			var x, step int
			if _, err := fmt.Sscanf(id, "bare:%d:%d", &x, &step); err != nil || x < 0 || x >= n {
				return fmt.Errorf("task id %q: %v: %w", id, err, asynq.SkipRetry)
			}
			steps[x].Store(int64(step))
			next := asynq.NewTask(t.Type(), t.Payload(), asynq.TaskID(fmt.Sprintf("bare:%d:%d", x, step+1)),
				asynq.Queue(space.queue), asynq.ProcessIn(pollEvery))
			_, err := ac.EnqueueContext(ctx, next)
			return err
		})
		if err := srv.Start(h); err != nil {
			return mem, polls, err
		}
		read := func() ([]int, error) {
			out := make([]int, n)
			for i := range steps {
				out[i] = int(steps[i].Load())
			}
			return out, nil
		}
		err = waitPolls(ctx, read, n, want)
		srv.Shutdown()
		ac.Close()
		if err != nil {
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

// waitPolls waits until read shows n refunds each polled at least want times.
func waitPolls(ctx context.Context, read func() ([]int, error), n, want int) error {
	deadline := time.Now().Add(waitLimit)
	for time.Now().Before(deadline) {
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
		case <-time.After(pollEvery):
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
