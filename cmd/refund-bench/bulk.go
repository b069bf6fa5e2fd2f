package main

import (
	"context"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

	"github.com/refundq/refundq/enqueue"
)

// bulkRun is what one arm's bulk file measured: the first run ([0]) and the
// re-run of the same rows ([1]).
type bulkRun struct {
	took  [2]time.Duration
	trips [2]int64            // client round trips, every client of the arm
	sent  [2]map[string]int64 // by command (or "pipeline")
}

// bulkScenario: scenario 5, a bulk file through enqueue.Client.EnqueueBulk
// (the producers' default client: every provider's rules, no credentials)
// against asynq Client.Enqueue of tasks with the same payload from as many
// goroutines, what a hand-rolled producer does; then the same rows again, all of them already there.
func (b *bench) bulkScenario(ctx context.Context) error {
	n, c := b.cfg.bulkN, b.cfg.bulkC
	labels := [2]string{fmt.Sprintf("bulk file of %s rows, %d goroutines (rows/s)", thousands(int64(n)), c),
		"  re-run of the same rows, all already there (rows/s)"}
	tripLabels := [2]string{"  client→Redis round trips per row, first run", "  client→Redis round trips per row, re-run"}
	var last [len(armNames)]bulkRun
	for rep := 1; rep <= b.cfg.reps; rep++ {
		for _, a := range []arm{refundq, handRolled} {
			run := b.bulkRefundq
			if a == handRolled {
				run = b.bulkAsynq
			}
			r, err := run(ctx, n, c)
			if err != nil {
				return fmt.Errorf("%s arm: %w", a, err)
			}
			b.logf("bulk rep %d %s: %.0f rows/s, re-run %.0f rows/s", rep, a, float64(n)/r.took[0].Seconds(), float64(n)/r.took[1].Seconds())
			for i := range 2 {
				b.res.add(labels[i], a, float64(n)/r.took[i].Seconds())
			}
			for i := range 2 {
				b.res.add(tripLabels[i], a, float64(r.trips[i])/float64(n))
			}
			last[a] = r
		}
	}
	b.res.tag(labels[0], tagBulk)
	b.res.note("\nBulk: the producers' default enqueue client (every provider's rules, no credentials); hand-rolled: each row's " +
		"payload encoded and enqueued by asynq's Client.Enqueue with a task id, so asynq refuses each row of the re-run (a " +
		"producer enqueues the same for the hand-rolled and the bare handler: one asynq arm, shown as hand-rolled). Round " +
		"trips per row, last rep:")
	for _, a := range []arm{refundq, handRolled} {
		b.res.note("  %-11s first run: %s", a, top(last[a].sent[0], n, 8))
		b.res.note("  %-11s re-run:    %s", a, top(last[a].sent[1], n, 8))
	}
	return nil
}

func (b *bench) bulkRefundq(ctx context.Context, n, c int) (bulkRun, error) {
	space := b.newNS()
	defer b.cleanup(space)
	tc := newTripCounter()
	rdb := b.client(tc)
	defer rdb.Close()
	cl := enqueue.New(countedOpt{b.asynqOpt(), tc}, rdb, b.enqueueOpts(space)...)
	defer cl.Close()
	file := rows(0, n)
	var r bulkRun
	for i, want := range []string{"enqueued", "existing"} {
		t0, s0 := tc.snapshot()
		start := time.Now()
		sum := cl.EnqueueBulk(ctx, file, enqueue.BulkOptions{Concurrency: c})
		r.took[i] = time.Since(start)
		t1, s1 := tc.snapshot()
		r.trips[i], r.sent[i] = t1-t0, callsSince(s0, s1)
		if got := map[string]int{"enqueued": sum.Enqueued, "existing": sum.Existing}[want]; got != n {
			return r, fmt.Errorf("run %d: %d of %d rows %s: %v", i+1, got, n, want, sum.Errors[:min(3, len(sum.Errors))])
		}
	}
	return r, nil
}

// bulkAsynq encodes each row's payload and enqueues it with a task id, so a
// re-run is refused by asynq row by row, as refundq's is by its records.
func (b *bench) bulkAsynq(ctx context.Context, n, c int) (bulkRun, error) {
	space := b.newNS()
	defer b.cleanup(space)
	tc := newTripCounter()
	ac := asynq.NewClient(countedOpt{b.asynqOpt(), tc})
	defer ac.Close()
	var r bulkRun
	for i, wantConflicts := range []int64{0, int64(n)} {
		t0, s0 := tc.snapshot()
		start := time.Now()
		conflicts, err := enqueueBare(ctx, ac, space.queue, 0, n, c)
		r.took[i] = time.Since(start)
		t1, s1 := tc.snapshot()
		r.trips[i], r.sent[i] = t1-t0, callsSince(s0, s1)
		if err != nil || conflicts != wantConflicts {
			return r, fmt.Errorf("run %d: %d of %d rows refused as existing (want %d): %v", i+1, conflicts, n, wantConflicts, err)
		}
	}
	return r, nil
}
