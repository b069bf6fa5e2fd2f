package bbmsl

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/tasks"
)

var (
	keyOnce sync.Once
	fuzzKey *rsa.PrivateKey
)

func testKey(t testing.TB) *rsa.PrivateKey {
	keyOnce.Do(func() {
		var err error
		if fuzzKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			t.Fatal(err)
		}
	})
	return fuzzKey
}

func FuzzParse(f *testing.F) {
	f.Add(200, []byte(`{"responseCode":"0000","message":"Success","order":{"status":"REFUNDED","amount":15.00,"netAmount":5.00,"currency":"USD"}}`))
	f.Add(200, []byte(`{"responseCode":"0000","transaction":{"id":3758,"type":"REFUND","amount":10,"currency":"USD","status":"SUCCESS"}}`))
	f.Add(200, []byte(`{"responseCode":"2001","message":"Order has already been refunded"}`))
	f.Add(200, []byte(`<html>`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		if status < 100 || status > 599 {
			return
		}
		a, out, ok := parse(&providers.Response{Status: status, Header: http.Header{}, Body: body})
		if out.Kind == providers.Succeeded {
			t.Fatalf("parse itself never decides success: %v", out)
		}
		if !ok {
			return
		}
		if a.ResponseCode == "" {
			t.Fatalf("accepted an answer without responseCode: %q", body)
		}
		// Whatever the answer, the look-up proves absence only with the
		// guess confirmed, and never succeeds for an amount not shown.
		r := providers.Refund{OrderID: "o", Amount: tasks.Money{Minor: 1000, Currency: "USD"}}
		if lookupOutcome(a, r, out).Kind == providers.NotFound {
			t.Fatalf("NotFound with the guess unconfirmed: %q", body)
		}
		if got := refundOutcome(a, r, out); got.Kind == providers.Succeeded && (a.Transaction == nil || a.Transaction.Amount == nil) {
			t.Fatalf("success without a transaction amount: %q", body)
		}
	})
}

// FuzzSignRoundTrip: whatever order reference and amount go in, the
// signature verifies and the request reads back the same.
func FuzzSignRoundTrip(f *testing.F) {
	key := testKey(f)
	c := &Client{merchant: "3", key: key}
	f.Add("mref-1", int64(1050))
	f.Add("123456", int64(1))
	f.Add("ü\"\\\x00<>&", int64(99999999))
	f.Fuzz(func(t *testing.T, order string, minor int64) {
		if minor <= 0 || !utf8.ValidString(order) || order == "" || len(order) > maxReference {
			return // tasks.Refund.Validate and Check refuse these before an adapter sees them
		}
		in, err := c.target(providers.Refund{OrderID: order})
		if err != nil {
			t.Fatal(err)
		}
		in["amount"] = json.Number(tasks.Money{Minor: minor, Currency: "HKD"}.Decimal())
		body, err := Sign(key, in)
		if err != nil {
			t.Fatal(err)
		}
		text, err := Verify(&key.PublicKey, body)
		if err != nil {
			t.Fatalf("own signature rejected: %v", err)
		}
		var back struct {
			OrderID           json.Number `json:"orderId"`
			MerchantReference string      `json:"merchantReference"`
			Amount            json.Number `json:"amount"`
		}
		dec := json.NewDecoder(strings.NewReader(text))
		dec.UseNumber()
		if err := dec.Decode(&back); err != nil {
			t.Fatal(err)
		}
		if m, err := tasks.ParseMoney(back.Amount.String(), "HKD"); err != nil || m.Minor != minor {
			t.Fatalf("amount %d came back as %s (%v)", minor, back.Amount, err)
		}
		if back.MerchantReference != order || back.OrderID != "" {
			t.Fatalf("order %q came back as merchantReference %q, orderId %q", order, back.MerchantReference, back.OrderID)
		}
	})
}
