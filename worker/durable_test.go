package worker_test

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"

	"github.com/refundq/refundq/enqueue"
	"github.com/refundq/refundq/internal/redisproc"
	"github.com/refundq/refundq/internal/redistest"
	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/providers/moyasarpg"
	"github.com/refundq/refundq/providers/moyasarpg/moyasarpgsim"
	"github.com/refundq/refundq/worker"
)

// A worker on a Redis that can promise nothing refuses to start unless told
// to accept the loss; on appendfsync always it starts.
func TestWorkerRefusesARedisThatPromisesNothing(t *testing.T) {
	lone := ownRedis(t, redisproc.Durable) // appendfsync everysec, no replica
	if v, _ := redisproc.Info(context.Background(), lone.Client(), "server"); !strings.HasPrefix(v["redis_version"], "7.0.") {
		t.Skipf("Redis %s promises WAITAOF", v["redis_version"])
	}
	always := redisproc.Durable
	always.Fsync = "always"
	for _, c := range []struct {
		name   string
		srv    *redisproc.Server
		accept bool
		ok     bool
	}{
		{"everysec, 7.0, no replica", lone, false, false},
		{"the same, loss accepted", lone, true, true},
		{"appendfsync always", ownRedis(t, always), false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			rdb := redis.NewClient(&redis.Options{Addr: c.srv.Addr})
			defer rdb.Close()
			log := logrus.New()
			log.SetOutput(io.Discard)
			w, err := worker.New(worker.Config{Redis: asynq.RedisClientOpt{Addr: c.srv.Addr}, RDB: rdb, Logger: log,
				Registry: providers.NewRegistry(), AcceptRedisLoss: c.accept, RecoverEvery: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			err = w.Start()
			if err == nil {
				w.Shutdown()
			}
			if (err == nil) != c.ok || err != nil && !strings.Contains(err.Error(), "appendfsync always") {
				t.Fatalf("Start = %v; want ok %v (a refusal saying what to set)", err, c.ok)
			}
		})
	}
}

// The mark that an attempt is in flight must be kept before the request
// leaves. Here Redis promises it through a replica, and the replica stops
// acknowledging just before the send: the mark is not confirmed, so nothing
// is sent and the attempt is recorded as not sent. Once the replica is back,
// the refund is sent, once.
func TestAnAttemptWhoseMarkIsNotKeptIsNotSent(t *testing.T) {
	primary := ownRedis(t, redisproc.Durable)
	o := redisproc.Durable
	o.ReplicaOf = primary.Addr
	replica := ownRedis(t, o)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := redisproc.WaitReplicaSynced(ctx, replica); err != nil {
		t.Fatal(err)
	}
	sim := moyasarpgsim.New(apiKey)
	srv := httptest.NewServer(sim)
	defer srv.Close()
	sim.AddOrder("ord-kept", mustMoney(t, "10.00", "SAR"))
	client, err := moyasarpg.New(moyasarpg.Config{BaseURL: srv.URL, APIKey: apiKey})
	if err != nil {
		t.Fatal(err)
	}
	reg := providers.NewRegistry(providers.Entry{Name: providers.MoyasarPG, Provider: client, Idempotent: true,
		SettleDelay: settleDelay, Schedule: providers.Schedule{First: time.Second, Max: time.Second, Horizon: time.Minute}})
	rdb := redis.NewClient(&redis.Options{Addr: primary.Addr})
	defer rdb.Close()
	aopt := asynq.RedisClientOpt{Addr: primary.Addr}
	log := logrus.New()
	log.SetOutput(io.Discard)
	w, err := worker.New(worker.Config{Redis: aopt, RDB: rdb, Registry: reg, Logger: log, RecoverEvery: time.Hour,
		Attempt: worker.AttemptPolicy{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond, MaxElapsed: time.Second, MaxTries: 3}})
	if err != nil {
		t.Fatal(err)
	}
	enq := enqueue.New(aopt, rdb)
	defer enq.Close()
	// The producer's own write waits for the replica too: it answers once
	// the refund is kept.
	if _, err := enq.Enqueue(ctx, enqueue.Request{RefundID: "rf-kept", Provider: providers.MoyasarPG, OrderID: "ord-kept",
		Amount: "10.00", Currency: "SAR"}); err != nil {
		t.Fatal(err)
	}
	// The replica stops (still connected: the primary counts it) before
	// the worker starts and marks the attempt.
	if err := replica.Pause(); err != nil {
		t.Fatal(err)
	}
	resumed := false
	defer func() {
		if !resumed {
			replica.Resume()
		}
	}()
	if err := w.Start(); err != nil {
		t.Fatalf("a Redis with a replica promises durability: %v", err)
	}
	defer w.Shutdown()
	st := store.New(rdb, "refundq:")
	notSent := func() bool {
		hist, _ := st.History(ctx, "rf-kept")
		for _, e := range hist {
			if e.Event == "decision" && strings.Contains(e.Detail, "not sent") && strings.Contains(e.Detail, "durable") {
				return true
			}
		}
		return false
	}
	for !notSent() {
		if ctx.Err() != nil {
			t.Fatal("no attempt recorded as not sent while the replica was paused")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := sim.Refunded("ord-kept"); len(got) != 0 {
		t.Fatalf("an attempt whose mark was not kept was sent: ledger %v", got)
	}
	rec, _ := st.Get(ctx, "rf-kept")
	if rec.InFlight != 0 || rec.State.Final() {
		t.Fatalf("record after the unkept mark = %+v; want nothing in flight, still open", rec)
	}
	replica.Resume()
	resumed = true
	for rec, _ = st.Get(ctx, "rf-kept"); !rec.State.Final(); rec, _ = st.Get(ctx, "rf-kept") {
		if ctx.Err() != nil {
			t.Fatalf("not final once the replica was back: %+v", rec)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if rec.State != store.Succeeded || len(sim.Refunded("ord-kept")) != 1 {
		t.Fatalf("record %+v, ledger %v; want succeeded, paid once", rec, sim.Refunded("ord-kept"))
	}
}

// ownRedis starts a redis-server of the test's own: the shared test Redis
// keeps nothing on disk, and its configuration is not ours to change.
func ownRedis(t *testing.T, o redisproc.Options) *redisproc.Server { return redistest.Server(t, o) }
