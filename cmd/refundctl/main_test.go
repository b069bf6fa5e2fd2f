package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/refundq/refundq/enqueue"
	"github.com/refundq/refundq/internal/redistest"
	"github.com/refundq/refundq/internal/store"
)

// result is one refundctl run.
type result struct {
	out, err string
	code     int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout\n%s--- stderr\n%s", r.code, r.out, clipForLog(r.err))
}

func clipForLog(s string) string {
	if len(s) > 2000 {
		return s[:2000] + "…(cut for the test log)"
	}
	return s
}

// cli runs refundctl as main does, against the test's own slice of a real
// Redis (env nil: no Redis configured).
func cli(t *testing.T, env *redistest.Env, stdin string, args ...string) result {
	t.Helper()
	if env != nil {
		t.Setenv("REDIS_URL", fmt.Sprintf("redis://%s/%d", redistest.Addr(), redistest.DB()))
		t.Setenv("REFUNDQ_QUEUE", env.Queue)
		t.Setenv("REFUNDQ_PREFIX", env.Prefix)
	}
	var out, errOut bytes.Buffer
	code := execute(context.Background(), args, strings.NewReader(stdin), &out, &errOut)
	return result{out.String(), errOut.String(), code}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const header = "refund_id,provider,order_id,transaction_id,amount,currency,reason\n"

// Finding 1: flags after a positional argument, in the order the usage
// text itself writes them.
func TestFlagsAfterArguments(t *testing.T) {
	env := redistest.New(t)
	file := writeFile(t, "r.csv", header+"rf-1,moyasarpg,ord-1,,403.33,SAR,requested\n")
	if r := cli(t, env, "", "bulk", file, "--dry-run"); r.code != 0 || !strings.Contains(r.out, "dry run") {
		t.Fatalf("bulk FILE --dry-run: %s", r)
	}
	if r := cli(t, env, "", "bulk", file); r.code != 0 || !strings.Contains(r.out, "1 enqueued") {
		t.Fatalf("bulk FILE: %s", r)
	}
	r := cli(t, env, "", "status", "rf-1", "--json")
	var st statusJSON
	if r.code != 0 || json.Unmarshal([]byte(r.out), &st) != nil || st.State != store.Queued || st.AmountMinor != 40333 {
		t.Fatalf("status ID --json: %s", r)
	}
	// The flags parse; the refund is queued, so the store refuses (1), not
	// the command line (2).
	r = cli(t, env, "", "settle", "rf-1", "--as", "failed", "--note", "x", "--actor", "alice")
	if r.code != exitFailed || !strings.Contains(r.err, `refund "rf-1" is queued, not needs_review`) {
		t.Fatalf("settle ID --as failed --note x: %s", r)
	}
	if r := cli(t, env, "", "status", "--json", "rf-1"); r.code != 0 {
		t.Fatalf("flags before the argument still work: %s", r)
	}
}

// Exit codes: 0 done, 1 the operation failed, 2 the command line is wrong;
// the help text says so.
func TestExitCodes(t *testing.T) {
	env := redistest.New(t)
	for _, tc := range []struct {
		args []string
		code int
		says string
	}{
		{[]string{"--help"}, 0, "Exit status: 0 done; 1 the operation failed"},
		{[]string{"demo", "--help"}, 0, "Run the whole pipeline"},
		{[]string{"help", "settle"}, 0, "--as succeeded"},
		{[]string{"--version"}, 0, "refundctl "},
		{nil, 2, "no command given"},
		{[]string{"bogus"}, 2, `unknown command "bogus"`},
		{[]string{"stauts", "rf_1"}, 2, `unknown command "stauts" for "refundctl"; did you mean "status"?`},
		{[]string{"completion", "bahs"}, 2, `did you mean "bash"`},
		{[]string{"status", "a", "--jsno"}, 2, `unknown flag: --jsno; did you mean "--json"?`},
		{[]string{"list", "--stat", "failed"}, 2, `did you mean "--state"?`},
		{[]string{"status"}, 2, "want a refund id"},
		{[]string{"status", "a", "b"}, 2, "want one refund id, got 2"},
		{[]string{"status", "a", "--bogus"}, 2, "unknown flag: --bogus"},
		{[]string{"status", "a", "-o", "yaml"}, 2, `--output "yaml": want table or json`},
		{[]string{"list", "--limit", "x"}, 2, "invalid argument"},
		{[]string{"settle", "a", "--as", "maybe", "--note", "x"}, 2, `--as "maybe": want succeeded`},
		{[]string{"settle", "a", "--as", "failed"}, 2, "missing --note"},
		{[]string{"bulk"}, 2, "want one FILE"},
		{[]string{"bulk", "/nonexistent.csv"}, 2, "cannot open"},
		{[]string{"enqueue", "--id", "x", "--provider", "moyasarpg", "--order", "o", "--amount", "1.505", "--currency", "SAR"}, 2, "--amount: amount \"1.505\": SAR has 2 decimals"},
		{[]string{"enqueue", "--id", "x", "--provider", "paypal", "--order", "o", "--amount", "1", "--currency", "SAR"}, 2, `unknown provider "paypal"`},
		{[]string{"status", "nope"}, 1, `no refund "nope"`},
		{[]string{"settle", "nope", "--as", "failed", "--note", "x", "--actor", "alice"}, 1, `no refund "nope"`},
		{[]string{"guesses", "clear", "fatora", "nope"}, 2, `fatora has no guess "nope" (its guesses: fatora.verify_refund_status, fatora.verify_refund_status.under_proccession)`},
	} {
		r := cli(t, env, "", tc.args...)
		if r.code != tc.code || !strings.Contains(r.out+r.err, tc.says) {
			t.Errorf("refundctl %s: want exit %d saying %q; got %s", strings.Join(tc.args, " "), tc.code, tc.says, r)
		}
		if tc.code == 2 && !strings.Contains(r.err, "--help' for usage") {
			t.Errorf("refundctl %s: a usage error should point to --help: %s", strings.Join(tc.args, " "), r)
		}
	}
}

// Every command's help shows examples, and every command answers --help
// with exit 0.
func TestEveryCommandHasExamples(t *testing.T) {
	root := newRoot(strings.NewReader(""), io.Discard, io.Discard)
	var walk func(c *cobra.Command)
	n := 0
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		if c.Hidden {
			return
		}
		n++
		path := strings.Fields(c.CommandPath())[1:]
		r := cli(t, nil, "", append(path, "--help")...)
		if r.code != 0 || !strings.Contains(r.out, "Examples:\n") || strings.TrimSpace(c.Example) == "" {
			t.Errorf("%s --help: want exit 0 with examples; got %s", c.CommandPath(), r)
		}
	}
	walk(root)
	if n < 14 { // root, 8 commands, guesses clear, help, completion and its 4 shells
		t.Fatalf("walked %d commands", n)
	}
}

