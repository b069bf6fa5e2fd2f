// Command refund-chaos checks refundq's promise under faults: every refund
// paid once or clearly reported as not paid. It starts its own redis-server
// with AOF, the provider simulators with injected faults, and several
// separate worker processes; enqueues refunds across every provider;
// SIGKILLs workers and restarts Redis while they run; waits until every
// refund is final; then compares the records with the simulators' ledgers.
// It prints a report and exits 1 on any duplicate, loss or mismatch.
//
// With --sentinel, Redis is a primary, a replica and three Sentinels
// (redis-sentinel:// URL for workers and producer), and instead of a restart
// the harness forces --failovers Sentinel failovers during the chaos.
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/refundq/refundq/enqueue"
	"github.com/refundq/refundq/internal/durability"
	"github.com/refundq/refundq/internal/logs"
	"github.com/refundq/refundq/internal/rediscfg"
	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/providers/catalog"
	"github.com/refundq/refundq/providers/sandbox"
	"github.com/refundq/refundq/providers/sim"
	"github.com/refundq/refundq/tasks"
)

type config struct {
	refunds     int
	workers     int
	killEvery   time.Duration
	chaosFor    time.Duration
	restartAt   time.Duration
	faultRate   float64
	timeout     time.Duration
	seed        uint64
	workerBin   string
	fsync       string
	concurrency int
	keep        bool
	race        bool
	shape       string
	settle      time.Duration
	redisKill   bool
	operator    time.Duration
	authOutage  time.Duration
	sentinel    bool
	failovers   int
	minReplicas int
	acceptLoss  bool
	powerCutAt  time.Duration
	powerWindow time.Duration
	quirks      bool
	fastRecover bool
	recheck     string
	recheckFor  time.Duration
	later       bool
}

