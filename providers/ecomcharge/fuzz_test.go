package ecomcharge

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/tasks"
)

func fuzzSeeds(f *testing.F) {
	for _, s := range []struct {
		status int
		body   string
	}{
		{200, `{"transaction":{"uid":"u","status":"successful","type":"refund","tracking_id":"k"}}`},
		{200, `{"transactions":[{"uid":"u","status":"successful","type":"refund","tracking_id":"k"}]}`},
		{200, `{"transactions":[]}`},
		{200, `{}`},
		{200, `{"transaction":{"uid":"u","status":"successful","type":"refund","amount":1,"currency":"EUR"}}`},
		{422, `{"message":"x","code":"F.0108"}`},
		{200, `{"transactions":[{"uid":"u","status":"failed","code":"F.0108"}]}`},
		{200, `{"transaction":{"uid":"u","status":"pending"}}`},
		{422, `{"message":"transaction can't be refunded","errors":{"base":["transaction can't be refunded"]}}`},
		{422, `{"message":"Duplicate transaction","errors":{"base":["x"]}}`},
		{422, `{"response":{"message":"Reason can't be blank.","errors":{"reason":["can't be blank"]}}}`},
		{422, `{"errors":{"a":{"b":[1,null,"c",{"d":"e"}]}}}`},
		{429, `{}`},
		{503, `<html>`},
	} {
		f.Add(s.status, []byte(s.body))
	}
}

// documentedSuccess reports whether body is a documented success for one
// minor unit of EUR: a transaction (or a list of them) one of which is
// "successful" with amount 1.
func documentedSuccess(body []byte) bool {
	var env struct {
		Transaction  *transaction  `json:"transaction"`
		Transactions []transaction `json:"transactions"`
	}
	if json.Unmarshal(body, &env) != nil {
		return false
	}
	if env.Transaction != nil {
		env.Transactions = append(env.Transactions, *env.Transaction)
	}
	for _, t := range env.Transactions {
		if t.Status == statusSuccessful && t.UID != "" && t.Amount != nil && t.Amount.String() != "" {
			if n, err := t.Amount.Int64(); err == nil && n == 1 {
				return true
			}
		}
	}
	return false
}

func fuzzRefund(attempt int, known providers.Verdict) providers.Refund {
	return providers.Refund{TransactionID: "p", Amount: tasks.Money{Minor: 1, Currency: "EUR"}, Key: "k",
		Attempt: attempt, Known: providers.Knowledge{GuessTracking: known}}
}

// FuzzRefundAnswer feeds arbitrary answers to the refund classifier: no
// panic, success only for a 2xx documented successful transaction of the
// amount asked, NotFound never, Rejected never for a 5xx or a duplicate_check
// refusal, Blocked only for 401/403, Transient only for 429 or a first
// attempt's duplicate_check refusal.
func FuzzRefundAnswer(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		if status < 100 || status > 599 {
			return
		}
		for _, attempt := range []int{1, 2} {
			out, _ := refundOutcome(&providers.Response{Status: status, Header: http.Header{}, Body: body}, fuzzRefund(attempt, providers.Unconfirmed))
			switch {
			case out.Kind == providers.Succeeded && (status < 200 || status > 299 || !documentedSuccess(body)):
				t.Fatalf("HTTP %d %q classified as success", status, body)
			case out.Kind == providers.Succeeded && out.Reference == "":
				t.Fatalf("success without a reference: %q", body)
			case out.Kind == providers.NotFound:
				t.Fatalf("refund answered NotFound: %d %q", status, body)
			case status >= 500 && out.Kind != providers.Unknown:
				t.Fatalf("HTTP %d = %v, want unknown", status, out)
			case out.Kind == providers.Rejected && out.Reason == "":
				t.Fatalf("rejected without a reason: %d %q", status, body)
			case out.Kind == providers.Blocked && status != 401 && status != 403:
				t.Fatalf("HTTP %d = %v: blocked without an auth failure", status, out)
			case out.Kind == providers.Transient && status != 429 && (attempt > 1 || out.Status != "duplicate_check"):
				t.Fatalf("attempt %d, HTTP %d = %v: transient", attempt, status, out)
			}
			if e, ok := parseError(body); ok && isDuplicate(e.text()+" "+e.FriendlyMessage, e.Code) && out.Kind == providers.Rejected {
				t.Fatalf("duplicate_check refusal classified as rejected: %d %q", status, body)
			}
		}
	})
}

// FuzzLookupAnswer feeds arbitrary answers to the look-up classifier: no
// panic, success only for a documented successful transaction in a 200,
// NotFound only for a 200 list once the tracking_id guess is confirmed; a
// non-200 proves nothing.
func FuzzLookupAnswer(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		if status < 100 || status > 599 {
			return
		}
		for _, known := range []providers.Verdict{providers.Unconfirmed, providers.Confirmed, providers.Refuted} {
			out := lookupOutcome(&providers.Response{Status: status, Header: http.Header{}, Body: body}, fuzzRefund(2, known))
			switch {
			case out.Kind == providers.Succeeded && (status != 200 || !documentedSuccess(body)):
				t.Fatalf("HTTP %d %q classified as success", status, body)
			case out.Kind == providers.NotFound && status != 200:
				t.Fatalf("NotFound from HTTP %d", status)
			case status != 200 && status != 429 && status != 401 && status != 403 && out.Kind != providers.Unknown:
				t.Fatalf("look-up answered HTTP %d = %v, want unknown", status, out)
			}
			if out.Kind == providers.NotFound {
				if _, ok := parseList(body); !ok {
					t.Fatalf("NotFound from an unreadable body %q", body)
				}
				if known != providers.Confirmed {
					t.Fatalf("NotFound while the guess is %s: %q", known, body)
				}
			}
		}
	})
}
