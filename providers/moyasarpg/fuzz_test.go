package moyasarpg

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/tasks"
)

// approvedOfOne reports whether body is an order "o" listing an approved
// refund transaction of one minor unit.
func approvedOfOne(body []byte) bool {
	var o order
	if json.Unmarshal(body, &o) != nil || o.ID != "o" || o.Transactions == nil {
		return false
	}
	for _, t := range *o.Transactions {
		if n, err := minor(t.Amount); err == nil && n == 1 && t.Type == refundType && t.Status == statusApproved {
			return true
		}
	}
	return false
}

// FuzzClassify feeds arbitrary answers through both classifiers: no panic;
// success only for a 200 order with an approved refund of the amount asked;
// never NotFound (MPG does not promise that an order shows an applied
// refund at once); Uncertain only from a 200; Blocked only for 401/403;
// Rejected only for a 422 or a failed refund transaction in a 200; a 5xx is
// unknown. With and without a snapshot from Prepare.
func FuzzClassify(f *testing.F) {
	f.Add(200, []byte(`{"id":"o","currency":"SAR","transactions":[{"id":"k","type":"refund","status":"approved","amount":1}]}`))
	f.Add(200, []byte(`{"id":"o","transactions":[{"id":"x","type":"refund","status":"approved","amount":1}]}`))
	f.Add(200, []byte(`{"id":"o","transactions":[]}`))
	f.Add(200, []byte(`{"id":"o"}`))
	f.Add(400, []byte(`{"message":"Initial request is still processing."}`))
	f.Add(400, []byte(`{"message":"retries exhausted"}`))
	f.Add(422, []byte(`{"message":"Data validation failed","errors":{"amount":["x"]}}`))
	f.Add(500, []byte(`<html>`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		if status < 100 || status > 599 {
			return
		}
		resp := &providers.Response{Status: status, Header: http.Header{}, Body: body}
		r := providers.Refund{OrderID: "o", Key: "k", Amount: tasks.Money{Minor: 1, Currency: "SAR"}, Attempt: 1}
		for _, c := range []struct {
			lookup bool
			snap   *snapshot
		}{{false, nil}, {true, nil}, {false, &snapshot{Key: "k", Currency: "SAR", Listed: true}}, {true, &snapshot{Key: "k", Currency: "SAR", Listed: true}}} {
			lookup := c.lookup
			out := refundOutcome(resp, r, c.snap)
			if lookup {
				out = lookupOutcome(resp, r, c.snap)
			}
			switch {
			case out.Kind == providers.Uncertain && status != 200:
				t.Fatalf("HTTP %d %q: uncertain", status, body)
			case out.Kind == providers.Succeeded && (status != 200 || !approvedOfOne(body)):
				t.Fatalf("HTTP %d %q classified as success", status, body)
			case out.Kind == providers.NotFound:
				t.Fatalf("HTTP %d %q: NotFound (look-up %v)", status, body, lookup)
			case out.Kind == providers.Blocked && status != 401 && status != 403:
				t.Fatalf("HTTP %d: blocked", status)
			case out.Kind == providers.Rejected && status != 422 && status != 200:
				t.Fatalf("HTTP %d %q: rejected", status, body)
			case out.Kind == providers.Rejected && lookup && status != 200:
				t.Fatalf("look-up HTTP %d: rejected", status)
			case status >= 500 && out.Kind != providers.Unknown:
				t.Fatalf("HTTP %d = %v", status, out)
			}
		}
	})
}
