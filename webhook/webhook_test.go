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
	h := webhook.Sign([][]byte{secret}, now, body)
	if !strings.HasPrefix(h, "t=1800000000,v1=") {
		t.Fatalf("header %q", h)
	}
	if err := webhook.Verify(h, body, [][]byte{secret}, webhook.DefaultTolerance, now.Add(time.Minute)); err != nil {
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
		if err := webhook.Verify(c.header, c.body, [][]byte{c.secret}, webhook.DefaultTolerance, c.now); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}

// During a rotation the sender signs with the new and the old secret: a
// receiver on either verifies, one rotating holds both, and one with
// neither does not.
func TestRotation(t *testing.T) {
	oldS, newS := []byte("whsec_old_0123456789"), []byte("whsec_new_0123456789")
	body := []byte(`{"id":"2-0"}`)
	now := time.Unix(1_800_000_000, 0)
	h := webhook.Sign([][]byte{newS, oldS}, now, body)
	if strings.Count(h, ",v1=") != 2 {
		t.Fatalf("header %q: want two v1 signatures", h)
	}
	for name, secrets := range map[string][][]byte{"old": {oldS}, "new": {newS}, "both": {newS, oldS}, "both reversed": {oldS, newS}} {
		if err := webhook.Verify(h, body, secrets, webhook.DefaultTolerance, now); err != nil {
			t.Errorf("receiver with %s: %v", name, err)
		}
	}
	if err := webhook.Verify(h, body, [][]byte{[]byte("whsec_other_0123456")}, webhook.DefaultTolerance, now); !errors.Is(err, webhook.ErrNoSignature) {
		t.Errorf("receiver with another secret: %v", err)
	}
	one := webhook.Sign([][]byte{oldS}, now, body)
	if err := webhook.Verify(one, body, [][]byte{newS, oldS}, webhook.DefaultTolerance, now); err != nil {
		t.Errorf("receiver rotating, sender still on the old secret: %v", err)
	}
}

func TestParseSecrets(t *testing.T) {
	got, err := webhook.ParseSecrets(" whsec_new_0123456789 , whsec_old_0123456789")
	if err != nil || len(got) != 2 || string(got[0]) != "whsec_new_0123456789" || string(got[1]) != "whsec_old_0123456789" {
		t.Fatalf("ParseSecrets = %q, %v", got, err)
	}
	// One secret is kept as written, a trailing newline included: the key
	// a receiver already shares.
	if got, err := webhook.ParseSecrets("whsec_one_0123456789\n"); err != nil || len(got) != 1 || string(got[0]) != "whsec_one_0123456789\n" {
		t.Fatalf("ParseSecrets of one secret = %q, %v; want it as written", got, err)
	}
	for _, bad := range []string{"", "short", "whsec_new_0123456789,", "whsec_new_0123456789,tiny"} {
		_, err := webhook.ParseSecrets(bad)
		if err == nil {
			t.Errorf("ParseSecrets(%q) accepted", bad)
		} else if strings.Contains(err.Error(), "tiny") || strings.Contains(err.Error(), "short") {
			t.Errorf("the error repeats a secret: %v", err)
		}
	}
}
