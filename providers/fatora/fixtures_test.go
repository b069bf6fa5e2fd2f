package fatora

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/tasks"
)

func fixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The seed's sample response is not valid JSON; testdata holds it verbatim
// and repaired.
func TestDocumentedEnvelopesParse(t *testing.T) {
	tests := []struct {
		file, want string
		status     int
		kind       providers.Kind
	}{
		{"refund_completed.json", "", 200, providers.Succeeded},
		{"refund_under_proccession.json", "", 200, providers.Succeeded},
		{"verify_paid.json", "", 200, providers.Succeeded},
		{"refund_doc_verbatim.txt", "HTTP 200", 200, providers.Unknown},
		{"error_object.json", "bad request (code 400)", 400, providers.Rejected},
		{"error_string.json", "Transaction already refunded", 409, providers.Rejected},
		{"error_string.json", "check FATORA_API_KEY", 401, providers.Blocked},
		{"error_object.json", "check FATORA_API_KEY", 403, providers.Blocked},
		{"error_object.json", "HTTP 502", 502, providers.Unknown},
		{"error_object.json", "HTTP 200", 200, providers.Unknown}, // an ERROR envelope with 200 is undocumented
		{"error_object.json", "HTTP 415", 415, providers.Rejected},
		{"error_string.json", "HTTP 422", 422, providers.Rejected},
		{"error_object.json", "HTTP 404", 404, providers.Rejected},
		{"error_object.json", "HTTP 402", 402, providers.Unknown}, // not on the page
		{"error_object.json", "HTTP 408", 408, providers.Unknown},
		{"error_object.json", "HTTP 301", 301, providers.Unknown},
		{"refund_completed.json", "HTTP 400", 400, providers.Unknown}, // a SUCCESS envelope with a refusal's code
		{"refund_completed.json", "HTTP 202", 202, providers.Unknown},
	}
	for _, tt := range tests {
		_, out := parse(&providers.Response{Status: tt.status, Header: http.Header{}, Body: []byte(fixture(t, tt.file))})
		if out.Kind != tt.kind || !strings.Contains(out.Reason, tt.want) {
			t.Errorf("%s (HTTP %d): %v; want %s with %q", tt.file, tt.status, out, tt.kind, tt.want)
		}
	}
	_, out := parse(&providers.Response{Status: 200, Body: []byte("<html>")})
	if out.Kind != providers.Unknown {
		t.Errorf("HTML 200 = %v, want unknown", out)
	}
	// Rejected needs the page's whole refusal: a documented code and an
	// ERROR envelope whose error says why (the page: "the response will
	// include an error object describing why this request failed").
	for _, tt := range []struct {
		status int
		body   string
		kind   providers.Kind
	}{
		{400, `{"status":"ERROR"}`, providers.Unknown},
		{400, `{"status":"ERROR","error":null}`, providers.Unknown},
		{422, `{"status":"ERROR","error":""}`, providers.Unknown},
		{400, `{"status":"ERROR","error":{}}`, providers.Unknown},
		{400, `{"status":"ERROR","error":{"error_code":null,"description":" "}}`, providers.Unknown},
		{400, `{"status":"ERROR","error":[1]}`, providers.Unknown},
		{400, `{"status":"ERROR","error":{"error_code":"500","description":"internal error"}}`, providers.Unknown},
		{409, `{"status":"ERROR","error":{"error_code":"E17","description":"conflict"}}`, providers.Unknown},
		{422, `{"status":"ERROR","error":{"error_code":422,"description":"unprocessable"}}`, providers.Rejected},
		{400, `{"status":"ERROR","error":{"description":"bad request"}}`, providers.Rejected},
		{404, `{"status":"ERROR","error":"Payment not found"}`, providers.Rejected},
		{401, `<html>denied</html>`, providers.Blocked},
		{403, `{"status":"ERROR","error":"Forbidden"}`, providers.Blocked},
		{404, `<html>Not Found</html>`, providers.Unknown},
		{500, `{"status":"ERROR","error":"payment already refunded"}`, providers.Unknown},
	} {
		_, out := parse(&providers.Response{Status: tt.status, Header: http.Header{}, Body: []byte(tt.body)})
		if out.Kind != tt.kind {
			t.Errorf("HTTP %d %s = %v, want %s", tt.status, tt.body, out, tt.kind)
		}
	}
}

