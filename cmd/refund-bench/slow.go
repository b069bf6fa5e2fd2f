package main

import (
	"context"
	"fmt"
)

// slowScenario: scenario 4 (a provider answering late, high concurrency)
// and scenario 7 (the worker's RSS then), refundq against hand-rolled: a
// no-op handler has nothing to wait for. Each arm's worker is a child
// process, so its RSS and CPU are the worker's alone.
func (b *bench) slowScenario(ctx context.Context) error {
	n, c, d := b.cfg.slowN, b.cfg.slowC, b.cfg.slowDelay
	label := fmt.Sprintf("provider answering in %s, %s refunds, c=%d (refunds/s)", d, thousands(int64(n)), c)
	for rep := 1; rep <= b.cfg.reps; rep++ {
		for _, a := range []arm{refundq, handRolled} {
			r, err := b.childDrain(ctx, a, n, 1, c, d)
			if err != nil {
				return fmt.Errorf("%s arm: %w", a, err)
			}
			b.logf("slow rep %d %s: %.0f refunds/s, %d connections, RSS %.1f MB", rep, a, r.rate, r.conns, float64(r.rss)/(1<<20))
			b.res.add(label, a, r.rate)
			b.res.add(fmt.Sprintf("  TCP connections opened for those %s", thousands(int64(n))), a, float64(r.conns))
			b.res.add(fmt.Sprintf("  worker CPU per refund, c=%d, slow provider (ms)", c), a, perRefundMS(r.workerCPU, n))
			b.res.add(fmt.Sprintf("worker RSS at c=%d, end of that drain (MB)", c), a, float64(r.rss)/(1<<20))
			b.res.add(fmt.Sprintf("worker peak RSS at c=%d (VmHWM, MB)", c), a, float64(r.peak)/(1<<20))
		}
	}
	b.res.tag(label, tagSlow)
	b.res.note("\nSlow provider: refundq and hand-rolled as in the drain (the same adapter and HTTP client, its pool sized to "+
		"c=%d); no bare arm, as a no-op handler has no provider to wait for.", c)
	return nil
}
