package ecartpay

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/tasks"
)

func mxn(minor int64) tasks.Money { return tasks.Money{Minor: minor, Currency: "MXN"} }

// state is an order as the table tests write it; list is the refunds list
// as JSON ("" for none).
type state struct {
	status, refundID, total, updated, list string
}

func (s state) body() []byte {
	b := fmt.Sprintf(`{"id":"ord1","status":%q,"currency":"MXN","totals":{"subtotal":%s,"total":%s,"tax":0,"discount":0,"shipping":0},"updated_at":%q`,
		s.status, s.total, s.total, s.updated)
	if s.refundID != "" {
		b += fmt.Sprintf(`,"refund_id":%q`, s.refundID)
	}
	if s.list != "" {
		b += `,"refunds":` + s.list
	}
	return []byte(b + `,"payments":{"data":[{"amount":10000,"status":"paid"}]}}`)
}

func mustOrder(t testing.TB, body []byte) order {
	t.Helper()
	o, err := parseOrder(body)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// before is the snapshot Prepare would have taken of s.
func before(t testing.TB, s state) []byte {
	t.Helper()
	snap, err := mustOrder(t, s.body()).snap()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(snap)
	return b
}

var (
	paid      = state{"paid", "", "100", "2024-05-01T10:00:00.000Z", ""}
	paidList  = state{"paid", "", "100", "2024-05-01T10:00:00.000Z", `[]`}
	partial   = state{"partially_refunded", "r1", "100", "2024-05-01T10:05:00.000Z", ""}
	partialL  = state{"partially_refunded", "r1", "100", "2024-05-01T10:05:00.000Z", `[{"id":"r1","amount":40}]`}
	refunded  = state{"refunded", "r2", "100", "2024-05-01T10:10:00.000Z", ""}
	refundedL = state{"refunded", "r2", "100", "2024-05-01T10:10:00.000Z", `[{"id":"r2","amount":"100.000"}]`}
)

func TestJudgeLookup(t *testing.T) {
	confirmed := providers.Knowledge{GuessOrderRefunds: providers.Confirmed}
	tests := []struct {
		name   string
		before state
		now    []byte
		amount int64
		known  providers.Knowledge
		others []string
		want   providers.Kind
		ref    string
	}{
		{"unchanged paid order", paid, paid.body(), 10000, nil, nil, providers.NotFound, ""},
		{"unchanged, total written otherwise", paid, state{"paid", "", "100.000", paid.updated, ""}.body(), 10000, nil, nil, providers.NotFound, ""},
		{"unchanged partially refunded order, with list", partialL, partialL.body(), 2000, confirmed, nil, providers.NotFound, ""},
		{"paid → refunded by our full amount", paid, refunded.body(), 10000, nil, nil, providers.Succeeded, "r2"},
		{"paid → refunded, but the refund_id is another of ours", paid, refunded.body(), 10000, nil, []string{"r2"}, providers.Unknown, ""},
		{"paid → partially refunded, partial of ours, no list", paid, partial.body(), 4000, nil, nil, providers.Unknown, ""},
		{"paid → partially refunded, list unconfirmed", paidList, partialL.body(), 4000, nil, nil, providers.Unknown, ""},
		{"paid → partially refunded, but ours was the whole", paid, partial.body(), 10000, nil, nil, providers.Review, ""},
		{"paid → refunded, but ours was partial", paid, refunded.body(), 4000, nil, nil, providers.Review, ""},
		{"partially refunded → refunded, no list", partial, refunded.body(), 6000, nil, nil, providers.Unknown, ""},
		{"status went back", refunded, paid.body(), 10000, nil, nil, providers.Unknown, ""},
		{"only updated_at moved", paid, state{"paid", "", "100", "2024-05-01T11:00:00.000Z", ""}.body(), 10000, nil, nil, providers.Unknown, ""},
		{"status moved, same refund_id", partial, state{"refunded", "r1", "100", "2024-05-01T11:00:00.000Z", ""}.body(), 6000, nil, nil, providers.Unknown, ""},
		{"total changed", paid, state{"refunded", "r2", "90", "2024-05-01T11:00:00.000Z", ""}.body(), 9000, nil, nil, providers.Unknown, ""},
		{"evidence hidden", paid, []byte(`{"id":"ord1","currency":"MXN","totals":{"total":100}}`), 10000, nil, nil, providers.Unknown, ""},
		{"refunded without refund_id", paid, []byte(`{"id":"ord1","status":"refunded","currency":"MXN","totals":{"total":100},"updated_at":"x"}`), 10000, nil, nil, providers.Unknown, ""},
		{"unknown status", paid, state{"voided", "r2", "100", "x", ""}.body(), 10000, nil, nil, providers.Unknown, ""},
		{"unreadable total", paid, state{"refunded", "r2", "100.005", "x", ""}.body(), 10000, nil, nil, providers.Unknown, ""},
		{"list: one new entry of our amount", paidList, state{"partially_refunded", "r1", "100", "y", `[{"id":"r1","amount":40}]`}.body(), 4000, confirmed, nil, providers.Succeeded, "r1"},
		{"list: second partial, one new entry of ours", partialL, state{"partially_refunded", "r3", "100", "y", `[{"id":"r1","amount":40},{"id":"r3","amount":"35.50"}]`}.body(), 3550, confirmed, nil, providers.Succeeded, "r3"},
		{"list: one new entry of another amount", paidList, state{"partially_refunded", "r1", "100", "y", `[{"id":"r1","amount":39.99}]`}.body(), 4000, confirmed, nil, providers.Review, ""},
		{"list: two new entries", paidList, state{"partially_refunded", "r3", "100", "y", `[{"id":"r1","amount":40},{"id":"r3","amount":40}]`}.body(), 4000, confirmed, nil, providers.Unknown, ""},
		{"list: the new entry is another of ours", paidList, state{"partially_refunded", "r1", "100", "y", `[{"id":"r1","amount":40}]`}.body(), 4000, confirmed, []string{"r1"}, providers.Unknown, ""},
		{"list: the new entry is not the refund_id", paidList, state{"partially_refunded", "r9", "100", "y", `[{"id":"r1","amount":40}]`}.body(), 4000, confirmed, nil, providers.Unknown, ""},
		{"list: an old entry changed", partialL, state{"refunded", "r3", "100", "y", `[{"id":"r1","amount":50},{"id":"r3","amount":50}]`}.body(), 5000, confirmed, nil, providers.Unknown, ""},
		{"list: vanished", partialL, state{"refunded", "r3", "100", "y", ""}.body(), 6000, confirmed, nil, providers.Unknown, ""},
		{"list: one new entry of ours, whole amount, left partially refunded", paidList, state{"partially_refunded", "r1", "100", "y", `[{"id":"r1","amount":100}]`}.body(), 10000, confirmed, nil, providers.Review, ""},
		{"list: full refund of a paid order", paidList, refundedL.body(), 10000, confirmed, nil, providers.Succeeded, "r2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := readSnapshot(before(t, tt.before))
			if err != nil {
				t.Fatal(err)
			}
			r := providers.Refund{OrderID: "ord1", Amount: mxn(tt.amount), Known: tt.known, OtherRefs: tt.others}
			out := judgeLookup(b, mustOrder(t, tt.now), r)
			if out.Kind != tt.want || out.Reference != tt.ref {
				t.Fatalf("= %v ref %q, want %s ref %q", out, out.Reference, tt.want, tt.ref)
			}
			if (out.Kind == providers.Unknown || out.Kind == providers.Review) && strings.Contains(out.Reason, "before {") &&
				!strings.Contains(out.Reason, "now {") {
				t.Fatalf("reason %q lacks the state now", out.Reason)
			}
		})
	}
}

