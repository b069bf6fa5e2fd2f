// Package webhook signs the notifications refundq sends when a refund
// reaches a final state (or needs review), and lets a receiver verify them.
//
// Each POST carries the header
//
//	Refundq-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>
//
// where the HMAC, keyed with the shared secret, covers "<t>.<raw body>".
// While a secret is rotated the sender holds two and signs with both
// (t=…,v1=<new>,v1=<old>), so a receiver still on the old one and a
// receiver already on the new one both verify; a receiver rotating holds
// both too, and Verify accepts any.
// A receiver recomputes it over the exact bytes it received, compares in
// constant time, and refuses a timestamp too far from its clock, so a
// captured request cannot be replayed later. Deliveries are retried, so a
// receiver must treat the event id (Event.ID) as an idempotency key.
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Header is the name of the signature header.
const Header = "Refundq-Signature"

// Sign returns the signature header value for body sent at t: one v1 per
// secret, in order.
func Sign(secrets [][]byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	var b strings.Builder
	b.WriteString("t=" + ts)
	for _, s := range secrets {
		b.WriteString(",v1=" + mac(s, ts, body))
	}
	return b.String()
}

// MinSecretLen is the shortest secret ParseSecrets accepts.
const MinSecretLen = 16

// ParseSecrets reads secrets separated by commas (as WEBHOOK_SECRET holds
// them: the new one first during a rotation), each at least MinSecretLen
// characters once spaces around it are trimmed. A single secret (no comma)
// is taken exactly as written, as WEBHOOK_SECRET always was: trimming it
// would change the key of a secret that ends in a newline. The error names
// a secret by its position, never by its text.
func ParseSecrets(text string) ([][]byte, error) {
	if !strings.Contains(text, ",") {
		if len(text) < MinSecretLen {
			return nil, fmt.Errorf("webhook: secret 1 is %d characters; at least %d are required", len(text), MinSecretLen)
		}
		return [][]byte{[]byte(text)}, nil
	}
	var out [][]byte
	for i, part := range strings.Split(text, ",") {
		s := strings.TrimSpace(part)
		if len(s) < MinSecretLen {
			return nil, fmt.Errorf("webhook: secret %d is %d characters; at least %d are required", i+1, len(s), MinSecretLen)
		}
		out = append(out, []byte(s))
	}
	return out, nil
}

func mac(secret []byte, ts string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// DefaultTolerance is how far a signature's timestamp may be from the
// receiver's clock.
const DefaultTolerance = 5 * time.Minute

// Errors returned by Verify.
var (
	ErrNoSignature = errors.New("webhook: no valid signature")
	ErrTooOld      = errors.New("webhook: timestamp outside the tolerance")
)

// Verify checks header (the Refundq-Signature value) against body, and that
// its timestamp is within tolerance of now. It accepts a header any of whose
// v1 values was made with any of secrets: a receiver rotating its secret
// passes both.
func Verify(header string, body []byte, secrets [][]byte, tolerance time.Duration, now time.Time) error {
	var ts string
	var sigs []string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sigs = append(sigs, v)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return fmt.Errorf("%w: malformed header", ErrNoSignature)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: signed %s ago", ErrTooOld, d.Round(time.Second))
	}
	for _, secret := range secrets {
		want := []byte(mac(secret, ts, body))
		for _, s := range sigs {
			if hmac.Equal([]byte(s), want) {
				return nil
			}
		}
	}
	return ErrNoSignature
}

// Event is the body of a notification.
type Event struct {
	ID      string    `json:"id"`      // unique per event; deliveries of one event share it
	Type    string    `json:"type"`    // refund.succeeded, refund.failed, refund.needs_review
	Created time.Time `json:"created"` // when the refund reached the state
	Refund  Refund    `json:"refund"`
}

// Refund is what a notification says of the refund. Amounts are decimal
// strings in major units with the currency's exponent, never floats.
type Refund struct {
	RefundID      string            `json:"refund_id"`
	Provider      string            `json:"provider"`
	OrderID       string            `json:"order_id"`
	TransactionID string            `json:"transaction_id,omitempty"`
	Amount        string            `json:"amount"`
	Currency      string            `json:"currency"`
	State         string            `json:"state"`
	ProviderRef   string            `json:"provider_ref,omitempty"`
	Reason        string            `json:"reason,omitempty"`
	Metadata      map[string]string `json:"metadata,omitempty"`
}