func main() {
	var c config
	flag.IntVar(&c.refunds, "refunds", 300, "refunds to enqueue, spread over every provider")
	flag.IntVar(&c.workers, "workers", 3, "worker processes running at once")
	flag.DurationVar(&c.killEvery, "kill-every", 5*time.Second, "SIGKILL a random worker this often (and start a new one)")
	flag.DurationVar(&c.chaosFor, "chaos-for", 20*time.Second, "keep killing for this long after the refunds are enqueued")
	flag.DurationVar(&c.restartAt, "restart-redis-at", 8*time.Second, "restart Redis this long into the chaos (0: never)")
	flag.Float64Var(&c.faultRate, "fault-rate", 0.04, "rate of each injected fault kind per provider request")
	flag.DurationVar(&c.timeout, "timeout", 15*time.Minute, "give up waiting for quiescence after this")
	flag.Uint64Var(&c.seed, "seed", uint64(time.Now().UnixNano()), "random seed (faults, amounts, kills)")
	flag.StringVar(&c.workerBin, "worker-bin", "", "refund-worker binary (default: go build ./cmd/refund-worker)")
	flag.StringVar(&c.fsync, "appendfsync", "always", "Redis appendfsync: always (what deploy/redis.conf ships), everysec (workers refuse it on Redis 7.0 unless --accept-redis-loss)")
	flag.BoolVar(&c.acceptLoss, "accept-redis-loss", false, "run workers and the producer with REFUNDQ_ACCEPT_REDIS_LOSS=1 (the operator's opt-out of durable writes)")
	flag.DurationVar(&c.powerCutAt, "power-cut-at", 0, "stage a power cut of Redis's machine this long into the chaos: Redis killed and restarted on its AOF as a cut leaves it (0: never)")
	flag.DurationVar(&c.powerWindow, "power-cut-loses", -1, "how much of the acknowledged writes the power cut loses (default: 0 with appendfsync always, 1s with everysec)")
	flag.BoolVar(&c.quirks, "quirks", false, "simulators also show what the providers' documents allow and refundq does not count on (undocumented codes, fields echoed but not searchable, refunds visible only once completed, resends validated before they are replayed)")
	flag.BoolVar(&c.fastRecover, "fast-recovery", false, "workers retry blocked refunds after 3s and recover every 2s with a 5s margin, instead of the defaults; hides late recovery, for experiments only")
	flag.StringVar(&c.recheck, "review-recheck", "5s,10s,20s,40s", "workers' REFUNDQ_REVIEW_RECHECK: when refunds in needs_review are looked up again (the default 10m,1h,6h,24h compressed)")
	flag.DurationVar(&c.recheckFor, "review-recheck-for", 2*time.Minute, "workers' REFUNDQ_REVIEW_RECHECK_FOR; the run waits this long after quiescence, at most, for the look-ups in review")
	flag.BoolVar(&c.later, "evidence-later", false, "once every refund is final, the simulators start showing the guessed fields, refuted guesses are cleared as an operator would, and one new refund per provider confirms them; the look-ups in review then have evidence to find")
	flag.IntVar(&c.concurrency, "concurrency", 20, "WORKER_CONCURRENCY of each worker")
	flag.BoolVar(&c.keep, "keep", false, "keep the work directory (logs, AOF) even on success")
	flag.BoolVar(&c.race, "race", false, "build the worker with the race detector (a race fails its process, and so the run)")
	flag.StringVar(&c.shape, "shape", "documented", "simulators' answers: documented (the providers' pages) or guessed (with the fields refundq guesses at)")
	flag.DurationVar(&c.settle, "settle", 6*time.Second, "workers' settle delay; the simulators' late applies land within 3 s")
	flag.BoolVar(&c.redisKill, "redis-kill", true, "stop Redis with SIGKILL (true) or SIGTERM (false) at --restart-redis-at")
	flag.DurationVar(&c.operator, "operator-every", 0, "delete or archive a random task in asynq this often, as an operator in asynqmon might (0: never)")
	flag.DurationVar(&c.authOutage, "auth-outage", 0, "one provider refuses our key (401) for this long, from a third into the chaos (0: never)")
	flag.BoolVar(&c.sentinel, "sentinel", false, "run Redis as a primary, a replica and three Sentinels, and force failovers instead of a restart")
	flag.IntVar(&c.failovers, "failovers", 2, "with --sentinel: Sentinel failovers, spread over the chaos window")
	flag.IntVar(&c.minReplicas, "min-replicas-to-write", 0, "with --sentinel: the primary's min-replicas-to-write")
	flag.Parse()
	// go-redis's and the log package's messages (Redis restarts are the
	// point here) as JSON lines on stderr, as from every refundq binary, at
	// warn: the report is on stdout, and LOG_LEVEL is the workers'.
	logs.New(os.Stderr, "warn")
	ok, err := run(c)
	if err != nil {
		fmt.Fprintln(os.Stderr, "refund-chaos:", err)
		os.Exit(2)
	}
	if !ok {
		os.Exit(1)
	}
}