// canned serves fixed answers per path and counts the calls.
type canned struct {
	verify, refund         string
	verifyAfter            string // verify's answer once a refund was sent ("" : verify)
	verifyCode, refundCode int
	verifies, refunds      int
}

func (c *canned) serve(t *testing.T) *Client {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case verifyPath:
			c.verifies++
			w.WriteHeader(cmp(c.verifyCode, 200))
			if c.refunds > 0 && c.verifyAfter != "" {
				w.Write([]byte(c.verifyAfter))
				return
			}
			w.Write([]byte(c.verify))
		case refundPath:
			c.refunds++
			w.WriteHeader(cmp(c.refundCode, 200))
			w.Write([]byte(c.refund))
		default:
			w.WriteHeader(404)
		}
	}))
	t.Cleanup(srv.Close)
	cl, err := New(Config{BaseURL: srv.URL, APIKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func cmp(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

const (
	paid            = `{"status":"SUCCESS","result":{"payment_status":"SUCCESS","amount":123.100,"currency":"QAR"}}`
	paidCompleted   = `{"status":"SUCCESS","result":{"payment_status":"SUCCESS","amount":123.100,"currency":"QAR","refund_status":"completed","refund_transaction_id":77}}`
	paidProcessing  = `{"status":"SUCCESS","result":{"payment_status":"SUCCESS","amount":"123.10","currency":"QAR","refund_status":"under_proccession"}}`
	paidOdd         = `{"status":"SUCCESS","result":{"payment_status":"SUCCESS","amount":123.100,"currency":"QAR","refund_status":"reversed"}}`
	noPayStatus     = `{"status":"SUCCESS","result":{"amount":123.100,"currency":"QAR"}}`
	pendingPay      = `{"status":"SUCCESS","result":{"payment_status":"PENDING","amount":123.100,"currency":"QAR"}}`
	badAmount       = `{"status":"SUCCESS","result":{"payment_status":"SUCCESS","amount":123.105,"currency":"QAR"}}`
	otherAmount     = `{"status":"SUCCESS","result":{"payment_status":"SUCCESS","amount":99,"currency":"QAR","refund_status":"completed"}}`
	refundDone      = `{"status":"SUCCESS","result":{"refund_status":"completed","mode":"live","refund_transaction_id":5521}}`
	refundDoneTest  = `{"status":"SUCCESS","result":{"refund_status":"completed","mode":"test","refund_transaction_id":5521}}`
	paidTest        = `{"status":"SUCCESS","result":{"payment_status":"SUCCESS","amount":123.100,"currency":"QAR","mode":"test"}}`
	paidOddMode     = `{"status":"SUCCESS","result":{"payment_status":"SUCCESS","amount":123.100,"currency":"QAR","mode":"sandbox"}}`
	refundProc      = `{"status":"SUCCESS","result":{"refund_status":"under_proccession","mode":"live","refund_transaction_id":"5522"}}`
	refundOdd       = `{"status":"SUCCESS","result":{"refund_status":"done"}}`
	errAlready      = `{"status":"ERROR","error":"Transaction already refunded"}`
	errObject       = `{"status":"ERROR","error":{"error_code":"400","description":"bad request"}}`
	errUnderProcess = `{"status":"ERROR","error":{"error_code":"400","description":"Refund is already under process"}}`
)

var asked = tasks.Money{Minor: 12310, Currency: "QAR"}

// Knowledge as the worker hands it to the adapter.
var (
	// confirmed: verify has shown refunds in both statuses.
	confirmed = providers.Knowledge{GuessVerifyShowsCompleted: providers.Confirmed, GuessVerifyShowsProcessing: providers.Confirmed}
	// completedOnly: verify has shown completed refunds; nothing is known
	// of refunds the bank is still processing.
	completedOnly = providers.Knowledge{GuessVerifyShowsCompleted: providers.Confirmed}
	// hidesProcessing: verify shows completed refunds and was seen not to
	// show one under_proccession.
	hidesProcessing = providers.Knowledge{GuessVerifyShowsCompleted: providers.Confirmed, GuessVerifyShowsProcessing: providers.Refuted}
	refuted         = providers.Knowledge{GuessVerifyShowsCompleted: providers.Refuted, GuessVerifyShowsProcessing: providers.Refuted}
)

func TestRefundClassification(t *testing.T) {
	tests := []struct {
		name         string
		c            canned
		attempt      int
		known        providers.Knowledge
		kind         providers.Kind
		ref          string
		refunds      int    // refund calls made
		observe      string // observations: "" none; "+c"/"-c" completed guess holds/refuted; "+p"/"-p" under_proccession
		wantVerifies int    // 0: do not check
		reason       string
	}{
		{name: "completed, guess open: one verify learns it refuted", c: canned{verify: paid, refund: refundDone}, attempt: 1,
			kind: providers.Succeeded, ref: "5521", refunds: 1, observe: "-c", wantVerifies: 2},
		{name: "completed, guess open: one verify that shows it confirms it", c: canned{verify: paid, verifyAfter: paidCompleted, refund: refundDone},
			attempt: 1, kind: providers.Succeeded, ref: "5521", refunds: 1, observe: "+c", wantVerifies: 2},
		{name: "completed, completed guess known, pending one open: no extra verify", c: canned{verify: paid, refund: refundDone}, attempt: 1,
			known: completedOnly, kind: providers.Succeeded, ref: "5521", refunds: 1, wantVerifies: 1},
		{name: "completed, guess known: no extra verify", c: canned{verify: paid, refund: refundDone}, attempt: 1, known: confirmed,
			kind: providers.Succeeded, ref: "5521", refunds: 1, wantVerifies: 1},
		{name: "under_proccession, guesses known", c: canned{verify: paid, refund: refundProc}, attempt: 1, known: confirmed,
			kind: providers.Pending, ref: "5522", refunds: 1, wantVerifies: 1},
		// A completed guess says nothing of refunds under_proccession:
		// only a verify showing one confirms that verify shows them.
		{name: "under_proccession, its guess open: a verify without the refund refutes it", c: canned{verify: paid, refund: refundProc},
			attempt: 1, known: completedOnly, kind: providers.Pending, ref: "5522", refunds: 1, observe: "-p", wantVerifies: 2},
		{name: "under_proccession, its guess open: a verify showing it confirms it", c: canned{verify: paid, verifyAfter: paidProcessing, refund: refundProc},
			attempt: 1, known: completedOnly, kind: providers.Pending, ref: "5522", refunds: 1, observe: "+p", wantVerifies: 2},
		{name: "under_proccession, completed meanwhile: confirms only the completed guess", c: canned{verify: paid, verifyAfter: paidCompleted, refund: refundProc},
			attempt: 1, kind: providers.Pending, ref: "5522", refunds: 1, observe: "+c", wantVerifies: 2},
		{name: "undocumented refund_status", c: canned{verify: paid, refund: refundOdd}, attempt: 1, kind: providers.Unknown, refunds: 1},
		{name: "verify shows a refund on attempt 1", c: canned{verify: paidCompleted}, attempt: 1,
			kind: providers.Rejected, observe: "+c", reason: "already refunded"},
		{name: "verify shows a refund after an earlier attempt", c: canned{verify: paidCompleted}, attempt: 2,
			kind: providers.Unknown, observe: "+c", reason: "earlier attempt"},
		{name: "verify shows a pending refund after an earlier attempt", c: canned{verify: paidProcessing}, attempt: 3,
			kind: providers.Unknown, observe: "+p"},
		{name: "partial amount", c: canned{verify: `{"status":"SUCCESS","result":{"payment_status":"SUCCESS","amount":200,"currency":"QAR"}}`},
			attempt: 1, kind: providers.Rejected, reason: "the payment is 200.00 QAR, the refund asks 123.10 QAR"},
		{name: "other currency", c: canned{verify: `{"status":"SUCCESS","result":{"payment_status":"SUCCESS","amount":123.1,"currency":"SAR"}}`},
			attempt: 1, kind: providers.Rejected, reason: "123.10 SAR"},
		{name: "unusable verify amount: nothing sent", c: canned{verify: badAmount}, attempt: 1, kind: providers.Transient, reason: "nothing sent"},
		{name: "verify 5xx: nothing sent", c: canned{verify: "<html>", verifyCode: 503}, attempt: 1, kind: providers.Transient},
		{name: "verify 401", c: canned{verify: `{"status":"ERROR","error":"Invalid api key"}`, verifyCode: 401}, attempt: 1,
			kind: providers.Blocked, reason: "FATORA_API_KEY"},
		// Not Fatora's answer at all: the base URL (or its /v1 vs /api/v1
		// path) is ours to fix.
		{name: "verify 404 page: nothing sent, check the base URL", c: canned{verify: "<html>Not Found</html>", verifyCode: 404}, attempt: 1,
			kind: providers.Blocked, reason: "FATORA_BASE_URL"},
		{name: "verify 404 from Fatora: no such payment", c: canned{verify: `{"status":"ERROR","error":"Payment not found"}`, verifyCode: 404},
			attempt: 1, kind: providers.Rejected, reason: "Payment not found"},
		{name: "refund 400 without the error object", c: canned{verify: paid, refund: `{"status":"ERROR"}`, refundCode: 400}, attempt: 1,
			kind: providers.Unknown, refunds: 1},
		{name: "refund 400 SUCCESS envelope", c: canned{verify: paid, refund: refundDone, refundCode: 400}, attempt: 1,
			kind: providers.Unknown, refunds: 1},
		{name: "refund 404 page after verify answered", c: canned{verify: paid, refund: "<html>Not Found</html>", refundCode: 404}, attempt: 1,
			kind: providers.Unknown, refunds: 1},
		// A refusal saying the payment has a refund, after an earlier
		// attempt of ours, is evidence of that attempt: look up or poll,
		// never a refusal the worker could fail the refund on.
		{name: "refund 409 after an earlier attempt: look it up", c: canned{verify: paid, refund: errAlready, refundCode: 409}, attempt: 2,
			kind: providers.Unknown, refunds: 1, reason: "likely an earlier attempt of ours"},
		{name: "refund 409 with no word of a refund, after an earlier attempt", c: canned{verify: paid, refund: errObject, refundCode: 409},
			attempt: 2, kind: providers.Unknown, refunds: 1},
		{name: "already under process after an earlier attempt: poll it", c: canned{verify: paid, refund: errUnderProcess, refundCode: 400},
			attempt: 2, kind: providers.Pending, refunds: 1, reason: "never send it again"},
		{name: "string form, under_proccession, after an earlier attempt", c: canned{verify: paid,
			refund: `{"status":"ERROR","error":"refund is under_proccession"}`, refundCode: 422}, attempt: 3,
			kind: providers.Pending, refunds: 1},
		{name: "refund exists after an earlier attempt", c: canned{verify: paid,
			refund: `{"status":"ERROR","error":"A refund for this transaction exists"}`, refundCode: 422}, attempt: 2,
			kind: providers.Unknown, refunds: 1},
		{name: "plain refusal after an earlier attempt stays a refusal (the worker looks up before believing it)",
			c: canned{verify: paid, refund: errObject, refundCode: 400}, attempt: 2, kind: providers.Rejected, refunds: 1, reason: "bad request"},
		// On the first attempt nothing of this refund was ever sent: the
		// payment was refunded before it.
		{name: "refund 409 on the first attempt", c: canned{verify: paid, refund: errAlready, refundCode: 409}, attempt: 1,
			kind: providers.Rejected, refunds: 1, reason: "before refundq's first attempt"},
		{name: "refund 400 saying already refunded, first attempt", c: canned{verify: paid, refund: errAlready, refundCode: 400}, attempt: 1,
			kind: providers.Rejected, refunds: 1, reason: "already has a refund"},
		{name: "already under process, first attempt", c: canned{verify: paid, refund: errUnderProcess, refundCode: 400}, attempt: 1,
			kind: providers.Rejected, refunds: 1, reason: "Refund is already under process"},
		{name: "refund 422", c: canned{verify: paid, refund: errObject, refundCode: 422}, attempt: 1, kind: providers.Rejected, refunds: 1},
		{name: "refund 403", c: canned{verify: paid, refund: errObject, refundCode: 403}, attempt: 1,
			kind: providers.Blocked, refunds: 1, reason: "auth"},
		{name: "refund 500", c: canned{verify: paid, refund: errObject, refundCode: 500}, attempt: 1, kind: providers.Unknown, refunds: 1},
		{name: "refund 402, undocumented", c: canned{verify: paid, refund: errObject, refundCode: 402}, attempt: 1, kind: providers.Unknown, refunds: 1},
		{name: "refund 200 ERROR", c: canned{verify: paid, refund: errObject}, attempt: 1, kind: providers.Unknown, refunds: 1},
		// FATORA_MODE is live (the default) in these rows.
		{name: "verify in test mode: blocked, nothing sent", c: canned{verify: paidTest, refund: refundDone}, attempt: 1,
			kind: providers.Blocked, refunds: 0, reason: "set FATORA_MODE=test or use the live key"},
		{name: "verify in an undocumented mode: blocked, nothing sent", c: canned{verify: paidOddMode, refund: refundDone}, attempt: 1,
			kind: providers.Blocked, refunds: 0, reason: "FATORA_MODE"},
		{name: "refund answered in test mode", c: canned{verify: paid, refund: refundDoneTest}, attempt: 1,
			kind: providers.Blocked, ref: "5521", refunds: 1, reason: "a test key in a live configuration"},
		{name: "refund answered in an undocumented mode", c: canned{verify: paid,
			refund: `{"status":"SUCCESS","result":{"refund_status":"completed","mode":"demo","refund_transaction_id":5521}}`}, attempt: 1,
			kind: providers.Unknown, ref: "5521", refunds: 1, reason: "may have been applied"},
		{name: "refund answered verbatim doc text", c: canned{verify: paid, refund: "{\nstatus : \"SUCCESS\"\n}"}, attempt: 1,
			kind: providers.Unknown, refunds: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.c
			out := c.serve(t).Refund(context.Background(), providers.Refund{OrderID: "o", TransactionID: "t", Amount: asked, Attempt: tt.attempt, Known: tt.known})
			if out.Kind != tt.kind || out.Reference != tt.ref || !strings.Contains(out.Reason, tt.reason) {
				t.Fatalf("outcome %v ref %q; want %s ref %q reason ~%q", out, out.Reference, tt.kind, tt.ref, tt.reason)
			}
			if c.refunds != tt.refunds {
				t.Fatalf("%d refund calls, want %d", c.refunds, tt.refunds)
			}
			if tt.wantVerifies != 0 && c.verifies != tt.wantVerifies {
				t.Fatalf("%d verify calls, want %d", c.verifies, tt.wantVerifies)
			}
			checkObserved(t, out, tt.observe)
		})
	}
}

// checkObserved: want is "" for no observation, else one of "+c", "-c"
// (the completed guess holds, is refuted), "+p", "-p" (the
// under_proccession one).
func checkObserved(t *testing.T, out providers.Outcome, want string) {
	t.Helper()
	if want == "" {
		if len(out.Observed) != 0 {
			t.Fatalf("observed %+v, want nothing", out.Observed)
		}
		return
	}
	g := map[byte]providers.Guess{'c': GuessVerifyShowsCompleted, 'p': GuessVerifyShowsProcessing}[want[1]]
	if len(out.Observed) != 1 || out.Observed[0].Guess != g || out.Observed[0].Holds != (want[0] == '+') {
		t.Fatalf("observed %+v, want %s holds=%v", out.Observed, g, want[0] == '+')
	}
}

func TestLookupClassification(t *testing.T) {
	tests := []struct {
		name    string
		verify  string
		code    int
		known   providers.Knowledge
		kind    providers.Kind
		ref     string
		observe string
	}{
		{"paid, no refund field, both guesses confirmed", paid, 200, confirmed, providers.NotFound, "", ""},
		// The issue: verify was seen to show completed refunds only; a
		// refund of ours may be under_proccession, invisible.
		{"paid, no refund field, only the completed guess confirmed", paid, 200, completedOnly, providers.Unknown, "", ""},
		{"paid, no refund field, verify hides refunds under_proccession", paid, 200, hidesProcessing, providers.Unknown, "", ""},
		{"paid, no refund field, only the under_proccession guess confirmed", paid, 200,
			providers.Knowledge{GuessVerifyShowsProcessing: providers.Confirmed}, providers.Unknown, "", ""},
		{"paid, no refund field, guess open", paid, 200, nil, providers.Unknown, "", ""},
		{"paid, no refund field, guess refuted", paid, 200, refuted, providers.Unknown, "", ""},
		{"documented verify page, guess open", fixture(t, "verify_paid.json"), 200, nil, providers.Unknown, "", ""},
		{"documented verify page, guess confirmed", fixture(t, "verify_paid.json"), 200, confirmed, providers.NotFound, "", ""},
		{"completed", paidCompleted, 200, nil, providers.Succeeded, "77", "+c"},
		{"completed, guess refuted: the field itself is the evidence", paidCompleted, 200, refuted, providers.Succeeded, "77", "+c"},
		{"completed for another payment amount", otherAmount, 200, confirmed, providers.Review, "", "+c"},
		{"under_proccession", paidProcessing, 200, confirmed, providers.Pending, "", "+p"},
		{"undocumented refund_status", paidOdd, 200, confirmed, providers.Unknown, "", ""},
		{"no payment_status", noPayStatus, 200, confirmed, providers.Unknown, "", ""},
		{"payment pending", pendingPay, 200, confirmed, providers.Unknown, "", ""},
		{"404", errObject, 404, confirmed, providers.Unknown, "", ""},
		{"400", errObject, 400, confirmed, providers.Unknown, "", ""},
		{"401", errObject, 401, confirmed, providers.Blocked, "", ""},
		{"429", `{}`, 429, confirmed, providers.Transient, "", ""},
		{"503 page", "<html>", 503, confirmed, providers.Unknown, "", ""},
		{"result not an object", `{"status":"SUCCESS","result":[]}`, 200, confirmed, providers.Unknown, "", ""},
		{"verbatim doc text", fixture(t, "refund_doc_verbatim.txt"), 200, confirmed, providers.Unknown, "", ""},
		{"verify in test mode, FATORA_MODE live", paidTest, 200, confirmed, providers.Blocked, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := canned{verify: tt.verify, verifyCode: tt.code}
			out := c.serve(t).Lookup(context.Background(), providers.Refund{OrderID: "o", TransactionID: "t", Amount: asked, Attempt: 1, Known: tt.known})
			if out.Kind != tt.kind || out.Reference != tt.ref {
				t.Fatalf("look-up = %v ref %q; want %s ref %q", out, out.Reference, tt.kind, tt.ref)
			}
			if c.refunds != 0 {
				t.Fatal("a look-up sent a refund")
			}
			checkObserved(t, out, tt.observe)
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{`{"status":"SUCCESS","result":{"refund_status":"completed"}}`, `{"status":"ERROR","error":"x"}`, `{"status":"ERROR","error":{"error_code":400}}`, `<html>`} {
		f.Add(200, []byte(s))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		if status < 100 || status > 599 {
			return
		}
		_, out := parse(&providers.Response{Status: status, Header: http.Header{}, Body: body})
		if out.Kind == providers.Succeeded && (status != 200 || !strings.Contains(string(body), "SUCCESS")) {
			t.Fatalf("status %d %q parsed as a success envelope", status, body)
		}
		if out.Kind == providers.NotFound || out.Kind == providers.Pending {
			t.Fatalf("parse decided %v on its own", out)
		}
		_ = errorText(body)
	})
}
