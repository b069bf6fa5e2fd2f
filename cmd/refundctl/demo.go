package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"
	"golang.org/x/term"

	"github.com/refundq/refundq/enqueue"
	"github.com/refundq/refundq/internal/rediscfg"
	"github.com/refundq/refundq/providers/catalog"
	"github.com/refundq/refundq/providers/sandbox"
	"github.com/refundq/refundq/providers/sim"
	"github.com/refundq/refundq/store"
	"github.com/refundq/refundq/tasks"
	"github.com/refundq/refundq/worker"
)

// demoRefund is one refund of the demo batch.
type demoRefund struct {
	sim          *sandbox.Sim
	id, order    string
	paid, refund tasks.Money
	note         string
}

// refusal is a demo refund a provider refused at enqueue time.
type refusal struct {
	demoRefund
	err error
}

// runDemo runs the whole pipeline in one process: Redis (embedded unless
// REDIS_URL is set), every provider simulator on loopback, a worker, and a
// mixed batch of refunds, then prints where each one ended and checks the
// simulators' ledgers.
func runDemo(ctx context.Context, args []string, out, progress io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	verbose := fs.Bool("v", false, "show the worker's JSON log on stderr")
	timeout := fs.Duration("timeout", 2*time.Minute, "give up if refunds are not final by then")
	if err := fs.Parse(args); err != nil {
		return err
	}

	// Redis: embedded, with its clock driven so asynq's leases and schedules
	// move (miniredis never expires keys on its own).
	rc, where, cleanup, err := demoRedis(ctx)
	if err != nil {
		return err
	}
	defer cleanup()
	aopt, rdb := rc.Asynq, rc.NewClient()
	defer rdb.Close()
	// Each demo run has its own key prefix and queue, so running it against
	// a shared REDIS_URL touches nothing else.
	run := fmt.Sprintf("demo-%d", time.Now().UnixNano())
	prefix, queue := run+":", run

	// The simulators, over real HTTP on loopback, configured the way a
	// deployment is: through environment variables.
	keyDir, err := os.MkdirTemp("", "refundq-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(keyDir)
	sims, err := sandbox.New(keyDir)
	if err != nil {
		return err
	}
	env := map[string]string{}
	var names []string
	for i := range sims {
		url, stop, err := sandbox.Serve(sims[i].Handler)
		if err != nil {
			return err
		}
		defer stop()
		for _, line := range append(sims[i].Env(url), catalog.FastPolls(time.Second, 2*time.Second)...) {
			k, v, _ := strings.Cut(line, "=")
			env[k] = v
		}
		names = append(names, sims[i].Name)
	}
	reg := catalog.FromEnv(func(k string) string { return env[k] })

	log := logrus.New()
	log.SetFormatter(&logrus.JSONFormatter{})
	log.SetOutput(io.Discard)
	if *verbose {
		log.SetOutput(os.Stderr)
	}
	w, err := worker.New(worker.Config{Redis: aopt, RDB: rdb, Registry: reg, Prefix: prefix, Queue: queue, Logger: log})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "refundq demo: Redis %s; simulators of %s on loopback\n", where, strings.Join(names, ", "))

	var batch []demoRefund
	add := func(s *sandbox.Sim, kind string, paid, refund int64, note string) {
		id := "demo-" + s.Name + "-" + kind
		batch = append(batch, demoRefund{s, id, "ord-" + id,
			tasks.Money{Minor: paid, Currency: s.Currency}, tasks.Money{Minor: refund, Currency: s.Currency}, note})
	}
	for i := range sims {
		s := &sims[i]
		add(s, "full", 262346, 262346, "full refund")
		if s.Partial {
			add(s, "partial", 10000, 4000, "partial refund")
		} else {
			add(s, "partial", 10000, 4000, "partial refund where only whole payments are refunded: refused")
		}
		if s.MakePending != nil {
			add(s, "pending", 15000, 15000, "pending at the provider, then done (poll tasks)")
		}
		add(s, "too-much", 1000, 2500, "more than was paid: rejected")
	}
	enq := enqueue.New(aopt, rdb, enqueue.WithQueue(queue), enqueue.WithPrefix(prefix), enqueue.WithRegistry(reg))
	defer enq.Close()
	var refused []refusal
	for _, d := range batch {
		txn := d.sim.Pay(d.order, d.paid)
		if d.sim.MakePending != nil && strings.HasSuffix(d.id, "-pending") {
			d.sim.MakePending(d.order, 2)
		}
		r := enqueue.Request{RefundID: d.id, Provider: d.sim.Name, OrderID: d.order, TransactionID: txn,
			Amount: d.refund.Decimal(), Currency: d.refund.Currency, Reason: "requested"}
		if _, err := enq.Enqueue(ctx, r); err != nil {
			// A provider that can tell at enqueue time (Fatora: whole
			// payments only) refuses the over-refund before it is queued.
			if enqueue.IsInvalid(err) && (strings.HasSuffix(d.id, "-too-much") || !d.sim.Partial && strings.HasSuffix(d.id, "-partial")) {
				refused = append(refused, refusal{d, err})
				continue
			}
			return fmt.Errorf("enqueue %s: %w", d.id, err)
		}
		// The same refund again, as a double click would: still one refund.
		if res, err := enq.Enqueue(ctx, r); err != nil || res.Created {
			return fmt.Errorf("duplicate enqueue of %s was not recognised: created=%v err=%v", d.id, res.Created, err)
		}
	}
	fmt.Fprintf(out, "enqueued %d refunds, each twice (the second recognised as the same refund); %d refused at enqueue\n",
		len(batch)-len(refused), len(refused))

	// Each provider answers the worker's first request with a 503 and loses
	// the answer to its second after applying it.
	for i := range sims {
		sims[i].Faults.Next(1, http.MethodPost, "", sim.Status5xx)
		sims[i].Faults.Next(1, http.MethodPost, "", sim.AppliedThenReset)
	}
	if err := w.Start(); err != nil {
		return err
	}
	defer w.Shutdown()

	st := store.New(rdb, prefix)
	recs, err := awaitFinal(ctx, st, len(batch)-len(refused), *timeout, progress)
	if err != nil {
		return err
	}

	byID := map[string]demoRefund{}
	for _, d := range batch {
		byID[d.id] = d
	}
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nREFUND\tAMOUNT\tSTATE\tATTEMPTS\tPAID AT PROVIDER\tSCENARIO / DETAIL")
	byState := map[store.State]int{}
	var problems []string
	for _, r := range recs {
		d := byID[r.RefundID]
		byState[r.State]++
		applied := len(d.sim.Applied(r.OrderID))
		detail := d.note
		if r.State != store.Succeeded {
			detail += " — " + r.LastError
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d×\t%s\n", r.RefundID, r.Amount, r.State, r.Attempts, applied, detail)
		if want := map[bool]int{true: 1, false: 0}[r.State == store.Succeeded]; applied != want {
			problems = append(problems, fmt.Sprintf("%s is %s but was paid %d times", r.RefundID, r.State, applied))
		}
	}
	for _, r := range refused {
		byState["refused at enqueue"]++
		applied := len(r.sim.Applied(r.order))
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d×\t%s\n", r.id, r.refund, "(refused at enqueue)", 0, applied, r.note+" — "+r.err.Error())
		if applied != 0 {
			problems = append(problems, fmt.Sprintf("%s was refused at enqueue but was paid %d times", r.id, applied))
		}
	}
	tw.Flush()

	fmt.Fprintln(out, "\nBY STATE")
	states := make([]string, 0, len(byState))
	for s := range byState {
		states = append(states, string(s))
	}
	sort.Strings(states)
	for _, s := range states {
		fmt.Fprintf(out, "  %-20s %d\n", s, byState[store.State(s)])
	}
	fmt.Fprintln(out, "\nFAULTS INJECTED")
	for i := range sims {
		fmt.Fprintf(out, "  %-14s %s\n", sims[i].Name, sims[i].Faults)
	}
	if len(problems) > 0 {
		return errors.New("ledger check failed: " + strings.Join(problems, "; "))
	}
	fmt.Fprintln(out, "\nledger check: every succeeded refund paid exactly once, every failed refund paid zero times")
	return nil
}

// awaitFinal waits until n refunds are final, drawing progress on a terminal.
func awaitFinal(ctx context.Context, st *store.Store, n int, timeout time.Duration, progress io.Writer) ([]store.Record, error) {
	f, isFile := progress.(*os.File)
	tty := isFile && term.IsTerminal(int(f.Fd()))
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	lastLine := ""
	for {
		recs, err := st.List(ctx, 0)
		if err != nil {
			return nil, err
		}
		final, counts := 0, map[store.State]int{}
		for _, r := range recs {
			counts[r.State]++
			if r.State.Final() {
				final++
			}
		}
		line := fmt.Sprintf("%d/%d final  (queued %d, processing %d, pending %d, succeeded %d, failed %d, needs_review %d)",
			final, n, counts[store.Queued], counts[store.Processing], counts[store.Pending], counts[store.Succeeded], counts[store.Failed], counts[store.NeedsReview])
		if tty {
			fmt.Fprintf(progress, "\r%s%s", bar(final, n, 20), line)
		} else if line != lastLine {
			fmt.Fprintln(progress, line)
		}
		lastLine = line
		if final >= n && len(recs) >= n {
			if tty {
				fmt.Fprintln(progress)
			}
			return recs, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("demo: only %d of %d refunds final after %s", final, n, timeout)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
	}
}

func bar(done, total, width int) string {
	filled := 0
	if total > 0 {
		filled = done * width / total
	}
	return "[" + strings.Repeat("#", filled) + strings.Repeat(".", width-filled) + "] "
}

// demoRedis returns the Redis to use: REDIS_URL when set, else an embedded
// miniredis whose clock a ticker advances.
func demoRedis(ctx context.Context) (rc rediscfg.Config, where string, cleanup func(), err error) {
	if url := os.Getenv("REDIS_URL"); url != "" {
		rc, err := rediscfg.Parse(url)
		if err != nil {
			return rc, "", nil, err
		}
		return rc, rc.String() + " (REDIS_URL)", func() {}, nil
	}
	m := miniredis.NewMiniRedis()
	if err := m.StartAddr("127.0.0.1:0"); err != nil {
		return rc, "", nil, fmt.Errorf("demo: start embedded Redis: %w", err)
	}
	stop := make(chan struct{})
	go func() {
		const step = 100 * time.Millisecond
		t := time.NewTicker(step)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				m.FastForward(step)
			}
		}
	}()
	return rediscfg.FromOptions(&redis.Options{Addr: m.Addr()}), m.Addr() + " (embedded)", func() { close(stop); m.Close() }, nil
}
