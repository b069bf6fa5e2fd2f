// Package ecartpay is the adapter for Ecart Pay (Mexico) refunds:
// POST /api/orders/{id}/refund with a decimal amount in major units, after
// a one-hour token from POST /api/authorizations/token. Ecart Pay has no
// refund key of ours, so a refund whose answer was lost is matched on the
// order by its amount (see Lookup). Every Ecart Pay fact lives here.
package ecartpay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/tasks"
)

// SandboxURL is Ecart Pay's sandbox; live is https://ecartpay.com (a guess).
const SandboxURL = "https://sandbox.ecartpay.com"

var (
	tokenPath = "/api/authorizations/token"
	// TokenLifetime is how long a token is valid (one hour, documented);
	// it is renewed tokenMargin before that.
	TokenLifetime = time.Hour
	tokenMargin   = 5 * time.Minute
	// Reasons are the refund reasons Ecart Pay accepts.
	Reasons = []string{"requested", "duplicate", "fraudulent"}
)

// Schedule: Ecart Pay documents no pending refund state; a schedule is kept
// for uniformity should one appear.
var Schedule = providers.Schedule{First: 10 * time.Second, Max: 10 * time.Minute, Horizon: 24 * time.Hour}

// Config configures the adapter.
type Config struct {
	BaseURL               string // default SandboxURL
	PublicKey, PrivateKey string // exchanged for a token with HTTP Basic
	HTTPClient            *http.Client
}

// Client is the Ecart Pay adapter; it implements providers.Provider.
type Client struct {
	base, public, private string
	hc                    *http.Client

	mu      sync.Mutex
	token   string
	expires time.Time
}

// New returns an adapter; both keys are required.
func New(cfg Config) (*Client, error) {
	pub, priv := strings.TrimSpace(cfg.PublicKey), strings.TrimSpace(cfg.PrivateKey)
	if err := providers.Require(providers.EcartPay, "ECARTPAY_PUBLIC_KEY", pub, "ECARTPAY_PRIVATE_KEY", priv); err != nil {
		return nil, err
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = SandboxURL
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = providers.HTTPClient()
	}
	return &Client{base: strings.TrimRight(cfg.BaseURL, "/"), public: pub, private: priv, hc: cfg.HTTPClient}, nil
}

// Entry returns Ecart Pay's registry entry from ECARTPAY_BASE_URL,
// ECARTPAY_PUBLIC_KEY and ECARTPAY_PRIVATE_KEY.
func Entry(getenv func(string) string) providers.Entry {
	e := providers.Entry{Name: providers.EcartPay, Schedule: Schedule, Check: Check}
	c, err := New(Config{BaseURL: strings.TrimSpace(getenv("ECARTPAY_BASE_URL")),
		PublicKey: getenv("ECARTPAY_PUBLIC_KEY"), PrivateKey: getenv("ECARTPAY_PRIVATE_KEY")})
	var me *providers.MissingError
	if errors.As(err, &me) {
		e.Missing = me.Vars
		return e
	}
	e.Provider = c
	return e
}

// Check is Ecart Pay's enqueue-time rule: the reason is one Ecart Pay
// accepts. An empty reason is sent as "requested".
func Check(r tasks.Refund) error {
	if r.Reason == "" {
		return nil
	}
	for _, ok := range Reasons {
		if r.Reason == ok {
			return nil
		}
	}
	return fmt.Errorf("reason %q: Ecart Pay accepts only %s", r.Reason, strings.Join(Reasons, ", "))
}

// order is the part of Ecart Pay's order the adapter reads. Top-level
// amounts are decimals; refunds[] is a guess (no per-refund endpoint is
// documented).
type order struct {
	ID       string   `json:"id"`
	Status   string   `json:"status"`
	Currency string   `json:"currency"`
	RefundID string   `json:"refund_id"`
	Refunds  []refund `json:"refunds"`
}

type refund struct {
	ID     string      `json:"id"`
	Amount json.Number `json:"amount"`
}

// Refund asks for the refund; the token is fetched, cached and renewed here.
func (c *Client) Refund(ctx context.Context, r providers.Refund) providers.Outcome {
	reason := r.Reason
	if reason == "" {
		reason = Reasons[0]
	}
	body, _ := json.Marshal(map[string]any{"amount": json.Number(r.Amount.Decimal()), "reason": reason})
	resp, out, ok := c.call(ctx, http.MethodPost, "/api/orders/"+url.PathEscape(r.OrderID)+"/refund", body)
	if !ok {
		return out
	}
	if resp.Status != http.StatusOK && resp.Status != http.StatusCreated {
		return fromError(resp, false)
	}
	var o order
	if err := json.Unmarshal(resp.Body, &o); err != nil || o.ID == "" {
		return providers.Outcome{Kind: providers.Unknown, HTTPStatus: resp.Status, Reason: "unreadable order: " + providers.Snippet(resp.Body)}
	}
	out = providers.Outcome{HTTPStatus: resp.Status, Status: o.Status, Reference: o.RefundID}
	switch o.Status {
	case "refunded", "partially_refunded":
		out.Kind = providers.Succeeded
	default:
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("order status %q after a refund", o.Status)
	}
	return out
}

