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
		Attempt: attempt, Known: providers.Knowledge{GuessTrackingLookup: known}}
}

// fuzzClients are an adapter configured live and one configured test.
func fuzzClients(t *testing.T) []*Client {
	var out []*Client
	for _, mode := range []string{ModeLive, ModeTest} {
		c, err := New(Config{BaseURL: "http://127.0.0.1:1", ShopID: "s", SecretKey: "k", Mode: mode})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

// otherModeShown reports whether body has a transaction (or a list of them)
// whose "test" flag is not the adapter's mode.
func otherModeShown(c *Client, body []byte) bool {
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
		if t.Test != nil && *t.Test != c.test {
			return true
		}
	}
	return false
}

// FuzzRefundAnswer feeds arbitrary answers to the refund classifier: no
// panic, success only for a 2xx documented successful transaction of the
// amount asked, NotFound never, Rejected never for a 5xx or a duplicate_check
// refusal, Blocked only for 401/403/404 or an answer in the other mode,
// Transient only for 429 or a first attempt's duplicate_check refusal.
func FuzzRefundAnswer(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		if status < 100 || status > 599 {
			return
		}
		for _, c := range fuzzClients(t) {
			for _, attempt := range []int{1, 2} {
				out, _ := c.refundOutcome(&providers.Response{Status: status, Header: http.Header{}, Body: body}, fuzzRefund(attempt, providers.Unconfirmed))
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
				case out.Kind == providers.Blocked && status != 401 && status != 403 && status != 404 && !otherModeShown(c, body):
					t.Fatalf("HTTP %d = %v: blocked without an auth failure, a 404 or an answer in the other mode", status, out)
				case out.Kind == providers.Transient && status != 429 && (attempt > 1 || out.Status != "duplicate_check"):
					t.Fatalf("attempt %d, HTTP %d = %v: transient", attempt, status, out)
				}
				if e, ok := parseError(body); ok && isDuplicate(e.text()+" "+e.FriendlyMessage, e.Code) && out.Kind == providers.Rejected {
					t.Fatalf("duplicate_check refusal classified as rejected: %d %q", status, body)
				}
			}
		}
	})
}

// FuzzLookupAnswer feeds arbitrary answers to the look-up classifier: no
// panic, success only for a documented successful transaction in a 200,
// NotFound only for a 200 list once the look-up guess is confirmed; Rejected
// only for a 200 list showing a failed refund per attempt; a non-200
// proves nothing (a 404 blocks: the base URL).
func FuzzLookupAnswer(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		if status < 100 || status > 599 {
			return
		}
		for _, c := range fuzzClients(t) {
			for _, known := range []providers.Verdict{providers.Unconfirmed, providers.Confirmed, providers.Refuted} {
				out := c.lookupOutcome(&providers.Response{Status: status, Header: http.Header{}, Body: body}, fuzzRefund(2, known))
				switch {
				case out.Kind == providers.Succeeded && (status != 200 || !documentedSuccess(body)):
					t.Fatalf("HTTP %d %q classified as success", status, body)
				case out.Kind == providers.NotFound && status != 200:
					t.Fatalf("NotFound from HTTP %d", status)
				case status != 200 && status != 429 && status != 401 && status != 403 && status != 404 && out.Kind != providers.Unknown:
					t.Fatalf("look-up answered HTTP %d = %v, want unknown", status, out)
				case status == 404 && out.Kind != providers.Blocked:
					t.Fatalf("look-up answered HTTP 404 = %v, want blocked", out)
				case out.Kind == providers.Blocked && status == 200 && !otherModeShown(c, body):
					t.Fatalf("look-up %q = %v: blocked without an answer in the other mode", body, out)
				}
				if out.Kind == providers.Rejected {
					list, ok := parseList(body)
					failed := map[string]bool{}
					for _, tr := range list {
						if tr.Status == statusFailed {
							failed[tr.UID] = true
						}
					}
					if status != 200 || !ok || len(failed) < 2 {
						t.Fatalf("look-up for a second attempt rejected from %d failed refund(s): %d %q", len(failed), status, body)
					}
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
		}
	})
}

// FuzzLookupByReferenceAnswer feeds arbitrary answers to the classifier of
// the look-up by our refund's uid: no panic, never NotFound (whatever is
// known of the guesses), success only for the uid asked, successful, of
// the amount asked in a 200; Rejected only for that uid shown failed, by
// the refund's only attempt; Pending only for that uid; anything but a 200,
// 401/403 or 429 Unknown.
func FuzzLookupByReferenceAnswer(f *testing.F) {
	fuzzSeeds(f)
	f.Add(200, []byte(`{"transaction":{"uid":"u","status":"failed","type":"refund","parent_uid":"p","amount":1,"currency":"EUR","message":"Do not honor"}}`))
	f.Add(404, []byte(`{"message":"Record not found"}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		if status < 100 || status > 599 {
			return
		}
		for _, c := range fuzzClients(t) {
			for _, attempt := range []int{1, 2} {
				for _, known := range []providers.Verdict{providers.Unconfirmed, providers.Confirmed} {
					r := fuzzRefund(attempt, known)
					r.Reference = "u"
					out := c.uidOutcome(&providers.Response{Status: status, Header: http.Header{}, Body: body}, r)
					tr, parsed := parseTransaction(body)
					ours := status == 200 && parsed && tr.UID == "u"
					switch {
					case out.Kind == providers.NotFound:
						t.Fatalf("look-up by uid answered NotFound: %d %q", status, body)
					case out.Kind == providers.Succeeded && (!ours || tr.Status != statusSuccessful || !documentedSuccess(body) || out.Reference != "u"):
						t.Fatalf("HTTP %d %q classified as success", status, body)
					case out.Kind == providers.Rejected && (!ours || tr.Status != statusFailed || attempt > 1):
						t.Fatalf("attempt %d, HTTP %d %q classified as rejected", attempt, status, body)
					case out.Kind == providers.Pending && (!ours || !isPending(tr.Status)):
						t.Fatalf("HTTP %d %q classified as pending", status, body)
					case status != 200 && status != 401 && status != 403 && status != 429 && out.Kind != providers.Unknown:
						t.Fatalf("look-up by uid answered HTTP %d = %v, want unknown", status, out)
					case out.Kind == providers.Blocked && status == 200 && !otherModeShown(c, body):
						t.Fatalf("look-up by uid %q = %v: blocked without an answer in the other mode", body, out)
					}
				}
			}
		}
	})
}
