package main

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/refundq/refundq/store"
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
