package tasks

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func valid() Refund {
	return Refund{Version: 1, RefundID: "rf_1", Provider: "moyasarpg", OrderID: "ord-1", AmountMinor: 100, Currency: "SAR"}
}

func TestValidateNamesEachBadField(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Refund)
		field  string
	}{
		{"no refund id", func(r *Refund) { r.RefundID = "" }, "refund_id"},
		{"refund id with space", func(r *Refund) { r.RefundID = "a b" }, "refund_id"},
		{"refund id too long", func(r *Refund) { r.RefundID = strings.Repeat("a", 65) }, "refund_id"},
		{"no provider", func(r *Refund) { r.Provider = "" }, "provider"},
		{"no order", func(r *Refund) { r.OrderID = "" }, "order_id"},
		{"order with newline", func(r *Refund) { r.OrderID = "a\nb" }, "order_id"},
		{"order that is a parent path segment", func(r *Refund) { r.OrderID = ".." }, "order_id"},
		{"order that is a current path segment", func(r *Refund) { r.OrderID = "." }, "order_id"},
		{"zero amount", func(r *Refund) { r.AmountMinor = 0 }, "amount"},
		{"negative amount", func(r *Refund) { r.AmountMinor = -5 }, "amount"},
		{"unknown currency", func(r *Refund) { r.Currency = "ABC" }, "currency"},
		{"card number in reason", func(r *Refund) { r.Reason = "card 4242 4242 4242 4242 was charged" }, "reason"},
		{"card number in metadata", func(r *Refund) { r.Metadata = map[string]string{"note": "4111111111111111"} }, "metadata.note"},
		{"bad metadata key", func(r *Refund) { r.Metadata = map[string]string{"a b": "x"} }, "metadata"},
		{"future version", func(r *Refund) { r.Version = 2 }, "v"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := valid()
			tt.mutate(&r)
			err := r.Validate()
			var ve ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate() = %v, want ValidationError", err)
			}
			for _, f := range ve {
				if f.Field == tt.field {
					return
				}
			}
			t.Fatalf("Validate() = %v, want an error on field %q", err, tt.field)
		})
	}
	if err := valid().Validate(); err != nil {
		t.Fatalf("valid refund: %v", err)
	}
}

func TestDecodeRefundRejectsMalformedPayloads(t *testing.T) {
	for _, payload := range []string{
		``, `{`, `null`, `[]`, `"x"`,
		`{"v":1,"refund_id":"r","provider":"moyasarpg","order_id":"o","amount_minor":"100","currency":"SAR"}`,
		`{"v":1,"refund_id":"r","provider":"moyasarpg","order_id":"o","amount_minor":1.5,"currency":"SAR"}`,
		`{"v":1,"refund_id":"r","provider":"moyasarpg","order_id":"o","amount_minor":100}`,
		`{"v":9,"refund_id":"r","provider":"moyasarpg","order_id":"o","amount_minor":100,"currency":"SAR"}`,
	} {
		if _, err := DecodeRefund([]byte(payload)); err == nil {
			t.Errorf("DecodeRefund(%q) accepted a malformed payload", payload)
		}
	}
	b, err := EncodeRefund(valid())
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(string(b), "\n\t") {
		t.Errorf("payload %q is not one printable line (asynqmon would hide it)", b)
	}
	r, err := DecodeRefund(b)
	if err != nil || r.RefundID != "rf_1" || r.Money() != (Money{100, "SAR"}) {
		t.Fatalf("round trip = %+v, %v", r, err)
	}
}

func FuzzDecodeRefund(f *testing.F) {
	b, _ := EncodeRefund(valid())
	f.Add(b)
	f.Add([]byte(`{"v":1,"amount_minor":-1}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		r, err := DecodeRefund(payload)
		if err != nil {
			return
		}
		// Whatever decodes must be a refund we are willing to send.
		if r.AmountMinor <= 0 || r.RefundID == "" || r.OrderID == "" {
			t.Fatalf("accepted %+v", r)
		}
		if _, err := EncodeRefund(r); err != nil {
			t.Fatalf("decoded refund does not re-encode: %v", err)
		}
	})
}

// No refund id, whatever colons it holds, shares a task id with another
// refund's task or poll: "refund x:poll:3" and "poll 3 of refund x" used to be
// one id.
func TestTaskIDsCannotCollide(t *testing.T) {
	ids := map[string]string{}
	add := func(id, what string) {
		if other, ok := ids[id]; ok {
			t.Fatalf("task id %q is both %s and %s", id, other, what)
		}
		ids[id] = what
	}
	for _, refund := range []string{"x", "x:poll:3", "x:3", "poll:x", "refund:x", "x:poll", "a:b:c"} {
		add(RefundTaskID(refund), "refund "+refund)
		for step := 1; step <= 3; step++ {
			add(PollTaskID(refund, step), fmt.Sprintf("poll %d of %s", step, refund))
			if got, ok := PollStep(PollTaskID(refund, step), refund); !ok || got != step {
				t.Fatalf("PollStep(%q) = %d, %v", PollTaskID(refund, step), got, ok)
			}
		}
	}
	if _, ok := PollStep(RefundTaskID("x"), "x"); ok {
		t.Fatal("a refund task id read as a poll")
	}
}
