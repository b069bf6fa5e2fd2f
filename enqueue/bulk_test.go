package enqueue_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/refundq/refundq/enqueue"
	"github.com/refundq/refundq/internal/redistest"
	"github.com/refundq/refundq/internal/store"
)

const csvFile = `refund_id,provider,order_id,transaction_id,amount,currency,reason
rf-a,moyasarpg,ord-1,,403.33,SAR,requested
rf-b,moyasarpg,ord-2,,12,50,SAR,requested
rf-c,moyasarpg,ord-3,,10.005,SAR,requested
rf-d,moyasarpg,,,10.00,SAR,requested

rf-e,moyasarpg,ord-5,,1000,XXX,requested
rf-f,moyasarpg,ord-6,,7.50,SAR,"multi
line reason"
rf-g,paypal,ord-7,,1.00,SAR,
rf-h,moyasarpg,ord-8,,0.01,SAR,
`

// Lines, counted by hand: 2 good; 3 has an extra field; 4 too many decimals;
// 5 no order; 6 blank; 7 bad currency; 8-9 a newline in the reason (it would
// break log lines and provider requests); 10 unknown provider; 11 good.
var csvBad = map[int]string{3: `"rf-b": 8 fields`, 4: "2 decimals", 5: "order_id", 7: "currency", 8: "reason: contains control", 10: "unknown provider"}

const jsonlFile = `{"refund_id":"rf-j1","provider":"moyasarpg","order_id":"o1","amount":"403.33","currency":"SAR"}
{"refund_id":"rf-j2","provider":"moyasarpg","order_id":"o2","amount":12.5,"currency":"SAR"}
{"refund_id":"rf-j3","provider":"moyasarpg","order_id":"o3","amount":"1e3","currency":"SAR"}
{"refund_id":"rf-j4", "provider":
{"refund_id":"rf-j5","provider":"moyasarpg","order_id":"o5","amount":"5","currency":"SAR","colour":"red"}

{"refund_id":"rf-j6","provider":"moyasarpg","order_id":"o6","amount":"1.00","currency":"SAR","metadata":{"shop":"north"}}
`

var jsonlBad = map[int]string{3: "only digits", 4: "invalid JSON", 5: "unknown field"}

func checkSummary(t *testing.T, sum enqueue.BulkSummary, good int, bad map[int]string) {
	t.Helper()
	if sum.Enqueued != good || sum.Invalid != len(bad) || sum.Failed != 0 {
		t.Fatalf("summary = %+v; want %d enqueued, %d invalid", sum, good, len(bad))
	}
	for _, e := range sum.Errors {
		want, ok := bad[e.Line]
		if !ok || !strings.Contains(e.Error(), want) {
			t.Errorf("reported %q; want line %d to say %q", e.Error(), e.Line, want)
		}
		delete(bad, e.Line)
	}
	for line, want := range bad {
		t.Errorf("line %d (%s) not reported", line, want)
	}
}

func TestBulkGoodRowsGoThroughBadRowsReportedByLine(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		format     enqueue.Format
		good       int
		bad        map[int]string
		ids        []string
	}{
		{"csv", csvFile, enqueue.CSV, 2, csvBad, []string{"rf-a", "rf-h"}},
		{"jsonl", jsonlFile, enqueue.JSONL, 3, jsonlBad, []string{"rf-j1", "rf-j2", "rf-j6"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, env := newClient(t)
			ctx := context.Background()
			if got := enqueue.FormatFor("refunds."+tc.name, nil); got != tc.format {
				t.Fatalf("FormatFor = %v", got)
			}
			rows, err := enqueue.ReadBulk(strings.NewReader(tc.file), tc.format)
			if err != nil {
				t.Fatal(err)
			}
			bad := map[int]string{}
			for k, v := range tc.bad {
				bad[k] = v
			}
			checkSummary(t, c.EnqueueBulk(ctx, rows, enqueue.BulkOptions{}), tc.good, bad)
			st := store.New(env.Client, env.Prefix)
			for _, id := range tc.ids {
				if rec, err := st.Get(ctx, id); err != nil || rec.State != store.Queued {
					t.Errorf("%s: %+v, %v; want queued", id, rec, err)
				}
			}
			if n := len(pending(t, env)); n != tc.good {
				t.Errorf("%d tasks queued, want %d", n, tc.good)
			}
			// The same file again: nothing new, nothing lost.
			again := c.EnqueueBulk(ctx, rows, enqueue.BulkOptions{})
			if again.Enqueued != 0 || again.Existing != tc.good {
				t.Errorf("re-run summary = %+v; want %d existing", again, tc.good)
			}
		})
	}
}

func TestBulkDryRunWritesNothing(t *testing.T) {
	c, env := newClient(t)
	rows, err := enqueue.ReadBulk(strings.NewReader(csvFile), enqueue.CSV)
	if err != nil {
		t.Fatal(err)
	}
	bad := map[int]string{}
	for k, v := range csvBad {
		bad[k] = v
	}
	checkSummary(t, c.EnqueueBulk(context.Background(), rows, enqueue.BulkOptions{DryRun: true}), 2, bad)
	if keys, _ := env.Client.Keys(context.Background(), env.Prefix+"*").Result(); len(keys) != 0 {
		t.Fatalf("dry run wrote %v", keys)
	}
	if n := len(pending(t, env)); n != 0 {
		t.Fatalf("dry run queued %d tasks", n)
	}
}

