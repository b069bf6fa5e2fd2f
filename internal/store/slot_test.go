package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/refundq/refundq/internal/redistest"
	"github.com/refundq/refundq/internal/store"
)

// Where the provider keeps no key of ours, one refund of ours is in flight
// per order: a second refund's send is refused until the first's attempt is
// settled, and a refund in needs_review with its attempt unknown keeps the
// order until a human settles it.
func TestOneRefundInFlightPerOrder(t *testing.T) {
	_, s := twoOnOneOrder(t)
	ctx := context.Background()
	a, _, _ := s.Acquire(ctx, "r-a", time.Minute)
	b, _, _ := s.Acquire(ctx, "r-b", time.Minute)
	if _, err := a.MarkSent(ctx, store.Send{Sent: "a", OnePerOrder: true}); err != nil {
		t.Fatal(err)
	}
	_, err := b.MarkSent(ctx, store.Send{Sent: "b", OnePerOrder: true})
	var busy *store.OrderBusyError
	if !errors.As(err, &busy) || busy.Holder != "r-a" {
		t.Fatalf("second refund's send while the first is in flight: %v, want OrderBusyError naming r-a", err)
	}
	if rec, _ := s.Get(ctx, "r-b"); rec.Attempts != 0 || rec.InFlight != 0 {
		t.Fatalf("refused send wrote the record: %+v", rec)
	}
	// Unknown through every retry: needs_review, attempt still in flight.
	if err := a.Apply(ctx, store.Change{State: store.NeedsReview, LastError: "unknown"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.MarkSent(ctx, store.Send{Sent: "b", OnePerOrder: true}); !errors.Is(err, store.ErrOrderBusy) {
		t.Fatalf("send while the order's other refund awaits review: %v, want ErrOrderBusy", err)
	}
	a.Release(ctx)
	if err := s.Settle(ctx, "r-a", store.Settlement{State: store.Succeeded, ProviderRef: "ref-1", Note: "provider shows it", Actor: "alice"}); err != nil {
		t.Fatal(err)
	}
	if n, err := b.MarkSent(ctx, store.Send{Sent: "b", OnePerOrder: true}); err != nil || n != 1 {
		t.Fatalf("send once the order is free: %d, %v", n, err)
	}
	// A keyed provider's send never waits for the order.
	if _, _, err := s.Create(ctx, refund("r-c")); err != nil {
		t.Fatal(err)
	}
	c, _, _ := s.Acquire(ctx, "r-c", time.Minute)
	if _, err := c.MarkSent(ctx, store.Send{Sent: "c"}); err != nil {
		t.Fatalf("keyed send: %v", err)
	}
}

// A refund that took its order's slot for the read before its first send,
// and ended the run without sending (the read failed, the guard refused),
// gives the slot back with that write: another refund on the order is not
// held up by one that never left.
func TestNeverSentRefundFreesItsOrderSlot(t *testing.T) {
	_, s := twoOnOneOrder(t)
	ctx := context.Background()
	a, _, _ := s.Acquire(ctx, "r-a", time.Minute)
	if err := a.ClaimOrder(ctx); err != nil {
		t.Fatal(err)
	}
	b, _, _ := s.Acquire(ctx, "r-b", time.Minute)
	if err := b.ClaimOrder(ctx); !errors.Is(err, store.ErrOrderBusy) {
		t.Fatalf("claim while r-a reads the order: %v, want ErrOrderBusy", err)
	}
	if err := a.Finish(ctx, store.Change{State: store.NeedsReview, LastError: "not sent after 21 runs"}); err != nil {
		t.Fatal(err)
	}
	if err := b.ClaimOrder(ctx); err != nil {
		t.Fatalf("claim after r-a ended without a send: %v, want the slot free", err)
	}
}

// A refund whose attempt is settled without an outcome that closes it
// (proven not applied, sent again later) frees its order's slot with that
// write, also through a lease that claims no references (a person's, a
// review's): the record says it holds the slot.
func TestSettledAttemptFreesItsOrderSlot(t *testing.T) {
	_, s := twoOnOneOrder(t)
	ctx := context.Background()
	a, _, _ := s.Acquire(ctx, "r-a", time.Minute)
	if _, err := a.MarkSent(ctx, store.Send{Sent: "a", OnePerOrder: true}); err != nil {
		t.Fatal(err)
	}
	a.Release(ctx)
	b, _, _ := s.Acquire(ctx, "r-b", time.Minute)
	if err := b.ClaimOrder(ctx); !errors.Is(err, store.ErrOrderBusy) {
		t.Fatalf("claim while r-a is in flight: %v, want ErrOrderBusy", err)
	}
	again, _, err := s.Acquire(ctx, "r-a", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := again.Finish(ctx, store.Change{State: store.Processing, Settled: true, LastError: "proven not applied"}); err != nil {
		t.Fatal(err)
	}
	if err := b.ClaimOrder(ctx); err != nil {
		t.Fatalf("claim once r-a has nothing in flight: %v, want the slot free", err)
	}
}

// A slot taken before records said so (no slot field: a worker of the
// previous release) is freed when the refund enters needs_review with
// nothing in flight, as the previous release freed it: a person's or a
// review's lease claims no references, and the order would otherwise stay
// busy until a person settled the refund.
func TestASlotFromBeforeTheSlotFieldIsFreedOnTheWayToReview(t *testing.T) {
	env, s := twoOnOneOrder(t)
	ctx := context.Background()
	a, _, _ := s.Acquire(ctx, "r-a", time.Minute)
	if err := a.ClaimOrder(ctx); err != nil {
		t.Fatal(err)
	}
	env.Client.HDel(ctx, env.Prefix+"refund:r-a", "slot") // as the previous release left it
	a.Release(ctx)
	if moved, err := s.Escalate(ctx, "r-a", "", "its task was archived", time.Hour); err != nil || !moved {
		t.Fatalf("escalate: %v, %v", moved, err)
	}
	b, _, _ := s.Acquire(ctx, "r-b", time.Minute)
	if err := b.ClaimOrder(ctx); err != nil {
		t.Fatalf("claim once r-a is in needs_review with nothing in flight: %v, want the slot free", err)
	}
}

// A lease a newer owner took claims no slot and writes nothing to the
// record, which a later acquire could otherwise not read.
func TestAStaleLeaseCannotClaimTheOrder(t *testing.T) {
	env := redistest.New(t)
	s := store.New(env.Client, env.Prefix)
	ctx := context.Background()
	if _, _, err := s.Create(ctx, refund("r-a")); err != nil {
		t.Fatal(err)
	}
	stale, _, _ := s.Acquire(ctx, "r-a", time.Minute)
	env.Client.Del(ctx, env.Prefix+"lease:r-a") // it lapsed
	if _, _, err := s.Acquire(ctx, "r-a", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := stale.ClaimOrder(ctx); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("stale lease's claim: %v, want ErrFenced", err)
	}
	if n := env.Client.Exists(ctx, env.Prefix+"inflight:moyasarpg:"+refund("r-a").OrderID).Val(); n != 0 {
		t.Fatal("a stale lease took the order's slot")
	}
	if v := env.Client.HGet(ctx, env.Prefix+"refund:r-a", "slot").Val(); v != "" {
		t.Fatalf("a stale lease wrote slot=%q into the record", v)
	}
}

// twoOnOneOrder creates refunds r-a and r-b on the same order.
func twoOnOneOrder(t *testing.T) (*redistest.Env, *store.Store) {
	t.Helper()
	env := redistest.New(t)
	s := store.New(env.Client, env.Prefix)
	for _, id := range []string{"r-a", "r-b"} {
		if _, _, err := s.Create(context.Background(), refund(id)); err != nil {
			t.Fatal(err)
		}
	}
	return env, s
}
