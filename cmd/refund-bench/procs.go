package main

import (
	"context"
	"fmt"
)

// procsScenario: scenario 2, the drain with several worker processes on one
// queue, each a child process; the simulator and the timing stay here.
func (b *bench) procsScenario(ctx context.Context) error {
	n, p, c := b.cfg.drainN, b.cfg.procs, b.cfg.procsC
	label := fmt.Sprintf("drain %s, %d worker processes × c=%d (tasks/s)", thousands(int64(n)), p, c)
	for rep := 1; rep <= b.cfg.reps; rep++ {
		for _, a := range []arm{refundq, handRolled, bare} {
			r, err := b.childDrain(ctx, a, n, p, c, 0)
			if err != nil {
				return fmt.Errorf("%s arm: %w", a, err)
			}
			b.logf("procs rep %d %s: %.0f tasks/s", rep, a, r.rate)
			b.res.add(label, a, r.rate)
		}
	}
	b.res.note("\nWorker processes: child processes of the bench on one queue, started together; the simulator and the timing " +
		"stay in the bench. The end of the hand-rolled and bare drains is read from asynq's queue (every 2 ms, once the " +
		"simulator has answered every refund for hand-rolled), as no one child sees every task.")
	return nil
}