func TestVersionAndCompletion(t *testing.T) {
	r := cli(t, nil, "", "--version")
	if r.code != 0 || !strings.HasPrefix(r.out, "refundctl ") || !strings.Contains(r.out, "go1.") {
		t.Fatalf("--version: %s", r)
	}
	if r := cli(t, nil, "", "completion", "bash"); r.code != 0 || !strings.Contains(r.out, "__start_refundctl") {
		t.Fatalf("completion bash: exit %d", r.code)
	}
	// What a shell asks when the user presses tab after --provider.
	r = cli(t, nil, "", "__complete", "enqueue", "--provider", "")
	if r.code != 0 || !strings.Contains(r.out, "moyasarpg\n") || !strings.Contains(r.out, "fatora\n") {
		t.Fatalf("provider completion: %s", r)
	}
	if r := cli(t, nil, "", "__complete", "list", "--state", ""); !strings.Contains(r.out, "needs_review\n") {
		t.Fatalf("state completion: %s", r)
	}
}

// Finding 4: every message is a sentence about the user's input, never an
// internal one, and quotes the input at most 64 characters long.
func TestMessagesForPeople(t *testing.T) {
	env := redistest.New(t)
	r := cli(t, env, "", "settle", "no_such_id", "--as", "failed", "--note", "x", "--actor", "alice")
	if r.code != 1 || strings.Contains(r.err, "ERR") || strings.Contains(r.err, "store:") ||
		!strings.Contains(r.err, `no refund "no_such_id" under key prefix`) {
		t.Fatalf("settle of an unknown refund: %s", r)
	}
	long := strings.Repeat("x", 10_000)
	r = cli(t, env, "", "status", long)
	if r.code != 1 || len(r.err) > 300 || !strings.Contains(r.err, `"`+strings.Repeat("x", 64)+`"…`) {
		t.Fatalf("status of a 10 KB id: %d bytes on stderr: %s", len(r.err), r)
	}
	r = cli(t, env, "", "enqueue", "--id", long, "--provider", "moyasarpg", "--order", "o", "--amount", "1.00", "--currency", long)
	if r.code != 2 || len(r.err) > 600 || strings.Contains(r.err, strings.Repeat("x", 65)) {
		t.Fatalf("enqueue with 10 KB values: %d bytes on stderr: %s", len(r.err), r)
	}
	// A CSV header of 1 MB: refused (exit 2) in a few hundred bytes.
	file := writeFile(t, "big.csv", "refund_id,"+strings.Repeat("h", 1<<20)+"\n")
	r = cli(t, env, "", "bulk", file)
	if r.code != 2 || len(r.err) > 500 || !strings.Contains(r.err, `unknown column "hhhh`) {
		t.Fatalf("1 MB CSV header: %d bytes on stderr: %s", len(r.err), r)
	}
	// JSON Lines: an array, a field of the wrong type, a 2 MB line (read
	// whole: its own error, the rows around it go through) and a 17 MB
	// line (too long: reported, the rest of the file still goes through).
	good := func(id string) string {
		return `{"refund_id":"` + id + `","provider":"moyasarpg","order_id":"o-` + id + `","amount":"1.00","currency":"SAR"}` + "\n"
	}
	jsonl := good("j1") +
		`["rf-x","moyasarpg"]` + "\n" +
		`{"refund_id":"j3","provider":"moyasarpg","order_id":7,"amount":"1.00","currency":"SAR"}` + "\n" +
		`{"refund_id":"j4","provider":"moyasarpg","order_id":"o","amount":"1.00","currency":"SAR","reason":"` + strings.Repeat("r", 2<<20) + `"}` + "\n" +
		`{"refund_id":"j5","reason":"` + strings.Repeat("r", 17<<20) + `"}` + "\n" +
		good("j6")
	file = writeFile(t, "r.jsonl", jsonl)
	r = cli(t, env, "", "bulk", file)
	for _, want := range []string{
		"line 2: -: want one JSON object per line, got an array",
		`line 3: "j3": field order_id: want a string, got a number`,
		`line 4: "j4": invalid refund: reason: longer than 255 characters`,
		"line 5: -: line longer than 16 MiB, the limit of a bulk line",
		"6 rows", "2 enqueued", "4 invalid",
	} {
		if !strings.Contains(r.out+r.err, want) {
			t.Errorf("bulk JSONL lacks %q: %s", want, r)
		}
	}
	if r.code != 1 || strings.Contains(r.err, "Go value") || strings.Contains(r.err, "token too long") || len(r.err) > 2000 {
		t.Errorf("bulk JSONL: %s", r)
	}
}

