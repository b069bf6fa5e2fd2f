package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/refundq/refundq/internal/redistest"
	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/tasks"
)

// toReview creates refund id and drives it to needs_review with the given
// changes before the last one, as a worker would.
func toReview(t *testing.T, s *store.Store, id string, steps func(l *store.Lease)) {
	t.Helper()
	ctx := context.Background()
	if _, _, err := s.Create(ctx, refund(id)); err != nil {
		t.Fatal(err)
	}
	l, _, err := s.Acquire(ctx, id, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release(ctx)
	if steps != nil {
		steps(l)
	}
	if err := l.Apply(ctx, store.Change{State: store.NeedsReview, LastError: "gave up",
		Entry: store.Entry{Event: "decision", Detail: "gave up"}}); err != nil {
		t.Fatal(err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// A refund any of whose attempts may be at the provider is never sent again
// by Reopen: the refusal says why, and the refund stays in needs_review.
func TestReopenRefusesWhatMayBeAtProvider(t *testing.T) {
	env := redistest.New(t)
	s := store.New(env.Client, env.Prefix)
	ctx := context.Background()
	sent := func(l *store.Lease) {
		if _, err := l.MarkSent(ctx, store.Send{Sent: "15.00 SAR"}); err != nil {
			t.Fatal(err)
		}
	}
	one := 1
	for _, tc := range []struct {
		name  string
		steps func(l *store.Lease)
		says  string
	}{
		{"in flight", sent, "attempt 1 was sent and what became of it is unknown"},
		{"pending with a reference", func(l *store.Lease) {
			sent(l)
			must(t, l.Apply(ctx, store.Change{State: store.Pending, ProviderRef: "ref-7", ProviderStatus: "processing",
				Settled: true, PollStep: &one, Entry: store.Entry{Event: "send", Outcome: providers.Pending.String()}}))
		}, `the provider knows it as ref-7 (status "processing")`},
		{"pending without a reference", func(l *store.Lease) {
			sent(l)
			must(t, l.Apply(ctx, store.Change{State: store.Pending, ProviderStatus: "queued", Settled: true, PollStep: &one,
				Entry: store.Entry{Event: "send", Outcome: providers.Pending.String()}}))
		}, `the provider reported it in progress (1 polls, last status "queued")`},
		{"a contradicting answer", func(l *store.Lease) {
			// A review answer settles the attempt: nothing is in flight, no
			// reference is kept, yet the provider may have paid something.
			sent(l)
			must(t, l.Apply(ctx, store.Change{State: store.Processing, Settled: true,
				Entry: store.Entry{Event: "send", Attempt: 1, Outcome: providers.Review.String(), Detail: "refunded 9.00 SAR, asked 15.00"}}))
		}, "the provider answered review to a send of attempt 1"},
		{"an uncertain answer", func(l *store.Lease) {
			sent(l)
			must(t, l.Apply(ctx, store.Change{State: store.Processing, Settled: true,
				Entry: store.Entry{Event: "lookup", Attempt: 1, Outcome: providers.Uncertain.String()}}))
		}, "the provider answered uncertain"},
		{"a success", func(l *store.Lease) {
			sent(l)
			must(t, l.Apply(ctx, store.Change{State: store.Processing, Settled: true,
				Entry: store.Entry{Event: "send", Attempt: 1, Outcome: providers.Succeeded.String()}}))
		}, "the provider answered succeeded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := "r-" + strings.ReplaceAll(tc.name, " ", "-")
			toReview(t, s, id, tc.steps)
			err := s.Reopen(ctx, id, "ops: asked to resend", "alice")
			var nr *store.NotResendableError
			if !errors.Is(err, store.ErrMayBeAtProvider) || !errors.As(err, &nr) || !strings.Contains(err.Error(), tc.says) ||
				!strings.Contains(err.Error(), "ask the provider what became of it, then close it with `refundctl settle`") {
				t.Fatalf("Reopen = %v; want ErrMayBeAtProvider saying %q and what to do", err, tc.says)
			}
			if rec, _ := s.Get(ctx, id); rec.State != store.NeedsReview {
				t.Fatalf("after a refused reopen the refund is %s, want needs_review", rec.State)
			}
		})
	}
}

// Only a needs_review refund is reopened, only with a note, and never while
// a worker holds it.
func TestReopenRefusesOtherStatesAnEmptyNoteAndAHeldRefund(t *testing.T) {
	env := redistest.New(t)
	s := store.New(env.Client, env.Prefix)
	ctx := context.Background()
	must(t, func() error { _, _, err := s.Create(ctx, refund("r-q")); return err }())
	if err := s.Reopen(ctx, "r-q", "ops", "alice"); !errors.Is(err, store.ErrNotReview) || !strings.Contains(err.Error(), "is queued") {
		t.Fatalf("reopening a queued refund: %v, want ErrNotReview naming its state", err)
	}
	toReview(t, s, "r-1", nil)
	if err := s.Reopen(ctx, "r-1", "  ", "alice"); !errors.Is(err, store.ErrNoNote) || !strings.Contains(err.Error(), "say why") {
		t.Fatalf("reopening without a note: %v, want ErrNoNote saying what to write", err)
	}
	l, _, err := s.Acquire(ctx, "r-1", time.Minute)
	must(t, err)
	if err := s.Reopen(ctx, "r-1", "ops", "alice"); !errors.Is(err, store.ErrBusy) {
		t.Fatalf("reopening a held refund: %v, want ErrBusy", err)
	}
	l.Release(ctx)
	if rec, _ := s.Get(ctx, "r-1"); rec.State != store.NeedsReview {
		t.Fatalf("after refused reopens the refund is %s, want needs_review", rec.State)
	}
	if err := s.Reopen(ctx, "nope", "ops", "alice"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("reopening a missing refund: %v, want ErrNotFound", err)
	}
}

// A refund never sent (or whose every attempt was shown not applied) goes
// back to queued: who and why in its history, an event for the change, due
// for the recoverer, driven by its refund task, and its order's slot free.
func TestReopenOfANeverSentRefundQueuesIt(t *testing.T) {
	env := redistest.New(t)
	s := store.New(env.Client, env.Prefix)
	ctx := context.Background()
	toReview(t, s, "r-1", func(l *store.Lease) {
		// A keyless send claims the order before its read; the read
		// failed, so nothing was sent.
		must(t, l.ClaimOrder(ctx))
	})
	toReview(t, s, "r-2", func(l *store.Lease) {
		if _, err := l.MarkSent(ctx, store.Send{Sent: "15.00 SAR"}); err != nil {
			t.Fatal(err)
		}
		must(t, l.Apply(ctx, store.Change{State: store.Processing, Settled: true,
			Entry: store.Entry{Event: "lookup", Attempt: 1, Outcome: providers.NotFound.String()}}))
	})
	// The events so far are not what this test looks at.
	_, err := s.ReadEvents(ctx, "t", "c", 100, 0)
	must(t, err)

	before := time.Now()
	for _, id := range []string{"r-1", "r-2"} {
		if err := s.Reopen(ctx, id, "provider shows nothing, ticket 42", "alice"); err != nil {
			t.Fatalf("reopen %s: %v", id, err)
		}
		rec, _ := s.Get(ctx, id)
		if rec.State != store.Queued || rec.LastError != "" || rec.Task != tasks.RefundTaskID(id) || rec.InFlight != 0 {
			t.Fatalf("%s after reopen: %+v; want queued, no error, its refund task", id, rec)
		}
		h, _ := s.History(ctx, id)
		if last := h[len(h)-1]; last.Event != "reopened" || last.Detail != "provider shows nothing, ticket 42" || last.Actor != "alice" || last.State != store.Queued {
			t.Fatalf("%s last history entry = %+v", id, last)
		}
		due, _ := s.Due(ctx, id)
		if due.Before(before.Add(store.DueQueued-time.Second)) || due.After(time.Now().Add(store.DueQueued)) {
			t.Fatalf("%s due at %v, want about %s from now", id, due, store.DueQueued)
		}
	}
	evs, err := s.ReadEvents(ctx, "t", "c", 100, 0)
	must(t, err)
	if len(evs) != 2 || evs[0].RefundID != "r-1" || evs[0].From != store.NeedsReview || evs[0].To != store.Queued || evs[1].RefundID != "r-2" {
		t.Fatalf("events = %+v; want r-1 and r-2 needs_review → queued", evs)
	}
	if _, n, _ := s.ListState(ctx, store.NeedsReview, 0, 10); n != 0 {
		t.Fatalf("%d refunds still listed in needs_review", n)
	}
	if n, _ := env.Client.Exists(ctx, env.Prefix+"inflight:moyasarpg:ord-1").Result(); n != 0 {
		t.Fatal("the reopened refund, never sent, still holds its order's slot")
	}
	if err := s.Reopen(ctx, "r-1", "again", "alice"); !errors.Is(err, store.ErrNotReview) {
		t.Fatalf("second reopen: %v, want ErrNotReview", err)
	}
}
