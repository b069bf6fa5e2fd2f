package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/refundq/refundq/internal/redistest"
	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/tasks"
)

func refund(id string) tasks.Refund {
	return tasks.Refund{Version: 1, RefundID: id, Provider: "moyasarpg", OrderID: "ord-1", AmountMinor: 1500, Currency: "SAR"}
}

func TestCreateIsIdempotentByRefundID(t *testing.T) {
	env := redistest.New(t)
	s := store.New(env.Client, env.Prefix)
	ctx := context.Background()

	var wg sync.WaitGroup
	created := make(chan string, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec, ok, err := s.Create(ctx, refund("r-1"))
			if err != nil {
				t.Error(err)
				return
			}
			if ok {
				created <- rec.Key
			}
		}()
	}
	wg.Wait()
	close(created)
	if n := len(created); n != 1 {
		t.Fatalf("%d concurrent creates of one refund id reported created, want 1", n)
	}
	first := <-created
	rec, ok, err := s.Create(ctx, refund("r-1"))
	if err != nil || ok || rec.Key != first || rec.State != store.Queued {
		t.Fatalf("second create = %+v, %v, %v; want existing queued record with key %s", rec, ok, err, first)
	}

	other := refund("r-1")
	other.AmountMinor = 1600
	_, _, err = s.Create(ctx, other)
	if !errors.Is(err, store.ErrConflict) || !strings.Contains(err.Error(), "amount") {
		t.Fatalf("same id, other amount: err = %v, want ErrConflict naming amount", err)
	}
}

func TestSendAndOutcome(t *testing.T) {
	env := redistest.New(t)
	s := store.New(env.Client, env.Prefix)
	ctx := context.Background()
	if _, _, err := s.Create(ctx, refund("r-2")); err != nil {
		t.Fatal(err)
	}
	l, _, err := s.Acquire(ctx, "r-2", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	n, err := l.MarkSent(ctx, store.Send{Sent: "15.00 SAR"})
	if err != nil || n != 1 {
		t.Fatalf("MarkSent = %d, %v; want attempt 1", n, err)
	}
	rec, _ := s.Get(ctx, "r-2")
	if rec.InFlight != 1 || rec.State != store.Processing || rec.Attempts != 1 {
		t.Fatalf("after send: %+v", rec)
	}
	if err := l.Apply(ctx, store.Change{State: store.Succeeded, ProviderRef: "ref-9", Settled: true,
		Entry: store.Entry{Event: "outcome", Attempt: 1, Outcome: "succeeded"}}); err != nil {
		t.Fatal(err)
	}
	rec, _ = s.Get(ctx, "r-2")
	if rec.State != store.Succeeded || rec.InFlight != 0 || rec.ProviderRef != "ref-9" {
		t.Fatalf("after outcome: %+v", rec)
	}
	if err := l.Apply(ctx, store.Change{State: store.Failed}); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("changing a succeeded refund: err = %v, want ErrClosed", err)
	}
	if _, err := l.MarkSent(ctx, store.Send{Sent: "again"}); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("sending a succeeded refund again: err = %v, want ErrClosed", err)
	}
	h, err := s.History(ctx, "r-2")
	if err != nil {
		t.Fatal(err)
	}
	var events []string
	for _, e := range h {
		events = append(events, e.Event)
	}
	if got := strings.Join(events, ","); got != "created,send,outcome" {
		t.Fatalf("history events = %s", got)
	}
	if h[1].Attempt != 1 {
		t.Fatalf("send entry attempt = %d, want 1", h[1].Attempt)
	}
	if _, err := s.Get(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get(missing) err = %v", err)
	}
}

