package ecomcharge

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/tasks"
)

// The answers GET /transactions/{uid} can give for our refund's reference,
// built from the refund page's example (as refund_successful.json): what
// identifies our refund, what contradicts it, what proves nothing. None is
// NotFound, whatever is known of the tracking_id guesses.
func TestLookUpByReferenceClassifies(t *testing.T) {
	const ref = "4107-c2d6b7c2b4"
	success := fixture(t, "refund_successful.json")
	failed := strings.Replace(strings.Replace(success, `"status": "successful"`, `"status": "failed"`, 1),
		`"message": "Successfully processed"`, `"message": "Do not honor"`, 1)
	dupFailed := strings.Replace(failed, `"code": "S.0000"`, `"code": "F.0108"`, 1)
	status := func(s string) string {
		return strings.Replace(success, `"status": "successful"`, `"status": "`+s+`"`, 1)
	}
	without := func(field string) string { return strings.Replace(success, field+", ", "", 1) }
	tests := []struct {
		name    string
		status  int
		body    string
		attempt int
		others  []string
		want    providers.Kind
		contain string
	}{
		{"successful", 200, success, 1, nil, providers.Succeeded, ""},
		{"pending", 200, status("pending"), 1, nil, providers.Pending, ""},
		{"incomplete", 200, status("incomplete"), 1, nil, providers.Pending, ""},
		{"failed, only attempt", 200, failed, 1, nil, providers.Rejected, "Do not honor"},
		{"failed, no attempt number", 200, failed, 0, nil, providers.Rejected, "Do not honor"},
		{"failed, another attempt sent", 200, failed, 2, nil, providers.Unknown, "2 attempts"},
		{"failed by duplicate_check", 200, dupFailed, 1, nil, providers.Unknown, "duplicate_check"},
		{"guess: error", 200, status("error"), 1, nil, providers.Unknown, `"error"`},
		{"guess: expired", 200, status("expired"), 1, nil, providers.Unknown, `"expired"`},
		{"another amount, successful", 200, strings.Replace(success, `"amount": 492`, `"amount": 491`, 1), 1, nil, providers.Review, "it is for 4.91 EUR while 4.92 EUR was asked"},
		{"another amount, pending", 200, strings.Replace(status("pending"), `"amount": 492`, `"amount": 491`, 1), 1, nil, providers.Review, "it is for 4.91 EUR while 4.92 EUR was asked"},
		{"another amount, failed", 200, strings.Replace(failed, `"amount": 492`, `"amount": 491`, 1), 1, nil, providers.Review, "it is for 4.91 EUR while 4.92 EUR was asked"},
		{"decimal amount", 200, strings.Replace(success, `"amount": 492`, `"amount": 4.92`, 1), 1, nil, providers.Review, "4.92"},
		{"another currency", 200, strings.Replace(success, `"currency": "EUR"`, `"currency": "USD"`, 1), 1, nil, providers.Review, "USD"},
		{"another parent payment", 200, strings.Replace(success, "4107-310b0da80b", "4107-ffffffffff", 1), 1, nil, providers.Review, "4107-ffffffffff"},
		{"a payment", 200, strings.Replace(success, `"type": "refund"`, `"type": "payment"`, 1), 1, nil, providers.Review, "payment"},
		{"another tracking_id", 200, strings.Replace(success, `"type": "refund"`, `"type": "refund", "tracking_id": "other"`, 1), 1, nil, providers.Review, "other"},
		{"our tracking_id", 200, strings.Replace(success, `"type": "refund"`, `"type": "refund", "tracking_id": "`+fixtureKey+`"`, 1), 1, nil, providers.Succeeded, ""},
		{"another refund's reference", 200, success, 1, []string{ref}, providers.Review, "another refund"},
		{"test shop in a live configuration", 200, strings.Replace(success, `"type": "refund"`, `"type": "refund", "test": true`, 1), 1, nil, providers.Blocked, EnvMode},
		{"without a type", 200, without(`"type": "refund"`), 1, nil, providers.Unknown, "type"},
		{"without a parent", 200, without(`"parent_uid": "4107-310b0da80b"`), 1, nil, providers.Unknown, "parent_uid"},
		{"without an amount", 200, without(`"amount": 492`), 1, nil, providers.Unknown, "amount"},
		{"without a currency", 200, without(`"currency": "EUR"`), 1, nil, providers.Unknown, "currency"},
		{"another transaction", 200, strings.Replace(success, ref, "4107-0000000000", 1), 1, nil, providers.Unknown, "4107-0000000000"},
		{"a list", 200, fixture(t, "tracking_empty.json"), 1, nil, providers.Unknown, ""},
		{"empty object", 200, `{}`, 1, nil, providers.Unknown, ""},
		{"HTML", 200, `<html>maintenance</html>`, 1, nil, providers.Unknown, ""},
		{"unknown uid", 404, `{"message":"Record not found"}`, 1, nil, providers.Unknown, "404"},
		{"404 HTML", 404, `<html>Not Found</html>`, 1, nil, providers.Unknown, "404"},
		{"server error with a success body", 500, success, 1, nil, providers.Unknown, "500"},
		{"rate limited", 429, `{"message":"Too many requests"}`, 1, nil, providers.Transient, ""},
		{"bad credentials", 401, `{"message":"Unauthorized"}`, 1, nil, providers.Blocked, EnvSecretKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var asked string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				asked = r.Method + " " + r.URL.Path
				w.WriteHeader(tt.status)
				w.Write([]byte(tt.body))
			}))
			t.Cleanup(srv.Close)
			c, err := New(Config{BaseURL: srv.URL, ShopID: fixtureShop, SecretKey: fixtureSecret, Mode: ModeLive})
			if err != nil {
				t.Fatal(err)
			}
			for _, known := range []providers.Verdict{providers.Unconfirmed, providers.Confirmed, providers.Refuted} {
				r := providers.Refund{OrderID: "4107-310b0da80b", TransactionID: "4107-310b0da80b",
					Amount: tasks.Money{Minor: 492, Currency: "EUR"}, Reason: "requested", Key: fixtureKey, Reference: ref,
					Attempt: tt.attempt, OtherRefs: tt.others, Known: providers.Knowledge{GuessTrackingLookup: known}}
				out := c.Lookup(context.Background(), r)
				if asked != "GET /transactions/"+ref {
					t.Fatalf("asked %q, want GET /transactions/%s", asked, ref)
				}
				if out.Kind != tt.want || !strings.Contains(out.Reason, tt.contain) {
					t.Fatalf("guess %s: %v, want %s with %q in the reason", known, out, tt.want, tt.contain)
				}
				if out.Kind == providers.Succeeded && out.Reference != ref {
					t.Fatalf("reference %q", out.Reference)
				}
				if strings.Contains(out.Reason, fixtureSecret) {
					t.Fatalf("reason leaks the secret: %q", out.Reason)
				}
			}
		})
	}
}
