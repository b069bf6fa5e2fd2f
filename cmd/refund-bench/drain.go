package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/refundq/refundq/internal/redisproc"
	"github.com/refundq/refundq/internal/store"
)

// drainScenario: scenario 1 (drain N at each concurrency) and scenario 3
// (Redis and CPU work per refund), every arm's worker a child process.
func (b *bench) drainScenario(ctx context.Context) error {
	n := b.cfg.drainN
	detailC := b.cfg.drainC[len(b.cfg.drainC)-1] // whose commands the notes list: c=50 when it runs
	if slices.Contains(b.cfg.drainC, goalConc) {
		detailC = goalConc
	}
	var last [len(armNames)]drainRun
	for _, c := range b.cfg.drainC {
		rate := fmt.Sprintf("drain %s, instant simulator, c=%d (tasks/s)", thousands(int64(n)), c)
		cpu := fmt.Sprintf("  worker CPU per refund, c=%d (ms)", c)
		redisCPU := fmt.Sprintf("  Redis CPU per refund, c=%d (ms)", c)
		commands := fmt.Sprintf("  commands executed in Redis per refund, c=%d (INFO commandstats)", c)
		trips := fmt.Sprintf("  client→Redis round trips per refund, c=%d (go-redis hooks)", c)
		ownTrips := fmt.Sprintf("    of which refundq's own client, c=%d (the rest: asynq's)", c)
		conns := fmt.Sprintf("  TCP connections opened to the provider, c=%d", c)
		for rep := 1; rep <= b.cfg.reps; rep++ {
			for _, a := range []arm{refundq, handRolled, bare} {
				r, err := b.childDrain(ctx, a, n, 1, c, 0)
				if err != nil {
					return fmt.Errorf("%s arm, c=%d: %w", a, c, err)
				}
				b.logf("drain c=%d rep %d %s: %.0f tasks/s", c, rep, a, r.rate)
				b.res.add(rate, a, r.rate)
				b.res.add(cpu, a, perRefundMS(r.workerCPU, n))
				b.res.add(redisCPU, a, perRefundMS(r.redisCPU, n))
				b.res.add(commands, a, float64(sum(r.calls))/float64(n))
				b.res.add(trips, a, float64(r.stats.Trips)/float64(n))
				if a == refundq {
					b.res.add(ownTrips, a, float64(r.stats.OwnTrips)/float64(n))
				}
				if a != bare {
					b.res.add(conns, a, float64(r.conns))
				}
				if c == detailC {
					last[a] = r
				}
			}
		}
		if c == goalConc {
			b.res.tag(rate, tagDrain)
			b.res.tag(commands, tagCommands)
			b.res.tag(redisCPU, tagRedisCPU)
		}
	}
	b.res.note("%s", "\nDrain: refunds (tasks) enqueued first, untimed. Each arm's worker is a child process of the bench; the simulator "+
		"and the timing stay in the bench. Timed from the worker's start until every refund is final (refundq: read from its "+
		"store, once a second until the simulator has answered every refund, then every millisecond) or until the child has "+
		"seen every task succeed (hand-rolled, bare: no reading of Redis). hand-rolled: an asynq handler that decodes the task "+
		"and calls refundq's Moyasar PG adapter, with its HTTP client ("+handRolledCalls(b.cfg.handRolledRead)+"), returning an error for anything but success so asynq's default retries apply; bare: a no-op "+
		"handler; both on an asynq server of the same concurrency and poll intervals, tasks with the same payload bytes. "+
		"Worker CPU: the child's utime+stime over the drain (/proc/<pid>/stat, in 10 ms ticks). Redis CPU: used_cpu_user+"+
		"used_cpu_sys over the drain (INFO cpu), the bench's own reads included. Round trips: counted by go-redis hooks on "+
		"every client of the child, asynq's too, reported by the child at the end of the drain (its start-up included).")
	b.res.note("\nRedis work per refund, drain c=%d, last rep (commandstats include the commands run inside scripts):", detailC)
	for _, a := range []arm{refundq, handRolled, bare} {
		b.res.note("  %-11s round trips: %s", a, top(last[a].stats.Sent, n, 8))
		b.res.note("  %-11s commands:    %s", a, top(last[a].calls, n, 10))
	}
	return nil
}

