package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"

	"github.com/refundq/refundq/enqueue"
	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/providers/moyasarpg"
	"github.com/refundq/refundq/providers/moyasarpg/moyasarpgsim"
	"github.com/refundq/refundq/tasks"
)

// simKey is the simulator's API key: a made-up test key.
const simKey = "sk_test_refund_bench"

// bareType is the task type of the hand-rolled and bare arms' tasks.
const bareType = "bench:bare"

// waitLimit bounds every wait for a drain to end, so a stuck arm fails the
// run instead of hanging it.
const waitLimit = 10 * time.Minute

// simServer is the Moyasar PG simulator served over real HTTP on loopback,
// answering after delay, counting the TCP connections it accepted and the
// refund requests it answered.
type simServer struct {
	sim     *moyasarpgsim.Simulator
	url     string
	srv     *http.Server
	accepts atomic.Int64
	posts   atomic.Int64
}

func startSim(delay time.Duration) (*simServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("simulator: %w", err)
	}
	s := &simServer{sim: moyasarpgsim.New(simKey), url: "http://" + ln.Addr().String()}
	s.sim.Guessed(true) // the refund's id is our transaction_id, as the adapter hopes
	s.sim.AutoCreate(tasks.Money{Minor: 1_000_000, Currency: "SAR"})
	s.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
		s.sim.ServeHTTP(w, r)
		if r.Method == http.MethodPost {
			s.posts.Add(1)
		}
	})}
	go s.srv.Serve(countingListener{ln, &s.accepts})
	return s, nil
}

func (s *simServer) close() { s.srv.Close() }

type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// adapter is the Moyasar PG adapter at the simulator with its default HTTP
// client, its pool sized to the worker's concurrency as refund-worker sizes
// it: refundq's provider, and the hand-rolled handler's.
func adapter(simURL string, conc int) (*moyasarpg.Client, error) {
	providers.PoolSize = max(conc, 10)
	return moyasarpg.New(moyasarpg.Config{BaseURL: simURL, APIKey: simKey})
}

// registry is a worker's: Moyasar PG through adapter.
func registry(simURL string, sched providers.Schedule, conc int) (*providers.Registry, error) {
	c, err := adapter(simURL, conc)
	if err != nil {
		return nil, err
	}
	return providers.NewRegistry(providers.Entry{Name: providers.MoyasarPG, Provider: c, Schedule: sched,
		Guesses: moyasarpg.Guesses}), nil
}

// quietLogger logs at info in JSON, as a production worker does, into
// nothing: the formatting is paid, the terminal is not.
func quietLogger() *logrus.Logger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	l.SetFormatter(&logrus.JSONFormatter{})
	l.SetLevel(logrus.InfoLevel)
	return l
}

// refund i of an arm run; every one on its own order.
func refund(i int) tasks.Refund {
	return tasks.Refund{Version: tasks.PayloadVersion, RefundID: fmt.Sprintf("rf-%07d", i), Provider: providers.MoyasarPG,
		OrderID: orderID(i), AmountMinor: 40333, Currency: "SAR", Reason: "requested"}
}

func orderID(i int) string { return fmt.Sprintf("ord-%07d", i) }

// rows is a bulk file of refunds first… first+n-1, as enqueue.ReadBulk
// would give it.
func rows(first, n int) []enqueue.Row {
	out := make([]enqueue.Row, n)
	for i := range out {
		r := refund(first + i)
		out[i] = enqueue.Row{Line: i + 2, Request: enqueue.Request{RefundID: r.RefundID, Provider: r.Provider,
			OrderID: r.OrderID, Amount: r.Money().Decimal(), Currency: r.Currency, Reason: r.Reason}}
	}
	return out
}

// enqueueRefunds queues refunds first… first+count-1 the way a producer
// does, untimed.
func (b *bench) enqueueRefunds(ctx context.Context, n ns, first, count int) error {
	rdb := b.client(nil)
	defer rdb.Close()
	c := enqueue.New(b.asynqOpt(), rdb, b.enqueueOpts(n)...)
	defer c.Close()
	sum := c.EnqueueBulk(ctx, rows(first, count), enqueue.BulkOptions{Concurrency: 16})
	if sum.Enqueued != count {
		return fmt.Errorf("enqueued %d of %d refunds: %v", sum.Enqueued, count, sum.Errors[:min(3, len(sum.Errors))])
	}
	return nil
}

