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
	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/store"
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
	c := enqueue.New(env.Asynq, env.Client, enqueue.WithQueue(env.Queue), enqueue.WithPrefix(env.Prefix), enqueue.WithRegistry(registry()))
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
	l, err := store.New(env.Client, env.Prefix).Acquire(ctx, "rf-2", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.MarkSent(ctx, "test"); err != nil {
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
