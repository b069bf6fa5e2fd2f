package main

import (
	"bytes"
	"context"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/refundq/refundq/internal/redistest"
)

// TestMain lets the test binary be the bench's child worker, as the bench
// binary is.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(childMain(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// TestEveryScenarioPrintsItsRows runs every scenario at tiny sizes on the
// test Redis and checks the table: a row per measure, each with a refundq
// figure. No figure's value is checked: timings belong to the bench.
func TestEveryScenarioPrintsItsRows(t *testing.T) {
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: redistest.Addr(), DB: redistest.DB()})
	defer rdb.Close()
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("no Redis at %s: %v", redistest.Addr(), err)
	}
	before := benchKeys(t, rdb)
	var out, progress bytes.Buffer
	err := run(ctx, []string{"--redis-addr", redistest.Addr(), "--redis-db", strconv.Itoa(redistest.DB()), "--reps", "1",
		"--drain", "30", "--drain-c", "2,5", "--procs", "2", "--procs-c", "3", "--slow", "20", "--slow-c", "5",
		"--slow-delay", "10ms", "--bulk", "40", "--bulk-c", "4", "--mem-queued", "30", "--mem-pending", "10", "--mem-polls", "3"},
		&out, &progress)
	if err != nil {
		t.Fatalf("run: %v\nprogress:\n%s", err, progress.String())
	}
	table := out.String()
	for _, want := range []string{
		"drain 30, instant simulator, c=2 (tasks/s)",
		"drain 30, instant simulator, c=5 (tasks/s)",
		"worker CPU per refund, c=2 (ms)",
		"Redis CPU per refund, c=5 (ms)",
		"commands executed in Redis per refund, c=2",
		"client→Redis round trips per refund, c=2",
		"of which refundq's own client, c=2",
		"TCP connections opened to the provider, c=2",
		"drain 30, 2 worker processes × c=3 (tasks/s)",
		"provider answering in 10ms, 20 refunds, c=5 (refunds/s)",
		"TCP connections opened for those 20",
		"worker CPU per refund, c=5, slow provider (ms)",
		"worker RSS at c=5",
		"worker peak RSS at c=5",
		"bulk file of 40 rows, 4 goroutines (rows/s)",
		"re-run of the same rows",
		"round trips per row, first run",
		"round trips per row, re-run",
		"refundq     re-run:",
		"Redis memory per queued refund, 30 queued (B)",
		"Redis memory per pending refund, 10 pending, at 1 poll (B)",
		"… at 3 polls (B)",
		"growth per poll (B)",
		"refundq     round trips:",
		"hand-rolled commands:",
		"bare        commands:",
	} {
		line := lineWith(table, want)
		if line == "" {
			t.Errorf("no line with %q in:\n%s", want, table)
			continue
		}
		if c := cells(line); len(c) == 7 && c[1] == "—" {
			t.Errorf("row %q has no refundq figure: %s", want, line)
		}
	}
	// The drains have every arm, and a rate both ratios (a CPU time of
	// 30 tasks may be 0 ticks: no ratio).
	for _, want := range []string{"drain 30, instant simulator, c=2", "worker CPU per refund, c=5 (ms)", "drain 30, 2 worker processes"} {
		c := cells(lineWith(table, want))
		if len(c) != 7 || c[2] == "—" || c[3] == "—" || (strings.HasPrefix(want, "drain") && (c[4] == "—" || c[5] == "—")) {
			t.Errorf("row %q lacks a hand-rolled or bare figure or ratio: %q", want, c)
		}
	}
	// On --redis-addr the goals have one column pair; those at c=50 are
	// not measured at c=2,5.
	if c := cells(lineWith(table, "| drain, instant provider, c=50")); len(c) != 5 || c[3] != "not measured" {
		t.Errorf("goals row of the drain is %q, want it not measured", c)
	}
	if c := cells(lineWith(table, "| bulk: refundq / concurrent asynq")); len(c) != 5 || c[3] == "not measured" {
		t.Errorf("goals row of the bulk file is %q, want a figure", c)
	}
	if after := benchKeys(t, rdb); after > before {
		t.Errorf("%d bench keys left in Redis (%d before)", after, before)
	}
}

func lineWith(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}