func TestLeaseFencesOutAnOlderOwner(t *testing.T) {
	env := redistest.New(t)
	s := store.New(env.Client, env.Prefix)
	ctx := context.Background()
	if _, _, err := s.Create(ctx, refund("r-3")); err != nil {
		t.Fatal(err)
	}
	old, _, err := s.Acquire(ctx, "r-3", 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Acquire(ctx, "r-3", time.Minute); !errors.Is(err, store.ErrBusy) {
		t.Fatalf("second owner while the lease runs: err = %v, want ErrBusy", err)
	}
	// The old owner stalls past its lease; a new owner takes over.
	var newer *store.Lease
	for newer == nil {
		newer, _, err = s.Acquire(ctx, "r-3", time.Minute)
		if err != nil && !errors.Is(err, store.ErrBusy) {
			t.Fatal(err)
		}
		if newer == nil {
			time.Sleep(5 * time.Millisecond) // polling for the lease to expire, not waiting blindly
		}
	}
	if newer.Token() <= old.Token() {
		t.Fatalf("new token %d not above old %d", newer.Token(), old.Token())
	}
	if err := newer.Apply(ctx, store.Change{State: store.Succeeded, Settled: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := old.MarkSent(ctx, store.Send{Sent: "late send"}); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("old owner's send after losing the lease: err = %v, want ErrFenced", err)
	}
	if err := old.Apply(ctx, store.Change{State: store.Failed}); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("old owner's outcome after losing the lease: err = %v, want ErrFenced", err)
	}
	if err := old.Renew(ctx); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("old owner's renew: err = %v, want ErrFenced", err)
	}
	if rec, _ := s.Get(ctx, "r-3"); rec.State != store.Succeeded {
		t.Fatalf("state = %s, want the newer owner's succeeded", rec.State)
	}
	if err := old.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Acquire(ctx, "r-3", time.Minute); !errors.Is(err, store.ErrBusy) {
		t.Fatalf("old owner's release dropped the newer lease: err = %v", err)
	}
}

func TestSettleOnlyFromNeedsReview(t *testing.T) {
	env := redistest.New(t)
	s := store.New(env.Client, env.Prefix)
	ctx := context.Background()
	if _, _, err := s.Create(ctx, refund("r-4")); err != nil {
		t.Fatal(err)
	}
	if err := s.Settle(ctx, "r-4", store.Settlement{State: store.Succeeded, ProviderRef: "ref", Note: "asked", Actor: "alice"}); !errors.Is(err, store.ErrNotReview) {
		t.Fatalf("settling a queued refund: %v, want ErrNotReview", err)
	}
	l, _, _ := s.Acquire(ctx, "r-4", time.Minute)
	if err := l.Apply(ctx, store.Change{State: store.NeedsReview}); err != nil {
		t.Fatal(err)
	}
	if err := s.Settle(ctx, "r-4", store.Settlement{State: store.Succeeded, ProviderRef: "ref", Note: "asked", Actor: "alice"}); !errors.Is(err, store.ErrBusy) {
		t.Fatalf("settling while a worker holds the lease: %v, want ErrBusy", err)
	}
	l.Release(ctx)
	if err := s.Settle(ctx, "r-4", store.Settlement{State: store.Failed, Note: "asked"}); !errors.Is(err, store.ErrNoActor) {
		t.Fatalf("settling with no actor: %v, want ErrNoActor", err)
	}
	if err := s.Settle(ctx, "r-4", store.Settlement{State: store.Failed, Actor: "alice"}); !errors.Is(err, store.ErrNoNote) {
		t.Fatalf("settling with no note: %v, want ErrNoNote", err)
	}
	if err := s.Settle(ctx, "r-4", store.Settlement{State: store.Failed, Note: "provider shows no refund for this order", Actor: "alice"}); err != nil {
		t.Fatal(err)
	}
	rec, _ := s.Get(ctx, "r-4")
	if rec.State != store.Failed || !strings.Contains(rec.LastError, "provider shows no refund") {
		t.Fatalf("after settle: %+v", rec)
	}
	h, _ := s.History(ctx, "r-4")
	if last := h[len(h)-1]; last.Event != "settled" || last.State != store.Failed || last.Actor != "alice" ||
		last.Detail != "provider shows no refund for this order" || last.At.IsZero() {
		t.Fatalf("last history entry = %+v, want settled to failed by alice with the note", last)
	}
}

