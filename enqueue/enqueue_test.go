package enqueue_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/refundq/refundq/enqueue"
	"github.com/refundq/refundq/internal/redistest"
	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/tasks"
)

// neverCalled stands in for a configured provider: enqueueing never calls one.
type neverCalled struct{}

func (neverCalled) Refund(context.Context, providers.Refund) providers.Outcome { panic("called") }
func (neverCalled) Lookup(context.Context, providers.Refund) providers.Outcome { panic("called") }

func registry() *providers.Registry {
	return providers.NewRegistry(
		providers.Entry{Name: providers.MoyasarPG, Provider: neverCalled{}},
		providers.Entry{Name: providers.Fatora, Missing: []string{"FATORA_API_KEY"}},
	)
}

func newClient(t *testing.T) (*enqueue.Client, *redistest.Env) {
	env := redistest.New(t)
	c := enqueue.New(env.Asynq, env.Client, enqueue.WithQueue(env.Queue), enqueue.WithPrefix(env.Prefix), enqueue.WithRegistry(registry()), enqueue.AcceptRedisLoss())
	t.Cleanup(func() { c.Close() })
	return c, env
}

func req(id, amount string) enqueue.Request {
	return enqueue.Request{RefundID: id, Provider: providers.MoyasarPG, OrderID: "ord-1", Amount: amount, Currency: "SAR"}
}

func pending(t *testing.T, env *redistest.Env) []*asynq.TaskInfo {
	t.Helper()
	insp := asynq.NewInspector(env.Asynq)
	defer insp.Close()
	list, err := insp.ListPendingTasks(env.Queue)
	if err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
		t.Fatal(err)
	}
	return list
}

func TestEnqueueIsIdempotentByRefundID(t *testing.T) {
	c, env := newClient(t)
	ctx := context.Background()
	first, err := c.Enqueue(ctx, req("rf-1", "403.33"))
	if err != nil || !first.Created || first.Record.Amount != (tasks.Money{Minor: 40333, Currency: "SAR"}) {
		t.Fatalf("first enqueue = %+v, %v", first, err)
	}
	again, err := c.Enqueue(ctx, req("rf-1", "403.33"))
	if err != nil || again.Created || again.Record.Key != first.Record.Key {
		t.Fatalf("second enqueue = %+v, %v; want the existing refund", again, err)
	}
	if n := len(pending(t, env)); n != 1 {
		t.Fatalf("%d tasks queued, want 1", n)
	}
	_, err = c.Enqueue(ctx, req("rf-1", "403.34"))
	if !errors.Is(err, store.ErrConflict) || !strings.Contains(err.Error(), "amount") || !enqueue.IsInvalid(err) {
		t.Fatalf("same id, other amount: %v; want ErrConflict naming the amount", err)
	}
}

