package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/refundq/refundq/enqueue"
	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/providers/sandbox"
	"github.com/refundq/refundq/tasks"
)

// awaitReviews waits, once every refund is final, until no refund in
// needs_review waits for a look-up any more: each was settled by one, or
// its look-ups ran out (the workers' REFUNDQ_REVIEW_RECHECK_FOR), or the
// timeout passed. The faults go on meanwhile, as they would.
func awaitReviews(ctx context.Context, st *store.Store, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	for {
		n, next, err := st.Rechecks(ctx)
		if err != nil {
			return 0, err
		}
		if n == 0 {
			return time.Since(start), nil
		}
		if time.Since(start) > timeout {
			fmt.Printf("review look-ups: %d refunds still wait for one after %s (next due %s)\n", n, timeout, next.Format(time.RFC3339))
			return time.Since(start), nil
		}
		time.Sleep(time.Second)
	}
}

// reviewReport says what the look-ups in review did: how many refunds they
// settled by themselves (and how), and how many remain for a person, by why.
func reviewReport(recs []store.Record, took time.Duration) {
	settled := map[store.State]int{}
	remain := map[store.ReviewKind]int{}
	total := 0
	for _, r := range recs {
		switch {
		case r.SettledBy == store.ByLookup:
			settled[r.State]++
			total++
		case r.State == store.NeedsReview:
			kind := r.Review
			if kind == "" {
				kind = store.ReviewUnclassified
			}
			remain[kind]++
			total++
		}
	}
	bySelf := settled[store.Succeeded] + settled[store.Failed]
	fmt.Printf("needs_review: %d refunds entered it; look-ups in review settled %d by themselves (%d succeeded, %d failed) in %s; %d remain for people",
		total, bySelf, settled[store.Succeeded], settled[store.Failed], took.Round(time.Second), total-bySelf)
	if len(remain) > 0 {
		kinds := make([]string, 0, len(remain))
		for k := range remain {
			kinds = append(kinds, string(k))
		}
		sort.Strings(kinds)
		fmt.Print(" (")
		for i, k := range kinds {
			if i > 0 {
				fmt.Print(", ")
			}
			fmt.Printf("%s %d", k, remain[store.ReviewKind(k)])
		}
		fmt.Print(")")
	}
	fmt.Println()
}

// evidenceLater plays what makes evidence appear after the refunds went to
// needs_review: the providers start showing the fields refundq's guesses
// rest on (a new API version, say), an operator clears the refutations
// (refundctl guesses clear), and new refunds, one per provider, confirm the
// guesses. Look-ups in review can then settle what before only a person
// could. The new refunds join wants, so the verdict checks them too.
func evidenceLater(ctx context.Context, st *store.Store, enq *enqueue.Client, sims []sandbox.Sim, seed uint64, wants []want) ([]want, error) {
	cleared := 0
	for i := range sims {
		s := &sims[i]
		s.Guessed(true)
		gs, err := st.Guesses(ctx, s.Name)
		if err != nil {
			return wants, err
		}
		for _, g := range gs {
			if g.Verdict() == "refuted" {
				if err := st.ClearGuess(ctx, s.Name, g.Guess); err != nil {
					return wants, err
				}
				cleared++
			}
		}
	}
	var ids []string
	for i := range sims {
		s := &sims[i]
		id := fmt.Sprintf("chaos-%d-later-%s", seed%100000, s.Name)
		order := "ord-" + id
		paid := tasks.Money{Minor: 1000, Currency: s.Currency}
		txn := s.Pay(order, paid)
		r := tasks.Refund{Version: tasks.PayloadVersion, RefundID: id, Provider: s.Name, OrderID: order, TransactionID: txn,
			AmountMinor: paid.Minor, Currency: paid.Currency, Reason: "requested"}
		for {
			if _, err := enq.EnqueueRefund(ctx, r); err == nil {
				break
			} else if ctx.Err() != nil {
				return wants, err
			}
			time.Sleep(100 * time.Millisecond)
		}
		wants = append(wants, want{sim: s, refund: r})
		ids = append(ids, id)
	}
	// Wait for them: their answers are what confirms the guesses.
	deadline := time.Now().Add(2 * time.Minute)
	for _, id := range ids {
		for {
			rec, err := st.Get(ctx, id)
			if err == nil && rec.State.Final() {
				break
			}
			if time.Now().After(deadline) {
				return wants, fmt.Errorf("evidence later: refund %s not final after 2m", id)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	fmt.Printf("evidence later: simulators now show the guessed fields; %d refuted guesses cleared; %d new refunds paid to confirm them\n",
		cleared, len(ids))
	return wants, nil
}

// lastWait is the last wait of a REFUNDQ_REVIEW_RECHECK schedule (a minute
// when it cannot be read; the worker refuses such a schedule anyway).
func lastWait(schedule string) time.Duration {
	parts := strings.Split(schedule, ",")
	d, err := time.ParseDuration(strings.TrimSpace(parts[len(parts)-1]))
	if err != nil {
		return time.Minute
	}
	return d
}
