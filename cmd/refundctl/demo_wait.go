package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/refundq/refundq/internal/store"
	"golang.org/x/term"
)

// awaitFinal waits until n refunds are final, drawing progress on a
// terminal (else a line each time it changes) and saying what the rest
// wait for.
func awaitFinal(ctx context.Context, st *store.Store, insp *asynq.Inspector, queue string, n int, timeout time.Duration, progress io.Writer) ([]store.Record, error) {
	f, isFile := progress.(*os.File)
	tty := isFile && term.IsTerminal(int(f.Fd()))
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	lastLine, lastLen := "", 0
	for {
		recs, err := st.List(ctx, 0)
		if err != nil {
			return nil, err
		}
		final := 0
		var open []store.Record
		for _, r := range recs {
			if r.State.Final() {
				final++
			} else {
				open = append(open, r)
			}
		}
		line := fmt.Sprintf("%d/%d final", final, n)
		if w := waitingFor(insp, queue, open, time.Now()); w != "" {
			line += "; " + w
		}
		if tty {
			pad := max(0, lastLen-len(line))
			fmt.Fprintf(progress, "\r%s%s%s", bar(final, n, 20), line, strings.Repeat(" ", pad))
			lastLen = len(line)
		} else if line != lastLine {
			fmt.Fprintln(progress, line)
		}
		lastLine = line
		if final >= n && len(recs) >= n {
			if tty {
				fmt.Fprintln(progress)
			}
			return recs, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("demo: only %d of %d refunds final after %s; %s", final, n, timeout, lastLine)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
	}
}

// waitingFor says what the open refunds wait for, by provider: "2 refunds
// pending at moyasarpg; next poll in 2 s". The refund record says the
// state; the task that drives it (asynq) says when it next runs.
func waitingFor(insp *asynq.Inspector, queue string, open []store.Record, now time.Time) string {
	type group struct {
		what, provider string
		n              int
		next           time.Time
	}
	var groups []*group
	find := func(what, provider string) *group {
		for _, g := range groups {
			if g.what == what && g.provider == provider {
				return g
			}
		}
		g := &group{what: what, provider: provider}
		groups = append(groups, g)
		return g
	}
	for _, r := range open {
		what := "queued for a worker"
		var next time.Time
		info, err := insp.GetTaskInfo(queue, r.Task)
		switch {
		case r.State == store.Pending:
			what = "pending"
		case err == nil && info.State == asynq.TaskStateActive:
			what = "in a call"
		case err == nil && info.State == asynq.TaskStateRetry:
			what = "to be retried"
		case err == nil && info.State == asynq.TaskStateScheduled:
			what = "to be looked up again"
		case r.State == store.Processing:
			what = "processing"
		}
		if err == nil && (info.State == asynq.TaskStateScheduled || info.State == asynq.TaskStateRetry) {
			next = info.NextProcessAt
		}
		g := find(what, r.Provider)
		g.n++
		if !next.IsZero() && (g.next.IsZero() || next.Before(g.next)) {
			g.next = next
		}
	}
	parts := make([]string, 0, len(groups))
	for _, g := range groups {
		noun := "refunds"
		if g.n == 1 {
			noun = "refund"
		}
		p := fmt.Sprintf("%d %s %s at %s", g.n, noun, g.what, g.provider)
		if !g.next.IsZero() {
			verb := "next try"
			if g.what == "pending" {
				verb = "next poll"
			}
			p += fmt.Sprintf("; %s in %d s", verb, max(0, int(math.Ceil(g.next.Sub(now).Seconds()))))
		}
		parts = append(parts, p)
	}
	sort.Strings(parts)
	return strings.Join(parts, " · ")
}

func bar(done, total, width int) string {
	filled := 0
	if total > 0 {
		filled = done * width / total
	}
	return "[" + strings.Repeat("#", filled) + strings.Repeat(".", width-filled) + "] "
}
