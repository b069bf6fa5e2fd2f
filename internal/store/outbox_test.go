package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/refundq/refundq/internal/redistest"
	"github.com/refundq/refundq/internal/store"
)

// The outbox measures undelivered notifications: the oldest event's time
// and how many, each counted once however often it is added, gone once
// done, and forgotten past a horizon.
func TestOutbox(t *testing.T) {
	env := redistest.New(t)
	s := store.New(env.Client, env.Prefix)
	ctx := context.Background()
	if at, n, err := s.OutboxOldest(ctx); err != nil || !at.IsZero() || n != 0 {
		t.Fatalf("empty outbox: %v %d %v", at, n, err)
	}
	t0 := time.UnixMilli(1_800_000_000_000)
	for _, e := range []struct {
		id string
		at time.Time
	}{{"1-0", t0}, {"2-0", t0.Add(time.Minute)}, {"1-0", t0.Add(time.Hour)}, {"3-0", t0.Add(2 * time.Minute)}} {
		added, err := s.OutboxAdd(ctx, e.id, e.at)
		if err != nil {
			t.Fatal(err)
		}
		if want := e.at != t0.Add(time.Hour); added != want {
			t.Fatalf("OutboxAdd(%s at %v) entered it: %v, want %v", e.id, e.at, added, want)
		}
	}
	if at, n, err := s.OutboxOldest(ctx); err != nil || !at.Equal(t0) || n != 3 {
		t.Fatalf("outbox: oldest %v, %d, %v; want %v and 3 (1-0 added twice keeps its first time)", at, n, err, t0)
	}
	if err := s.OutboxDone(ctx, "1-0"); err != nil {
		t.Fatal(err)
	}
	if at, n, _ := s.OutboxOldest(ctx); !at.Equal(t0.Add(time.Minute)) || n != 2 {
		t.Fatalf("after 1-0 done: oldest %v, %d; want %v and 2", at, n, t0.Add(time.Minute))
	}
	if k, err := s.OutboxTrim(ctx, t0.Add(2*time.Minute)); err != nil || k != 1 {
		t.Fatalf("trim before the third: %d, %v; want 1", k, err)
	}
	if at, n, _ := s.OutboxOldest(ctx); !at.Equal(t0.Add(2*time.Minute)) || n != 1 {
		t.Fatalf("after trim: oldest %v, %d; want %v and 1", at, n, t0.Add(2*time.Minute))
	}
}
