// Package moyasarpg is the adapter for Moyasar Payment Gateway (MPG) refunds:
// POST /v1/orders/{id}/refund with an integer amount in minor units and our
// transaction_id, which MPG uses as the idempotency key; look-up by
// GET /v1/orders/{id}. Every MPG-specific fact lives in this package.
package moyasarpg

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/refundq/refundq/providers"
)

// SandboxURL is MPG's sandbox; the live API is https://pg.moyasar.com.
const SandboxURL = "https://pg.mysr.dev"

// Schedule polls a pending MPG refund every few seconds, then every minute,
// for an hour: MPG answers "still processing" only while its own call to the
// card network runs.
var Schedule = providers.Schedule{First: 2 * time.Second, Max: time.Minute, Horizon: time.Hour}

// Config configures the adapter.
type Config struct {
	BaseURL    string // default SandboxURL
	APIKey     string // sent as "Authorization: Bearer <key>"
	HTTPClient *http.Client
}

// Client is the MPG adapter; it implements providers.Provider.
type Client struct {
	base string
	key  string
	hc   *http.Client
}

// New returns an adapter; the API key is required.
func New(cfg Config) (*Client, error) {
	if strings.TrimSpace(cfg.APIKey) == "" {
		return nil, errors.New("moyasarpg: API key is required (MOYASAR_PG_API_KEY)")
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = SandboxURL
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = providers.HTTPClient()
	}
	return &Client{base: strings.TrimRight(cfg.BaseURL, "/"), key: strings.TrimSpace(cfg.APIKey), hc: cfg.HTTPClient}, nil
}

// Entry returns MPG's registry entry from the environment
// (MOYASAR_PG_BASE_URL, MOYASAR_PG_API_KEY); disabled when the key is unset.
func Entry(getenv func(string) string) providers.Entry {
	e := providers.Entry{Name: providers.MoyasarPG, Schedule: Schedule}
	c, err := New(Config{BaseURL: strings.TrimSpace(getenv("MOYASAR_PG_BASE_URL")), APIKey: getenv("MOYASAR_PG_API_KEY")})
	if err != nil {
		e.Missing = []string{"MOYASAR_PG_API_KEY"}
		return e
	}
	e.Provider = c
	return e
}

// order is the part of MPG's order object the adapter reads.
type order struct {
	ID             string        `json:"id"`
	Status         string        `json:"status"`
	Amount         int64         `json:"amount"`
	Currency       string        `json:"currency"`
	RefundedAmount int64         `json:"refunded_amount"`
	Transactions   []transaction `json:"transactions"`
}

type transaction struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Status   string `json:"status"`
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
	Message  string `json:"message"`
}

type apiError struct {
	Message string              `json:"message"`
	Errors  map[string][]string `json:"errors"`
}

// stillProcessing is MPG's answer while the first request with this
// transaction_id is running.
const stillProcessing = "Initial request is still processing."

// Refund sends the refund with r.Key as transaction_id; a resend with the
// same key is answered from MPG's record of the first.
func (c *Client) Refund(ctx context.Context, r providers.Refund) providers.Outcome {
	body, _ := json.Marshal(struct {
		Amount        int64  `json:"amount"`
		TransactionID string `json:"transaction_id"`
	}{r.Amount.Minor, r.Key})
	resp, err := c.do(ctx, http.MethodPost, "/v1/orders/"+url.PathEscape(r.OrderID)+"/refund", body)
	if err != nil {
		return providers.TransportOutcome(err)
	}
	if resp.Status == http.StatusOK {
		return fromOrder(resp, r.Key, false)
	}
	return fromError(resp, false)
}

// Lookup reads the order and finds the refund transaction with our key.
func (c *Client) Lookup(ctx context.Context, r providers.Refund) providers.Outcome {
	resp, err := c.do(ctx, http.MethodGet, "/v1/orders/"+url.PathEscape(r.OrderID), nil)
	if err != nil {
		return providers.TransportOutcome(err)
	}
	if resp.Status == http.StatusOK {
		return fromOrder(resp, r.Key, true)
	}
	return fromError(resp, true)
}