// benchKeys counts the keys a bench run makes (its prefixes and queues).
func benchKeys(t *testing.T, rdb *redis.Client) int {
	t.Helper()
	n := 0
	iter := rdb.Scan(context.Background(), 0, "*bench-*", 1000).Iterator()
	for iter.Next(context.Background()) {
		n++
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestFlagsRefuseUnknownScenariosAndSizes(t *testing.T) {
	for _, args := range [][]string{{"--only", "drain,nope"}, {"--drain", "0"}, {"--drain-c", "10,x"}, {"extra"},
		{"--persistence", "always"}, {"--persistence", "off,off"}} {
		if _, err := parseFlags(args); err == nil {
			t.Errorf("parseFlags(%q) accepted", args)
		}
	}
	c, err := parseFlags([]string{"--procs", "0"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(strings.Join(c.only, ","), "procs") {
		t.Errorf("--procs 0 still runs the procs scenario: %v", c.only)
	}
}

func TestTableShowsSpreadRatiosAndLoad(t *testing.T) {
	r := newResults()
	for _, v := range []float64{1000, 3000, 2000} {
		r.add("drain (tasks/s)", refundq, v)
	}
	for _, v := range []float64{4000, 4000} {
		r.add("drain (tasks/s)", handRolled, v)
	}
	r.add("drain (tasks/s)", bare, 10000)
	r.add("only ours", refundq, 2.5)
	r.add("about zero", refundq, 800)
	r.add("about zero", handRolled, 0.4)
	r.noRatio("about zero")
	r.add("connections", refundq, 63)
	r.add("connections", handRolled, 20)
	r.add("cpu (ms)", refundq, 0.5)
	r.add("cpu (ms)", bare, 0.025)
	var out bytes.Buffer
	r.print(&out)
	if head := cells(lineWith(out.String(), "| measure")); !slices.Equal(head[1:6], []string{"refundq min / median / max",
		"hand-rolled min / median / max", "bare min / median / max", "refundq / hand-rolled", "refundq / bare"}) {
		t.Errorf("header is %q", head)
	}
	for _, want := range [][]string{
		{"drain (tasks/s)", "1,000 / 2,000 / 3,000", "4,000 / 4,000 / 4,000", "10,000", "0.50", "0.20"},
		{"only ours", "2.50", "—", "—", "—", "—"},
		{"about zero", "800", "0.40", "—", "—", "—"},
		{"connections", "63", "20", "—", "3.15", "—"},
		{"cpu (ms)", "0.50", "—", "0.025", "—", "20.00"},
	} {
		got := cells(lineWith(out.String(), want[0]))
		if len(got) != 7 || !slices.Equal(got[:6], want) || !strings.Contains(got[6], "–") {
			t.Errorf("row %q is %q, want %q and a load range:\n%s", want[0], got, want, out.String())
		}
	}
}

func TestGoalsReadTheTaggedRowsOfEachPass(t *testing.T) {
	pass1 := func(drainRatioOf100, pend1, pendK float64) *results {
		r := newResults()
		add := func(label, tag string, a arm, v float64) {
			r.add(label, a, v)
			r.tag(label, tag)
		}
		add("drain", tagDrain, refundq, drainRatioOf100)
		add("drain", tagDrain, handRolled, 100)
		add("commands", tagCommands, refundq, 24)
		add("redis cpu", tagRedisCPU, refundq, 0.3)
		add("redis cpu", tagRedisCPU, handRolled, 0.1)
		add("bulk", tagBulk, refundq, 900)
		add("bulk", tagBulk, handRolled, 1000)
		add("pending 1", tagPend1, refundq, pend1)
		add("pending k", tagPendK, refundq, pendK)
		return r
	}
	var out bytes.Buffer
	printGoals(&out, []pass{{"persistence off", pass1(62, 1400, 1420)}, {"durable", pass1(40, 1400, 1600)}})
	for _, want := range [][]string{
		{"drain, instant provider, c=50: refundq / hand-rolled", "0.31", "≥ 0.60", "0.62", "met", "0.40", "not met"},
		{"200 ms provider, c=200: refundq / hand-rolled", "0.94", "≥ 0.97", "not measured", "—", "not measured", "—"},
		{"Redis commands per refund (refundq, drain c=50)", "63", "≤ 25", "24.0", "met", "24.0", "met"},
		{"Redis CPU per refund, refundq / hand-rolled (drain c=50)", "4.2×", "≤ 2×", "3.00×", "not met", "3.00×", "not met"},
		{"bulk: refundq / concurrent asynq", "0.39", "≥ 0.80", "0.90", "met", "0.90", "met"},
		{"bytes per pending refund (refundq), flat in polls", "3,254", "≤ 1,500, flat", "1,400 → 1,420", "met",
			"1,400 → 1,600 (grows)", "not met"},
	} {
		if got := cells(lineWith(out.String(), want[0])); !slices.Equal(got, want) {
			t.Errorf("goal %q is %q, want %q:\n%s", want[0], got, want, out.String())
		}
	}
}

// cells splits a Markdown table line into its trimmed cells.
func cells(line string) []string {
	parts := strings.Split(strings.Trim(line, "|"), "|")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}
