package main

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/refundq/refundq/internal/redisproc"
)

// sentinelRedis is the --sentinel topology: a primary and a replica, both
// with AOF and noeviction, and three Sentinels, all on loopback. Workers and
// the producer reach it through a redis-sentinel:// URL, as production
// would, and the harness forces failovers while refunds move.
type sentinelRedis struct {
	topo *redisproc.Topology

	mu        sync.Mutex
	failovers []failover
}

type failover struct {
	at, took time.Duration // since the chaos began; until Sentinels agreed
	from, to string
	err      error
}

func startSentinelRedis(ctx context.Context, dir string, c config) (*sentinelRedis, error) {
	o := redisproc.Durable
	o.Fsync, o.MinReplicasToWrite = c.fsync, c.minReplicas
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	topo, err := redisproc.StartTopology(ctx, filepath.Join(dir, "redis"), o, 1, 3)
	if err != nil {
		return nil, err
	}
	return &sentinelRedis{topo: topo}, nil
}

func (s *sentinelRedis) url() string { return s.topo.URL(0) }

func (s *sentinelRedis) stop() { s.topo.Stop() }

// failoverAt forces one failover at each of the given offsets from start:
// first it waits for the topology to be whole again (the previous primary a
// replica in sync, which takes a Sentinel up to 10 s to arrange), then runs
// SENTINEL FAILOVER and waits until every Sentinel names the new primary.
// It returns when all are done or ctx ends.
func (s *sentinelRedis) failoverAt(ctx context.Context, start time.Time, offsets []time.Duration) {
	for _, at := range offsets {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(start.Add(at))):
		}
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := s.topo.Converge(cctx)
		cancel()
		f := failover{at: time.Since(start), err: err}
		if err == nil {
			fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			began := time.Now()
			f.from, f.to, f.err = s.topo.Failover(fctx)
			f.took = time.Since(began)
			cancel()
		}
		s.mu.Lock()
		s.failovers = append(s.failovers, f)
		s.mu.Unlock()
		if f.err != nil {
			fmt.Printf("  %5.1fs  Sentinel failover FAILED: %v\n", f.at.Seconds(), f.err)
			continue
		}
		fmt.Printf("  %5.1fs  Sentinel failover %s -> %s (Sentinels agreed in %s)\n",
			f.at.Seconds(), f.from, f.to, f.took.Round(time.Millisecond))
	}
}

// done reports the failovers made and any that failed.
func (s *sentinelRedis) done() (ok int, failed []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.failovers {
		if f.err != nil {
			failed = append(failed, fmt.Sprintf("at %.1fs: %v", f.at.Seconds(), f.err))
		} else {
			ok++
		}
	}
	return ok, failed
}

// offsets spreads n failovers evenly over the chaos window.
func failoverOffsets(n int, window time.Duration) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = window * time.Duration(i+1) / time.Duration(n+1)
	}
	return out
}

// quietRedisLog drops go-redis's own log lines ("sentinel: new master …")
// from the harness's report; the workers' logs keep theirs.
type quietRedisLog struct{}

func (quietRedisLog) Printf(context.Context, string, ...any) {}
