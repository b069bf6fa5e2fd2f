package worker_test

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/sirupsen/logrus"

	"github.com/refundq/refundq/enqueue"
	"github.com/refundq/refundq/internal/redisproc"
	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/providers/moyasarpg"
	"github.com/refundq/refundq/providers/moyasarpg/moyasarpgsim"
	"github.com/refundq/refundq/worker"
)

// commandBudget is the most Redis commands a refund may cost on the
// instant path, asynq's own included, as INFO commandstats counts them
// (a command inside a script counts, and so does the EVALSHA that runs it).
// asynq alone costs 14 (dequeue, completion, the processed counters); the
// rest (26) is refundq's: the lease, the mark that the attempt is in flight
// and the final write with the task's result for asynqmon, each one script.
// Raise it only with a reason the next reader accepts: every command here
// is paid by every refund, and Redis CPU is what bounds a fleet.
const commandBudget = 41

// The command budget per refund holds: a drain of refunds that succeed at
// once, on a Redis of the test's own (so no other test's commands count).
func TestRedisCommandsPerRefundStayInBudget(t *testing.T) {
	const n = 400
	srv := ownRedis(t, redisproc.Options{})
	ctx := context.Background()
	rdb := srv.Client()
	t.Cleanup(func() { rdb.Close() })
	sim := moyasarpgsim.New(apiKey)
	sim.Guessed(true)
	sim.AutoCreate(mustMoney(t, "100.00", "SAR"))
	hs := httptest.NewServer(sim)
	t.Cleanup(hs.Close)
	client, err := moyasarpg.New(moyasarpg.Config{BaseURL: hs.URL, APIKey: apiKey})
	if err != nil {
		t.Fatal(err)
	}
	reg := providers.NewRegistry(providers.Entry{Name: providers.MoyasarPG, Provider: client, SettleDelay: settleDelay,
		Idempotent: true, Guesses: moyasarpg.Guesses, Schedule: moyasarpg.Schedule})
	opt := asynq.RedisClientOpt{Addr: srv.Addr}
	const prefix, queue = "refundq:", "refunds"
	enq := enqueue.New(opt, rdb, enqueue.WithQueue(queue), enqueue.WithPrefix(prefix), enqueue.WithRegistry(reg), enqueue.AcceptRedisLoss())
	t.Cleanup(func() { enq.Close() })
	// The producers' side is not counted: a worker must be announced for
	// the enqueue client to accept a refund, so the worker is built first.
	log := logrus.New()
	log.SetOutput(io.Discard)
	w, err := worker.New(worker.Config{AcceptRedisLoss: true, Redis: opt, RDB: rdb, Registry: reg, Prefix: prefix,
		Queue: queue, Logger: log, Concurrency: 20, RecoverEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.New(rdb, prefix).AnnounceWorker(ctx, queue, []string{providers.MoyasarPG}, time.Minute); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		r := req(fmt.Sprintf("cmd-%d", i), fmt.Sprintf("ord-cmd-%d", i), "12.34")
		if _, err := enq.Enqueue(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := rdb.ConfigResetStat(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Shutdown()
	polls := 0
	deadline := time.Now().Add(60 * time.Second)
	for {
		polls++
		done, err := rdb.ZCard(ctx, prefix+"state:succeeded").Result()
		if err != nil {
			t.Fatal(err)
		}
		if done == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d refunds succeeded after 60 s", done, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	calls, err := redisproc.CommandCalls(ctx, rdb)
	if err != nil {
		t.Fatal(err)
	}
	calls["zcard"] -= int64(polls) // the test's own
	delete(calls, "info")
	var total int64
	for _, c := range calls {
		total += c
	}
	perRefund := float64(total) / n
	t.Logf("Redis commands per refund: %.1f (budget %d): %s", perRefund, commandBudget, byCommand(calls, n))
	if perRefund > commandBudget {
		t.Fatalf("a refund costs %.1f Redis commands, over the budget of %d: %s", perRefund, commandBudget, byCommand(calls, n))
	}
}

// byCommand lists the calls per refund, most first.
func byCommand(calls map[string]int64, n int) string {
	names := slices.SortedFunc(maps.Keys(calls), func(a, b string) int {
		if calls[a] != calls[b] {
			return int(calls[b] - calls[a])
		}
		return strings.Compare(a, b)
	})
	var parts []string
	for _, name := range names {
		if per := float64(calls[name]) / float64(n); per >= 0.05 {
			parts = append(parts, fmt.Sprintf("%s %.2f", name, per))
		}
	}
	return strings.Join(parts, ", ")
}