// Lookup reads the order and looks for a refund of exactly our amount that
// is not one of the order's other refunds refundq knows (r.OtherRefs). With
// no key to match, several candidates are ambiguous and come back Unknown (a
// human decides), never a resend.
func (c *Client) Lookup(ctx context.Context, r providers.Refund) providers.Outcome {
	resp, out, ok := c.call(ctx, http.MethodGet, "/api/orders/"+url.PathEscape(r.OrderID), nil)
	if !ok {
		if out.Kind == providers.Rejected {
			out.Kind = providers.Unknown // a look-up refused proves nothing about the refund
		}
		return out
	}
	if resp.Status != http.StatusOK {
		return fromError(resp, true)
	}
	var o order
	if err := json.Unmarshal(resp.Body, &o); err != nil || o.ID == "" {
		return providers.Outcome{Kind: providers.Unknown, HTTPStatus: resp.Status, Reason: "unreadable order: " + providers.Snippet(resp.Body)}
	}
	var match []refund
	for _, f := range o.Refunds {
		if slices.Contains(r.OtherRefs, f.ID) {
			continue // another refund of ours on this order
		}
		if m, err := tasks.ParseMoney(f.Amount.String(), r.Amount.Currency); err == nil && m == r.Amount {
			match = append(match, f)
		}
	}
	out = providers.Outcome{HTTPStatus: resp.Status, Status: o.Status}
	switch {
	case len(match) == 1:
		out.Kind, out.Reference = providers.Succeeded, match[0].ID
	case len(match) > 1:
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("%d refunds of %s on the order; cannot tell which is ours", len(match), r.Amount)
	case o.Status == "paid" || o.Status == "partially_refunded" || o.Status == "refunded":
		out.Kind, out.Reason = providers.NotFound, "no refund of this amount on the order"
	default:
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("order status %q", o.Status)
	}
	return out
}

// call sends an API request with the cached token; on a 401 it fetches a new
// token and tries once more (a 401 was not applied). ok is false with a
// classified outcome when no API answer was had.
func (c *Client) call(ctx context.Context, method, path string, body []byte) (*providers.Response, providers.Outcome, bool) {
	for try := 0; ; try++ {
		tok, out, ok := c.getToken(ctx, try > 0)
		if !ok {
			return nil, out, false
		}
		req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
		if err != nil {
			return nil, providers.Outcome{Kind: providers.Transient, Reason: err.Error()}, false
		}
		req.Header.Set("Authorization", tok) // no "Bearer": Ecart Pay wants the raw token
		req.Header.Set("Accept", "application/json")
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := providers.Do(ctx, c.hc, req)
		if err != nil {
			return nil, providers.TransportOutcome(err), false
		}
		if resp.Status == http.StatusUnauthorized && try == 0 {
			continue
		}
		if resp.Status == http.StatusUnauthorized {
			return nil, providers.Outcome{Kind: providers.Rejected, HTTPStatus: resp.Status,
				Reason: "authentication failed with a fresh token: check ECARTPAY_PUBLIC_KEY and ECARTPAY_PRIVATE_KEY"}, false
		}
		return resp, providers.Outcome{}, true
	}
}

// getToken returns the cached token, or a new one when it is near expiry
// or force is set. Nothing has been sent to the refund API yet, so a failure
// here is Transient (or Rejected for bad keys).
func (c *Client) getToken(ctx context.Context, force bool) (string, providers.Outcome, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !force && c.token != "" && time.Until(c.expires) > tokenMargin {
		return c.token, providers.Outcome{}, true
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+tokenPath, nil)
	if err != nil {
		return "", providers.Outcome{Kind: providers.Transient, Reason: err.Error()}, false
	}
	req.SetBasicAuth(c.public, c.private)
	start := time.Now()
	resp, err := providers.Do(ctx, c.hc, req)
	if err != nil {
		return "", providers.Outcome{Kind: providers.Transient, Reason: "token: " + err.Error()}, false
	}
	switch {
	case resp.Status == http.StatusUnauthorized || resp.Status == http.StatusForbidden:
		return "", providers.Outcome{Kind: providers.Rejected, HTTPStatus: resp.Status,
			Reason: fmt.Sprintf("authentication failed (HTTP %d on the token request): check ECARTPAY_PUBLIC_KEY and ECARTPAY_PRIVATE_KEY", resp.Status)}, false
	case resp.Status == http.StatusTooManyRequests:
		return "", providers.Outcome{Kind: providers.Transient, HTTPStatus: resp.Status, RetryAfter: providers.RetryAfter(resp.Header), Reason: "token: rate limited"}, false
	case resp.Status != http.StatusOK && resp.Status != http.StatusCreated:
		return "", providers.Outcome{Kind: providers.Transient, HTTPStatus: resp.Status, Reason: fmt.Sprintf("token: HTTP %d", resp.Status)}, false
	}
	var t struct {
		Token string `json:"token"`
	}
	if json.Unmarshal(resp.Body, &t) != nil || t.Token == "" {
		return "", providers.Outcome{Kind: providers.Transient, HTTPStatus: resp.Status, Reason: "token: unreadable answer"}, false
	}
	c.token, c.expires = t.Token, start.Add(TokenLifetime)
	return c.token, providers.Outcome{}, true
}

func fromError(resp *providers.Response, lookup bool) providers.Outcome {
	out := providers.Outcome{HTTPStatus: resp.Status}
	var e struct {
		Message string `json:"message"`
	}
	parsed := json.Unmarshal(resp.Body, &e) == nil && e.Message != ""
	switch {
	case resp.Status == http.StatusTooManyRequests:
		out.Kind, out.RetryAfter, out.Reason = providers.Transient, providers.RetryAfter(resp.Header), "rate limited by Ecart Pay"
	case resp.Status >= 500 || !parsed:
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("HTTP %d: %s", resp.Status, providers.Snippet(resp.Body))
	case resp.Status == http.StatusNotFound:
		out.Kind, out.Reason = providers.Rejected, "order not found at Ecart Pay"
	case lookup:
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("look-up refused (HTTP %d): %s", resp.Status, e.Message)
	default: // 400/422: the error body is undocumented; {"message"} is a guess
		out.Kind, out.Reason = providers.Rejected, fmt.Sprintf("Ecart Pay refused (HTTP %d): %s", resp.Status, e.Message)
	}
	return out
}