func TestBulkHeaderErrors(t *testing.T) {
	for _, header := range []string{
		"refund_id,provider,order_id,amount",                          // no currency
		"refund_id,provider,order_id,amount,currency,colour",          // unknown column
		"refund_id,provider,order_id,amount,currency,currency,reason", // twice
		"",
	} {
		_, err := enqueue.ReadBulk(strings.NewReader(header+"\n"), enqueue.CSV)
		if err == nil {
			t.Errorf("header %q accepted", header)
		}
	}
}

// Each JSON Lines problem is reported on its own line, naming the field and
// quoting at most 64 characters of the input; the other rows are read.
func TestJSONLinesRowErrors(t *testing.T) {
	long := strings.Repeat("k", 200)
	for _, tc := range []struct{ line, want string }{
		{`[1,2]`, "want one JSON object per line, got an array"},
		{`"rf"`, "want one JSON object per line, got a string"},
		{`{"refund_id":"a"} {"refund_id":"b"}`, "more after the JSON object that ends at byte 17"},
		{`{"refund_id":"a"} x`, "more after the JSON object"},
		{`{"refund_id":"a",`, "invalid JSON"},
		{`{"refund_id":"a","refund_id":"b"}`, "field refund_id appears twice"},
		{`{"refund_id":"a","metadata":{"shop":"x","shop":"y"}}`, "field metadata.shop appears twice"},
		{`{"amount":{"v":1}}`, "field amount: want a string like \"403.33\" or a number, got an object"},
		{`{"currency":true}`, "field currency: want a string, got a boolean"},
		{`{"metadata":{"shop":1}}`, "field metadata.shop: want a string, got a number"},
		{`{"metadata":[]}`, "field metadata: want an object of strings, got an array"},
		{`{"` + long + `":1}`, `unknown field "` + strings.Repeat("k", 64) + `"…`},
	} {
		rows, err := enqueue.ReadBulk(strings.NewReader(tc.line+"\n"+`{"refund_id":"next"}`+"\n"), enqueue.JSONL)
		if err != nil || len(rows) != 2 {
			t.Fatalf("%s: %v, %d rows", tc.line, err, len(rows))
		}
		if rows[0].Err == nil || !strings.Contains(rows[0].Err.Error(), tc.want) || strings.Contains(rows[0].Err.Error(), strings.Repeat("k", 65)) {
			t.Errorf("%s: error %v; want %q", tc.line, rows[0].Err, tc.want)
		}
		if rows[1].Line != 2 || rows[1].Err != nil || rows[1].Request.RefundID != "next" {
			t.Errorf("%s: the next row = %+v", tc.line, rows[1])
		}
	}
	// null is an absent field; a number amount keeps its digits as written.
	rows, _ := enqueue.ReadBulk(strings.NewReader(`{"refund_id":"a","reason":null,"amount":403.30}`), enqueue.JSONL)
	if len(rows) != 1 || rows[0].Err != nil || rows[0].Request.Amount != "403.30" || rows[0].Request.Reason != "" {
		t.Fatalf("%+v", rows)
	}
}

// A line up to 16 MiB is read whole; a longer one is one bad row, and the
// file goes on.
func TestJSONLinesLineLimit(t *testing.T) {
	fits := `{"refund_id":"a","reason":"` + strings.Repeat("r", enqueue.MaxLine-40) + `"}`
	over := `{"refund_id":"b","reason":"` + strings.Repeat("r", enqueue.MaxLine) + `"}`
	rows, err := enqueue.ReadBulk(strings.NewReader(fits+"\n"+over+"\n"+`{"refund_id":"c"}`), enqueue.JSONL)
	if err != nil || len(rows) != 3 {
		t.Fatalf("%v, %d rows", err, len(rows))
	}
	if rows[0].Err != nil || rows[0].Request.RefundID != "a" {
		t.Errorf("a line under 16 MiB: %v", rows[0].Err)
	}
	if rows[1].Err == nil || !strings.Contains(rows[1].Err.Error(), "longer than 16 MiB") || rows[1].Line != 2 {
		t.Errorf("a line over 16 MiB: %+v", rows[1])
	}
	if rows[2].Err != nil || rows[2].Request.RefundID != "c" || rows[2].Line != 3 {
		t.Errorf("the line after: %+v", rows[2])
	}
}

// RowError quotes the refund id, and any long quoted input, at most 64
// characters long.
func TestRowErrorClipsInput(t *testing.T) {
	id := strings.Repeat("i", 10_000)
	e := enqueue.RowError{Line: 3, RefundID: id, Err: fmt.Errorf("currency %q: unknown", strings.Repeat("c", 5000))}
	got := e.Error()
	if len(got) > 200 || !strings.HasPrefix(got, `line 3: "`+strings.Repeat("i", 64)+`"…: currency "`+strings.Repeat("c", 64)+`"…`) {
		t.Fatalf("%d bytes: %.300s", len(got), got)
	}
}

// Open is one call from a URL; a bad URL or an unreachable Redis is an
// error at once that never repeats the URL's password.
func TestOpen(t *testing.T) {
	if _, err := enqueue.Open("http://user:s3cret@host"); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("bad URL: %v", err)
	}
	if _, err := enqueue.Open("redis://user:s3cret@127.0.0.1:1/0"); err == nil || strings.Contains(err.Error(), "s3cret") ||
		!strings.Contains(err.Error(), "does not answer") {
		t.Fatalf("unreachable Redis: %v", err)
	}
	c, err := enqueue.Open(fmt.Sprintf("redis://%s/%d", redistest.Addr(), redistest.DB()))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}
