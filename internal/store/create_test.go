package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/refundq/refundq/internal/redistest"
	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/tasks"
)

func soleRefund(id, order string) tasks.Refund {
	r := refund(id)
	r.Provider, r.OrderID = "bbmsl", order
	return r
}

// CreateMany answers each refund as Create or CreateSole would, taking them
// in order, and a Redis error on one refund leaves the others answered.
func TestCreateManyAnswersEachRefund(t *testing.T) {
	env := redistest.New(t)
	s := store.New(env.Client, env.Prefix)
	ctx := context.Background()
	old, _, err := s.Create(ctx, refund("r-old"))
	if err != nil {
		t.Fatal(err)
	}
	// A key of the wrong type where r-broken's order's refunds go.
	if err := env.Client.Set(ctx, env.Prefix+"order:moyasarpg:ord-broken", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	broken := refund("r-broken")
	broken.OrderID = "ord-broken"
	changed := refund("r-old")
	changed.AmountMinor = 1600
	got := s.CreateMany(ctx, []store.NewRefund{
		{Refund: refund("r-new")},
		{Refund: refund("r-old")},
		{Refund: changed},
		{Refund: soleRefund("r-first", "ord-s"), Sole: true},
		{Refund: soleRefund("r-second", "ord-s"), Sole: true},
		{Refund: refund("r-old"), IfKnown: true},
		{Refund: refund("r-unknown"), IfKnown: true},
		{Refund: broken},
		{Refund: refund("r-after")},
	})
	check := func(i int, created bool, state store.State, errIs error) {
		t.Helper()
		g := got[i]
		if g.Created != created || g.Record.State != state || (errIs == nil) != (g.Err == nil) || errIs != nil && !errors.Is(g.Err, errIs) {
			t.Errorf("refund %d: %+v; want created %v, state %q, error %v", i, g, created, state, errIs)
		}
	}
	check(0, true, store.Queued, nil)
	check(1, false, store.Queued, nil)
	check(2, false, store.Queued, store.ErrConflict)
	check(3, true, store.Queued, nil)
	check(4, false, "", store.ErrOrderTaken)
	check(5, false, store.Queued, nil)
	check(6, false, "", store.ErrNotFound)
	check(8, true, store.Queued, nil)
	if got[1].Record.Key != old.Key || got[5].Record.Key != old.Key {
		t.Errorf("existing refund's key %q / %q, want %q", got[1].Record.Key, got[5].Record.Key, old.Key)
	}
	var taken *store.OrderTakenError
	if !errors.As(got[4].Err, &taken) || taken.Owner != "r-first" || taken.State != store.Queued {
		t.Errorf("second refund on the order: %v; want it taken by r-first (queued)", got[4].Err)
	}
	if g := got[7]; g.Err == nil || !strings.Contains(g.Err.Error(), "WRONGTYPE") || g.Created {
		t.Errorf("refund on a broken key: %+v; want its own WRONGTYPE error", g)
	}
	if _, err := s.Get(ctx, "r-unknown"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("IfKnown created r-unknown: %v", err)
	}
	// What CreateMany says it made is what a read finds, in every index.
	for _, i := range []int{0, 3, 8} {
		id := got[i].Record.RefundID
		rec, err := s.Get(ctx, id)
		if err != nil || rec.Key != got[i].Record.Key || rec.State != store.Queued || rec.Amount != got[i].Record.Amount {
			t.Errorf("%s reads %+v, %v; want %+v", id, rec, err, got[i].Record)
		}
		if due, err := s.Due(ctx, id); err != nil || due.IsZero() {
			t.Errorf("%s not due: %v", id, err)
		}
	}
	if _, n, _ := s.ListState(ctx, store.Queued, 0, 10); n != 5 { // r-old, r-new, r-first, r-after and r-broken's record
		t.Errorf("%d refunds queued, want 5", n)
	}
	if n, _ := env.Client.XLen(ctx, s.EventsKey()).Result(); n != 4 {
		t.Errorf("%d events, want 4 (one a refund created, r-broken's failed before)", n)
	}
	// The record of the refund that failed after it was written is in the
	// due index: the recoverer sees it, and creating it again answers with
	// it.
	if due, err := s.Due(ctx, "r-broken"); err != nil || due.IsZero() {
		t.Errorf("r-broken's record is not due: %v", err)
	}
}

// One durability wait covers a whole CreateMany; a wait that fails is the
// error of every refund whose answer rests on a write being kept.
func TestCreateManyWaitsOnceForDurability(t *testing.T) {
	env := redistest.New(t)
	ctx := context.Background()
	waits := 0
	var fail error
	s := store.New(env.Client, env.Prefix).WithDurability(func(context.Context) error { waits++; return fail })
	if _, _, err := s.CreateSole(ctx, soleRefund("r-held", "ord-h")); err != nil {
		t.Fatal(err)
	}
	waits = 0
	got := s.CreateMany(ctx, []store.NewRefund{{Refund: refund("r-1")}, {Refund: refund("r-2")}, {Refund: soleRefund("r-held", "ord-h"), Sole: true}})
	if waits != 1 || got[0].Err != nil || got[1].Err != nil || got[2].Err != nil {
		t.Fatalf("%d waits for three refunds, results %+v; want one wait", waits, got)
	}
	// Refused or unknown refunds rest on no write: no wait.
	waits = 0
	got = s.CreateMany(ctx, []store.NewRefund{{Refund: soleRefund("r-x", "ord-h"), Sole: true}, {Refund: refund("r-y"), IfKnown: true}})
	if waits != 0 || !errors.Is(got[0].Err, store.ErrOrderTaken) || !errors.Is(got[1].Err, store.ErrNotFound) {
		t.Fatalf("%d waits, results %+v", waits, got)
	}
	fail = errors.New("no fsync")
	got = s.CreateMany(ctx, []store.NewRefund{{Refund: refund("r-3")}, {Refund: refund("r-1")}, {Refund: soleRefund("r-z", "ord-h"), Sole: true}})
	for i := range 2 {
		if !errors.Is(got[i].Err, store.ErrNotKept) || got[i].Created || got[i].Record.RefundID != "" {
			t.Errorf("refund %d with the wait failed: %+v; want ErrNotKept and no record", i, got[i])
		}
	}
	if !errors.Is(got[2].Err, store.ErrOrderTaken) {
		t.Errorf("refused refund with the wait failed: %v; want still ErrOrderTaken", got[2].Err)
	}
}

// A batch larger than one unpack can take still puts every refund it
// created in the due and queued indexes: a record no index holds would
// never get a task.
func TestCreateManyIndexesEveryRefundOfABigBatch(t *testing.T) {
	env := redistest.New(t)
	s := store.New(env.Client, env.Prefix)
	ctx := context.Background()
	const n = 4100 // past Lua's unpack limit (about 8,000 values: 4,000 pairs)
	batch := make([]store.NewRefund, n)
	for i := range batch {
		r := refund(fmt.Sprintf("r-%d", i))
		r.OrderID = fmt.Sprintf("ord-%d", i)
		batch[i] = store.NewRefund{Refund: r}
	}
	for i, res := range s.CreateMany(ctx, batch) {
		if res.Err != nil || !res.Created {
			t.Fatalf("refund %d: created %v, %v", i, res.Created, res.Err)
		}
	}
	for _, key := range []string{"due", "state:queued"} {
		if got := env.Client.ZCard(ctx, env.Prefix+key).Val(); got != n {
			t.Fatalf("%s holds %d refunds, want %d", key, got, n)
		}
	}
}
