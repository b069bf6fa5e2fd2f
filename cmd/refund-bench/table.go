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
	refundq arm = iota
	bare
)

func (a arm) String() string { return [...]string{"refundq", "bare"}[a] }

// row is one measure: every repetition's value per arm, and the 1-minute
// load average when each was taken.
type row struct {
	label   string
	vals    [2][]float64
	loads   []float64
	noRatio bool // the bare figure is about zero: a ratio would be noise
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

// noRatio marks a measure whose bare figure is about zero.
func (r *results) noRatio(label string) {
	if w := r.byKey[label]; w != nil {
		w.noRatio = true
	}
}

func (r *results) note(format string, args ...any) {
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

// print writes the table as Markdown, then the notes.
func (r *results) print(w io.Writer) {
	lines := [][]string{{"measure", "refundq min / median / max", "bare min / median / max", "ratio", "load1"}}
	for _, x := range r.rows {
		ratio := "—"
		if len(x.vals[refundq]) > 0 && len(x.vals[bare]) > 0 && !x.noRatio {
			if b := median(x.vals[bare]); math.Abs(b) >= 1e-9 {
				ratio = fmt.Sprintf("%.2f", median(x.vals[refundq])/b)
			}
		}
		whole := !slices.ContainsFunc(slices.Concat(x.vals[refundq], x.vals[bare]), func(f float64) bool { return f != math.Trunc(f) })
		lines = append(lines, []string{x.label, spread(x.vals[refundq], whole), spread(x.vals[bare], whole), ratio,
			fmt.Sprintf("%.2f–%.2f", slices.Min(x.loads), slices.Max(x.loads))})
	}
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
	fmt.Fprintln(w, "\nratio: refundq's median / bare's median. load1: the 1-minute load average (/proc/loadavg) as each figure of the row was taken, lowest–highest.")
	for _, n := range r.notes {
		fmt.Fprintln(w, n)
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
// separated; smaller ones with one or two.
func num(f float64, whole bool) string {
	switch a := math.Abs(f); {
	case a >= 100 || whole:
		return thousands(int64(math.Round(f)))
	case a >= 10:
		return strconv.FormatFloat(f, 'f', 1, 64)
	default:
		return strconv.FormatFloat(f, 'f', 2, 64)
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
