package bbmsl

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/tasks"
)

func FuzzParse(f *testing.F) {
	f.Add(200, []byte(`{"responseCode":"0000","message":"Success","order":{"status":"REFUNDED","refundAmount":10}}`))
	f.Add(200, []byte(`<html>`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		if status < 100 || status > 599 {
			return
		}
		a, out, ok := parse(&providers.Response{Status: status, Header: http.Header{}, Body: body})
		if out.Kind == providers.Succeeded {
			t.Fatalf("parse itself never decides success: %v", out)
		}
		if ok && a.ResponseCode == "" {
			t.Fatalf("accepted an answer without responseCode: %q", body)
		}
	})
}

// FuzzSignRoundTrip: whatever order id and amount go in, the simulator's
// check verifies the signature and reads back the same request.
func FuzzSignRoundTrip(f *testing.F) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		f.Fatal(err)
	}
	c := &Client{merchant: "3", key: key}
	f.Add("mref-1", int64(1050))
	f.Add("123456", int64(1))
	f.Add("ü\"\\\x00<>&", int64(99999999))
	f.Fuzz(func(t *testing.T, order string, minor int64) {
		if minor <= 0 || !utf8.ValidString(order) {
			return // tasks.Refund.Validate refuses both before an adapter sees them
		}
		in := map[string]any{"merchantId": c.merchantField(), "amount": json.Number(tasks.Money{Minor: minor, Currency: "HKD"}.Decimal())}
		orderFields(in, order)
		body, err := Sign(key, in)
		if err != nil {
			t.Fatal(err)
		}
		text, err := Verify(&key.PublicKey, body)
		if err != nil {
			t.Fatalf("own signature rejected: %v", err)
		}
		var back inner
		dec := json.NewDecoder(strings.NewReader(text))
		dec.UseNumber()
		if err := dec.Decode(&back); err != nil {
			t.Fatal(err)
		}
		if m, err := tasks.ParseMoney(back.Amount.String(), "HKD"); err != nil || m.Minor != minor {
			t.Fatalf("amount %d came back as %s (%v)", minor, back.Amount, err)
		}
		if got := back.MerchantReference; got == "" {
			if back.OrderID.String() != order {
				t.Fatalf("order %q came back as orderId %s", order, back.OrderID)
			}
		} else if got != order {
			t.Fatalf("order %q came back as %q", order, got)
		}
	})
}
