package main

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/refundq/refundq/enqueue"
	"github.com/refundq/refundq/internal/store"
)

// reconciled is what a reconciliation over the chaos run's refunds found:
// the last net, run by the workers that survived the chaos, read-only.
// Every disagreement is a violation (a record the provider contradicts);
// an unchecked refund is not (the provider's answer could not show it).
type reconciled struct {
	run           store.ReconcileRun
	disagreements []string
	unchecked     map[string]int // provider and reason → refunds
}

// reconcileAll runs a reconciliation over every refund that became final
// since start, and waits up to timeout for it. A run that cannot start or
// finish is a disagreement of its own: the net must not be skipped quietly.
func reconcileAll(ctx context.Context, enq *enqueue.Client, since time.Time, timeout time.Duration) reconciled {
	out := reconciled{unchecked: map[string]int{}}
	run, err := enq.StartReconcile(ctx, enqueue.ReconcileRequest{Since: since, StartedBy: "refund-chaos"})
	if err != nil {
		out.disagreements = append(out.disagreements, "the reconciliation did not start: "+err.Error())
		return out
	}
	deadline := time.Now().Add(timeout)
	for run.State != store.RunDone {
		if time.Now().After(deadline) {
			out.run = run
			out.disagreements = append(out.disagreements, fmt.Sprintf("reconciliation %s not done after %s (%d of %d)", run.ID, timeout, run.Walked, run.Total))
			return out
		}
		time.Sleep(200 * time.Millisecond)
		if run, _, _, err = enq.Reconciliation(ctx, run.ID, 0, 1); err != nil {
			out.disagreements = append(out.disagreements, "the reconciliation could not be read: "+err.Error())
			return out
		}
	}
	out.run = run
	_, fs, _, err := enq.Reconciliation(ctx, run.ID, 0, 0)
	if err != nil {
		out.disagreements = append(out.disagreements, "the reconciliation's findings could not be read: "+err.Error())
		return out
	}
	for _, f := range fs {
		if f.Verdict == "disagree" {
			out.disagreements = append(out.disagreements, fmt.Sprintf("%s (%s here): %s", f.RefundID, f.State, f.Reason))
		} else {
			out.unchecked[f.Provider+": "+f.Reason]++
		}
	}
	return out
}

// print says what the reconciliation checked; its disagreements are
// reported with the other violations.
func (r reconciled) print() {
	fmt.Printf("reconciliation %s of the refunds final since the chaos began: %d checked, %d agree, %d disagree, %d unchecked\n",
		orNone(r.run.ID), r.run.Checked, r.run.Agree, r.run.Disagree, r.run.Unchecked)
	keys := make([]string, 0, len(r.unchecked))
	for k := range r.unchecked {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Printf("  %4d  unchecked, %s\n", r.unchecked[k], k)
	}
}
