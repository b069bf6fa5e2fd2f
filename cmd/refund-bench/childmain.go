package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/providers/moyasarpg"
	"github.com/refundq/refundq/tasks"
	"github.com/refundq/refundq/worker"
)

// childEnv, set in a child's environment, makes the bench binary run one
// worker (refundq's, or an asynq server with the hand-rolled or the bare
// handler) instead of the bench: so a worker's CPU time and RSS are its
// own, not the simulator's or the other arm's, and several can share a
// queue.
const childEnv = "REFUND_BENCH_CHILD"

// childSpec is what a child runs.
type childSpec struct {
	arm        arm
	addr       string
	db         int
	space      ns
	conc       int
	simURL     string
	acceptLoss bool // refundq: run on a Redis that promises nothing (persistence off)
	read       bool // hand-rolled: read the order before the refund, as refundq's adapter does
	// doneAt: the child says "done" once this many tasks succeeded in it,
	// so the bench ends a drain without reading Redis; 0 never (refundq's
	// end is read from its store, and with several children each sees a
	// share).
	doneAt int
}

func (s childSpec) args() []string {
	return []string{"-arm", s.arm.String(), "-addr", s.addr, "-db", strconv.Itoa(s.db), "-prefix", s.space.prefix,
		"-queue", s.space.queue, "-c", strconv.Itoa(s.conc), "-sim", s.simURL,
		"-accept-loss=" + strconv.FormatBool(s.acceptLoss), "-read=" + strconv.FormatBool(s.read), "-done-at", strconv.Itoa(s.doneAt)}
}

// childStats is what a child reports when asked: the round trips its
// clients made, counted by go-redis hooks.
type childStats struct {
	Trips    int64            `json:"trips"`     // every client's
	OwnTrips int64            `json:"own_trips"` // refundq's own go-redis client's (the rest: asynq's)
	Sent     map[string]int64 `json:"sent"`      // by command, or "pipeline"
}

// childMain builds the worker and says "ready" on stdout, then obeys its
// stdin line by line: "go" starts the worker, "stats" prints a childStats
// line; at the end of stdin it shuts the worker down.
func childMain(args []string) int {
	fs := flag.NewFlagSet("child", flag.ContinueOnError)
	armName := fs.String("arm", "", "refundq, hand-rolled or bare")
	var s childSpec
	fs.StringVar(&s.addr, "addr", "", "")
	fs.IntVar(&s.db, "db", 0, "")
	fs.StringVar(&s.space.prefix, "prefix", "", "")
	fs.StringVar(&s.space.queue, "queue", "", "")
	fs.IntVar(&s.conc, "c", 10, "")
	fs.StringVar(&s.simURL, "sim", "", "")
	fs.BoolVar(&s.acceptLoss, "accept-loss", false, "")
	fs.BoolVar(&s.read, "read", true, "")
	fs.IntVar(&s.doneAt, "done-at", 0, "")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var ok bool
	if s.arm, ok = parseArm(*armName); !ok {
		fmt.Fprintf(os.Stderr, "child: -arm %q: want refundq, hand-rolled or bare\n", *armName)
		return 2
	}
	var mu sync.Mutex // "done" comes from a handler, stats from here
	say := func(line string) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Println(line)
	}
	own, asy := newTripCounter(), newTripCounter()
	start, shutdown, err := childWorker(s, own, asy, func() { say("done") })
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	say("ready")
	started := false
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch in.Text() {
		case "go":
			if err := start(); err != nil {
				fmt.Fprintln(os.Stderr, "child:", err)
				return 1
			}
			started = true
		case "stats":
			o, so := own.snapshot()
			a, sa := asy.snapshot()
			for k, v := range sa {
				so[k] += v
			}
			b, _ := json.Marshal(childStats{Trips: o + a, OwnTrips: o, Sent: so})
			say(string(b))
		}
	}
	if started {
		shutdown()
	}
	return 0
}

// childWorker builds the worker of s's arm, its clients counted by own
// (refundq's own go-redis client) and asy (asynq's); done is called once
// s.doneAt tasks have succeeded.
func childWorker(s childSpec, own, asy *tripCounter, done func()) (start func() error, shutdown func(), err error) {
	opt := countedOpt{asynq.RedisClientOpt{Addr: s.addr, DB: s.db}, asy}
	if s.arm == refundq {
		rdb := redis.NewClient(&redis.Options{Addr: s.addr, DB: s.db})
		rdb.AddHook(own)
		reg, err := registry(s.simURL, moyasarpg.Schedule, s.conc)
		if err != nil {
			return nil, nil, err
		}
		w, err := worker.New(worker.Config{AcceptRedisLoss: s.acceptLoss, Redis: opt, RDB: rdb, Registry: reg,
			Prefix: s.space.prefix, Queue: s.space.queue, Logger: quietLogger(), Concurrency: s.conc, PollInterval: time.Second})
		if err != nil {
			return nil, nil, err
		}
		return w.Start, func() { w.Shutdown(); rdb.Close() }, nil
	}
	var h asynq.Handler = asynq.HandlerFunc(func(context.Context, *asynq.Task) error { return nil })
	if s.arm == handRolled {
		p, err := adapter(s.simURL, s.conc)
		if err != nil {
			return nil, nil, err
		}
		h = handRolledHandler(p, s.read)
	}
	if s.doneAt > 0 {
		h = announce(h, s.doneAt, done)
	}
	srv := bareServer(opt, s.space.queue, s.conc, time.Second)
	return func() error { return srv.Start(h) }, srv.Shutdown, nil
}

// handRolledHandler is what a team would write on asynq without refundq:
// decode the task and make the provider call refundq makes, through the
// same adapter and so the same HTTP client (Prepare reads the order, as
// refundq's worker has every Preparer do before a send; then Refund, the
// refund id as the idempotency key), and return an error for anything but
// success, so asynq's default retries apply. No record, no lease, no
// reconciliation of an unknown answer: what refundq adds is what the ratio
// prices.
func handRolledHandler(p providers.Provider, read bool) asynq.Handler {
	return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		r, err := tasks.DecodeRefund(t.Payload())
		if err != nil {
			return fmt.Errorf("%v: %w", err, asynq.SkipRetry)
		}
		req := providers.Refund{RefundID: r.RefundID, OrderID: r.OrderID, TransactionID: r.TransactionID,
			Amount: r.Money(), Reason: r.Reason, Key: r.RefundID, Attempt: 1}
		if n, ok := asynq.GetRetryCount(ctx); ok {
			req.Attempt = n + 1
		}
		if pr, ok := p.(providers.Preparer); ok && read {
			before, out, ok := pr.Prepare(ctx, req)
			if !ok {
				return fmt.Errorf("refund %s: reading the order: %s", r.RefundID, out)
			}
			req.Before = before
		}
		if out := p.Refund(ctx, req); out.Kind != providers.Succeeded {
			return fmt.Errorf("refund %s: %s", r.RefundID, out)
		}
		return nil
	})
}

// announce wraps h to call done once n tasks have succeeded.
func announce(h asynq.Handler, n int, done func()) asynq.Handler {
	var ok atomic.Int64
	return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		err := h.ProcessTask(ctx, t)
		if err == nil && ok.Add(1) == int64(n) {
			done()
		}
		return err
	})
}

// handRolledCalls says what the hand-rolled handler calls.
func handRolledCalls(read bool) string {
	if read {
		return "the order read refundq's worker makes before a send, then the refund: --hand-rolled-read=false for the refund alone"
	}
	return "the refund call alone, where refundq's worker reads the order first (--hand-rolled-read=false)"
}
