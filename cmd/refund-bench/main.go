// Command refund-bench measures refundq against asynq v0.26 on the same
// Redis, in the same run, in three arms: refundq's worker (or enqueue
// client); hand-rolled, an asynq handler that makes the same provider call
// through the same adapter and HTTP client with asynq's default retries,
// what a team would write without refundq; and bare, a no-op asynq
// handler, asynq's floor. Each scenario runs its arms in turn (refundq,
// hand-rolled, bare, refundq, … for --reps), and the figures are printed as
// min / median / max per arm, with refundq's median over each other arm's
// and the 1-minute load average when they were taken. The drain measures
// per refund the worker's CPU, Redis's CPU, the commands Redis ran (by
// command) and the round trips.
//
// Without --redis-addr it starts its own redis-server on a spare loopback
// port with persistence off, so the disk does not dominate, and flushes it
// between runs. With --redis-addr it uses that server (database --redis-db),
// deletes only its own keys, and the memory and command figures include
// whatever else runs there.
//
//	go run ./cmd/refund-bench            # or: make bench
//	go run ./cmd/refund-bench --only drain,bulk --reps 5
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/refundq/refundq/internal/logs"
)

// scenarios in the order they run.
var scenarios = []string{"drain", "procs", "slow", "bulk", "memory"}

type config struct {
	redisAddr string
	redisDB   int
	fsync     string // the bench's own Redis: "off" (no AOF), "everysec" or "always"
	reps      int
	only      []string

	drainN int
	drainC []int
	procs  int // worker processes in the procs scenario
	procsC int

	slowN     int
	slowC     int
	slowDelay time.Duration

	bulkN int
	bulkC int

	memQueued  int
	memPending int
	memPolls   int
}

