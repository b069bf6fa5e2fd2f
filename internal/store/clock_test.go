package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/refundq/refundq/internal/redistest"
	"github.com/refundq/refundq/internal/store"
)

// A worker whose clock is ten minutes slow still stamps an attempt's
// sent_at, and its history, on Redis's clock: another worker comparing
// sent_at with its own lease's Now (the settle rule) is not ten minutes off.
func TestLeaseTimesAreOnRedisClock(t *testing.T) {
	env := redistest.New(t)
	ctx := context.Background()
	slow := store.New(env.Client, env.Prefix).WithClock(func() time.Time { return time.Now().Add(-10 * time.Minute) })
	if _, _, err := slow.Create(ctx, refund("r-clock")); err != nil {
		t.Fatal(err)
	}
	l, _, err := slow.Acquire(ctx, "r-clock", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	near := func(what string, got time.Time) {
		t.Helper()
		if d := time.Since(got); d < -time.Second || d > time.Second {
			t.Errorf("%s = %s, %s from Redis's (and this host's) clock; want within a second", what, got, d)
		}
	}
	near("lease Now", l.Now())
	if _, err := l.MarkSent(ctx, store.Send{Sent: "test"}); err != nil {
		t.Fatal(err)
	}
	rec, err := slow.Get(ctx, "r-clock")
	if err != nil {
		t.Fatal(err)
	}
	near("sent_at", rec.SentAt)
	hist, _ := slow.History(ctx, "r-clock")
	near("history entry", hist[len(hist)-1].At)
}
