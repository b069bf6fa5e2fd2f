package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/refundq/refundq/internal/store"
)

// lateness is how late refunds went on after an operator's click took away
// the task they depended on: from when that task would have run (or the
// click, if later) to the refund's first history entry after the click.
type lateness struct {
	removals int             // clicks that took away an open refund's task
	late     []time.Duration // of those that resumed, sorted
	latestID string          // the refund that resumed latest
}

// measureLateness reads the history of every refund a click stranded. A
// refund with no entry after its click never resumed: it is not final, and
// the report counts it there.
func measureLateness(ctx context.Context, st *store.Store, removed []removal) (lateness, error) {
	l := lateness{removals: len(removed)}
	var latest time.Duration
	for _, r := range removed {
		h, err := st.History(ctx, r.refundID)
		if err != nil {
			return l, err
		}
		resumed, ok := firstAfter(h, r.at)
		if !ok {
			continue
		}
		// A re-created task may run before the removed one would have (a
		// poll brought forward): not late at all.
		d := max(resumed.Sub(later(r.at, r.due)), 0)
		l.late = append(l.late, d)
		if d >= latest {
			latest, l.latestID = d, r.refundID
		}
	}
	slices.Sort(l.late)
	return l, nil
}

// firstAfter returns when the refund next moved after t: the first history
// entry after it. A webhook delivery is not the refund moving. Identical
// answers are folded into one entry timed only by its first and last; when
// t falls inside such an entry, its last answer is the bound taken, so
// lateness is never under-reported.
func firstAfter(h []store.Entry, t time.Time) (time.Time, bool) {
	for _, e := range h {
		switch {
		case e.Event == "webhook":
		case e.At.After(t):
			return e.At, true
		case e.Count > 1 && e.Last.After(t):
			return e.Last, true
		}
	}
	return time.Time{}, false
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// print writes the lateness lines of the report. The goal (2 minutes with
// default settings) is reported, not asserted: a refund that never resumed
// already fails the run as not final.
func (l lateness) print(ops *operator, fast bool) {
	fmt.Printf("operator clicks that took away an open refund's task: %d (and %d that took a task no open refund depended on); resumed: %d",
		l.removals, ops.harmless, len(l.late))
	if n := l.removals - len(l.late); n > 0 {
		fmt.Printf("; never resumed: %d (each also counted as not final)", n)
	}
	fmt.Println()
	if len(l.late) == 0 {
		return
	}
	settings := "recovery defaults"
	if fast {
		settings = "--fast-recovery"
	}
	fmt.Printf("  late after the task would have run (%s; goal ≤ 2m, not asserted): median %s, latest %s (%s)\n",
		settings, l.late[len(l.late)/2].Round(time.Second), l.late[len(l.late)-1].Round(time.Second), l.latestID)
}
