package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
)

// arm is one side of a comparison.
type arm int

const (
	refundq    arm = iota // refundq's worker (or enqueue client)
	handRolled            // an asynq handler making the same provider call through the same adapter
	bare                  // an asynq handler doing nothing
)

var armNames = [...]string{"refundq", "hand-rolled", "bare"}

func (a arm) String() string { return armNames[a] }

func parseArm(s string) (arm, bool) {
	i := slices.Index(armNames[:], s)
	return arm(i), i >= 0
}

// row is one measure: every repetition's value per arm, and the 1-minute
// load average when each was taken.
type row struct {
	label   string
	vals    [len(armNames)][]float64
	loads   []float64
	tag     string // names the row for the goals table
	noRatio bool   // the other arms' figures are about zero: a ratio would be noise
}

// ratio is the median of refundq's figures over the median of other's;
// ok false when either has none, or the row has no ratios.
func (x *row) ratio(other arm) (float64, bool) {
	if x.noRatio || len(x.vals[refundq]) == 0 || len(x.vals[other]) == 0 {
		return 0, false
	}
	d := median(x.vals[other])
	if math.Abs(d) < 1e-9 {
		return 0, false
	}
	return median(x.vals[refundq]) / d, true
}

// results collects rows in the order they are first measured, and notes to
// print under the table.
type results struct {
	rows  []*row
	byKey map[string]*row
	notes []string
}

func newResults() *results { return &results{byKey: map[string]*row{}} }

// add records one value of a measure for one arm.
func (r *results) add(label string, a arm, v float64) {
	w := r.byKey[label]
	if w == nil {
		w = &row{label: label}
		r.byKey[label] = w
		r.rows = append(r.rows, w)
	}
	w.vals[a] = append(w.vals[a], v)
	w.loads = append(w.loads, load1())
}

// noRatio marks a measure whose other figures are about zero.
func (r *results) noRatio(label string) {
	if w := r.byKey[label]; w != nil {
		w.noRatio = true
	}
}

// tag names a row for the goals table.
func (r *results) tag(label, tag string) {
	if w := r.byKey[label]; w != nil {
		w.tag = tag
	}
}

// tagged returns the row tag names, or nil.
func (r *results) tagged(tag string) *row {
	for _, w := range r.rows {
		if w.tag == tag {
			return w
		}
	}
	return nil
}

func (r *results) note(format string, args ...any) {
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

// print writes the table as Markdown, then the notes.
func (r *results) print(w io.Writer) {
	head := []string{"measure"}
	for _, a := range armNames {
		head = append(head, a+" min / median / max")
	}
	lines := [][]string{append(head, "refundq / hand-rolled", "refundq / bare", "load1")}
	for _, x := range r.rows {
		whole := !slices.ContainsFunc(slices.Concat(x.vals[:]...), func(f float64) bool { return f != math.Trunc(f) })
		l := []string{x.label}
		for a := range armNames {
			l = append(l, spread(x.vals[a], whole))
		}
		for _, other := range []arm{handRolled, bare} {
			ratio := "—"
			if v, ok := x.ratio(other); ok {
				ratio = fmt.Sprintf("%.2f", v)
			}
			l = append(l, ratio)
		}
		lines = append(lines, append(l, fmt.Sprintf("%.2f–%.2f", slices.Min(x.loads), slices.Max(x.loads))))
	}
	markdown(w, lines)
	fmt.Fprintln(w, "\nratios: refundq's median / the other arm's median. load1: the 1-minute load average (/proc/loadavg) as each figure of the row was taken, lowest–highest.")
	for _, n := range r.notes {
		fmt.Fprintln(w, n)
	}
}

// markdown writes lines as a Markdown table, the first line its header:
// the first column left-aligned, the others right-aligned.
func markdown(w io.Writer, lines [][]string) {
	width := make([]int, len(lines[0]))
	for _, l := range lines {
		for i, c := range l {
			width[i] = max(width[i], len([]rune(c)))
		}
	}
	for n, l := range lines {
		var b strings.Builder
		for i, c := range l {
			pad := strings.Repeat(" ", width[i]-len([]rune(c)))
			if i == 0 {
				b.WriteString("| " + c + pad + " ")
			} else {
				b.WriteString("| " + pad + c + " ")
			}
		}
		fmt.Fprintln(w, b.String()+"|")
		if n == 0 {
			b.Reset()
			for i := range l {
				b.WriteString("|" + strings.Repeat("-", width[i]+2))
			}
			fmt.Fprintln(w, b.String()+"|")
		}
	}
}

// spread is "min / median / max" of v, or its one value; whole: every
// figure of the row is a whole number, printed without decimals.
func spread(v []float64, whole bool) string {
	switch len(v) {
	case 0:
		return "—"
	case 1:
		return num(v[0], whole)
	}
	return num(slices.Min(v), whole) + " / " + num(median(v), whole) + " / " + num(slices.Max(v), whole)
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if n := len(s); n%2 == 1 {
		return s[n/2]
	} else {
		return (s[n/2-1] + s[n/2]) / 2
	}
}

// num formats a figure: from 100 up (or whole) without decimals, thousands
// separated; smaller ones with one or two (three below 0.1, so a CPU time
// of a few microseconds does not print as 0.00).
func num(f float64, whole bool) string {
	switch a := math.Abs(f); {
	case a >= 100 || whole:
		return thousands(int64(math.Round(f)))
	case a >= 10:
		return strconv.FormatFloat(f, 'f', 1, 64)
	case a >= 0.1 || a == 0:
		return strconv.FormatFloat(f, 'f', 2, 64)
	default:
		return strconv.FormatFloat(f, 'f', 3, 64)
	}
}

func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

// load1 is the 1-minute load average, or -1 when /proc/loadavg cannot be read.
func load1() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f, _ := strconv.ParseFloat(strings.Fields(string(b))[0], 64)
	return f
}