func run(c config) (bool, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rng := rand.New(rand.NewPCG(c.seed, c.seed>>1|1))
	dir, err := os.MkdirTemp("", "refund-chaos-")
	if err != nil {
		return false, err
	}
	fmt.Printf("refund-chaos: seed %d, work dir %s\n", c.seed, dir)
	if c.workerBin == "" {
		c.workerBin = filepath.Join(dir, "refund-worker")
		args := []string{"build", "-o", c.workerBin}
		if c.race {
			args = append(args, "-race")
		}
		build := exec.Command("go", append(args, "./cmd/refund-worker")...)
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return false, fmt.Errorf("build worker (run from the repository root, or pass --worker-bin): %w", err)
		}
	}

	var (
		redisURL string
		rds      *redisProc
		sent     *sentinelRedis
		cuts     *snapshots
	)
	if c.sentinel {
		sent, err = startSentinelRedis(ctx, dir, c)
		if err != nil {
			return false, err
		}
		defer sent.stop()
		redisURL = sent.url()
		redis.SetLogger(quietRedisLog{})
		c.restartAt = 0 // a failover takes the restart's place
		fmt.Printf("refund-chaos: Redis via Sentinel: %s (min-replicas-to-write %d)\n", redisURL, c.minReplicas)
	} else {
		rds, err = startRedis(dir, c.fsync)
		if err != nil {
			return false, err
		}
		defer rds.stop()
		redisURL = "redis://" + rds.addr + "/0"
		if c.powerCutAt > 0 {
			cuts = rds.snapshotAOF()
		}
	}
	if c.powerWindow < 0 {
		c.powerWindow = 0
		if c.fsync != "always" {
			c.powerWindow = time.Second // everysec: about a second of acknowledged writes is not yet fsynced
		}
	}
	rc, err := rediscfg.Parse(redisURL)
	if err != nil {
		return false, err
	}
	aopt, rdb := rc.Asynq, rc.NewClient()
	defer rdb.Close()

	// The simulators, each on its own loopback port, with faults.
	sims, err := sandbox.New(dir)
	if err != nil {
		return false, err
	}
	var env []string
	for i := range sims {
		s := &sims[i]
		s.Guessed(c.shape == "guessed")
		if s.Quirks != nil {
			s.Quirks(c.quirks)
		}
		s.Faults.SlowFor, s.Faults.HangFor, s.Faults.RetryIn, s.Faults.LateBy = time.Second, 2*time.Second, 1, time.Second
		for _, m := range []string{http.MethodPost, http.MethodGet} {
			s.Faults.SetRate(m, "/", sim.Status5xx, c.faultRate)
			s.Faults.SetRate(m, "/", sim.RateLimited, c.faultRate)
			s.Faults.SetRate(m, "/", sim.Slow, c.faultRate)
		}
		// Applied-then-lost faults hit every request that can change money.
		s.Faults.SetRate(http.MethodPost, "/", sim.AppliedThenTimeout, c.faultRate)
		s.Faults.SetRate(http.MethodPost, "/", sim.AppliedThenReset, c.faultRate)
		s.Faults.SetRate(http.MethodPost, "/", sim.ResetBeforeApply, c.faultRate)
		s.Faults.SetRate(http.MethodPost, "/", sim.AppliedLate, c.faultRate)
		url, stop, err := sandbox.Serve(s.Handler)
		if err != nil {
			return false, err
		}
		defer stop()
		env = append(env, s.Env(url)...)
	}

	// Workers, as separate processes.
	env = append(env, catalog.FastPolls(time.Second, 2*time.Second)...)
	// A refund the provider keeps pending, whose look-ups cannot show its
	// end (Fatora's documented verify), goes to a person at the horizon.
	env = append(env, "REFUNDQ_POLL_HORIZON=2m")
	env = append(env, catalog.FastSettle(c.settle)...)
	// Refunds in needs_review are looked up again, on a compressed
	// schedule: the report says how many that settled without a person.
	env = append(env, "REFUNDQ_REVIEW_RECHECK="+c.recheck, "REFUNDQ_REVIEW_RECHECK_FOR="+c.recheckFor.String())
	// Recovery runs with the workers' defaults: the run must show how late
	// a refund whose task disappeared goes on, as production would.
	if c.fastRecover {
		env = append(env, "REFUNDQ_BLOCKED_RETRY=3s", "REFUNDQ_RECOVER_EVERY=2s", "REFUNDQ_DUE_MARGIN=5s")
	}
	if c.acceptLoss {
		env = append(env, durability.AcceptLossEnv+"=1")
	}
	// Each worker's health server on a port of its own: on the default
	// :8081 only the first of several workers on one host starts.
	workerEnv := append(os.Environ(), append(env, "REDIS_URL="+redisURL, "LOG_LEVEL=warn", "HEALTH_LISTEN=127.0.0.1:0",
		fmt.Sprintf("WORKER_CONCURRENCY=%d", c.concurrency))...)
	var procs []*exec.Cmd
	started := 0
	spawn := func() error {
		started++
		logf, err := os.Create(filepath.Join(dir, fmt.Sprintf("worker-%02d.log", started)))
		if err != nil {
			return err
		}
		cmd := exec.Command(c.workerBin)
		cmd.Env, cmd.Stdout, cmd.Stderr = workerEnv, logf, logf
		if err := cmd.Start(); err != nil {
			return err
		}
		go func() { cmd.Wait(); logf.Close() }()
		procs = append(procs, cmd)
		return nil
	}
	for range c.workers {
		if err := spawn(); err != nil {
			return false, err
		}
	}
	defer func() {
		for _, p := range procs {
			p.Process.Signal(syscall.SIGTERM)
		}
		for _, p := range procs {
			waitExit(p, 40*time.Second)
		}
	}()

	// Refunds: one order per refund, so an order's ledger counts exactly
	// how often its refund was paid. Some ask for more than was paid
	// (must fail, unpaid), some stay pending at the provider for a while.
	// They are enqueued across the chaos window, so kills and the Redis
	// restart hit refunds in every state.
	wants := make([]want, c.refunds)
	for i := range wants {
		s := &sims[i%len(sims)]
		id := fmt.Sprintf("chaos-%d-%05d", c.seed%100000, i)
		order := "ord-" + id
		paid := tasks.Money{Minor: 100 + rng.Int64N(50_000), Currency: s.Currency}
		amount := paid
		over := rng.IntN(20) == 0
		if over {
			amount.Minor = paid.Minor + 1 + rng.Int64N(1000)
		} else if s.Partial && rng.IntN(3) == 0 {
			amount.Minor = 1 + rng.Int64N(paid.Minor)
		}
		txn := s.Pay(order, paid)
		if s.MakePending != nil && rng.IntN(10) == 0 {
			s.MakePending(order, 1+rng.IntN(3))
		}
		wants[i] = want{s, tasks.Refund{Version: tasks.PayloadVersion, RefundID: id, Provider: s.Name, OrderID: order,
			TransactionID: txn, AmountMinor: amount.Minor, Currency: amount.Currency, Reason: "requested"}, over}
	}
	// The producer's grace for a new refund's first run is the default too
	// (store.DueQueued): it is one of the recovery settings.
	enqOpts := []enqueue.Option{enqueue.WithRegistry(catalog.Rules())}
	if c.acceptLoss {
		enqOpts = append(enqOpts, enqueue.AcceptRedisLoss())
	}
	enq := enqueue.New(aopt, rdb, enqOpts...)
	defer enq.Close()
	enqueued := make(chan error, 1)
	go func() {
		// Spread over the first 70% of the chaos; a Redis restart makes an
		// enqueue fail, and the producer retries it as any producer would.
		gap := time.Duration(float64(c.chaosFor) * 0.7 / float64(max(c.refunds, 1)))
		for _, w := range wants {
			for {
				_, err := enq.EnqueueRefund(ctx, w.refund)
				if err == nil {
					break
				}
				if ctx.Err() != nil {
					enqueued <- err
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
			time.Sleep(gap)
		}
		enqueued <- nil
	}()

	// Chaos: kills, one Redis restart, an operator's clicks, an auth outage.
	kills, restarts, powerCuts := 0, 0, 0
	chaosStart := time.Now()
	failoversDone := make(chan struct{})
	if sent != nil {
		go func() {
			defer close(failoversDone)
			sent.failoverAt(ctx, chaosStart, failoverOffsets(c.failovers, c.chaosFor))
		}()
	} else {
		close(failoversDone)
	}
	tick := c.killEvery
	if tick <= 0 {
		tick = time.Second // no kills: only wait out the chaos window
	}
	killTick := time.NewTicker(tick)
	restarted := c.restartAt <= 0
	st := store.New(rdb, "refundq:")
	ops := &operator{insp: asynq.NewInspector(aopt), st: st, rng: rand.New(rand.NewPCG(c.seed^0xa5a5, 7))}
	defer ops.insp.Close()
	stopOps := make(chan struct{})
	opsDone := make(chan struct{})
	go func() {
		defer close(opsDone)
		if c.operator <= 0 {
			return
		}
		t := time.NewTicker(c.operator)
		defer t.Stop()
		for {
			select {
			case <-stopOps:
				return
			case <-t.C:
				ops.click()
			}
		}
	}()
	var outaged string
	if c.authOutage > 0 {
		s := &sims[rng.IntN(len(sims))]
		outaged = s.Name
		time.AfterFunc(c.chaosFor/3, func() {
			s.Faults.Outage(sim.Unauthorized, c.authOutage)
			fmt.Printf("  %5.1fs  %s refuses our key (401) for %s\n", time.Since(chaosStart).Seconds(), s.Name, c.authOutage)
		})
	}
	for time.Since(chaosStart) < c.chaosFor {
		<-killTick.C
		if c.killEvery > 0 {
			i := rng.IntN(len(procs))
			procs[i].Process.Signal(syscall.SIGKILL)
			waitExit(procs[i], 5*time.Second)
			procs = append(procs[:i], procs[i+1:]...)
			kills++
			if err := spawn(); err != nil {
				return false, err
			}
			fmt.Printf("  %5.1fs  killed a worker (SIGKILL), started worker %d\n", time.Since(chaosStart).Seconds(), started)
		}
		if !restarted && time.Since(chaosStart) >= c.restartAt {
			if err := rds.restart(c.redisKill); err != nil {
				return false, err
			}
			restarted, restarts = true, restarts+1
			how := "SIGTERM"
			if c.redisKill {
				how = "SIGKILL"
			}
			fmt.Printf("  %5.1fs  restarted Redis after %s (AOF, appendfsync %s)\n", time.Since(chaosStart).Seconds(), how, c.fsync)
		}
		if cuts != nil && time.Since(chaosStart) >= c.powerCutAt {
			lost, err := rds.powerCut(cuts, c.powerWindow)
			if err != nil {
				return false, err
			}
			cuts, powerCuts = nil, powerCuts+1
			fmt.Printf("  %5.1fs  power cut: Redis restarted on its AOF as it was %s earlier (appendfsync %s)\n",
				time.Since(chaosStart).Seconds(), lost.Round(10*time.Millisecond), c.fsync)
		}
	}
	killTick.Stop()
	close(stopOps)
	<-opsDone
	<-failoversDone
	if err := <-enqueued; err != nil {
		return false, fmt.Errorf("enqueue: %w", err)
	}
	fmt.Printf("enqueued %d refunds over %d providers during the chaos\n", c.refunds, len(sims))

	recs, err := waitQuiet(ctx, st, len(wants), chaosStart, c.timeout)
	if err != nil {
		return false, err
	}
	quiet := time.Since(chaosStart)
	late, err := measureLateness(ctx, st, ops.removed)
	if err != nil {
		return false, err
	}
	// The look-ups in review go on after quiescence (a refund leaves
	// needs_review only by one, or by a person): wait for them, then read
	// every record again for the verdict.
	wait := c.recheckFor + time.Minute
	if c.later {
		if wants, err = evidenceLater(ctx, st, enq, sims, c.seed, wants); err != nil {
			return false, err
		}
		// Every refund still looked up gets two look-ups with the evidence
		// there; the rest of its horizon would only repeat them.
		wait = 2*lastWait(c.recheck) + 30*time.Second
	}
	reviewed, err := awaitReviews(ctx, st, wait)
	if err != nil {
		return false, err
	}
	if recs, err = st.List(ctx, 0); err != nil {
		return false, err
	}

	// Before the ledgers are read: the reconciliation only reads them too.
	netted := reconcileAll(ctx, enq, chaosStart.Add(-time.Minute), c.timeout)
	return verdict(c, wants, recs, sims, chaos{kills: kills, restarts: restarts, powerCuts: powerCuts, ops: ops,
		outaged: outaged, quiet: quiet, late: late, sent: sent, dir: dir, reviewed: reviewed, reconciled: netted}), nil
}