// Finding 5: one object per line; what follows it on the line is an error
// naming the line, and nothing of the line is enqueued.
func TestJSONLTrailingObjectIsAnError(t *testing.T) {
	env := redistest.New(t)
	line := `{"refund_id":"t1","provider":"moyasarpg","order_id":"o1","amount":"1.00","currency":"SAR"} {"refund_id":"t2"}`
	r := cli(t, env, line+"\n", "bulk", "-", "--format", "jsonl")
	if r.code != 1 || !strings.Contains(r.err, `line 1: "t1": more after the JSON object that ends at byte 90`) {
		t.Fatalf("%s", r)
	}
	if r := cli(t, env, "", "status", "t1"); r.code != 1 {
		t.Fatalf("the first object of the line was enqueued: %s", r)
	}
}

// Finding 6: list pages through the state index, says how many more there
// are and how to see them, refuses unknown states, and prints JSON.
func TestListPagesAndSaysWhenThereIsMore(t *testing.T) {
	env := redistest.New(t)
	cl := enqueue.New(env.Asynq, env.Client, enqueue.WithQueue(env.Queue), enqueue.WithPrefix(env.Prefix), enqueue.AcceptRedisLoss())
	defer cl.Close()
	var rows []enqueue.Row
	for i := range 267 {
		rows = append(rows, enqueue.Row{Line: i + 2, Request: enqueue.Request{RefundID: fmt.Sprintf("l-%03d", i),
			Provider: "moyasarpg", OrderID: fmt.Sprintf("o-%d", i), Amount: "1.00", Currency: "SAR"}})
	}
	if sum := cl.EnqueueBulk(context.Background(), rows, enqueue.BulkOptions{}); sum.Enqueued != 267 {
		t.Fatalf("%+v", sum)
	}
	r := cli(t, env, "", "list")
	if n := strings.Count(r.out, "\nl-"); r.code != 0 || n != 100 || !strings.Contains(r.err, "167 more (267 in all): refundctl list --offset 100") {
		t.Fatalf("list: %d rows: %s", n, r)
	}
	r = cli(t, env, "", "list", "--state", "queued", "--offset", "200")
	if n := strings.Count(r.out, "\nl-"); r.code != 0 || n != 67 || r.err != "" {
		t.Fatalf("last page: %d rows: %s", n, r)
	}
	// The pages, one after the other, show every refund once.
	seen := map[string]bool{}
	for off := 0; off < 300; off += 100 {
		var page listJSON
		r := cli(t, env, "", "list", "--offset", fmt.Sprint(off), "-o", "json")
		if err := json.Unmarshal([]byte(r.out), &page); err != nil {
			t.Fatalf("%v: %s", err, r)
		}
		for _, rf := range page.Refunds {
			if seen[rf.RefundID] {
				t.Fatalf("%s on two pages", rf.RefundID)
			}
			seen[rf.RefundID] = true
		}
	}
	if len(seen) != 267 {
		t.Fatalf("the pages show %d refunds, want 267", len(seen))
	}
	r = cli(t, env, "", "list", "--state", "queued", "--limit", "5", "--json")
	var page listJSON
	if err := json.Unmarshal([]byte(r.out), &page); err != nil || r.code != 0 {
		t.Fatalf("list --json: %v: %s", err, r)
	}
	if len(page.Refunds) != 5 || page.Total != 267 || page.More != 262 || page.NextOffset == nil || *page.NextOffset != 5 {
		t.Fatalf("list --json = %+v", page)
	}
	if r := cli(t, env, "", "list", "--state", "needs_review"); r.code != 0 || strings.Contains(r.out, "l-0") || r.err != "" {
		t.Fatalf("list --state needs_review: %s", r)
	}
	if r := cli(t, env, "", "list", "--state", "bogus"); r.code != 2 || !strings.Contains(r.err, `--state "bogus": no such state`) {
		t.Fatalf("list --state bogus: %s", r)
	}
}