func (c *Client) do(ctx context.Context, method, path string, body []byte) (*providers.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, &providers.TransportError{Err: err}
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return providers.Do(ctx, c.hc, req)
}

// fromOrder classifies a 200 order by the refund transaction carrying key.
func fromOrder(resp *providers.Response, key string, lookup bool) providers.Outcome {
	var o order
	if err := json.Unmarshal(resp.Body, &o); err != nil || o.ID == "" {
		return providers.Outcome{Kind: providers.Unknown, HTTPStatus: resp.Status,
			Reason: "unreadable order: " + providers.Snippet(resp.Body)}
	}
	for _, t := range o.Transactions {
		if t.ID != key || t.Type != "refund" {
			continue
		}
		out := providers.Outcome{Reference: t.ID, Status: t.Status, HTTPStatus: resp.Status}
		switch t.Status {
		case "approved":
			out.Kind = providers.Succeeded
		case "failed":
			out.Kind, out.Reason = providers.Rejected, "refund failed at MPG: "+orDefault(t.Message, "no message")
		case "initiated":
			out.Kind, out.Reason = providers.Pending, "MPG is processing the refund"
		default: // timeout, system_error, or a status MPG has not documented
			out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("refund transaction status %q: outcome uncertain", t.Status)
		}
		return out
	}
	if lookup {
		return providers.Outcome{Kind: providers.NotFound, HTTPStatus: resp.Status, Status: o.Status,
			Reason: "order has no refund transaction " + key}
	}
	return providers.Outcome{Kind: providers.Unknown, HTTPStatus: resp.Status, Status: o.Status,
		Reason: "order returned without our refund transaction " + key}
}

func fromError(resp *providers.Response, lookup bool) providers.Outcome {
	out := providers.Outcome{HTTPStatus: resp.Status}
	var e apiError
	parsed := json.Unmarshal(resp.Body, &e) == nil && e.Message != ""
	switch {
	case resp.Status == http.StatusBadRequest && parsed && e.Message == stillProcessing:
		out.Kind, out.Status, out.Reason = providers.Pending, "still_processing", e.Message
	case resp.Status == http.StatusTooManyRequests:
		out.Kind, out.RetryAfter, out.Reason = providers.Transient, providers.RetryAfter(resp.Header), "rate limited by MPG"
	case resp.Status >= 500 || !parsed:
		// MPG may have applied it; the transaction_id makes the look-up
		// (and a resend) safe.
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("HTTP %d: %s", resp.Status, providers.Snippet(resp.Body))
	case lookup && resp.Status == http.StatusNotFound:
		out.Kind, out.Reason = providers.Rejected, "order not found at MPG"
	case lookup:
		// An auth or validation error on a read proves nothing about the refund.
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("look-up refused (HTTP %d): %s", resp.Status, e.Message)
	case resp.Status == http.StatusUnauthorized || resp.Status == http.StatusForbidden:
		out.Kind, out.Reason = providers.Rejected, fmt.Sprintf("authentication failed (HTTP %d): check MOYASAR_PG_API_KEY and MOYASAR_PG_BASE_URL", resp.Status)
	case resp.Status == http.StatusNotFound:
		out.Kind, out.Reason = providers.Rejected, "order not found at MPG"
	case resp.Status == http.StatusUnprocessableEntity || resp.Status == http.StatusBadRequest:
		out.Kind, out.Reason = providers.Rejected, e.Message+fieldErrors(e.Errors)
	default:
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("HTTP %d: %s", resp.Status, e.Message)
	}
	return out
}

func fieldErrors(m map[string][]string) string {
	if len(m) == 0 {
		return ""
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+": "+strings.Join(m[k], ", "))
	}
	return " (" + strings.Join(parts, "; ") + ")"
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
