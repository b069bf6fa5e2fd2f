package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/refundq/refundq/internal/redistest"
	"github.com/refundq/refundq/internal/store"
)

// A task result goes with the outcome into the task's hash, and nowhere
// when asynq has deleted the task meanwhile: a hash holding only a result
// is no task to asynq, and the task's id could not be enqueued again.
func TestATaskResultIsWrittenOnlyIntoATaskThatExists(t *testing.T) {
	env := redistest.New(t)
	s := store.New(env.Client, env.Prefix)
	ctx := context.Background()
	for _, id := range []string{"r-a", "r-b"} {
		if _, _, err := s.Create(ctx, refund(id)); err != nil {
			t.Fatal(err)
		}
	}
	task := env.Prefix + "task:r-a"
	env.Client.HSet(ctx, task, "msg", "x", "state", "active")
	l, _, _ := s.Acquire(ctx, "r-a", time.Minute)
	if err := l.Finish(ctx, store.Change{State: store.Succeeded, Settled: true,
		Result: store.TaskResult{Key: task, Value: []byte(`{"state":"succeeded"}`)}}); err != nil {
		t.Fatal(err)
	}
	if got := env.Client.HGet(ctx, task, "result").Val(); got != `{"state":"succeeded"}` {
		t.Fatalf("result in the task's hash = %q", got)
	}
	gone := env.Prefix + "task:r-b"
	l, _, _ = s.Acquire(ctx, "r-b", time.Minute)
	if err := l.Finish(ctx, store.Change{State: store.Succeeded, Settled: true,
		Result: store.TaskResult{Key: gone, Value: []byte(`{"state":"succeeded"}`)}}); err != nil {
		t.Fatal(err)
	}
	if env.Client.Exists(ctx, gone).Val() != 0 {
		t.Fatal("a result was written into a task asynq had deleted, making a hash that is no task")
	}
}