// Finding 7: a dry run says nothing went through, and row errors go to
// stderr; bulk --json reports every row.
func TestBulkReportsAndDryRunWording(t *testing.T) {
	env := redistest.New(t)
	file := writeFile(t, "r.csv", header+
		"rf-1,moyasarpg,ord-1,,403.33,SAR,requested\n"+
		"rf-2,moyasarpg,ord-2,,1e3,SAR,requested\n"+
		"rf-3,nobody,ord-3,,10.00,SAR,requested\n")
	r := cli(t, env, "", "bulk", file, "--dry-run")
	if r.code != 1 || strings.Contains(r.out, "line 3") || !strings.Contains(r.err, `line 3: "rf-2": invalid refund: amount: amount "1e3": only digits`) ||
		!strings.Contains(r.out, "dry run, nothing written): 1 valid") || !strings.Contains(r.err, "2 invalid rows (listed above); dry run: nothing was written; the other 1 row would be enqueued") ||
		strings.Contains(r.out+r.err, "went through") {
		t.Fatalf("dry run: %s", r)
	}
	if r := cli(t, env, "", "status", "rf-1"); r.code != 1 {
		t.Fatalf("the dry run wrote rf-1: %s", r)
	}
	r = cli(t, env, "", "bulk", file, "--json")
	var rep bulkReport
	if err := json.Unmarshal([]byte(r.out), &rep); err != nil || r.code != 1 || r.err != "" {
		t.Fatalf("bulk --json: %v: %s", err, r)
	}
	if rep.Total != 3 || rep.Enqueued != 1 || rep.Invalid != 2 || len(rep.Rows) != 3 ||
		rep.Rows[0] != (bulkRow{Line: 2, RefundID: "rf-1", Outcome: enqueue.OutcomeEnqueued, State: store.Queued}) ||
		rep.Rows[1].Outcome != enqueue.OutcomeInvalid || !strings.Contains(rep.Rows[2].Error, `unknown provider "nobody"`) {
		t.Fatalf("bulk --json = %+v", rep)
	}
	r = cli(t, env, "", "bulk", file)
	if r.code != 1 || !strings.Contains(r.out, "0 enqueued, 1 already existing, 2 invalid") ||
		!strings.Contains(r.err, "the other 1 row was enqueued (or already were)") {
		t.Fatalf("re-run: %s", r)
	}
}

