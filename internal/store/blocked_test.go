package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/refundq/refundq/internal/redistest"
	"github.com/refundq/refundq/internal/store"
)

// A refund stays blocked since its first block while tries keep being
// refused, a send refused for our key included (the send's mark does not
// unblock it); the first outcome that is not a block clears both.
func TestBlockedSinceSurvivesARefusedSend(t *testing.T) {
	env := redistest.New(t)
	s := store.New(env.Client, env.Prefix)
	ctx := context.Background()
	if _, _, err := s.Create(ctx, refund("r-key")); err != nil {
		t.Fatal(err)
	}
	try := func(do func(l *store.Lease)) store.Record {
		t.Helper()
		l, _, err := s.Acquire(ctx, "r-key", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		do(l)
		if err := l.Release(ctx); err != nil {
			t.Fatal(err)
		}
		rec, err := s.Get(ctx, "r-key")
		if err != nil {
			t.Fatal(err)
		}
		return rec
	}
	block := func(l *store.Lease) {
		if err := l.Apply(ctx, store.Change{State: store.Processing, Blocked: "blocked: 401", Settled: true}); err != nil {
			t.Fatal(err)
		}
	}
	first := try(block)
	if first.BlockedAt.IsZero() {
		t.Fatalf("blocked with no blocked_at: %+v", first)
	}
	again := try(func(l *store.Lease) {
		if _, err := l.MarkSent(ctx, store.Send{Sent: "try"}); err != nil {
			t.Fatal(err)
		}
		block(l)
	})
	if !again.BlockedAt.Equal(first.BlockedAt) || again.Blocked == "" {
		t.Fatalf("after a refused send: blocked %q since %s; want still blocked since %s", again.Blocked, again.BlockedAt, first.BlockedAt)
	}
	done := try(func(l *store.Lease) {
		if err := l.Apply(ctx, store.Change{State: store.Processing, Settled: true}); err != nil {
			t.Fatal(err)
		}
	})
	if done.Blocked != "" || !done.BlockedAt.IsZero() {
		t.Fatalf("after an outcome that is not a block: blocked %q since %s; want neither", done.Blocked, done.BlockedAt)
	}
}
