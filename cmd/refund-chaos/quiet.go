package main

import (
	"context"
	"fmt"
	"time"

	"github.com/refundq/refundq/internal/store"
)

// waitQuiet waits until every one of the n refunds is final (succeeded,
// failed or needs_review); or every refund that has a record is final and
// nothing changed for a minute: the rest are lost (a Redis that lost
// acknowledged writes); or timeout has passed since start. It returns the
// records as they are then.
func waitQuiet(ctx context.Context, st *store.Store, n int, start time.Time, timeout time.Duration) ([]store.Record, error) {
	var stillSince time.Time
	lastFinal := -1
	for {
		recs, err := st.List(ctx, 0)
		if err != nil {
			return nil, err
		}
		final := 0
		for _, r := range recs {
			if r.State.Final() {
				final++
			}
		}
		if final == n && len(recs) >= n {
			return recs, nil
		}
		if final != lastFinal || final != len(recs) {
			lastFinal, stillSince = final, time.Now()
		}
		if time.Since(stillSince) > time.Minute {
			fmt.Printf("every refund with a record is final (%d), none changed for a minute: the others are lost\n", final)
			return recs, nil
		}
		if time.Since(start) > timeout {
			fmt.Printf("timeout: %d of %d refunds final\n", final, n)
			return recs, nil
		}
		time.Sleep(time.Second)
	}
}
