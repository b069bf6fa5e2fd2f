package worker

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/refundq/refundq/internal/redistest"
	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/tasks"
)

// A blocked refund whose next try is refused by the guard (the breaker open
// for another refund's failures) stays blocked, since its first block: the
// refusal says nothing about our configuration, and must not restart the
// growing wait between two tries.
func TestHandBackKeepsABlock(t *testing.T) {
	env := redistest.New(t)
	log := logrus.New()
	log.SetOutput(io.Discard)
	w, err := New(Config{Redis: env.Asynq, RDB: env.Client, Registry: providers.NewRegistry(), Prefix: env.Prefix,
		Queue: env.Queue, Logger: log, AcceptRedisLoss: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.h.client.Close(); w.insp.Close() })
	ctx := context.Background()
	st := w.h.store
	r := tasks.Refund{Version: 1, RefundID: "r-hb", Provider: providers.MoyasarPG, OrderID: "o-hb", AmountMinor: 100, Currency: "SAR"}
	if _, _, err := st.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	l, _, err := st.Acquire(ctx, "r-hb", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Apply(ctx, store.Change{State: store.Queued, Blocked: "blocked: 401"}); err != nil {
		t.Fatal(err)
	}
	blocked, _ := st.Get(ctx, "r-hb")
	run := &run{Handler: w.h, lease: l, rec: blocked, log: log.WithField("refund_id", "r-hb")}
	if err := run.handBack(ctx, "circuit_open", "circuit open", time.Second); !isSnooze(err) {
		t.Fatalf("handBack = %v, want a hand-back (snooze)", err)
	}
	after, _ := st.Get(ctx, "r-hb")
	if after.Blocked != blocked.Blocked || !after.BlockedAt.Equal(blocked.BlockedAt) || after.BlockedAt.IsZero() {
		t.Fatalf("after a refused try: blocked %q since %s; want %q since %s", after.Blocked, after.BlockedAt, blocked.Blocked, blocked.BlockedAt)
	}
}
