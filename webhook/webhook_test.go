package webhook_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/refundq/refundq/webhook"
)

func TestSignVerify(t *testing.T) {
	secret := []byte("whsec_test")
	body := []byte(`{"id":"1-0","type":"refund.succeeded"}`)
	now := time.Unix(1_800_000_000, 0)
	h := webhook.Sign(secret, now, body)
	if !strings.HasPrefix(h, "t=1800000000,v1=") {
		t.Fatalf("header %q", h)
	}
	if err := webhook.Verify(h, body, secret, webhook.DefaultTolerance, now.Add(time.Minute)); err != nil {
		t.Fatalf("valid signature refused: %v", err)
	}
	cases := []struct {
		name   string
		header string
		body   []byte
		secret []byte
		now    time.Time
		want   error
	}{
		{"body changed", h, []byte(`{"id":"1-0","type":"refund.failed"}`), secret, now, webhook.ErrNoSignature},
		{"other secret", h, body, []byte("other"), now, webhook.ErrNoSignature},
		{"replayed later", h, body, secret, now.Add(time.Hour), webhook.ErrTooOld},
		{"from the future", h, body, secret, now.Add(-time.Hour), webhook.ErrTooOld},
		{"no header", "", body, secret, now, webhook.ErrNoSignature},
		{"garbage", "t=abc,v1=", body, secret, now, webhook.ErrNoSignature},
	}
	for _, c := range cases {
		if err := webhook.Verify(c.header, c.body, c.secret, webhook.DefaultTolerance, c.now); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	// A rotation: signed with the old and the new secret, either verifies.
	rot := h + ",v1=" + strings.TrimPrefix(webhook.Sign([]byte("new"), now, body), "t=1800000000,v1=")
	if err := webhook.Verify(rot, body, []byte("new"), webhook.DefaultTolerance, now); err != nil {
		t.Fatalf("rotated header refused: %v", err)
	}
}
