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
// Without --redis-addr it runs every scenario once per --persistence, each
// time on a redis-server of its own on a spare loopback port, flushed
// between runs: "off" (no AOF, so the disk does not dominate; refundq runs
// with AcceptRedisLoss) and "durable" (appendonly yes, appendfsync always,
// as deploy/redis.conf ships it; refundq runs with its durability check, as
// shipped). A table per persistence, then the goals against both.
// With --redis-addr it uses that server (database --redis-db) once, as it
// is configured, deletes only its own keys, and the memory, command and
// CPU figures include whatever else runs there.
//
//	go run ./cmd/refund-bench            # or: make bench
//	go run ./cmd/refund-bench --only drain,bulk --reps 5 --persistence off
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

	"github.com/refundq/refundq/enqueue"
	"github.com/refundq/refundq/internal/logs"
	"github.com/refundq/refundq/internal/redisproc"
)

// scenarios in the order they run.
var scenarios = []string{"drain", "procs", "slow", "bulk", "memory"}

type config struct {
	redisAddr string
	redisDB   int
	persist   []string // the bench's own Redis, a run for each: persistOff, persistDurable
	reps      int
	only      []string

	drainN int
	drainC []int
	procs  int // worker processes in the procs scenario
	procsC int

	slowN     int
	slowC     int
	slowDelay time.Duration
	// handRolledRead: the hand-rolled handler reads the order before the
	// refund, as refundq's Moyasar PG adapter does (its refund call carries
	// no currency); false: the refund call alone.
	handRolledRead bool

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
	persist := cfg.persist
	if cfg.redisAddr != "" {
		persist = []string{persistGiven}
	}
	fmt.Fprintf(out, "refund-bench %s: %s, GOMAXPROCS %d, %d CPUs; %d reps, arms interleaved (refundq, hand-rolled, bare, …)\n",
		time.Now().Format("2006-01-02 15:04"), runtime.Version(), runtime.GOMAXPROCS(0), runtime.NumCPU(), cfg.reps)
	start := time.Now()
	var passes []pass
	for _, p := range persist {
		res := newResults()
		passes = append(passes, pass{name: passNames[p], res: res})
		err := runPass(ctx, cfg, p, res, out, progress)
		res.print(out) // what was measured, even before an error
		if err != nil {
			return fmt.Errorf("persistence %s: %w", p, err)
		}
	}
	fmt.Fprint(out, "\n## Goals (the issue's)\n\n")
	printGoals(out, passes)
	fmt.Fprintf(out, "\nwhole run: %s\n", time.Since(start).Round(time.Second))
	return nil
}

// persistGiven is the one run on --redis-addr, as that server is configured.
const persistGiven = "given"

// passNames head each run's column of the goals table.
var passNames = map[string]string{persistOff: "persistence off", persistDurable: "durable", persistGiven: "--redis-addr"}

// runPass runs every scenario with the given persistence into res.
func runPass(ctx context.Context, cfg config, persistence string, res *results, out, progress io.Writer) error {
	// refundq accepts a Redis that may lose writes except where the run is
	// about durability. On a Redis that promises to keep them (--redis-addr
	// may be one) accepting changes nothing: refundq finds the promise and
	// keeps it.
	b := &bench{cfg: cfg, res: res, progress: progress, runID: uuid.NewString()[:8], pass: persistence,
		acceptLoss: persistence != persistDurable}
	if cfg.redisAddr == "" {
		srv, err := startRedis(persistence)
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
	srvInfo, err := redisproc.Info(ctx, b.admin, "server")
	if err != nil {
		return err
	}
	where := map[string]string{
		persistOff: "its own redis-server, appendonly no; refundq's worker and enqueue client accept the risk (AcceptRedisLoss)",
		persistDurable: "its own redis-server, appendonly yes, appendfsync always (deploy/redis.conf's); refundq as shipped, " +
			"its durability check on",
		persistGiven: fmt.Sprintf("database %d of --redis-addr, as configured, shared: memory, command and CPU figures include other clients", b.db),
	}[persistence]
	fmt.Fprintf(out, "\n## Persistence %s: Redis %s at %s, %s\n\n", persistence, srvInfo["redis_version"], b.addr, where)
	steps := map[string]func(context.Context) error{
		"drain": b.drainScenario, "procs": b.procsScenario, "slow": b.slowScenario,
		"bulk": b.bulkScenario, "memory": b.memoryScenario,
	}
	for _, s := range scenarios {
		if !slices.Contains(cfg.only, s) {
			continue
		}
		if err := steps[s](ctx); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

func parseFlags(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("refund-bench", flag.ContinueOnError)
	fs.StringVar(&c.redisAddr, "redis-addr", "", "Redis to use (host:port); default: start a redis-server of its own")
	fs.IntVar(&c.redisDB, "redis-db", 0, "database of --redis-addr")
	persist := fs.String("persistence", persistOff+","+persistDurable, "persistence of the bench's own Redis, a run for each: "+
		"off (no AOF) and durable (appendonly yes, appendfsync always: what deploy/redis.conf ships)")
	fs.IntVar(&c.reps, "reps", 3, "repetitions of each arm")
	only := fs.String("only", strings.Join(scenarios, ","), "scenarios to run: "+strings.Join(scenarios, ","))
	fs.IntVar(&c.drainN, "drain", 5000, "refunds (and bare tasks) per drain")
	drainC := fs.String("drain-c", "10,50", "worker concurrencies of the drain")
	fs.IntVar(&c.procs, "procs", 2, "worker processes in the procs scenario")
	fs.IntVar(&c.procsC, "procs-c", 10, "concurrency of each of those processes")
	fs.IntVar(&c.slowN, "slow", 4000, "refunds through the slow provider")
	fs.IntVar(&c.slowC, "slow-c", 200, "worker concurrency with the slow provider")
	fs.DurationVar(&c.slowDelay, "slow-delay", 200*time.Millisecond, "how long the slow provider takes to answer")
	fs.BoolVar(&c.handRolledRead, "hand-rolled-read", true, "the hand-rolled handler reads the order before the refund, as refundq's adapter does (false: the refund call alone)")
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
	for _, p := range strings.Split(*persist, ",") {
		if p = strings.TrimSpace(p); !slices.Contains([]string{persistOff, persistDurable}, p) || slices.Contains(c.persist, p) {
			return c, fmt.Errorf("--persistence %q: want off, durable or both, separated by a comma", *persist)
		}
		c.persist = append(c.persist, p)
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

	pass string // the persistence of this run
	// acceptLoss: refundq's worker and enqueue client run with
	// AcceptRedisLoss (every run but the durable one).
	acceptLoss bool
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

// enqueueOpts are the options of refundq's enqueue client in n.
func (b *bench) enqueueOpts(n ns) []enqueue.Option {
	opts := []enqueue.Option{enqueue.WithQueue(n.queue), enqueue.WithPrefix(n.prefix)}
	if b.acceptLoss {
		opts = append(opts, enqueue.AcceptRedisLoss())
	}
	return opts
}

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
	fmt.Fprintf(b.progress, "%s [%s] "+format+"\n", append([]any{time.Now().Format("15:04:05"), b.pass}, args...)...)
}
