package main

import (
	"fmt"
	"io"
)

// Tags of the rows the goals read.
const (
	tagDrain    = "drain c=50"       // drain rate at c=50
	tagCommands = "commands c=50"    // Redis commands per refund at c=50
	tagRedisCPU = "redis cpu c=50"   // Redis CPU per refund at c=50
	tagSlow     = "slow"             // rate with the slow provider
	tagBulk     = "bulk"             // bulk file, first run
	tagPend1    = "pending, 1 poll"  // bytes per pending refund at 1 poll
	tagPendK    = "pending, k polls" // … at --mem-polls polls
)

// goalConc is the drain concurrency the goals are stated at.
const goalConc = 50

// goal is one of the targets: the figure the issue started from,
// and how this run's figure is read from a pass's results and judged.
type goal struct {
	measure, now, want string
	judge              func(r *results) (figure string, met, ok bool)
}

// goals are the issue's, in its order.
var goals = []goal{
	{"drain, instant provider, c=50: refundq / hand-rolled", "0.31", "≥ 0.60", ratioAtLeast(tagDrain, 0.60)},
	{"200 ms provider, c=200: refundq / hand-rolled", "0.94", "≥ 0.97", ratioAtLeast(tagSlow, 0.97)},
	{"Redis commands per refund (refundq, drain c=50)", "63", "≤ 25", func(r *results) (string, bool, bool) {
		x := r.tagged(tagCommands)
		if x == nil || len(x.vals[refundq]) == 0 {
			return "", false, false
		}
		v := median(x.vals[refundq])
		return num(v, false), v <= 25, true
	}},
	{"Redis CPU per refund, refundq / hand-rolled (drain c=50)", "4.2×", "≤ 2×", func(r *results) (string, bool, bool) {
		x := r.tagged(tagRedisCPU)
		if x == nil {
			return "", false, false
		}
		v, ok := x.ratio(handRolled)
		// Two decimals, as the other ratios: 2.02× must not show as a 2.0× that failed.
		return fmt.Sprintf("%.2f×", v), v <= 2, ok
	}},
	{"bulk: refundq / concurrent asynq", "0.39", "≥ 0.80", ratioAtLeast(tagBulk, 0.80)},
	{"bytes per pending refund (refundq), flat in polls", "3,254", "≤ 1,500, flat", pendingGoal},
}

func ratioAtLeast(tag string, target float64) func(r *results) (string, bool, bool) {
	return func(r *results) (string, bool, bool) {
		x := r.tagged(tag)
		if x == nil {
			return "", false, false
		}
		v, ok := x.ratio(handRolled)
		return fmt.Sprintf("%.2f", v), v >= target, ok
	}
}

// flatWithin is how much the bytes per pending refund may grow from 1 poll
// to --mem-polls polls and still count as flat: less than the memory
// figures move from rep to rep.
const flatWithin = 0.05

// pendingGoal reads the bytes per pending refund at 1 poll and at
// --mem-polls polls: met when neither is over 1,500 and the second is
// within flatWithin of the first.
func pendingGoal(r *results) (string, bool, bool) {
	one, k := r.tagged(tagPend1), r.tagged(tagPendK)
	if one == nil || k == nil || len(one.vals[refundq]) == 0 || len(k.vals[refundq]) == 0 {
		return "", false, false
	}
	a, b := median(one.vals[refundq]), median(k.vals[refundq])
	flat := b <= a*(1+flatWithin)
	shown := fmt.Sprintf("%s → %s", num(a, true), num(b, true))
	if !flat {
		shown += " (grows)"
	}
	return shown, max(a, b) <= 1500 && flat, true
}

// pass is one persistence setting's run: its name and what it measured.
type pass struct {
	name string
	res  *results
}

// printGoals writes the goals table: the figure, the goal, and
// each pass's figure with whether it meets the goal.
func printGoals(w io.Writer, passes []pass) {
	head := []string{"goal", "issue's now", "goal"}
	for _, p := range passes {
		head = append(head, p.name, "met")
	}
	lines := [][]string{head}
	for _, g := range goals {
		l := []string{g.measure, g.now, g.want}
		for _, p := range passes {
			figure, met, ok := g.judge(p.res)
			switch {
			case !ok:
				l = append(l, "not measured", "—")
			case met:
				l = append(l, figure, "met")
			default:
				l = append(l, figure, "not met")
			}
		}
		lines = append(lines, l)
	}
	markdown(w, lines)
	fmt.Fprintf(w, "\nThe medians of the tables above. \"not measured\": the scenario was not run (--only), or not at c=%d (--drain-c). "+
		"Flat: the bytes per pending refund at --mem-polls polls within %.0f%% of those at 1 poll.\n", goalConc, flatWithin*100)
}
