package main

import (
	"context"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

	"github.com/refundq/refundq/enqueue"
)

// bulkScenario: scenario 5, a bulk file through enqueue.Client.EnqueueBulk
// (the producers' default client: every provider's rules, no credentials)
// against asynq Client.Enqueue of tasks with the same payload from as many
// goroutines; then the same rows again, all of them already there.
func (b *bench) bulkScenario(ctx context.Context) error {
	n, c := b.cfg.bulkN, b.cfg.bulkC
	first := fmt.Sprintf("bulk file of %s rows, %d goroutines (rows/s)", thousands(int64(n)), c)
	again := "  re-run of the same rows, all already there (rows/s)"
	for rep := 1; rep <= b.cfg.reps; rep++ {
		for _, a := range []arm{refundq, bare} {
			run := b.bulkRefundq
			if a == bare {
				run = b.bulkBare
			}
			d1, d2, err := run(ctx, n, c)
			if err != nil {
				return fmt.Errorf("%s arm: %w", a, err)
			}
			b.logf("bulk rep %d %s: %.0f rows/s, re-run %.0f rows/s", rep, a, float64(n)/d1.Seconds(), float64(n)/d2.Seconds())
			b.res.add(first, a, float64(n)/d1.Seconds())
			b.res.add(again, a, float64(n)/d2.Seconds())
		}
	}
	b.res.note("\nBulk: the producers' default enqueue client (every provider's rules, no credentials); bare: each row's payload " +
		"encoded and enqueued with a task id, so asynq refuses each row of the re-run.")
	return nil
}

func (b *bench) bulkRefundq(ctx context.Context, n, c int) (first, again time.Duration, err error) {
	space := b.newNS()
	defer b.cleanup(space)
	rdb := b.client(nil)
	defer rdb.Close()
	cl := enqueue.New(b.asynqOpt(), rdb, enqueue.WithQueue(space.queue), enqueue.WithPrefix(space.prefix))
	defer cl.Close()
	file := rows(n)
	start := time.Now()
	sum := cl.EnqueueBulk(ctx, file, enqueue.BulkOptions{Concurrency: c})
	first = time.Since(start)
	if sum.Enqueued != n {
		return 0, 0, fmt.Errorf("first run enqueued %d of %d rows: %v", sum.Enqueued, n, sum.Errors[:min(3, len(sum.Errors))])
	}
	start = time.Now()
	sum = cl.EnqueueBulk(ctx, file, enqueue.BulkOptions{Concurrency: c})
	again = time.Since(start)
	if sum.Existing != n {
		return 0, 0, fmt.Errorf("re-run found %d of %d rows existing: %v", sum.Existing, n, sum.Errors[:min(3, len(sum.Errors))])
	}
	return first, again, nil
}

// bulkBare encodes each row's payload and enqueues it with a task id, so a
// re-run is refused by asynq row by row, as refundq's is by its records.
func (b *bench) bulkBare(ctx context.Context, n, c int) (first, again time.Duration, err error) {
	space := b.newNS()
	defer b.cleanup(space)
	ac := asynq.NewClient(b.asynqOpt())
	defer ac.Close()
	start := time.Now()
	conflicts, err := enqueueBare(ctx, ac, space.queue, n, c)
	first = time.Since(start)
	if err != nil || conflicts != 0 {
		return 0, 0, fmt.Errorf("first run: %d conflicts, %v", conflicts, err)
	}
	start = time.Now()
	conflicts, err = enqueueBare(ctx, ac, space.queue, n, c)
	again = time.Since(start)
	if err != nil || conflicts != int64(n) {
		return 0, 0, fmt.Errorf("re-run: %d of %d rows refused as existing, %v", conflicts, n, err)
	}
	return first, again, nil
}