// A change the evidence cannot attribute names both states, for a human.
func TestUnattributedChangeNamesBothStates(t *testing.T) {
	b, _ := readSnapshot(before(t, paid))
	out := judgeLookup(b, mustOrder(t, partial.body()), providers.Refund{Amount: mxn(4000)})
	for _, want := range []string{"before {paid refund_id=- total=100 MXN", "now {partially_refunded refund_id=r1"} {
		if !strings.Contains(out.Reason, want) {
			t.Fatalf("reason %q lacks %q", out.Reason, want)
		}
	}
}

func TestReadSnapshot(t *testing.T) {
	for _, b := range []string{"", "null", "{", `{"status":"paid"}`, `{"status":"paid","updated_at":"x","currency":"MXN","total":"abc"}`,
		`{"status":"paid","updated_at":"x","currency":"MXN","total":"1","refunds":[{"id":"","amount":"1"}]}`} {
		if _, err := readSnapshot([]byte(b)); err == nil {
			t.Errorf("readSnapshot(%q) accepted", b)
		}
	}
	if _, err := readSnapshot(before(t, partialL)); err != nil {
		t.Fatal(err)
	}
}

func TestJudgeRefund(t *testing.T) {
	type obs struct {
		seen, holds bool
	}
	tests := []struct {
		name   string
		answer []byte
		before *state
		amount int64
		want   providers.Kind
		obs    obs
	}{
		{"full refund of a paid order", refunded.body(), &paid, 10000, providers.Succeeded, obs{true, false}},
		{"full refund, no snapshot", refunded.body(), nil, 10000, providers.Succeeded, obs{true, false}},
		{"partial refund", partial.body(), &paid, 4000, providers.Succeeded, obs{true, false}},
		{"last partial refund", refunded.body(), &partial, 6000, providers.Succeeded, obs{true, false}},
		{"partial refund of a paid order answered refunded", refunded.body(), &paid, 4000, providers.Review, obs{true, false}},
		{"partial refund answered refunded, no snapshot", refunded.body(), nil, 4000, providers.Succeeded, obs{true, false}},
		{"full refund answered partially_refunded", partial.body(), &paid, 10000, providers.Review, obs{true, false}},
		{"more than the total", refunded.body(), &paid, 10001, providers.Review, obs{true, false}},
		{"list with our amount", refundedL.body(), &paidList, 10000, providers.Succeeded, obs{true, true}},
		{"list with another amount", state{"refunded", "r2", "100", "y", `[{"id":"r2","amount":99.99}]`}.body(), &paidList, 10000, providers.Review, obs{}},
		{"list without the refund_id", state{"refunded", "r2", "100", "y", `[{"id":"r1","amount":100}]`}.body(), &paidList, 10000, providers.Succeeded, obs{true, false}},
		{"another currency", []byte(`{"id":"o","status":"refunded","refund_id":"r2","currency":"USD","totals":{"total":100}}`), nil, 10000, providers.Review, obs{true, false}},
		{"status paid", paid.body(), &paid, 10000, providers.Unknown, obs{}},
		{"no status", []byte(`{"id":"o","refund_id":"r2","currency":"MXN","totals":{"total":100}}`), nil, 10000, providers.Unknown, obs{}},
		{"no refund_id", []byte(`{"id":"o","status":"refunded","currency":"MXN","totals":{"total":100}}`), nil, 10000, providers.Unknown, obs{}},
		{"the refund_id of before", partial.body(), &partial, 2000, providers.Unknown, obs{true, false}},
		{"no totals", []byte(`{"id":"o","status":"refunded","refund_id":"r2","currency":"MXN"}`), &paid, 10000, providers.Unknown, obs{true, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := providers.Refund{Amount: mxn(tt.amount)}
			var b *snapshot
			if tt.before != nil {
				s, err := readSnapshot(before(t, *tt.before))
				if err != nil {
					t.Fatal(err)
				}
				b = &s
			}
			out := judgeRefund(mustOrder(t, tt.answer), b, r)
			if out.Kind != tt.want {
				t.Fatalf("= %v, want %s", out, tt.want)
			}
			if out.Kind == providers.Succeeded && out.Reference == "" {
				t.Fatal("success without a reference")
			}
			got := obs{}
			for _, o := range out.Observed {
				if o.Guess == GuessOrderRefunds {
					got = obs{true, o.Holds}
				}
			}
			if got != tt.obs {
				t.Fatalf("observed %+v, want %+v", out.Observed, tt.obs)
			}
		})
	}
}

