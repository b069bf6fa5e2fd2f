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
// NotFound only from a look-up's 200 order with a transactions array;
// Blocked only for 401/403; Rejected only for a 422 or a failed refund
// transaction in a 200; a 5xx is unknown.
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
		for _, lookup := range []bool{false, true} {
			out := refundOutcome(resp, r)
			if lookup {
				out = lookupOutcome(resp, r)
			}
			switch {
			case out.Kind == providers.Succeeded && (status != 200 || !approvedOfOne(body)):
				t.Fatalf("HTTP %d %q classified as success", status, body)
			case out.Kind == providers.NotFound && (!lookup || status != 200):
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
			if out.Kind == providers.NotFound {
				var o order
				if json.Unmarshal(body, &o) != nil || o.Transactions == nil {
					t.Fatalf("NotFound from an order without transactions: %q", body)
				}
			}
		}
	})
}
