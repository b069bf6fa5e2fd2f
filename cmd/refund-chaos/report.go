package main

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/providers/sandbox"
	"github.com/refundq/refundq/tasks"
)

// want is one refund the harness enqueued, and what its simulator should
// show of it.
type want struct {
	sim    *sandbox.Sim
	refund tasks.Refund
	over   bool // asks more than was paid: must fail, unpaid
}

// chaos is what the run did to the system, for the report.
type chaos struct {
	kills, restarts, powerCuts int
	ops                        *operator
	outaged                    string
	quiet                      time.Duration
	late                       lateness
	sent                       *sentinelRedis
	dir                        string
	reviewed                   time.Duration // how long the look-ups in review ran after quiescence
	reconciled                 reconciled    // see reconcile.go
}

// verdict compares every record with the simulators' ledgers, prints the
// report, and reports whether the promise held.
func verdict(c config, wants []want, recs []store.Record, sims []sandbox.Sim, ch chaos) bool {
	byID := map[string]want{}
	for _, w := range wants {
		byID[w.refund.RefundID] = w
	}
	// Verdict against the ledgers.
	type cell struct{ provider, state string }
	table := map[cell]int{}
	var duplicates, lost, wrong, unpaidSucceeded, paidFailed, notFinal, unexpected, provenUnpaid []string
	reconciled := 0
	reviews := map[string]int{}
	seen := map[string]bool{}
	for _, r := range recs {
		seen[r.RefundID] = true
		w, ok := byID[r.RefundID]
		if !ok {
			continue
		}
		table[cell{r.Provider, string(r.State)}]++
		applied := w.sim.Applied(r.OrderID)
		if len(applied) > 1 {
			duplicates = append(duplicates, fmt.Sprintf("%s paid %d times", r.RefundID, len(applied)))
		}
		switch r.State {
		case store.Succeeded:
			if len(applied) == 0 {
				unpaidSucceeded = append(unpaidSucceeded, r.RefundID)
			} else if applied[0] != w.refund.Money() {
				wrong = append(wrong, fmt.Sprintf("%s paid %s, asked %s", r.RefundID, applied[0], w.refund.Money()))
			}
		case store.Failed:
			if len(applied) > 0 {
				paidFailed = append(paidFailed, r.RefundID)
			}
			if !w.over {
				unexpected = append(unexpected, r.RefundID+": "+r.LastError)
			}
		case store.NeedsReview:
			reviews[r.Provider+": "+reviewCategory(r.LastError)]++
			if r.Review == store.ReviewNotApplied && len(applied) > 0 {
				// A look-up's proof that nothing was applied is what a
				// resend rests on (REFUNDQ_RESUME_AFTER_REVIEW).
				provenUnpaid = append(provenUnpaid, r.RefundID)
			}
		default:
			notFinal = append(notFinal, r.RefundID+" ("+string(r.State)+")")
		}
		if r.Attempts > 1 {
			reconciled++
		}
		if w.over && r.State == store.Succeeded {
			wrong = append(wrong, r.RefundID+" refunded more than was paid")
		}
	}
	for id := range byID {
		if !seen[id] {
			lost = append(lost, id)
		}
	}

	fmt.Println()
	tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
	states := []string{"succeeded", "failed", "needs_review", "pending", "processing", "queued"}
	fmt.Fprintf(tw, "PROVIDER\t%s\tFAULTS INJECTED\n", strings.ToUpper(strings.Join(states, "\t")))
	names := make([]string, 0, len(sims))
	byName := map[string]*sandbox.Sim{}
	for i := range sims {
		names = append(names, sims[i].Name)
		byName[sims[i].Name] = &sims[i]
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(tw, "%s", n)
		for _, s := range states {
			fmt.Fprintf(tw, "\t%d", table[cell{n, s}])
		}
		fmt.Fprintf(tw, "\t%s\n", byName[n].Faults)
	}
	tw.Flush()
	fmt.Printf("\nrefunds %d (%s shape%s), worker kills %d, Redis restarts %d, power cuts %d (appendfsync %s, %s), operator deletes %d, archives %d and re-runs %d, auth outage %s, time to quiescence %s\n",
		len(wants), c.shape, map[bool]string{true: ", quirks"}[c.quirks], ch.kills, ch.restarts, ch.powerCuts, fsyncOf(c, ch),
		map[bool]string{true: "loss accepted", false: "durable writes"}[c.acceptLoss],
		ch.ops.deleted, ch.ops.archived, ch.ops.ran, orNone(ch.outaged), ch.quiet.Round(time.Second))
	if c.operator > 0 {
		ch.late.print(ch.ops, c.fastRecover)
	}
	var failedFailovers []string
	if ch.sent != nil {
		var n int
		n, failedFailovers = ch.sent.done()
		fmt.Printf("Sentinel failovers %d of %d\n", n, c.failovers)
	}
	fmt.Printf("refunds sent more than once (each resend after a look-up showed nothing applied, or after a 429): %d\n", reconciled)
	fmt.Printf("failed for a reason other than asking more than was paid (not a violation): %d", len(unexpected))
	if len(unexpected) > 0 {
		sort.Strings(unexpected)
		fmt.Printf("  %s", strings.Join(unexpected[:min(len(unexpected), 5)], "; "))
	}
	fmt.Println()
	reviewReport(recs, ch.reviewed)
	if len(reviews) > 0 {
		fmt.Println("still in needs_review, by provider and reason (not violations: automation stopped without proof either way):")
		keys := make([]string, 0, len(reviews))
		for k := range reviews {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Printf("  %4d  %s\n", reviews[k], k)
		}
	}
	violations := 0
	report := func(name string, items []string) {
		fmt.Printf("%-32s %d", name, len(items))
		if len(items) > 0 {
			violations += len(items)
			sort.Strings(items)
			fmt.Printf("  %s", strings.Join(items[:min(len(items), 10)], ", "))
		}
		fmt.Println()
	}
	report("duplicates (paid twice):", duplicates)
	report("lost (no record):", lost)
	report("not final:", notFinal)
	report("succeeded but never paid:", unpaidSucceeded)
	report("failed but paid:", paidFailed)
	report("proven not applied but paid:", provenUnpaid)
	report("wrong amount or currency:", wrong)
	ch.reconciled.print()
	report("disagreements at reconcile:", ch.reconciled.disagreements)
	if ch.sent != nil {
		report("failovers that did not happen:", failedFailovers)
	}
	if violations > 0 || c.keep {
		fmt.Printf("logs and AOF kept in %s\n", ch.dir)
	} else {
		defer os.RemoveAll(ch.dir)
	}
	if violations > 0 {
		fmt.Println("FAIL")
		return false
	}
	fmt.Println("PASS: every refund paid exactly once or reported unpaid")
	return true
}

// reviewCategory names why a refund went to needs_review, without its ids.
func reviewCategory(reason string) string {
	for _, c := range []struct{ has, name string }{
		{"answers cannot show whether the refund was applied", "the provider's answers cannot show the outcome"},
		{"in progress and now shows none", "reported pending, then not found"},
		{"outcome still unknown after", "outcome unknown through every retry"},
		{"not sent after", "not sent through every retry (nothing applied)"},
		{"still pending at the provider", "pending past the provider's horizon"},
		{"outcome uncertain", "the provider calls the outcome uncertain (reverse or confirm)"},
		{"which no attempt refundq recorded explains", "a change on the order no record explains"},
		{"sent 50 times without a final answer", "sent 50 times without a final answer"},
		{"contradicts", "the answer contradicts the refund (amount, currency, reference)"},
	} {
		if strings.Contains(reason, c.has) {
			return c.name
		}
	}
	if len(reason) > 70 {
		reason = reason[:70] + "…"
	}
	return reason
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// fsyncOf names the harness's Redis persistence for the report.
func fsyncOf(c config, ch chaos) string {
	if ch.sent != nil {
		return "everysec on a primary and a replica"
	}
	return c.fsync
}