func TestRefundError(t *testing.T) {
	tests := []struct {
		status  int
		body    string
		attempt int
		want    providers.Kind
	}{
		{400, `{"message":"Amount exceeds the refundable amount"}`, 1, providers.Rejected},
		{422, `{"message":"invalid reason"}`, 1, providers.Rejected},
		{404, `{"message":"Order not found"}`, 1, providers.Rejected},
		{400, `<html>Bad Request</html>`, 1, providers.Unknown},
		{400, `{"error":"x"}`, 1, providers.Unknown},
		{404, ``, 1, providers.Unknown},
		{418, `{"message":"teapot"}`, 1, providers.Unknown},
		{500, `{"message":"Internal"}`, 1, providers.Unknown},
		{502, `<html>`, 1, providers.Unknown},
		{429, ``, 1, providers.Transient},
	}
	for _, tt := range tests {
		out := refundError(&providers.Response{Status: tt.status, Body: []byte(tt.body)}, tt.attempt)
		if out.Kind != tt.want {
			t.Errorf("HTTP %d %s = %v, want %s", tt.status, tt.body, out, tt.want)
		}
	}
	out := refundError(&providers.Response{Status: 400, Body: []byte(`{"message":"Amount exceeds the refundable amount"}`)}, 2)
	if out.Kind != providers.Rejected || !strings.Contains(out.Reason, "earlier attempt") {
		t.Fatalf("refusal of a resend = %v; its reason must say an earlier attempt may be the cause", out)
	}
}
