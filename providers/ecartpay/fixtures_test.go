package ecartpay

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/refundq/refundq/providers"
)

// The seed example's shape: decimals at the top, minor units in payments.
const seedOrder = `{"id":"5f1c2b","status":"partially_refunded","amount":806.66,"currency":"MXN","refund_id":"rfd_91",
 "refunds":[{"id":"rfd_91","amount":403.33,"reason":"requested"}],"payments":{"data":[{"amount":80666}]}}`

func TestSeedOrderParses(t *testing.T) {
	var o order
	if err := json.Unmarshal([]byte(seedOrder), &o); err != nil {
		t.Fatal(err)
	}
	if o.Status != "partially_refunded" || o.RefundID != "rfd_91" || o.Refunds[0].Amount.String() != "403.33" {
		t.Fatalf("parsed %+v", o)
	}
}

func FuzzFromError(f *testing.F) {
	f.Add(400, []byte(`{"message":"x"}`), false)
	f.Add(502, []byte(`<html>`), true)
	f.Fuzz(func(t *testing.T, status int, body []byte, lookup bool) {
		if status < 100 || status > 599 {
			return
		}
		out := fromError(&providers.Response{Status: status, Header: http.Header{}, Body: body}, lookup)
		if out.Kind == providers.Succeeded || out.Kind == providers.NotFound {
			t.Fatalf("error answer %d %q = %v", status, body, out)
		}
	})
}
