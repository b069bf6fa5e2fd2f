package store_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/refundq/refundq/internal/redistest"
	"github.com/refundq/refundq/internal/store"
)

// TrimEvents deletes exactly the events appended before the cut, keeps the
// rest, and reports what each group had not acknowledged among them: the
// events of a group that never read, the unacknowledged and never-given ones
// of a group that read some, nothing for a group that acknowledged all it
// loses. A second trim reports nothing again.
func TestTrimEventsByAgeReportsUndelivered(t *testing.T) {
	env := redistest.New(t)
	s := store.New(env.Client, env.Prefix)
	ctx := context.Background()
	if n, lost, err := s.TrimEvents(ctx, time.Now(), 10); n != 0 || lost != nil || err != nil {
		t.Fatalf("trim of no stream = %d, %v, %v", n, lost, err)
	}

	// Stream ids are the milliseconds of the append: write them in the past.
	cut := time.Now().Add(-time.Hour).UnixMilli()
	add := func(id string) {
		t.Helper()
		if err := env.Client.XAdd(ctx, &redis.XAddArgs{Stream: s.EventsKey(), ID: id,
			Values: []any{"refund_id", "rf-" + id, "to", "succeeded"}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	var old, kept []string
	for i := range 5 {
		old = append(old, fmt.Sprintf("%d-%d", cut-3_600_000, i))
	}
	old = append(old, fmt.Sprintf("%d-0", cut-1)) // a millisecond too old
	kept = []string{fmt.Sprintf("%d-0", cut), fmt.Sprintf("%d-0", time.Now().UnixMilli())}
	for _, id := range append(slices.Clone(old), kept...) {
		add(id)
	}

	if err := env.Client.XGroupCreate(ctx, s.EventsKey(), "unread", "0").Err(); err != nil {
		t.Fatal(err)
	}
	// "partial" is given four old events and acknowledges two of them.
	read := func(group string, n int) []store.Event {
		t.Helper()
		evs, err := s.ReadEvents(ctx, group, "c1", n, 0)
		if err != nil || len(evs) != n {
			t.Fatalf("%s read %d events, %v; want %d", group, len(evs), err, n)
		}
		return evs
	}
	read("partial", 4)
	if err := s.Ack(ctx, "partial", old[0], old[2]); err != nil {
		t.Fatal(err)
	}
	// "done" acknowledges every old event; the recent ones it holds unacknowledged are not trimmed.
	read("done", len(old)+len(kept))
	if err := s.Ack(ctx, "done", old...); err != nil {
		t.Fatal(err)
	}

	n, lost, err := s.TrimEvents(ctx, time.UnixMilli(cut), 4)
	if err != nil || n != int64(len(old)) {
		t.Fatalf("trim = %d, %v; want %d deleted", n, err, len(old))
	}
	left, err := env.Client.XRange(ctx, s.EventsKey(), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var leftIDs []string
	for _, m := range left {
		leftIDs = append(leftIDs, m.ID)
	}
	if !slices.Equal(leftIDs, kept) {
		t.Fatalf("left in the stream: %v; want %v", leftIDs, kept)
	}

	got := map[string]store.Undelivered{}
	for _, u := range lost {
		got[u.Group] = u
	}
	if len(got) != 2 {
		t.Fatalf("groups reported: %+v; want unread and partial only", lost)
	}
	want := map[string]struct {
		count int
		ids   []string
	}{
		"unread":  {6, old[:4]}, // the sample is the oldest four
		"partial": {4, []string{old[1], old[3], old[4], old[5]}},
	}
	for group, w := range want {
		u := got[group]
		var ids []string
		for _, ev := range u.Events {
			ids = append(ids, ev.ID)
			if ev.RefundID != "rf-"+ev.ID {
				t.Errorf("%s: event %s has refund id %q", group, ev.ID, ev.RefundID)
			}
		}
		if u.Count != w.count || !slices.Equal(ids, w.ids) {
			t.Errorf("%s lost %d %v; want %d %v", group, u.Count, ids, w.count, w.ids)
		}
	}

	// The ids "partial" never acknowledged stay in its pending list: they
	// were reported once, and are not again.
	if n, lost, err := s.TrimEvents(ctx, time.UnixMilli(cut), 4); n != 0 || lost != nil || err != nil {
		t.Fatalf("second trim = %d, %+v, %v; want nothing", n, lost, err)
	}
}