// Finding 8: enqueue with no flags names the missing flags.
func TestEnqueueNamesMissingFlags(t *testing.T) {
	env := redistest.New(t)
	r := cli(t, env, "", "enqueue")
	if r.code != 2 || !strings.Contains(r.err, "missing --id, --provider, --order, --amount, --currency") || strings.Contains(r.err, "unknown currency") {
		t.Fatalf("%s", r)
	}
	r = cli(t, env, "", "enqueue", "--id", "rf-9", "--provider", "moyasarpg", "--order", "o-9", "--amount", "1.50")
	if r.code != 2 || !strings.Contains(r.err, "missing --currency") {
		t.Fatalf("%s", r)
	}
	args := []string{"enqueue", "--id", "rf-9", "--provider", "moyasarpg", "--order", "o-9", "--amount", "1.50", "--currency", "SAR", "--meta", "shop=north"}
	if r := cli(t, env, "", args...); r.code != 0 || !strings.Contains(r.out, "refund rf-9 created: queued, 1.50 SAR") {
		t.Fatalf("%s", r)
	}
	if r := cli(t, env, "", args...); r.code != 0 || !strings.Contains(r.out, "already exists") {
		t.Fatalf("%s", r)
	}
	args[8] = "2.50"
	if r := cli(t, env, "", args...); r.code != 1 || !strings.Contains(r.err, `refund id "rf-9" is already used for a different refund (amount is "1.50 SAR", not "2.50 SAR")`) {
		t.Fatalf("same id, another amount: %s", r)
	}
}

// guesses lists every provider's guesses with what each means, shows what
// was learned, and forgets one on request.
func TestGuesses(t *testing.T) {
	env := redistest.New(t)
	r := cli(t, env, "", "guesses")
	for _, want := range []string{"fatora:\n  fatora.verify_refund_status  UNCONFIRMED", "bbmsl.query_order", "ecartpay.order_refunds",
		"moyasarpg.refund_id", "means:"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("guesses lacks %q: %s", want, r)
		}
	}
	st := store.New(env.Client, env.Prefix)
	if _, err := st.Observe(context.Background(), "fatora", "fatora.verify_refund_status", false, "verify showed no refund_status after a refund"); err != nil {
		t.Fatal(err)
	}
	r = cli(t, env, "", "guesses", "fatora", "--json")
	var rows []guessJSON
	if err := json.Unmarshal([]byte(r.out), &rows); err != nil || len(rows) != 2 || rows[0].Verdict != "refuted" ||
		rows[0].Refuted != "verify showed no refund_status after a refund" || rows[0].Means == "" {
		t.Fatalf("guesses fatora --json: %v: %s", err, r)
	}
	if r := cli(t, env, "", "guesses", "clear", "fatora", "fatora.verify_refund_status"); r.code != 0 {
		t.Fatalf("clear: %s", r)
	}
	if r := cli(t, env, "", "guesses", "fatora"); !strings.Contains(r.out, "UNCONFIRMED") {
		t.Fatalf("after clear: %s", r)
	}
	if r := cli(t, env, "", "guesses", "paypal"); r.code != 2 {
		t.Fatalf("guesses paypal: %s", r)
	}
}
