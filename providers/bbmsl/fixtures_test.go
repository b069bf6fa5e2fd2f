package bbmsl

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/tasks"
)

func docExample(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("testdata/refund_doc_example.json")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func decode(t *testing.T, body string) answer {
	t.Helper()
	a, out, ok := parse(&providers.Response{Status: 200, Header: http.Header{}, Body: []byte(body)})
	if !ok {
		t.Fatalf("parse(%s) = %v", body, out)
	}
	return a
}

func usd(minor int64) tasks.Money { return tasks.Money{Minor: minor, Currency: "USD"} }

// The document's own example answer, sent whole through the adapter.
func TestDocumentedRefundAnswer(t *testing.T) {
	key := testKey(t)
	var sent string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var env envelope
		json.NewDecoder(r.Body).Decode(&env)
		sent = env.Request
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(docExample(t)))
	}))
	defer srv.Close()
	c, _ := New(Config{BaseURL: srv.URL, MerchantID: "3", Key: key})
	r := providers.Refund{OrderID: "1655817171", TransactionID: "4922", Amount: usd(1000), Attempt: 1,
		Known: providers.Knowledge{GuessQueryOrder: providers.Confirmed}}
	out := c.Refund(context.Background(), r)
	if out.Kind != providers.Succeeded || out.Reference != "3758" || out.Status != "SUCCESS" {
		t.Fatalf("documented answer = %v, reference %q", out, out.Reference)
	}
	if sent != `{"amount":10.00,"merchantId":3,"merchantReference":"1655817171","orderId":4922}` {
		t.Fatalf("sent %s", sent)
	}
}

func TestRefundClassification(t *testing.T) {
	doc := docExample(t)
	declined := strings.Replace(doc, `"status": "SUCCESS"`, `"status": "DECLINED"`, 1)
	tests := []struct {
		name   string
		body   string
		asked  tasks.Money
		try    int
		kind   providers.Kind
		ref    string
		reason string
	}{
		{"documented example", doc, usd(1000), 1, providers.Succeeded, "3758", ""},
		{"documented example, another amount asked", doc, usd(1100), 1, providers.Review, "3758", "BBMSL refunded 10.00 USD; the refund asks 11.00 USD"},
		{"documented example, another currency asked", doc, tasks.Money{Minor: 1000, Currency: "HKD"}, 1, providers.Review, "3758", "10.00 USD"},
		{"amount with trailing zeros", strings.Replace(doc, `"amount": 10,`, `"amount": 10.000,`, 1), usd(1000), 1, providers.Succeeded, "3758", ""},
		{"amount unreadable", strings.Replace(doc, `"amount": 10,`, `"amount": 10.005,`, 1), usd(1000), 1, providers.Unknown, "3758", "amount"},
		{"no transaction amount", strings.Replace(doc, `"amount": 10,`, ``, 1), usd(1000), 1, providers.Unknown, "3758", "no amount"},
		{"no transaction currency: the order's", strings.Replace(doc, `"currency": "USD",
"status"`, `"status"`, 1), usd(1000), 1, providers.Succeeded, "3758", ""},
		{"declined: the transaction is named, not kept as the refund's reference", declined, usd(1000), 1, providers.Rejected, "", "transaction 3758 DECLINED"},
		{"transaction VOIDED", strings.Replace(doc, `"status": "SUCCESS"`, `"status": "VOIDED"`, 1), usd(1000), 1, providers.Unknown, "3758", "VOIDED"},
		{"transaction type SALE", strings.Replace(doc, `"REFUND"`, `"SALE"`, 1), usd(1000), 1, providers.Unknown, "3758", "SALE"},
		{"0000 without a transaction", `{"responseCode":"0000","message":"Success","data":{"id":"RF1"}}`, usd(1000), 1, providers.Unknown, "", "without a transaction"},
		// Only "0000" is documented: any other code is looked up, unless its
		// message is one of the few proven to mean nothing was applied.
		{"already refunded, first attempt", `{"responseCode":"2001","message":"Order has already been refunded"}`, usd(1000), 1, providers.Unknown, "", "code 2001"},
		{"already refunded, after an earlier attempt", `{"responseCode":"2001","message":"Order has already been refunded"}`, usd(1000), 2, providers.Unknown, "", "code 2001"},
		{"system error, please query", `{"responseCode":"9999","message":"System error, please query the order status"}`, usd(1000), 1, providers.Unknown, "", "9999"},
		{"undocumented code, no message", `{"responseCode":"E500"}`, usd(1000), 1, providers.Unknown, "", "E500"},
		{"business refusal naming the merchant", `{"responseCode":"3005","message":"Insufficient unsettled balance in merchant account"}`, usd(1000), 1, providers.Unknown, "", "3005"},
		{"merchant not allowed to refund", `{"responseCode":"3006","message":"Merchant is not allowed to refund this order"}`, usd(1000), 1, providers.Unknown, "", "3006"},
		{"message that merely mentions a signature", `{"responseCode":"3007","message":"Refund requires the cardholder signature on file"}`, usd(1000), 1, providers.Unknown, "", "3007"},
		{"signature refused", `{"responseCode":"9001","message":"Invalid signature"}`, usd(1000), 1, providers.Blocked, "", "BBMSL_PRIVATE_KEY_FILE"},
		{"signature verification failed", `{"responseCode":"1001","message":"Signature verification failed."}`, usd(1000), 1, providers.Blocked, "", "auth"},
		{"merchant refused", `{"responseCode":"9003","message":"Invalid merchant"}`, usd(1000), 1, providers.Blocked, "", "auth"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := refundOutcome(decode(t, tt.body), providers.Refund{OrderID: "1655817171", Amount: tt.asked, Attempt: tt.try}, providers.Outcome{})
			if out.Kind != tt.kind || out.Reference != tt.ref || !strings.Contains(out.Reason, tt.reason) {
				t.Fatalf("= %v ref %q; want %s ref %q reason ~%q", out, out.Reference, tt.kind, tt.ref, tt.reason)
			}
		})
	}
}