// A history entry that folds nothing says nothing of a last time: a zero
// time is left out of the JSON, not written as year 1.
func TestEntryWithoutFoldHasNoLast(t *testing.T) {
	b, err := json.Marshal(store.Entry{At: time.Unix(1_800_000_000, 0).UTC(), Event: "send"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"at":"2027-01-15T08:00:00Z","event":"send"}`; got != want {
		t.Fatalf("entry JSON = %s, want %s", got, want)
	}
}

func TestAProviderReferenceBelongsToOneRefundPerOrder(t *testing.T) {
	env := redistest.New(t)
	s := store.New(env.Client, env.Prefix)
	ctx := context.Background()
	// Two refunds of the same amount on ord-1, and one on another order.
	other := refund("r-other")
	other.OrderID = "ord-2"
	for _, r := range []tasks.Refund{refund("r-a"), refund("r-b"), other} {
		if _, _, err := s.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	succeed := func(id, ref string) error {
		l, _, err := s.Acquire(ctx, id, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Release(ctx)
		l.ClaimReferences()
		return l.Apply(ctx, store.Change{State: store.Succeeded, ProviderRef: ref, Settled: true, Entry: store.Entry{Event: "lookup"}})
	}
	if err := succeed("r-b", "rfd-1"); err != nil {
		t.Fatal(err)
	}
	err := succeed("r-a", "rfd-1")
	var taken *store.RefTakenError
	if !errors.Is(err, store.ErrRefTaken) || !errors.As(err, &taken) || taken.Owner != "r-b" || taken.Ref != "rfd-1" {
		t.Fatalf("second claim of rfd-1 on ord-1: err = %v, want ErrRefTaken naming r-b", err)
	}
	if rec, _ := s.Get(ctx, "r-a"); rec.State != store.Queued || rec.ProviderRef != "" {
		t.Fatalf("refused claim wrote the record: %+v", rec)
	}
	if hist, _ := s.History(ctx, "r-a"); len(hist) != 1 {
		t.Fatalf("refused claim wrote history: %+v", hist)
	}
	// The same reference on another order does not collide, and r-a can
	// still take a reference nobody holds.
	if err := succeed("r-other", "rfd-1"); err != nil {
		t.Fatalf("rfd-1 on another order: %v", err)
	}
	if err := succeed("r-a", "rfd-2"); err != nil {
		t.Fatalf("r-a with its own reference: %v", err)
	}
}

func TestCreateSoleAdmitsOneRefundPerOrder(t *testing.T) {
	env := redistest.New(t)
	s := store.New(env.Client, env.Prefix)
	ctx := context.Background()
	sole := func(id string) tasks.Refund {
		r := refund(id)
		r.Provider = "bbmsl"
		return r
	}
	// Eight producers race to refund ord-1 under different refund ids.
	var wg sync.WaitGroup
	var mu sync.Mutex
	var won []string
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := "r-" + string(rune('a'+i))
			_, created, err := s.CreateSole(ctx, sole(id))
			switch {
			case err == nil && created:
				mu.Lock()
				won = append(won, id)
				mu.Unlock()
			case !errors.Is(err, store.ErrOrderTaken):
				t.Errorf("%s: %v, want ErrOrderTaken", id, err)
			}
		}()
	}
	wg.Wait()
	if len(won) != 1 {
		t.Fatalf("%d refunds created on one once-only order: %v", len(won), won)
	}
	// The winner again is the same refund, not a refusal.
	if _, created, err := s.CreateSole(ctx, sole(won[0])); err != nil || created {
		t.Fatalf("the winner again = %v, %v", created, err)
	}
	_, _, err := s.CreateSole(ctx, sole("r-late"))
	var taken *store.OrderTakenError
	if !errors.As(err, &taken) || taken.Owner != won[0] || taken.State != store.Queued ||
		!strings.Contains(err.Error(), "bbmsl refunds an order once, and order ord-1 already has refund "+won[0]+" (queued)") {
		t.Fatalf("late refund: %v", err)
	}
	// Once the first refund failed, the order can be refunded again.
	l, _, err := s.Acquire(ctx, won[0], time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Apply(ctx, store.Change{State: store.Failed, LastError: "refused", Settled: true, Entry: store.Entry{Event: "send"}}); err != nil {
		t.Fatal(err)
	}
	if _, created, err := s.CreateSole(ctx, sole("r-late")); err != nil || !created {
		t.Fatalf("after the first failed: %v, %v", created, err)
	}
}

// Every open refund is in the due index; a final one leaves it, and the
// state index follows the refund.
func TestDueAndStateIndexes(t *testing.T) {
	env := redistest.New(t)
	s := store.New(env.Client, env.Prefix)
	ctx := context.Background()
	if _, _, err := s.Create(ctx, refund("r-1")); err != nil {
		t.Fatal(err)
	}
	due, _ := s.Due(ctx, "r-1")
	if d := time.Until(due); d < store.DueQueued-5*time.Second || d > store.DueQueued {
		t.Fatalf("new refund due in %s, want about %s", d, store.DueQueued)
	}
	if over, _ := s.ClaimOverdue(ctx, 10, time.Minute); len(over.Records) != 0 {
		t.Fatalf("new refund already overdue: %v", over)
	}
	if err := s.Postpone(ctx, "r-1", -time.Second); err != nil { // as if DueQueued passed
		t.Fatal(err)
	}
	over, _ := s.ClaimOverdue(ctx, 10, time.Minute)
	if len(over.Records) != 1 || over.Records[0].RefundID != "r-1" {
		t.Fatalf("overdue later = %v", over)
	}
	// Taken: due again only after the hold, so a second recoverer does not
	// check it too.
	if again, _ := s.ClaimOverdue(ctx, 10, time.Minute); len(again.Records) != 0 {
		t.Fatalf("claimed twice: %v", again)
	}
	if due, _ := s.Due(ctx, "r-1"); time.Until(due) < 50*time.Second {
		t.Fatalf("claimed refund due in %s, want about the hold (1m)", time.Until(due))
	}
	l, _, _ := s.Acquire(ctx, "r-1", time.Minute)
	next := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	if err := l.Apply(ctx, store.Change{State: store.Pending, Due: next, Task: "poll:r-1:1"}); err != nil {
		t.Fatal(err)
	}
	if due, _ := s.Due(ctx, "r-1"); !due.Equal(next) {
		t.Fatalf("due %v, want %v", due, next)
	}
	if recs, n, _ := s.ListState(ctx, store.Pending, 0, 10); n != 1 || len(recs) != 1 || recs[0].Task != "poll:r-1:1" {
		t.Fatalf("pending list = %v (%d)", recs, n)
	}
	if _, n, _ := s.ListState(ctx, store.Queued, 0, 10); n != 0 {
		t.Fatalf("still %d queued", n)
	}
	if err := l.Apply(ctx, store.Change{State: store.Succeeded, Settled: true}); err != nil {
		t.Fatal(err)
	}
	if due, _ := s.Due(ctx, "r-1"); !due.IsZero() {
		t.Fatalf("final refund still due at %v", due)
	}
	if _, n, _ := s.ListState(ctx, store.Succeeded, 0, 10); n != 1 {
		t.Fatalf("succeeded count %d", n)
	}
}

// Two owners that drew the same token (a lost counter write) are still told
// apart by their owner ids: only the newer one writes.
func TestOwnerIDFencesEvenWhenTokensCollide(t *testing.T) {
	env := redistest.New(t)
	s := store.New(env.Client, env.Prefix)
	ctx := context.Background()
	if _, _, err := s.Create(ctx, refund("r-1")); err != nil {
		t.Fatal(err)
	}
	old, _, _ := s.Acquire(ctx, "r-1", time.Minute)
	// Redis forgets the lease and the fence bump, as a crash before fsync would.
	env.Client.Del(ctx, env.Prefix+"lease:r-1")
	env.Client.HIncrBy(ctx, env.Prefix+"refund:r-1", "fence", -1)
	newer, _, err := s.Acquire(ctx, "r-1", time.Minute)
	if err != nil || newer.Token() != old.Token() {
		t.Fatalf("setup: second lease %v token %d vs %d", err, newer.Token(), old.Token())
	}
	if _, err := old.MarkSent(ctx, store.Send{Sent: "old"}); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("old owner with the same token: %v, want ErrFenced", err)
	}
	if _, err := newer.MarkSent(ctx, store.Send{Sent: "new"}); err != nil {
		t.Fatalf("newer owner: %v", err)
	}
}

func TestGuessesKeepFirstConfirmationAndRefutation(t *testing.T) {
	env := redistest.New(t)
	s := store.New(env.Client, env.Prefix)
	ctx := context.Background()
	first, err := s.Observe(ctx, "ecomcharge", "ecomcharge.tracking_id", true, "echoed by refund 1")
	if err != nil || !first {
		t.Fatalf("first confirmation: %v %v", first, err)
	}
	if again, _ := s.Observe(ctx, "ecomcharge", "ecomcharge.tracking_id", true, "echoed by refund 2"); again {
		t.Fatal("second confirmation reported as first")
	}
	g, _ := s.Guesses(ctx, "ecomcharge")
	if len(g) != 1 || g[0].Verdict() != "confirmed" || g[0].Confirmed != "echoed by refund 1" {
		t.Fatalf("guesses = %+v", g)
	}
	if first, _ := s.Observe(ctx, "ecomcharge", "ecomcharge.tracking_id", false, "look-up empty for a paid refund"); !first {
		t.Fatal("first refutation not reported")
	}
	g, _ = s.Guesses(ctx, "ecomcharge")
	if g[0].Verdict() != "refuted" {
		t.Fatalf("a refutation must outweigh confirmations: %+v", g)
	}
	if err := s.ClearGuess(ctx, "ecomcharge", "ecomcharge.tracking_id"); err != nil {
		t.Fatal(err)
	}
	if g, _ := s.Guesses(ctx, "ecomcharge"); len(g) != 0 {
		t.Fatalf("after clear: %+v", g)
	}
}

func TestAcquireOfAMissingRefundIsErrNotFound(t *testing.T) {
	env := redistest.New(t)
	s := store.New(env.Client, env.Prefix)
	if _, _, err := s.Acquire(context.Background(), "no_such_id", time.Minute); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Acquire(missing) = %v, want ErrNotFound", err)
	}
}

// A refund the provider keeps pending does not grow with every poll: the
// same answer again is counted into the history's last entry.
func TestRepeatedPollsFoldIntoOneEntry(t *testing.T) {
	env := redistest.New(t)
	s := store.New(env.Client, env.Prefix)
	ctx := context.Background()
	if _, _, err := s.Create(ctx, refund("r-1")); err != nil {
		t.Fatal(err)
	}
	l, _, _ := s.Acquire(ctx, "r-1", time.Minute)
	poll := func(status string) {
		t.Helper()
		if err := l.Apply(ctx, store.Change{State: store.Pending, Fold: true,
			Entry: store.Entry{Event: "lookup", Outcome: "pending", Status: status, Detail: "poll"}}); err != nil {
			t.Fatal(err)
		}
	}
	for range 60 {
		poll("initiated")
	}
	poll("processing")
	h, _ := s.History(ctx, "r-1")
	if len(h) != 3 || h[1].Count != 60 || h[1].Last.IsZero() || h[2].Status != "processing" || h[2].Count != 0 {
		t.Fatalf("history after 60 identical polls and a different one: %+v", h)
	}
}

// A refund id may hold colons; no refund's id names another refund's
// history or lease.
func TestRefundIDsWithColonsKeepTheirOwnKeys(t *testing.T) {
	env := redistest.New(t)
	s := store.New(env.Client, env.Prefix)
	ctx := context.Background()
	for _, id := range []string{"x", "x:history", "x:lease"} {
		if _, _, err := s.Create(ctx, refund(id)); err != nil {
			t.Fatalf("create %s: %v", id, err)
		}
	}
	l, _, err := s.Acquire(ctx, "x", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release(ctx)
	if err := l.Apply(ctx, store.Change{State: store.Processing, Entry: store.Entry{Event: "decision", Detail: "x's own"}}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"x", "x:history", "x:lease"} {
		rec, err := s.Get(ctx, id)
		h, _ := s.History(ctx, id)
		if err != nil || rec.RefundID != id || (id == "x") != (len(h) == 2) {
			t.Fatalf("%s: %+v, %v, history %d entries", id, rec, err, len(h))
		}
	}
	if _, _, err := s.Acquire(ctx, "x:lease", time.Minute); err != nil {
		t.Fatalf("x's lease blocks x:lease: %v", err)
	}
}