// bareTask is the hand-rolled and bare arms' task for refund i: the same
// payload bytes as refundq's task, an id of its own.
func bareTask(i int, id, queue string) (*asynq.Task, error) {
	payload, err := tasks.EncodeRefund(refund(i))
	if err != nil {
		return nil, err
	}
	return asynq.NewTask(bareType, payload, asynq.TaskID(id), asynq.Queue(queue)), nil
}

// enqueueBare enqueues the bareTasks of refunds first… first+count-1 from
// conc goroutines and returns how many asynq refused as already there.
func enqueueBare(ctx context.Context, ac *asynq.Client, queue string, first, count, conc int) (conflicts int64, err error) {
	work := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conflictN atomic.Int64
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				t, e := bareTask(i, fmt.Sprintf("bare:%d:0", i), queue)
				if e == nil {
					_, e = ac.EnqueueContext(ctx, t)
				}
				if errors.Is(e, asynq.ErrTaskIDConflict) {
					conflictN.Add(1)
					continue
				}
				if e != nil {
					mu.Lock()
					err = e
					mu.Unlock()
				}
			}
		}()
	}
	for i := range count {
		work <- first + i
	}
	close(work)
	wg.Wait()
	return conflictN.Load(), err
}

// finals counts the refunds that are final in the store, reading only the
// succeeded ones when those are all there are to wait for: the drain's
// commandstats count these reads too.
func finals(ctx context.Context, st *store.Store, count int) (succeeded, final int, err error) {
	for _, s := range []store.State{store.Succeeded, store.Failed, store.NeedsReview} {
		_, n, err := st.ListState(ctx, s, 0, 1)
		if err != nil {
			return 0, 0, err
		}
		if s == store.Succeeded {
			succeeded = n
		}
		if final += n; final >= count {
			break
		}
	}
	return succeeded, final, nil
}

// waitFinal waits until count refunds are final. Until the simulator has
// answered count refund requests it looks once a second; from then on every
// millisecond, so the store is hardly read while the drain runs.
func waitFinal(ctx context.Context, st *store.Store, count int, posts *atomic.Int64) error {
	deadline := time.Now().Add(waitLimit)
	var last time.Time
	for time.Now().Before(deadline) {
		if posts.Load() >= int64(count) || time.Since(last) >= time.Second {
			last = time.Now()
			_, n, err := finals(ctx, st, count)
			if err != nil {
				return err
			}
			if n >= count {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
	return fmt.Errorf("refunds not final after %s", waitLimit)
}

// checkSucceeded fails an arm run whose refunds did not all succeed: its
// figures would not be a refund's.
func checkSucceeded(ctx context.Context, st *store.Store, count int) error {
	ok, n, err := finals(ctx, st, count)
	if err != nil {
		return err
	}
	if ok != count {
		return fmt.Errorf("%d of %d refunds succeeded (%d final)", ok, count, n)
	}
	return nil
}

// waitQueueDone waits until an asynq queue holds no task left to run (tasks
// without a retention are deleted once done). It reads asynq v0.26's own lists and sets,
// in one pipelined round trip: the Inspector's queue summary runs two scripts
// and samples memory, which would load the Redis being measured. gate, when
// not nil, must reach count first.
func waitQueueDone(ctx context.Context, rdb *redis.Client, queue string, count int, gate *atomic.Int64) error {
	deadline := time.Now().Add(waitLimit)
	key := func(s string) string { return "asynq:{" + queue + "}:" + s }
	for time.Now().Before(deadline) {
		if gate == nil || gate.Load() >= int64(count) {
			var pending, active, scheduled, retry, archived *redis.IntCmd
			_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
				pending, active = p.LLen(ctx, key("pending")), p.LLen(ctx, key("active"))
				scheduled, retry = p.ZCard(ctx, key("scheduled")), p.ZCard(ctx, key("retry"))
				archived = p.ZCard(ctx, key("archived"))
				return nil
			})
			if err != nil {
				return fmt.Errorf("queue %s: %w", queue, err)
			}
			if archived.Val() > 0 {
				return fmt.Errorf("%d tasks archived", archived.Val())
			}
			if pending.Val()+active.Val()+scheduled.Val()+retry.Val() == 0 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
	return fmt.Errorf("tasks not done after %s", waitLimit)
}

// bareServer is an asynq server on queue with asynq's defaults (retries
// too), polling as often as the refundq worker does.
func bareServer(opt asynq.RedisConnOpt, queue string, conc int, poll time.Duration) *asynq.Server {
	return asynq.NewServer(opt, asynq.Config{Concurrency: conc, Queues: map[string]int{queue: 1},
		LogLevel: asynq.WarnLevel, DelayedTaskCheckInterval: poll, TaskCheckInterval: poll})
}
