// Package tasks defines refundq's asynq task types, their versioned JSON
// payloads and the Money type. Producers and workers share it; nothing here
// talks to Redis or to a provider.
package tasks

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Task type names. They are part of the wire contract with every running
// worker: renaming one strands the tasks already queued under the old name.
const (
	TypeRefund = "refund:submit" // send (or reconcile) one refund
	TypePoll   = "refund:poll"   // ask the provider again about a pending refund
)

// PayloadVersion is the version written by Encode. Decode rejects others so an
// old worker archives a newer task with a readable reason instead of guessing.
const PayloadVersion = 1

// Refund is the payload of a TypeRefund task: everything needed to refund one
// order, chosen by the merchant. It carries no secret and no card data.
type Refund struct {
	Version       int               `json:"v"`
	RefundID      string            `json:"refund_id"`                // the merchant's id; refundq's idempotency key
	Provider      string            `json:"provider"`                 // e.g. "moyasarpg"
	OrderID       string            `json:"order_id"`                 // the provider's order (or payment) id
	TransactionID string            `json:"transaction_id,omitempty"` // the provider's payment transaction, where it needs one
	AmountMinor   int64             `json:"amount_minor"`             // minor units of Currency
	Currency      string            `json:"currency"`                 // ISO 4217
	Reason        string            `json:"reason,omitempty"`
	Metadata      map[string]string `json:"metadata,omitempty"`
	// Trace is the W3C trace context (traceparent, tracestate) of the span
	// that enqueued the task, so the runs of the refund join its trace. It
	// is not part of the refund: two requests for the same refund under
	// different traces are the same refund, and nothing compares it. Not
	// validated either: a malformed one is ignored, and the run starts a
	// trace of its own.
	Trace map[string]string `json:"trace,omitempty"`
}

// Money returns the refund amount.
func (r Refund) Money() Money { return Money{Minor: r.AmountMinor, Currency: r.Currency} }

// FieldError is one problem with one field.
type FieldError struct {
	Field   string
	Message string
}

// ValidationError lists every problem found in a payload, so a caller can fix
// them all at once.
type ValidationError []FieldError

func (v ValidationError) Error() string {
	parts := make([]string, len(v))
	for i, f := range v {
		parts[i] = f.Field + ": " + f.Message
	}
	return "invalid refund: " + strings.Join(parts, "; ")
}

// Limits on free-form fields; providers allow about this much (ecomCharge's
// reason is 255, BBMSL's merchantReference 64).
const (
	maxIDLen      = 64
	maxRefLen     = 128
	maxReasonLen  = 255
	maxMetaKeys   = 20
	maxMetaKeyLen = 40
	maxMetaValLen = 500
)

