package worker_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"

	"github.com/refundq/refundq/enqueue"
	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/providers/catalog"
	"github.com/refundq/refundq/providers/sandbox"
	"github.com/refundq/refundq/tasks"
	"github.com/refundq/refundq/worker"
)

// A worker takes refund tasks from Redis and drives each refund with its
// provider to a final state. Here the provider is Moyasar PG's simulator on
// loopback and Redis is embedded; a deployment passes REDIS_URL's Redis and
// catalog.FromEnv(os.Getenv), the providers whose credentials are set.
func ExampleNew() {
	redisOpt, rdb, stopRedis := exampleRedis()
	defer stopRedis()
	env, stopSim := exampleMoyasar("ord_1", tasks.Money{Minor: 500000, Currency: "SAR"})
	defer stopSim()

	log := logrus.New()
	log.SetOutput(io.Discard) // JSON lines on stderr in a deployment
	w, err := worker.New(worker.Config{
		Redis: redisOpt, RDB: rdb, Logger: log,
		AcceptRedisLoss: true, // the embedded Redis keeps nothing; a deployment's keeps what it acknowledges
		Registry:        catalog.FromEnv(func(k string) string { return env[k] }),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := w.Start(); err != nil {
		fmt.Println(err)
		return
	}
	defer w.Shutdown()

	c := enqueue.New(redisOpt, rdb, enqueue.AcceptRedisLoss())
	defer c.Close()
	ctx := context.Background()
	if _, err := c.Enqueue(ctx, enqueue.Request{RefundID: "rf_1", Provider: "moyasarpg", OrderID: "ord_1",
		Amount: "100.00", Currency: "SAR"}); err != nil {
		fmt.Println(err)
		return
	}
	st := store.New(rdb, "refundq:")
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if rec, err := st.Get(ctx, "rf_1"); err == nil && rec.State.Final() {
			fmt.Println(rec.RefundID, rec.State, rec.Amount, "attempts:", rec.Attempts)
			return
		}
	}
	fmt.Println("not final in time")
	// Output: rf_1 succeeded 100.00 SAR attempts: 1
}

// exampleRedis starts an embedded Redis whose clock moves, as asynq needs.
func exampleRedis() (asynq.RedisClientOpt, *redis.Client, func()) {
	m := miniredis.NewMiniRedis()
	if err := m.StartAddr("127.0.0.1:0"); err != nil {
		panic(err)
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				m.FastForward(100 * time.Millisecond)
			}
		}
	}()
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	return asynq.RedisClientOpt{Addr: m.Addr()}, rdb, func() { rdb.Close(); close(done); m.Close() }
}

// exampleMoyasar serves Moyasar PG's simulator with one paid order and
// returns the environment that points a worker at it.
func exampleMoyasar(order string, paid tasks.Money) (map[string]string, func()) {
	dir, err := os.MkdirTemp("", "refundq-example-") // sandbox.New writes BBMSL's key here
	if err != nil {
		panic(err)
	}
	sims, err := sandbox.New(dir)
	if err != nil {
		panic(err)
	}
	for _, s := range sims {
		if s.Name != "moyasarpg" {
			continue
		}
		s.Pay(order, paid)
		url, stop, err := sandbox.Serve(s.Handler)
		if err != nil {
			panic(err)
		}
		env := map[string]string{}
		for _, line := range s.Env(url) {
			k, v, _ := strings.Cut(line, "=")
			env[k] = v
		}
		return env, func() { stop(); os.RemoveAll(dir) }
	}
	panic("no Moyasar PG simulator")
}