// queryOf is a query answer holding the documented example's order with
// the given status and netAmount ("" leaves netAmount out).
func queryOf(status, net string) string {
	o := map[string]any{"id": 4922, "merchantId": 3, "merchantReference": "1655817171", "currency": "USD",
		"amount": json.Number("15.00"), "cardType": "VISA", "email": "", "status": status, "recurring": false}
	if net != "" {
		o["netAmount"] = json.Number(net)
	}
	b, _ := json.Marshal(map[string]any{"responseCode": "0000", "message": "Success", "order": o})
	return string(b)
}

func TestLookupClassification(t *testing.T) {
	confirmed := providers.Knowledge{GuessQueryOrder: providers.Confirmed}
	refuted := providers.Knowledge{GuessQueryOrder: providers.Refuted}
	withTxn := strings.TrimSuffix(queryOf("REFUNDED", "5.00"), "}") + `,"transaction":{"id":3758,"type":"REFUND","amount":10,"currency":"USD","status":"SUCCESS"}}`
	withSale := strings.TrimSuffix(queryOf("REFUNDED", "5.00"), "}") + `,"transaction":{"id":3001,"type":"SALE","amount":15,"currency":"USD","status":"SUCCESS"}}`
	tests := []struct {
		name  string
		body  string
		known providers.Knowledge
		kind  providers.Kind
		ref   string
	}{
		{"refund answer's order as a query", docExample(t), nil, providers.Succeeded, "3758"},
		{"REFUNDED, ours", queryOf("REFUNDED", "5.00"), confirmed, providers.Succeeded, ""},
		{"REFUNDED, ours, guess open", queryOf("REFUNDED", "5.00"), nil, providers.Succeeded, ""},
		{"REFUNDED, ours, with the refund transaction", withTxn, confirmed, providers.Succeeded, "3758"},
		{"REFUNDED, ours, a sale transaction is no reference", withSale, confirmed, providers.Succeeded, ""},
		{"REFUNDED, guess refuted", queryOf("REFUNDED", "5.00"), refuted, providers.Unknown, ""},
		{"REFUNDED another amount", queryOf("REFUNDED", "6.00"), confirmed, providers.Review, ""},
		{"REFUNDED without netAmount", queryOf("REFUNDED", ""), confirmed, providers.Unknown, ""},
		{"REFUNDED, netAmount unreadable", queryOf("REFUNDED", "5.001"), confirmed, providers.Unknown, ""},
		{"REFUNDED, netAmount above amount", queryOf("REFUNDED", "16.00"), confirmed, providers.Unknown, ""},
		{"paid, guess confirmed", queryOf("SUCCESS", "15.00"), confirmed, providers.NotFound, ""},
		{"settled, guess confirmed", queryOf("SETTLED", "15.000"), confirmed, providers.NotFound, ""},
		{"paid, guess open", queryOf("SUCCESS", "15.00"), nil, providers.Unknown, ""},
		{"paid, guess refuted", queryOf("SUCCESS", "15.00"), refuted, providers.Unknown, ""},
		{"paid without netAmount", queryOf("SUCCESS", ""), confirmed, providers.Unknown, ""},
		{"paid with netAmount below amount", queryOf("SUCCESS", "0.00"), confirmed, providers.Unknown, ""},
		{"OPEN", queryOf("OPEN", "15.00"), confirmed, providers.Unknown, ""},
		{"VOIDED", queryOf("VOIDED", "15.00"), confirmed, providers.Unknown, ""},
		{"undocumented status", queryOf("PARTIALLY_REFUNDED", "5.00"), confirmed, providers.Unknown, ""},
		{"no status", queryOf("", "15.00"), confirmed, providers.Unknown, ""},
		{"no order", `{"responseCode":"0000","message":"Success"}`, confirmed, providers.Unknown, ""},
		{"order not found", `{"responseCode":"2004","message":"Order not found"}`, confirmed, providers.Unknown, ""},
		{"signature refused", `{"responseCode":"9001","message":"Invalid signature"}`, confirmed, providers.Blocked, ""},
		{"refusal naming the merchant", `{"responseCode":"3008","message":"Merchant reference not found"}`, confirmed, providers.Unknown, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := providers.Refund{OrderID: "1655817171", Amount: usd(1000), Attempt: 1, Known: tt.known}
			out := lookupOutcome(decode(t, tt.body), r, providers.Outcome{})
			if out.Kind != tt.kind || out.Reference != tt.ref {
				t.Fatalf("= %v ref %q; want %s ref %q", out, out.Reference, tt.kind, tt.ref)
			}
			if len(out.Observed) != 0 {
				t.Fatalf("a look-up observed %+v; only the query after a refund learns", out.Observed)
			}
		})
	}
}