func main() {
	// go-redis's and the log package's messages as JSON lines on stderr,
	// as from every refundq binary, at warn: the report is on stdout, and
	// the harness reads no LOG_LEVEL of its own.
	logs.New(os.Stderr, "warn")
	if os.Getenv(childEnv) != "" {
		os.Exit(childMain(os.Args[1:]))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "refund-bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out, progress io.Writer) error {
	cfg, err := parseFlags(args)
	if err != nil {
		return err
	}
	b := &bench{cfg: cfg, res: newResults(), progress: progress, runID: uuid.NewString()[:8]}
	if cfg.redisAddr == "" {
		srv, err := startRedis(cfg.fsync)
		if err != nil {
			return err
		}
		defer srv.stop()
		b.addr, b.own = srv.addr, true
	} else {
		b.addr, b.db = cfg.redisAddr, cfg.redisDB
	}
	b.admin = redis.NewClient(&redis.Options{Addr: b.addr, DB: b.db})
	defer b.admin.Close()
	srvInfo, err := info(ctx, b.admin, "server")
	if err != nil {
		return err
	}
	where := "its own redis-server (appendfsync " + cfg.fsync + ", flushed between runs)"
	if !b.own {
		where = fmt.Sprintf("database %d, shared: memory and command figures include other clients", b.db)
	}
	fmt.Fprintf(out, "refund-bench %s: %s, GOMAXPROCS %d, %d CPUs; Redis %s at %s, %s; %d reps, arms interleaved (refundq, hand-rolled, bare, …)\n\n",
		time.Now().Format("2006-01-02 15:04"), runtime.Version(), runtime.GOMAXPROCS(0), runtime.NumCPU(),
		srvInfo["redis_version"], b.addr, where, cfg.reps)
	steps := map[string]func(context.Context) error{
		"drain": b.drainScenario, "procs": b.procsScenario, "slow": b.slowScenario,
		"bulk": b.bulkScenario, "memory": b.memoryScenario,
	}
	start := time.Now()
	for _, s := range scenarios {
		if !slices.Contains(cfg.only, s) {
			continue
		}
		if err := steps[s](ctx); err != nil {
			b.res.print(out) // what was measured before
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	b.res.print(out)
	fmt.Fprintf(out, "\nwhole run: %s\n", time.Since(start).Round(time.Second))
	return nil
}

func parseFlags(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("refund-bench", flag.ContinueOnError)
	fs.StringVar(&c.redisAddr, "redis-addr", "", "Redis to use (host:port); default: start a redis-server of its own")
	fs.IntVar(&c.redisDB, "redis-db", 0, "database of --redis-addr")
	fs.StringVar(&c.fsync, "appendfsync", "off", "persistence of the bench's own Redis: off (no AOF), everysec, or always (what deploy/redis.conf ships: refundq's durable default on Redis 7.0)")
	fs.IntVar(&c.reps, "reps", 3, "repetitions of each arm")
	only := fs.String("only", strings.Join(scenarios, ","), "scenarios to run: "+strings.Join(scenarios, ","))
	fs.IntVar(&c.drainN, "drain", 5000, "refunds (and bare tasks) per drain")
	drainC := fs.String("drain-c", "10,50", "worker concurrencies of the drain")
	fs.IntVar(&c.procs, "procs", 2, "worker processes in the procs scenario")
	fs.IntVar(&c.procsC, "procs-c", 10, "concurrency of each of those processes")
	fs.IntVar(&c.slowN, "slow", 4000, "refunds through the slow provider")
	fs.IntVar(&c.slowC, "slow-c", 200, "worker concurrency with the slow provider")
	fs.DurationVar(&c.slowDelay, "slow-delay", 200*time.Millisecond, "how long the slow provider takes to answer")
	fs.IntVar(&c.bulkN, "bulk", 10000, "rows of the bulk file (the issue's figure is for 100000)")
	fs.IntVar(&c.bulkC, "bulk-c", 16, "goroutines enqueueing the bulk file")
	fs.IntVar(&c.memQueued, "mem-queued", 5000, "refunds queued to measure Redis memory")
	fs.IntVar(&c.memPending, "mem-pending", 1000, "refunds kept pending to measure Redis memory")
	fs.IntVar(&c.memPolls, "mem-polls", 5, "polls per pending refund at the second memory measure")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if !slices.Contains([]string{"off", "everysec", "always"}, c.fsync) {
		return c, fmt.Errorf("--appendfsync %q: want off, everysec or always", c.fsync)
	}
	for _, s := range strings.Split(*drainC, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return c, fmt.Errorf("--drain-c %q: want positive integers separated by commas", *drainC)
		}
		c.drainC = append(c.drainC, n)
	}
	for _, s := range strings.Split(*only, ",") {
		if s = strings.TrimSpace(s); !slices.Contains(scenarios, s) {
			return c, fmt.Errorf("--only: unknown scenario %q (known: %s)", s, strings.Join(scenarios, ","))
		}
		c.only = append(c.only, s)
	}
	for name, v := range map[string]int{"reps": c.reps, "drain": c.drainN, "procs-c": c.procsC, "slow": c.slowN,
		"slow-c": c.slowC, "bulk": c.bulkN, "bulk-c": c.bulkC, "mem-queued": c.memQueued,
		"mem-pending": c.memPending, "mem-polls": c.memPolls} {
		if v < 1 {
			return c, fmt.Errorf("--%s must be at least 1", name)
		}
	}
	if c.procs < 1 {
		c.only = slices.DeleteFunc(c.only, func(s string) bool { return s == "procs" })
	}
	return c, nil
}

// bench is one run: the Redis it measures on and what it found.
type bench struct {
	cfg      config
	addr     string
	db       int
	own      bool          // the bench started the Redis and may flush it
	admin    *redis.Client // INFO, clean-up, reading the store; counted by nobody
	res      *results
	progress io.Writer
	runID    string
	seq      int
}

// ns is one arm run's corner of Redis: refundq's key prefix and the asynq queue.
type ns struct{ prefix, queue string }

func (b *bench) newNS() ns {
	b.seq++
	id := fmt.Sprintf("bench-%s-%d", b.runID, b.seq)
	return ns{prefix: id + ":", queue: id}
}

// cleanup removes an arm run's keys: the whole database when the Redis is
// the bench's own, else every key of its prefix and queue.
func (b *bench) cleanup(n ns) {
	ctx := context.Background()
	if b.own {
		if err := b.admin.FlushDB(ctx).Err(); err != nil {
			b.logf("clean-up: %v", err)
		}
		return
	}
	for _, pattern := range []string{n.prefix + "*", "asynq:{" + n.queue + "}*"} {
		iter := b.admin.Scan(ctx, 0, pattern, 1000).Iterator()
		var batch []string
		for iter.Next(ctx) {
			if batch = append(batch, iter.Val()); len(batch) == 1000 {
				b.admin.Unlink(ctx, batch...)
				batch = batch[:0]
			}
		}
		if len(batch) > 0 {
			b.admin.Unlink(ctx, batch...)
		}
	}
	b.admin.SRem(ctx, "asynq:queues", n.queue)
}

func (b *bench) asynqOpt() asynq.RedisClientOpt { return asynq.RedisClientOpt{Addr: b.addr, DB: b.db} }

// client returns a go-redis client of the bench's Redis, counted by tc
// unless tc is nil.
func (b *bench) client(tc *tripCounter) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: b.addr, DB: b.db})
	if tc != nil {
		c.AddHook(tc)
	}
	return c
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.progress, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}