// Validate checks the payload and returns a ValidationError naming each bad
// field, or nil.
func (r Refund) Validate() error {
	var errs ValidationError
	add := func(field, format string, args ...any) {
		errs = append(errs, FieldError{field, fmt.Sprintf(format, args...)})
	}
	if r.Version != PayloadVersion {
		add("v", "unsupported payload version %d (this build reads %d)", r.Version, PayloadVersion)
	}
	switch {
	case r.RefundID == "":
		add("refund_id", "is required")
	case len(r.RefundID) > maxIDLen:
		add("refund_id", "longer than %d characters", maxIDLen)
	case !isIDChars(r.RefundID):
		add("refund_id", "may contain only letters, digits and . _ : -")
	}
	if r.Provider == "" {
		add("provider", "is required")
	}
	checkRef := func(field, v string, required bool) {
		switch {
		case v == "" && required:
			add(field, "is required")
		case v == "." || v == "..":
			// It becomes a segment of a provider's URL path
			// (/v1/orders/{id}/refund), where ".." means the parent.
			add(field, "cannot be %q", v)
		case len(v) > maxRefLen:
			add(field, "longer than %d characters", maxRefLen)
		case !isPrintable(v):
			add(field, "contains control or non-printable characters")
		}
	}
	checkRef("order_id", r.OrderID, true)
	checkRef("transaction_id", r.TransactionID, false)
	if err := r.Money().Validate(); err != nil {
		if r.AmountMinor <= 0 {
			add("amount", "must be greater than zero")
		}
		if _, ok := Exponent(r.Currency); !ok {
			add("currency", "unknown ISO 4217 currency %q", r.Currency)
		}
	}
	switch {
	case len(r.Reason) > maxReasonLen:
		add("reason", "longer than %d characters", maxReasonLen)
	case !isPrintable(r.Reason):
		add("reason", "contains control or non-printable characters")
	case looksLikePAN(r.Reason):
		add("reason", "looks like a card number; refundq never carries card data")
	}
	if len(r.Metadata) > maxMetaKeys {
		add("metadata", "more than %d keys", maxMetaKeys)
	}
	for k, v := range r.Metadata {
		switch {
		case k == "" || len(k) > maxMetaKeyLen || !isIDChars(k):
			add("metadata", "key %q must be 1-%d letters, digits or . _ : -", truncate(k, 50), maxMetaKeyLen)
		case len(v) > maxMetaValLen:
			add("metadata."+k, "longer than %d characters", maxMetaValLen)
		case looksLikePAN(v):
			add("metadata."+k, "looks like a card number; refundq never carries card data")
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// EncodeRefund validates r and returns its JSON payload, single-line so
// asynqmon shows it.
func EncodeRefund(r Refund) ([]byte, error) {
	r.Version = PayloadVersion
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return json.Marshal(r)
}

// DecodeRefund parses and validates a TypeRefund payload.
func DecodeRefund(b []byte) (Refund, error) {
	var r Refund
	if err := json.Unmarshal(b, &r); err != nil {
		return Refund{}, fmt.Errorf("decode refund payload: %w", err)
	}
	if err := r.Validate(); err != nil {
		return Refund{}, err
	}
	return r, nil
}

// Poll is the payload of a TypePoll task: ask the provider again about a
// refund that was pending. Step counts the polls so far and picks the delay to
// the next one.
type Poll struct {
	Version  int    `json:"v"`
	RefundID string `json:"refund_id"`
	Step     int    `json:"step"`
	// Trace is the W3C trace context of the run that scheduled the poll
	// (see Refund.Trace).
	Trace map[string]string `json:"trace,omitempty"`
}

// EncodePoll returns the JSON payload of a TypePoll task.
func EncodePoll(p Poll) ([]byte, error) {
	p.Version = PayloadVersion
	if p.RefundID == "" || !isIDChars(p.RefundID) || len(p.RefundID) > maxIDLen {
		return nil, fmt.Errorf("poll: bad refund_id %q", truncate(p.RefundID, 80))
	}
	return json.Marshal(p)
}

// DecodePoll parses and validates a TypePoll payload.
func DecodePoll(b []byte) (Poll, error) {
	var p Poll
	if err := json.Unmarshal(b, &p); err != nil {
		return Poll{}, fmt.Errorf("decode poll payload: %w", err)
	}
	var errs ValidationError
	if p.Version != PayloadVersion {
		errs = append(errs, FieldError{"v", fmt.Sprintf("unsupported payload version %d", p.Version)})
	}
	if p.RefundID == "" || !isIDChars(p.RefundID) || len(p.RefundID) > maxIDLen {
		errs = append(errs, FieldError{"refund_id", "missing or malformed"})
	}
	if p.Step < 0 {
		errs = append(errs, FieldError{"step", "negative"})
	}
	if len(errs) > 0 {
		return Poll{}, errs
	}
	return p, nil
}

// TraceOf returns the trace context a refund or poll payload carries (nil
// if none, or if the payload cannot be read), so a task re-created from
// its record keeps the trace of the one it replaces.
func TraceOf(payload []byte) map[string]string {
	var p struct {
		Trace map[string]string `json:"trace"`
	}
	_ = json.Unmarshal(payload, &p)
	return p.Trace
}

func isIDChars(s string) bool {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

func isPrintable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, c := range s {
		if !unicode.IsPrint(c) {
			return false
		}
	}
	return true
}

// looksLikePAN reports whether s contains a run of 13-19 digits (spaces and
// dashes allowed between them) that passes the Luhn check: a card number that
// must not be stored in a payload, a record or a log. Provider ids (order_id,
// transaction_id) are not checked: they are often long digit strings, and one
// in ten would pass Luhn by chance.
func looksLikePAN(s string) bool {
	digits := make([]int, 0, 19)
	flush := func() bool {
		ok := len(digits) >= 13 && len(digits) <= 19 && luhn(digits)
		digits = digits[:0]
		return ok
	}
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9':
			digits = append(digits, int(c-'0'))
		case c == ' ' || c == '-':
		default:
			if flush() {
				return true
			}
		}
	}
	return flush()
}

func luhn(d []int) bool {
	sum := 0
	for i := range d {
		v := d[len(d)-1-i]
		if i%2 == 1 {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
	}
	return sum%10 == 0
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