func TestParseNeverDecides(t *testing.T) {
	tests := []struct {
		status int
		body   string
		kind   providers.Kind
		ok     bool
	}{
		{200, `{"responseCode":"0000"}`, providers.Unknown, true},
		{200, `<html>`, providers.Unknown, false},
		{200, `{"message":"ok"}`, providers.Unknown, false},
		{503, `{"responseCode":"0000"}`, providers.Unknown, false},
		{429, ``, providers.Transient, false},
		{401, `{"responseCode":"9001"}`, providers.Blocked, false},
		{403, `Forbidden`, providers.Blocked, false},
		{400, `{"responseCode":"9002","message":"Invalid request"}`, providers.Unknown, true},
	}
	for _, tt := range tests {
		_, out, ok := parse(&providers.Response{Status: tt.status, Header: http.Header{"Retry-After": {"3"}}, Body: []byte(tt.body)})
		if out.Kind != tt.kind || ok != tt.ok {
			t.Errorf("HTTP %d %s = %v ok %v; want %s ok %v", tt.status, tt.body, out, ok, tt.kind, tt.ok)
		}
	}
}

// With a reference (BBMSL's id of the refund's transaction, from an answer
// or a person), a query answer that names a refund transaction is read by
// that id alone; one that names none leaves the order to decide, never as
// NotFound.
func TestLookupByReference(t *testing.T) {
	confirmed := providers.Knowledge{GuessQueryOrder: providers.Confirmed}
	with := func(order, txn string) string {
		return strings.TrimSuffix(order, "}") + `,"transaction":` + txn + `}`
	}
	refunded := queryOf("REFUNDED", "5.00")
	txn := func(id, typ, amount, currency, status string) string {
		s := `{"id":` + id + `,"type":"` + typ + `","amount":` + amount + `,"status":"` + status + `"`
		if currency != "" {
			s += `,"currency":"` + currency + `"`
		}
		return s + "}"
	}
	tests := []struct {
		name, body string
		kind       providers.Kind
		ref        string
		reason     string
	}{
		{"ours, SUCCESS", with(refunded, txn("3758", "REFUND", "10", "USD", "SUCCESS")), providers.Succeeded, "3758", "found by BBMSL's id"},
		{"ours, id as a string", with(refunded, txn(`"3758"`, "REFUND", "10", "USD", "SUCCESS")), providers.Succeeded, "3758", ""},
		{"ours, no currency on the transaction: the order's", with(refunded, txn("3758", "REFUND", "10", "", "SUCCESS")), providers.Succeeded, "3758", ""},
		{"ours: the transaction decides, not the order status", with(queryOf("SETTLED", "15.00"), txn("3758", "REFUND", "10", "USD", "SUCCESS")), providers.Succeeded, "3758", ""},
		{"ours, DECLINED", with(queryOf("SUCCESS", "15.00"), txn("3758", "REFUND", "10", "USD", "DECLINED")), providers.Rejected, "", "DECLINED"},
		{"ours, VOIDED", with(refunded, txn("3758", "REFUND", "10", "USD", "VOIDED")), providers.Unknown, "", "VOIDED"},
		{"ours, another amount", with(refunded, txn("3758", "REFUND", "6", "USD", "SUCCESS")), providers.Review, "", "6.00 USD"},
		{"ours, another amount, DECLINED", with(refunded, txn("3758", "REFUND", "6", "USD", "DECLINED")), providers.Review, "", "6.00 USD"},
		{"ours, another currency", with(refunded, txn("3758", "REFUND", "10", "HKD", "SUCCESS")), providers.Review, "", "HKD"},
		{"ours, amount unreadable", with(refunded, txn("3758", "REFUND", "10.005", "USD", "SUCCESS")), providers.Review, "", "amount"},
		{"ours, not a refund", with(refunded, txn("3758", "SALE", "15", "USD", "SUCCESS")), providers.Review, "", "SALE"},
		{"another refund transaction", with(refunded, txn("3001", "REFUND", "10", "USD", "SUCCESS")), providers.Unknown, "", "3001"},
		{"a sale transaction: the order decides", with(refunded, txn("3001", "SALE", "15", "USD", "SUCCESS")), providers.Succeeded, "", ""},
		{"no transaction: the order decides", refunded, providers.Succeeded, "", ""},
		{"no transaction, another amount refunded", queryOf("REFUNDED", "9.00"), providers.Review, "", ""},
		{"no transaction, paid, guess confirmed: no proof", queryOf("SUCCESS", "15.00"), providers.Unknown, "", "3758"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := providers.Refund{OrderID: "1655817171", Amount: usd(1000), Attempt: 1, Known: confirmed, Reference: "3758"}
			out := lookupOutcome(decode(t, tt.body), r, providers.Outcome{})
			if out.Kind != tt.kind || out.Reference != tt.ref || !strings.Contains(out.Reason, tt.reason) {
				t.Fatalf("= %v ref %q; want %s ref %q reason ~%q", out, out.Reference, tt.kind, tt.ref, tt.reason)
			}
		})
	}
}
