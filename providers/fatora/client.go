// Package fatora is the adapter for Fatora (Qatar) refunds:
// POST /v1/payments/refund with the payment's transaction_id and order_id.
// A Fatora refund is always the whole payment, and "under_proccession" (so
// spelled) can last weeks. Every Fatora-specific fact lives in this package.
package fatora

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/tasks"
)

// DefaultURL is Fatora's API; test or live is a property of the key.
const DefaultURL = "https://api.fatora.io"

// Paths and words of Fatora's API. The docs use /v1/...; the seed's code
// samples say /api/v1/... (PROVIDERS.md): if live calls 404, that is the
// line to change.
var (
	refundPath = "/v1/payments/refund"
	verifyPath = "/v1/payments/verify"
)

// Refund statuses. "under_proccession" is Fatora's spelling.
const (
	refundCompleted  = "completed"
	refundProcessing = "under_proccession"
)

// Schedule polls an under_proccession refund hourly at first, then daily,
// for five weeks: the bank may take 2–4 weeks. Poll tasks are scheduled in
// Redis, so this holds no worker.
var Schedule = providers.Schedule{First: time.Hour, Max: 24 * time.Hour, Horizon: 35 * 24 * time.Hour}

// Config configures the adapter.
type Config struct {
	BaseURL    string // default DefaultURL
	APIKey     string // sent in the api_key header
	HTTPClient *http.Client
}

// Client is the Fatora adapter; it implements providers.Provider.
type Client struct {
	base, key string
	hc        *http.Client
}

// New returns an adapter; the API key is required.
func New(cfg Config) (*Client, error) {
	key := strings.TrimSpace(cfg.APIKey)
	if key == "" {
		return nil, errors.New("fatora: API key is required (FATORA_API_KEY)")
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultURL
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = providers.HTTPClient()
	}
	return &Client{base: strings.TrimRight(cfg.BaseURL, "/"), key: key, hc: cfg.HTTPClient}, nil
}

// Entry returns Fatora's registry entry from FATORA_BASE_URL and
// FATORA_API_KEY; disabled when the key is unset.
func Entry(getenv func(string) string) providers.Entry {
	e := providers.Entry{Name: providers.Fatora, Schedule: Schedule, Check: Check, OncePerOrder: true}
	c, err := New(Config{BaseURL: strings.TrimSpace(getenv("FATORA_BASE_URL")), APIKey: getenv("FATORA_API_KEY")})
	if err != nil {
		e.Missing = []string{"FATORA_API_KEY"}
		return e
	}
	e.Provider = c
	return e
}

// Check is Fatora's enqueue-time rule: the refund names the payment's
// transaction. Whether the amount is the whole payment only Fatora knows:
// Precheck asks it at enqueue time where FATORA_API_KEY is set, and Refund
// asks again before sending.
func Check(r tasks.Refund) error {
	if strings.TrimSpace(r.TransactionID) == "" {
		return errors.New("transaction_id is required: Fatora refunds a payment by its transaction id")
	}
	return nil
}

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

type refundResult struct {
	RefundStatus        string          `json:"refund_status"`
	Mode                string          `json:"mode"`
	RefundTransactionID json.RawMessage `json:"refund_transaction_id"`
}

// verifyResult is what the refund and the look-up need from verify.
// refund_status in it is a guess (PROVIDERS.md: "whether it reflects the
// refund is unknown"); without it every look-up is Unknown, never a resend.
type verifyResult struct {
	PaymentStatus string      `json:"payment_status"`
	Amount        json.Number `json:"amount"`
	Currency      string      `json:"currency"`
	RefundStatus  string      `json:"refund_status"`
}

// Refund verifies the payment, refuses a partial amount before anything is
// sent, then asks for the refund.
func (c *Client) Refund(ctx context.Context, r providers.Refund) providers.Outcome {
	v, out, ok := c.verify(ctx, r)
	if !ok {
		// Nothing was sent yet: a failed verify can always be retried.
		if out.Kind == providers.Unknown {
			out.Kind = providers.Transient
		}
		return out
	}
	if v.RefundStatus != "" {
		// The worker only sends when a look-up found nothing of ours, so a
		// refund here is another one: Fatora refunds a payment once.
		return providers.Outcome{Kind: providers.Rejected, HTTPStatus: out.HTTPStatus, Status: v.RefundStatus,
			Reason: "the payment is already refunded (Fatora refunds a payment once)"}
	}
	paid, err := tasks.ParseMoney(v.Amount.String(), v.Currency)
	if err != nil {
		return providers.Outcome{Kind: providers.Transient, HTTPStatus: out.HTTPStatus,
			Reason: fmt.Sprintf("verify answer has no usable amount (%q %q); nothing sent", v.Amount, v.Currency)}
	}
	if err := wholePayment(paid, r.Amount); err != nil {
		return providers.Outcome{Kind: providers.Rejected, HTTPStatus: out.HTTPStatus, Reason: err.Error()}
	}
	resp, err := c.post(ctx, refundPath, r)
	if err != nil {
		return providers.TransportOutcome(err)
	}
	env, res, o := parse(resp, false)
	if o.Kind != providers.Succeeded {
		return o
	}
	var rr refundResult
	if err := json.Unmarshal(env.Result, &rr); err != nil {
		return providers.Outcome{Kind: providers.Unknown, HTTPStatus: res, Reason: "unreadable refund result: " + providers.Snippet(resp.Body)}
	}
	out = providers.Outcome{HTTPStatus: res, Status: rr.RefundStatus, Reference: strings.Trim(string(rr.RefundTransactionID), `"`)}
	switch rr.RefundStatus {
	case refundCompleted:
		out.Kind = providers.Succeeded
	case refundProcessing:
		out.Kind, out.Reason = providers.Pending, "the bank is processing the refund (can take 2-4 weeks)"
	default:
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("undocumented refund_status %q", rr.RefundStatus)
	}
	return out
}

