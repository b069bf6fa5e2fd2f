package main

import (
	"context"
	"fmt"
)

// slowScenario: scenario 4 (a provider answering late, high concurrency)
// and scenario 7 (the worker's RSS then). Each arm's worker is a child
// process, so its RSS is the worker's alone: not the simulator's, not the
// other arm's.
func (b *bench) slowScenario(ctx context.Context) error {
	n, c, d := b.cfg.slowN, b.cfg.slowC, b.cfg.slowDelay
	label := fmt.Sprintf("provider answering in %s, %s refunds, c=%d (refunds/s)", d, thousands(int64(n)), c)
	for rep := 1; rep <= b.cfg.reps; rep++ {
		for _, a := range []arm{refundq, bare} {
			r, err := b.childDrain(ctx, a, n, 1, c, d)
			if err != nil {
				return fmt.Errorf("%s arm: %w", a, err)
			}
			b.logf("slow rep %d %s: %.0f refunds/s, %d connections, RSS %.1f MB", rep, a, r.rate, r.conns, float64(r.rss)/(1<<20))
			b.res.add(label, a, r.rate)
			b.res.add(fmt.Sprintf("  TCP connections opened for those %s", thousands(int64(n))), a, float64(r.conns))
			b.res.add(fmt.Sprintf("worker RSS at c=%d, end of that drain (MB)", c), a, float64(r.rss)/(1<<20))
			b.res.add(fmt.Sprintf("worker peak RSS at c=%d (VmHWM, MB)", c), a, float64(r.peak)/(1<<20))
		}
	}
	b.res.note("\nSlow provider: each arm's worker runs in a child process (its RSS is the worker's alone); the simulator and the timing "+
		"stay in the bench. refundq calls through the adapter's default HTTP client; the bare handler makes the same POST and decodes "+
		"the answer, on a transport keeping %d idle connections.", c)
	return nil
}
