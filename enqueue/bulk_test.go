package enqueue_test

import (
	"context"
	"strings"
	"testing"

	"github.com/refundq/refundq/enqueue"
	"github.com/refundq/refundq/store"
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