// Precheck refuses, at enqueue time, a refund that is not the whole payment,
// as Refund would before sending. Any answer short of a readable payment
// decides nothing.
func (c *Client) Precheck(ctx context.Context, r providers.Refund) error {
	v, _, ok := c.verify(ctx, r)
	if !ok {
		return nil
	}
	paid, err := tasks.ParseMoney(v.Amount.String(), v.Currency)
	if err != nil {
		return nil
	}
	return wholePayment(paid, r.Amount)
}

func wholePayment(paid, asked tasks.Money) error {
	if paid != asked {
		return fmt.Errorf("Fatora refunds whole payments only: the payment is %s, the refund asks %s", paid, asked)
	}
	return nil
}

// Lookup reads the payment through verify.
func (c *Client) Lookup(ctx context.Context, r providers.Refund) providers.Outcome {
	v, out, ok := c.verify(ctx, r)
	if !ok {
		if out.Kind == providers.Rejected && out.HTTPStatus != http.StatusNotFound {
			out.Kind = providers.Unknown // an auth or validation error proves nothing about the refund
		}
		return out
	}
	return lookupOutcome(v, out.HTTPStatus)
}

func lookupOutcome(v verifyResult, status int) providers.Outcome {
	out := providers.Outcome{HTTPStatus: status, Status: v.RefundStatus}
	switch {
	case v.RefundStatus == refundCompleted:
		out.Kind = providers.Succeeded
	case v.RefundStatus == refundProcessing:
		out.Kind, out.Reason = providers.Pending, "the bank is processing the refund"
	case v.RefundStatus == "" && v.PaymentStatus == "SUCCESS":
		out.Kind, out.Status, out.Reason = providers.NotFound, v.PaymentStatus, "payment is paid and not refunded"
	default:
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("payment_status %q, refund_status %q", v.PaymentStatus, v.RefundStatus)
	}
	return out
}

// verify calls /v1/payments/verify; ok is false with a classified outcome
// when there is no usable answer.
func (c *Client) verify(ctx context.Context, r providers.Refund) (verifyResult, providers.Outcome, bool) {
	resp, err := c.post(ctx, verifyPath, r)
	if err != nil {
		return verifyResult{}, providers.TransportOutcome(err), false
	}
	env, status, out := parse(resp, true)
	if out.Kind != providers.Succeeded {
		return verifyResult{}, out, false
	}
	var v verifyResult
	if err := json.Unmarshal(env.Result, &v); err != nil {
		return verifyResult{}, providers.Outcome{Kind: providers.Unknown, HTTPStatus: status,
			Reason: "unreadable verify result: " + providers.Snippet(resp.Body)}, false
	}
	return v, providers.Outcome{HTTPStatus: status}, true
}

func (c *Client) post(ctx context.Context, path string, r providers.Refund) (*providers.Response, error) {
	body, _ := json.Marshal(ids{TransactionID: r.TransactionID, OrderID: r.OrderID})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, &providers.TransportError{Err: err}
	}
	req.Header.Set("api_key", c.key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	return providers.Do(ctx, c.hc, req)
}

// parse reads the envelope. A SUCCESS envelope comes back as Kind
// Succeeded for the caller to read its result; anything else is classified.
func parse(resp *providers.Response, lookup bool) (envelope, int, providers.Outcome) {
	out := providers.Outcome{HTTPStatus: resp.Status}
	var env envelope
	if err := json.Unmarshal(resp.Body, &env); err != nil || (env.Status != "SUCCESS" && env.Status != "ERROR") {
		if resp.Status == http.StatusTooManyRequests {
			out.Kind, out.RetryAfter, out.Reason = providers.Transient, providers.RetryAfter(resp.Header), "rate limited by Fatora"
			return env, resp.Status, out
		}
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("HTTP %d: %s", resp.Status, providers.Snippet(resp.Body))
		return env, resp.Status, out
	}
	if env.Status == "SUCCESS" && resp.Status == http.StatusOK {
		out.Kind = providers.Succeeded
		return env, resp.Status, out
	}
	msg := errorText(env.Error)
	switch {
	case resp.Status == http.StatusTooManyRequests:
		out.Kind, out.RetryAfter, out.Reason = providers.Transient, providers.RetryAfter(resp.Header), "rate limited by Fatora: "+msg
	case resp.Status >= 500 || resp.Status < 400:
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("HTTP %d: %s", resp.Status, msg)
	case resp.Status == http.StatusUnauthorized || resp.Status == http.StatusForbidden:
		out.Kind, out.Reason = providers.Rejected, fmt.Sprintf("authentication failed (HTTP %d: %s): check FATORA_API_KEY", resp.Status, msg)
	case resp.Status == http.StatusNotFound:
		out.Kind, out.Reason = providers.Rejected, "payment not found at Fatora: "+msg
	default: // 400, 409 (already refunded), 415, 422
		out.Kind, out.Reason = providers.Rejected, fmt.Sprintf("Fatora refused (HTTP %d): %s", resp.Status, msg)
	}
	return env, resp.Status, out
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
