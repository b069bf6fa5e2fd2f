package ecomcharge

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/refundq/refundq/providers"
)

// authOutcome is a refused credential: Blocked, never Rejected.
func authOutcome(status int) providers.Outcome {
	return providers.Outcome{Kind: providers.Blocked, HTTPStatus: status,
		Reason: fmt.Sprintf("authentication failed (HTTP %d): check %s and %s", status, EnvShopID, EnvSecretKey)}
}

// guardOutcome reads the answers every ecomCharge call shares: a 429 is
// Transient with its Retry-After, a 401/403 a refused credential (Blocked).
// ok is false for any other status.
func guardOutcome(resp *providers.Response, what string) (out providers.Outcome, ok bool) {
	switch resp.Status {
	case http.StatusTooManyRequests:
		return providers.Outcome{Kind: providers.Transient, HTTPStatus: resp.Status, RequestID: resp.RequestID(),
			RetryAfter: providers.RetryAfter(resp.Header), Reason: what + "rate limited by ecomCharge"}, true
	case http.StatusUnauthorized, http.StatusForbidden:
		out = authOutcome(resp.Status)
		out.RequestID = resp.RequestID()
		return out, true
	}
	return out, false
}

// baseURLOutcome is a 404 that ecomCharge's documented API does not give:
// our base URL (or path) is wrong. Blocked, never a refusal.
func baseURLOutcome(out providers.Outcome, msg string) providers.Outcome {
	out.Kind = providers.Blocked
	out.Reason = fmt.Sprintf("ecomCharge answered HTTP 404 (%s) where its documented API answers: check %s (default %s)", msg, EnvBaseURL, DefaultURL)
	return out
}

// duplicateOutcome reads a duplicate_check refusal. On a first attempt
// nothing of ours was sent before, so the equal refund it clashed with is
// someone else's (two equal partial refunds inside 30 s are legitimate):
// nothing was applied, send again after the window. On a resend it is most
// likely our own earlier attempt, applied: reconcile first.
func duplicateOutcome(attempt int, detail string, out providers.Outcome) providers.Outcome {
	out.Status = "duplicate_check"
	if attempt <= 1 {
		out.Kind, out.RetryAfter = providers.Transient, DuplicateRetry
		out.Reason = fmt.Sprintf("duplicate_check refused it: an equal refund of this payment was made in the last %s, not by this refund (its first attempt); nothing applied, send again after %s: %s",
			DuplicateWindow, DuplicateRetry, detail)
		return out
	}
	out.Kind = providers.Unknown
	out.Reason = "duplicate_check refused the resend: most likely our own earlier attempt was applied; look it up by tracking_id before anything else: " + detail
	return out
}

func refused(status int) bool {
	for _, s := range refusedStatuses {
		if status == s {
			return true
		}
	}
	return false
}

// isDuplicate reports whether a refusal is duplicate_check's: the word
// "duplicate" anywhere in its text, or beGateway's code F.0108.
func isDuplicate(text, code string) bool {
	return strings.EqualFold(strings.TrimSpace(code), duplicateCode) ||
		strings.Contains(strings.ToLower(text), duplicateWord)
}

// apiError is ecomCharge's error body, {"message", "errors"} (with code and
// friendly_message under API version 3), or the same inside "response"
// (beGateway's PHP client reads both).
type apiError struct {
	Message         string          `json:"message"`
	Errors          json.RawMessage `json:"errors"`
	Code            string          `json:"code"`
	FriendlyMessage string          `json:"friendly_message"`
	Response        *struct {
		Message         string          `json:"message"`
		Errors          json.RawMessage `json:"errors"`
		Code            string          `json:"code"`
		FriendlyMessage string          `json:"friendly_message"`
	} `json:"response"`
}

func parseError(body []byte) (apiError, bool) {
	var e apiError
	if json.Unmarshal(body, &e) != nil {
		return apiError{}, false
	}
	if e.Message == "" && len(e.Errors) == 0 && e.Response != nil {
		e.Message, e.Errors, e.Code, e.FriendlyMessage = e.Response.Message, e.Response.Errors, e.Response.Code, e.Response.FriendlyMessage
	}
	return e, e.Message != "" || flattenErrors(e.Errors) != ""
}

// text is the message with the field errors flattened after it.
func (e apiError) text() string {
	s := e.Message
	if f := flattenErrors(e.Errors); f != "" {
		s = strings.TrimSpace(s + " (" + f + ")")
	}
	if e.Code != "" {
		s += " [code " + e.Code + "]"
	}
	if len(s) > 500 {
		s = s[:500] + "…"
	}
	return s
}

// amountReading is refundq's reading, in major units, of the error about
// the amount field: ecomCharge counts in minor units ("is more than the
// 1000 left to refund" on a 10.00 EUR payment), and its words are quoted as
// they are, so the reading goes beside them. "" when they hold no number.
func (e apiError) amountReading(currency string) string {
	var fields map[string]any
	if json.Unmarshal(e.Errors, &fields) != nil {
		return ""
	}
	var msgs []string
	switch v := fields["amount"].(type) {
	case string:
		msgs = append(msgs, v)
	case []any:
		for _, it := range v {
			if s, ok := it.(string); ok {
				msgs = append(msgs, s)
			}
		}
	}
	if s := providers.MinorReading(currency, msgs...); s != "" {
		return "; ecomCharge counts in minor units: " + s
	}
	return ""
}

// flattenErrors renders {"base": ["x"], "amount": ["y"]} (any nesting) as
// "amount: y; base: x".
func flattenErrors(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return ""
	}
	var parts []string
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch x := v.(type) {
		case map[string]any:
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				p := k
				if prefix != "" {
					p = prefix + "." + k
				}
				walk(p, x[k])
			}
		case []any:
			var ss []string
			for _, it := range x {
				switch it := it.(type) {
				case string:
					ss = append(ss, it)
				case map[string]any, []any:
					walk(prefix, it)
				case nil:
				default:
					ss = append(ss, fmt.Sprint(it))
				}
			}
			if len(ss) > 0 {
				parts = append(parts, label(prefix, strings.Join(ss, ", ")))
			}
		case nil:
		case string:
			if x != "" {
				parts = append(parts, label(prefix, x))
			}
		default:
			parts = append(parts, label(prefix, fmt.Sprint(x)))
		}
	}
	walk("", v)
	return strings.Join(parts, "; ")
}

func label(prefix, s string) string {
	if prefix == "" {
		return s
	}
	return prefix + ": " + s
}