func perRefundMS(d time.Duration, n int) float64 {
	return float64(d) / float64(time.Millisecond) / float64(n)
}

// drainRun is what one drain by child worker processes measured, from the
// children's start to the end of the drain.
type drainRun struct {
	rate      float64          // tasks (refunds) per second
	workerCPU time.Duration    // every child's, user and system
	redisCPU  time.Duration    // the server's, user and system
	calls     map[string]int64 // INFO commandstats delta
	stats     childStats       // round trips, every child's
	conns     int64            // TCP connections the simulator accepted
	rss, peak int64            // of the first child, at the end
}

// gauge is what childDrain reads before and after a drain.
type gauge struct {
	workerCPU, redisCPU time.Duration
	calls               map[string]int64
}

func (b *bench) gauge(ctx context.Context, kids []*child) (gauge, error) {
	var g gauge
	for _, k := range kids {
		t, err := k.cpu()
		if err != nil {
			return g, err
		}
		g.workerCPU += t
	}
	var err error
	if g.redisCPU, err = redisCPU(ctx, b.admin); err != nil {
		return g, err
	}
	g.calls, err = redisproc.CommandCalls(ctx, b.admin)
	return g, err
}

// childDrain enqueues n refunds (or their tasks), starts procs child
// workers of arm a and concurrency c, and times them from "go" until every
// refund is final (every task done). The simulator answers after delay.
func (b *bench) childDrain(ctx context.Context, a arm, n, procs, c int, delay time.Duration) (drainRun, error) {
	var r drainRun
	space := b.newNS()
	defer b.cleanup(space)
	sim, err := startSim(delay)
	if err != nil {
		return r, err
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
		return r, err
	}
	spec := childSpec{arm: a, addr: b.addr, db: b.db, space: space, conc: c, simURL: sim.url, acceptLoss: b.acceptLoss, read: b.cfg.handRolledRead}
	if procs == 1 && a != refundq {
		spec.doneAt = n
	}
	var kids []*child
	defer func() {
		for _, k := range kids {
			k.stop()
		}
	}()
	for range procs {
		k, err := startChild(ctx, spec)
		if err != nil {
			return r, err
		}
		kids = append(kids, k)
	}
	st := store.New(b.admin, space.prefix)
	before, err := b.gauge(ctx, kids)
	if err != nil {
		return r, err
	}
	start := time.Now()
	for _, k := range kids {
		if err := k.start(); err != nil {
			return r, err
		}
	}
	switch {
	case a == refundq:
		err = waitFinal(ctx, st, n, &sim.posts)
	case spec.doneAt > 0:
		err = kids[0].waitFinished(ctx)
	case a == handRolled:
		err = waitQueueDone(ctx, b.admin, space.queue, n, &sim.posts)
	default:
		err = waitQueueDone(ctx, b.admin, space.queue, n, nil)
	}
	elapsed := time.Since(start)
	if err != nil {
		return r, err
	}
	after, err := b.gauge(ctx, kids)
	if err != nil {
		return r, err
	}
	r = drainRun{rate: float64(n) / elapsed.Seconds(), workerCPU: after.workerCPU - before.workerCPU,
		redisCPU: after.redisCPU - before.redisCPU, calls: callsSince(before.calls, after.calls),
		stats: childStats{Sent: map[string]int64{}}, conns: sim.accepts.Load()}
	for _, k := range kids {
		s, err := k.stats()
		if err != nil {
			return r, err
		}
		r.stats.Trips, r.stats.OwnTrips = r.stats.Trips+s.Trips, r.stats.OwnTrips+s.OwnTrips
		for name, v := range s.Sent {
			r.stats.Sent[name] += v
		}
	}
	if r.rss, r.peak, err = kids[0].memory(); err != nil {
		return r, err
	}
	var stopErr error
	for _, k := range kids {
		stopErr = errors.Join(stopErr, k.stop())
	}
	if stopErr != nil {
		return r, stopErr
	}
	if a == refundq {
		return r, checkSucceeded(ctx, st, n)
	}
	return r, nil
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
