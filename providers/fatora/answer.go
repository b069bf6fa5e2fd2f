package fatora

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/tasks"
)

type ids struct {
	TransactionID string `json:"transaction_id"`
	OrderID       string `json:"order_id"`
}

// envelope is every Fatora answer: status SUCCESS with a result, or ERROR
// with an error that is an object or a plain string.
type envelope struct {
	Status string          `json:"status"`
	Result json.RawMessage `json:"result"`
	Error  json.RawMessage `json:"error"`
}

// refundResult is the documented refund answer's result.
type refundResult struct {
	RefundStatus        string          `json:"refund_status"`
	Mode                string          `json:"mode"`
	RefundTransactionID json.RawMessage `json:"refund_transaction_id"`
}

// verifyResult is what the adapter reads of verify's result. PaymentStatus,
// Amount and Currency are documented; RefundStatus and RefundTransactionID
// are the guess GuessVerifyRefundStatus (nil when absent).
type verifyResult struct {
	Mode                string          `json:"mode"`
	PaymentStatus       *string         `json:"payment_status"`
	Amount              json.Number     `json:"amount"`
	Currency            string          `json:"currency"`
	RefundStatus        *string         `json:"refund_status"`
	RefundTransactionID json.RawMessage `json:"refund_transaction_id"`
}

func (v verifyResult) refundStatus() string { return deref(v.RefundStatus) }

func (v verifyResult) paymentStatus() string { return deref(v.PaymentStatus) }

func (v verifyResult) showsRefundField() bool { return v.RefundStatus != nil && *v.RefundStatus != "" }

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// paid is the payment's amount as verify shows it; Fatora writes decimals
// with trailing zeros ("123.100" QAR), read leniently.
func (v verifyResult) paid() (tasks.Money, error) {
	m, err := tasks.ParseProviderAmount(v.Amount.String(), v.Currency)
	if err == nil && m.Minor <= 0 {
		err = errors.New("amount is zero")
	}
	if err != nil {
		return tasks.Money{}, fmt.Errorf("verify shows no usable amount (%q %q): %w", v.Amount, v.Currency, err)
	}
	return m, nil
}

// refusalCodes are the HTTP codes Fatora's pages document for a request it
// refused (fatora.io/api/responseCode.php); 401 and 403 are the key's.
var refusalCodes = map[int]bool{http.StatusBadRequest: true, http.StatusNotFound: true, http.StatusConflict: true,
	http.StatusUnsupportedMediaType: true, http.StatusUnprocessableEntity: true}

// parse reads the envelope. A SUCCESS envelope with HTTP 200 comes back as
// Kind Succeeded for the caller to read its result; anything else is
// classified:
//
//	429                                  Transient (Retry-After passed on)
//	401, 403                             Blocked: the key is refused
//	400, 404, 409, 415, 422 with the     Rejected: Fatora refused the request
//	  page's ERROR envelope and an error
//	  that says why (its error_code, if
//	  any, one of those codes too)
//	5xx, other codes, any other body     Unknown: after the request may have
//	  (a SUCCESS envelope with a refusal  reached Fatora, only what its pages
//	  code, an ERROR without its error)   document is read as a refusal
func parse(resp *providers.Response) (envelope, providers.Outcome) {
	out := providers.Outcome{HTTPStatus: resp.Status, RequestID: resp.RequestID()}
	var env envelope
	if resp.Status == http.StatusTooManyRequests {
		out.Kind, out.RetryAfter, out.Reason = providers.Transient, providers.RetryAfter(resp.Header), "rate limited by Fatora"
		return env, out
	}
	if err := json.Unmarshal(resp.Body, &env); err != nil || (env.Status != "SUCCESS" && env.Status != "ERROR") {
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("HTTP %d: %s", resp.Status, providers.Snippet(resp.Body))
		if resp.Status == http.StatusUnauthorized || resp.Status == http.StatusForbidden {
			out.Kind, out.Reason = providers.Blocked, authReason(resp.Status, providers.Snippet(resp.Body))
		}
		return env, out
	}
	if env.Status == "SUCCESS" && resp.Status == http.StatusOK {
		out.Kind = providers.Succeeded
		return env, out
	}
	msg := errorText(env.Error)
	code, readable := errorCode(env.Error)
	switch {
	case resp.Status == http.StatusUnauthorized || resp.Status == http.StatusForbidden:
		out.Kind, out.Reason = providers.Blocked, authReason(resp.Status, msg)
	case refusalCodes[resp.Status] && env.Status == "ERROR" && readable && (code == "" || refusalCodes[atoi(code)]):
		out.Kind, out.Reason = providers.Rejected, fmt.Sprintf("Fatora refused (HTTP %d): %s", resp.Status, msg)
	default:
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("HTTP %d %s: %s", resp.Status, env.Status, msg)
		if env.Status == "SUCCESS" {
			out.Reason = fmt.Sprintf("HTTP %d with a SUCCESS envelope (undocumented): %s", resp.Status, providers.Snippet(resp.Body))
		}
	}
	return env, out
}

// errorCode reads the error of an ERROR envelope: readable when it is one
// of the two documented forms with something in it (a non-empty string, or
// an object with error_code or description); code is the object's
// error_code ("" for the string form or none).
func errorCode(raw json.RawMessage) (code string, readable bool) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return "", strings.TrimSpace(s) != ""
	}
	var o struct {
		Code        json.RawMessage `json:"error_code"`
		Description string          `json:"description"`
	}
	if json.Unmarshal(raw, &o) != nil {
		return "", false
	}
	code = strings.TrimSpace(strings.Trim(string(o.Code), `"`))
	if code == "null" {
		code = ""
	}
	return code, code != "" || strings.TrimSpace(o.Description) != ""
}

// atoi is the number s writes, or 0.
func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0
	}
	return n
}

func authReason(status int, msg string) string {
	return fmt.Sprintf("authentication failed (HTTP %d: %s): check FATORA_API_KEY (and FATORA_BASE_URL: test or live is a setting of the key)", status, msg)
}

// errorText reads both documented error forms: {"error_code","description"}
// and a plain string.
func errorText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil && s != "" {
		return s
	}
	var o struct {
		Code        json.RawMessage `json:"error_code"`
		Description string          `json:"description"`
	}
	if json.Unmarshal(raw, &o) == nil && (o.Description != "" || len(o.Code) > 0) {
		return strings.TrimSpace(o.Description + " (code " + strings.Trim(string(o.Code), `"`) + ")")
	}
	return providers.Snippet(raw)
}