func TestNoSecondTaskAfterTheFirstIsGone(t *testing.T) {
	c, env := newClient(t)
	ctx := context.Background()
	if _, err := c.Enqueue(ctx, req("rf-2", "10.00")); err != nil {
		t.Fatal(err)
	}
	// A worker took it (the record moved on) and asynq forgot the task.
	insp := asynq.NewInspector(env.Asynq)
	defer insp.Close()
	if err := insp.DeleteTask(env.Queue, tasks.RefundTaskID("rf-2")); err != nil {
		t.Fatal(err)
	}
	l, _, err := store.New(env.Client, env.Prefix).Acquire(ctx, "rf-2", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.MarkSent(ctx, store.Send{Sent: "test"}); err != nil {
		t.Fatal(err)
	}
	res, err := c.Enqueue(ctx, req("rf-2", "10.00"))
	if err != nil || res.Created || res.Record.State != store.Processing {
		t.Fatalf("re-enqueue = %+v, %v", res, err)
	}
	if n := len(pending(t, env)); n != 0 {
		t.Fatalf("%d tasks queued after re-enqueue of a refund in progress, want 0", n)
	}
}

// asynq keeps the id of an archived (or retained completed) task, so "the
// task id exists" is not "it will run": the producer replaces such a task of
// a refund that is still queued.
func TestArchivedTaskOfAnOpenRefundIsReplaced(t *testing.T) {
	c, env := newClient(t)
	ctx := context.Background()
	if _, err := c.Enqueue(ctx, req("rf-arch", "10.00")); err != nil {
		t.Fatal(err)
	}
	insp := asynq.NewInspector(env.Asynq)
	defer insp.Close()
	if err := insp.ArchiveTask(env.Queue, tasks.RefundTaskID("rf-arch")); err != nil { // an operator's click
		t.Fatal(err)
	}
	res, err := c.Enqueue(ctx, req("rf-arch", "10.00"))
	if err != nil || res.Created {
		t.Fatalf("re-enqueue = %+v, %v", res, err)
	}
	info, err := insp.GetTaskInfo(env.Queue, tasks.RefundTaskID("rf-arch"))
	if err != nil || info.State != asynq.TaskStatePending {
		t.Fatalf("task after re-enqueue: %+v, %v; want it pending again", info, err)
	}
}

func TestEnqueueRejectsBadInputClearly(t *testing.T) {
	c, env := newClient(t)
	ctx := context.Background()
	tests := []struct {
		req  enqueue.Request
		want string
	}{
		{req("rf-3", "10.005"), "SAR has 2 decimals"},
		{req("rf-3", "12,50"), "only digits"},
		{req("rf-3", "0"), "greater than zero"},
		{enqueue.Request{RefundID: "rf-3", Provider: providers.MoyasarPG, Amount: "1", Currency: "SAR"}, "order_id: is required"},
		{enqueue.Request{RefundID: "rf-3", Provider: "paypal", OrderID: "o", Amount: "1", Currency: "SAR"}, "unknown provider"},
		{enqueue.Request{RefundID: "rf-3", Provider: providers.Fatora, OrderID: "o", Amount: "1", Currency: "QAR"}, "FATORA_API_KEY"},
		{enqueue.Request{RefundID: "rf-3", Provider: providers.MoyasarPG, OrderID: "o", Amount: "1", Currency: "XYZ"}, "unknown currency"},
	}
	for _, tt := range tests {
		_, err := c.Enqueue(ctx, tt.req)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !enqueue.IsInvalid(err) {
			t.Errorf("Enqueue(%+v) = %v; want an invalid-input error containing %q", tt.req, err, tt.want)
		}
	}
	if n := len(pending(t, env)); n != 0 {
		t.Fatalf("bad input queued %d tasks", n)
	}
	if _, err := store.New(env.Client, env.Prefix).Get(ctx, "rf-3"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("bad input left a record: %v", err)
	}
}

// Validate reports every bad field at once: a bad currency does not hide a
// bad amount, nor do both hide an unknown provider.
func TestValidateReportsEveryFieldAtOnce(t *testing.T) {
	c, _ := newClient(t)
	_, err := c.Validate(enqueue.Request{RefundID: "rf 4", Provider: "paypal", OrderID: "o", Amount: "12,50", Currency: "XXX"})
	want := `invalid refund: currency: currency "XXX": unknown currency; ` +
		`amount: amount "12,50": only digits and one '.' are allowed (no sign, exponent or separator); ` +
		`refund_id: may contain only letters, digits and . _ : -; ` +
		`provider: unknown provider "paypal" (known: fatora, moyasarpg)`
	if err == nil || err.Error() != want || !enqueue.IsInvalid(err) {
		t.Fatalf("Validate = %v\nwant %s", err, want)
	}
	// A provider the registry knows passes, configured here or not: whether
	// a worker has it is EnqueueRefund's question.
	for _, p := range []string{providers.MoyasarPG, providers.Fatora} {
		r, err := c.Validate(enqueue.Request{RefundID: "rf-4", Provider: p, OrderID: "o", Amount: "1.50", Currency: "SAR"})
		if err != nil || r.AmountMinor != 150 || r.Provider != p {
			t.Errorf("%s: %+v, %v", p, r, err)
		}
	}
}

// Producers hold no credentials: whether a provider is configured is what
// the running workers of the queue announce.
func TestProviderNoRunningWorkerHasIsRefused(t *testing.T) {
	env := redistest.New(t)
	c := enqueue.New(env.Asynq, env.Client, enqueue.WithQueue(env.Queue), enqueue.WithPrefix(env.Prefix), enqueue.AcceptRedisLoss()) // default: rules only
	t.Cleanup(func() { c.Close() })
	ctx := context.Background()
	fatora := enqueue.Request{RefundID: "rf-f1", Provider: providers.Fatora, OrderID: "o-1", TransactionID: "t-1", Amount: "5.00", Currency: "QAR"}

	// No worker has announced itself: nobody to ask, the refund waits.
	if res, err := c.Enqueue(ctx, fatora); err != nil || !res.Created {
		t.Fatalf("with no worker running: %+v, %v", res, err)
	}
	// A worker of this queue runs with Moyasar PG only.
	s := store.New(env.Client, env.Prefix)
	if err := s.AnnounceWorker(ctx, env.Queue, []string{providers.MoyasarPG}, time.Minute); err != nil {
		t.Fatal(err)
	}
	// A client trusts what it learnt for a couple of seconds; a new one asks.
	c = enqueue.New(env.Asynq, env.Client, enqueue.WithQueue(env.Queue), enqueue.WithPrefix(env.Prefix), enqueue.AcceptRedisLoss())
	t.Cleanup(func() { c.Close() })
	fatora.RefundID, fatora.OrderID = "rf-f2", "o-2"
	_, err := c.Enqueue(ctx, fatora)
	if !errors.Is(err, providers.ErrDisabled) || !enqueue.IsInvalid(err) || !strings.Contains(err.Error(), "set FATORA_API_KEY on the workers") {
		t.Fatalf("fatora with no worker configured for it: err = %v", err)
	}
	// The refund accepted before the announcement is still the same refund.
	fatora.RefundID, fatora.OrderID = "rf-f1", "o-1"
	if res, err := c.Enqueue(ctx, fatora); err != nil || res.Created {
		t.Fatalf("known refund id again: %+v, %v; want its record", res, err)
	}
	if res, err := c.Enqueue(ctx, req("rf-m1", "5.00")); err != nil || !res.Created {
		t.Fatalf("moyasarpg, which a worker has: %+v, %v", res, err)
	}
	// A worker announced on another queue says nothing about this one.
	if enabled, anyWorker, err := s.Serving(ctx, env.Queue+"-other", providers.MoyasarPG); err != nil || enabled || anyWorker {
		t.Fatalf("another queue: enabled %v, any worker %v, %v", enabled, anyWorker, err)
	}
}

// The task options refundq's guarantees rest on (its id, its retries, its
// timeout) are what the producer enqueues, and no option of the client can
// change them.
func TestTaskCarriesRefundqsOptions(t *testing.T) {
	c, env := newClient(t)
	if _, err := c.Enqueue(context.Background(), req("rf-opts", "10.00")); err != nil {
		t.Fatal(err)
	}
	insp := asynq.NewInspector(env.Asynq)
	defer insp.Close()
	info, err := insp.GetTaskInfo(env.Queue, tasks.RefundTaskID("rf-opts"))
	if err != nil {
		t.Fatal(err)
	}
	// asynq's MaxRetry is the refund's budget and one more retry for a last
	// run that hands its task back (tasks.MaxRetry).
	if info.MaxRetry != tasks.MaxRetry+1 || info.Timeout != tasks.Timeout || info.Queue != env.Queue {
		t.Fatalf("task %+v; want MaxRetry %d, timeout %s on queue %s", info, tasks.MaxRetry+1, tasks.Timeout, env.Queue)
	}
}
