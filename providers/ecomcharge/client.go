// Package ecomcharge is the adapter for ecomCharge (beGateway family)
// refunds: POST /transactions/refunds with a {"request": ...} envelope naming
// the parent payment's uid, an integer amount in minor units, duplicate_check
// and a tracking_id of ours (providers.Refund.Key), by which a refund whose
// answer was lost is found again with
// GET /v2/transactions/tracking_id/{tracking_id}. Every ecomCharge-specific
// fact lives in this package, in the named constants and variables below.
package ecomcharge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/tasks"
)

// DefaultURL is ecomCharge's processing host (seed); test mode is a property
// of the shop, on the same host (doc).
const DefaultURL = "https://processing.ecomcharge.com"

// Environment variables Entry reads.
const (
	EnvBaseURL   = "ECOMCHARGE_BASE_URL"
	EnvShopID    = "ECOMCHARGE_SHOP_ID"
	EnvSecretKey = "ECOMCHARGE_SECRET_KEY"
)

// The API's facts. Each is one line to change if it proves wrong.
var (
	// refundPath takes the refund request (seed).
	refundPath = "/transactions/refunds"
	// trackingPath + tracking_id lists the transactions carrying that
	// tracking_id (doc). Its answer is {"transactions": [...]}, empty when
	// there is none (beGateway's PHP client tests); bePaid's page also shows
	// a single {"transaction": {...}}, so both are read. That refunds accept
	// a tracking_id and are found by it is a guess (PROVIDERS.md).
	trackingPath = "/v2/transactions/tracking_id/"
	// uidPath + uid reads one transaction (doc); the simulator serves it,
	// the adapter does not need it.
	uidPath = "/transactions/"
	// apiVersionHeader: version 3 adds code and friendly_message (doc).
	apiVersionHeader, apiVersion = "X-API-Version", "3"
	// refundType is a refund transaction's "type" (seed).
	refundType = "refund"
	// Transaction statuses: successful and failed are terminal, incomplete
	// and pending are not (doc); error and expired (guess) and anything
	// else are treated as uncertain.
	statusSuccessful = "successful"
	statusFailed     = "failed"
	statusPending    = []string{"incomplete", "pending"}
	// maxReason is the longest reason ecomCharge takes, in characters (seed).
	maxReason = 255
	// defaultReason is sent when the refund has none: beGateway answers
	// "Reason can't be blank." without one (beGateway's PHP client tests).
	defaultReason = "Refund requested by merchant"
	// duplicateMessage identifies duplicate_check's rejection (same
	// parent_uid and amount within 30 s), matched case-insensitively in the
	// error's message and errors. Exact wording: guess; the simulator sends
	// this text. It means "an identical refund was just sent", never
	// "refused". beGateway's own code list calls it "Duplicate transaction
	// or order" (F.0108), which this also matches.
	duplicateMessage = "Duplicate transaction"
	// duplicateCode is beGateway's code for a duplicate transaction
	// (begateway/status_code F.0108); that duplicate_check answers with it
	// is a guess.
	duplicateCode = "F.0108"
)

// Schedule polls a pending or incomplete refund after 10 s, doubling to
// every 15 minutes, for three days: card refunds are normally answered at
// once, and a pending one waits on the acquirer, which can take a weekend.
var Schedule = providers.Schedule{First: 10 * time.Second, Max: 15 * time.Minute, Horizon: 72 * time.Hour}

// Config configures the adapter.
type Config struct {
	BaseURL    string // default DefaultURL
	ShopID     string // HTTP Basic user
	SecretKey  string // HTTP Basic password
	HTTPClient *http.Client
}

// Client is the ecomCharge adapter; it implements providers.Provider.
type Client struct {
	base, shop, secret string
	hc                 *http.Client
}

// New returns an adapter. Shop id and secret key are required: a
// *providers.MissingError names the unset variables.
func New(cfg Config) (*Client, error) {
	shop, secret := strings.TrimSpace(cfg.ShopID), strings.TrimSpace(cfg.SecretKey)
	if err := providers.Require(providers.EcomCharge, EnvShopID, shop, EnvSecretKey, secret); err != nil {
		return nil, err
	}
	base := strings.TrimRight(strings.TrimSpace(cfg.BaseURL), "/")
	if base == "" {
		base = DefaultURL
	}
	if u, err := url.Parse(base); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("ecomcharge: %s %q is not an http(s) URL", EnvBaseURL, base)
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = providers.HTTPClient()
	}
	return &Client{base: base, shop: shop, secret: secret, hc: hc}, nil
}

// Entry returns ecomCharge's registry entry from ECOMCHARGE_BASE_URL,
// ECOMCHARGE_SHOP_ID and ECOMCHARGE_SECRET_KEY: disabled, with Missing set,
// when a credential is unset; with Err set when the base URL is unusable.
func Entry(getenv func(string) string) providers.Entry {
	e := providers.Entry{Name: providers.EcomCharge, Schedule: Schedule, Check: Check}
	c, err := New(Config{BaseURL: getenv(EnvBaseURL), ShopID: getenv(EnvShopID), SecretKey: getenv(EnvSecretKey)})
	var me *providers.MissingError
	switch {
	case errors.As(err, &me):
		e.Missing = me.Vars
	case err != nil:
		e.Missing, e.Err = []string{EnvBaseURL + " to an http(s) URL"}, err
	default:
		e.Provider = c
	}
	return e
}

// Check is ecomCharge's enqueue-time rule: a refund names its parent payment
// (transaction_id) and its reason fits ecomCharge's 255 characters.
func Check(r tasks.Refund) error {
	if strings.TrimSpace(r.TransactionID) == "" {
		return errors.New("ecomcharge needs transaction_id: the parent payment uid")
	}
	if n := utf8.RuneCountInString(r.Reason); n > maxReason {
		return fmt.Errorf("ecomcharge takes a reason of at most %d characters, got %d", maxReason, n)
	}
	return nil
}

// transaction is the part of ecomCharge's transaction the adapter reads.
type transaction struct {
	UID             string `json:"uid"`
	Status          string `json:"status"`
	Type            string `json:"type"`
	Amount          int64  `json:"amount"`
	Currency        string `json:"currency"`
	Message         string `json:"message"`
	ParentUID       string `json:"parent_uid"`
	TrackingID      string `json:"tracking_id"`
	Code            string `json:"code"`
	FriendlyMessage string `json:"friendly_message"`
}

// refundRequest is the body of the refund call.
type refundRequest struct {
	Request struct {
		ParentUID      string `json:"parent_uid"`
		Amount         int64  `json:"amount"`
		Reason         string `json:"reason"`
		DuplicateCheck bool   `json:"duplicate_check"`
		TrackingID     string `json:"tracking_id"`
	} `json:"request"`
}

// Refund sends the refund with duplicate_check on and r.Key as tracking_id.
func (c *Client) Refund(ctx context.Context, r providers.Refund) providers.Outcome {
	if strings.TrimSpace(r.TransactionID) == "" {
		return providers.Outcome{Kind: providers.Rejected, Reason: "ecomcharge needs transaction_id: the parent payment uid (nothing sent)"}
	}
	var req refundRequest
	req.Request.ParentUID = r.TransactionID
	req.Request.Amount = r.Amount.Minor
	req.Request.Reason = orDefault(strings.TrimSpace(r.Reason), defaultReason)
	req.Request.DuplicateCheck = true
	req.Request.TrackingID = r.Key
	body, err := json.Marshal(req)
	if err != nil {
		return providers.Outcome{Kind: providers.Rejected, Reason: "cannot encode the refund: " + err.Error()}
	}
	resp, err := c.do(ctx, http.MethodPost, refundPath, body)
	if err != nil {
		return providers.TransportOutcome(err)
	}
	return refundOutcome(resp, r)
}

// Lookup lists the transactions carrying our tracking id and classifies our
// refund among them; an empty list is NotFound.
func (c *Client) Lookup(ctx context.Context, r providers.Refund) providers.Outcome {
	if strings.TrimSpace(r.Key) == "" {
		return providers.Outcome{Kind: providers.Unknown, Reason: "refund has no key (tracking_id) to look it up by"}
	}
	resp, err := c.do(ctx, http.MethodGet, trackingPath+url.PathEscape(r.Key), nil)
	if err != nil {
		return providers.TransportOutcome(err)
	}
	return lookupOutcome(resp, r.Key)
}

func (c *Client) do(ctx context.Context, method, path string, body []byte) (*providers.Response, error) {
	var rd io.Reader = http.NoBody
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, &providers.TransportError{Err: fmt.Errorf("build request: %w", err)}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.SetBasicAuth(c.shop, c.secret)
	req.Header.Set(apiVersionHeader, apiVersion)
	req.Header.Set("Accept", "application/json")
	return providers.Do(ctx, c.hc, req)
}

// refundOutcome classifies the answer to a refund request.
func refundOutcome(resp *providers.Response, r providers.Refund) providers.Outcome {
	out := providers.Outcome{HTTPStatus: resp.Status}
	switch {
	case resp.Status == http.StatusTooManyRequests:
		out.Kind, out.RetryAfter, out.Reason = providers.Transient, providers.RetryAfter(resp.Header), "rate limited by ecomCharge"
		return out
	case resp.Status >= 500:
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("HTTP %d after the refund was sent: %s", resp.Status, providers.Snippet(resp.Body))
		return out
	case resp.Status == http.StatusUnauthorized || resp.Status == http.StatusForbidden:
		out.Kind, out.Reason = providers.Rejected, fmt.Sprintf("authentication failed (HTTP %d): check %s and %s", resp.Status, EnvShopID, EnvSecretKey)
		return out
	}
	// A transaction answer is read on 2xx; on 4xx only a failed one is
	// (anything else there, or under a 1xx/3xx, contradicts the status and
	// stays unknown).
	if t, ok := parseTransaction(resp.Body); ok && (resp.Status >= 200 && resp.Status < 300 || resp.Status >= 400 && t.Status == statusFailed) {
		if t.TrackingID != "" && t.TrackingID != r.Key || t.Type != "" && t.Type != refundType {
			out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("answer is transaction %s of type %q with tracking_id %q, not our refund", t.UID, t.Type, t.TrackingID)
			return out
		}
		out = classify(t, resp.Status)
		if out.Kind == providers.Succeeded && t.Currency != "" && r.Amount.Currency != "" && !strings.EqualFold(t.Currency, r.Amount.Currency) {
			out.Reason = fmt.Sprintf("refunded %d minor units in %s, the payment's currency, while the refund was asked in %s", t.Amount, t.Currency, r.Amount.Currency)
		}
		return out
	}
	e, ok := parseError(resp.Body)
	switch {
	case !ok:
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("unreadable answer (HTTP %d): %s", resp.Status, providers.Snippet(resp.Body))
	case resp.Status < 400:
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("HTTP %d without a refund transaction: %s", resp.Status, e.text())
	case isDuplicate(e.text(), ""):
		out.Kind, out.Status, out.Reason = providers.Unknown, "duplicate_check", duplicateReason(e.text())
	default:
		out.Kind, out.Reason = providers.Rejected, fmt.Sprintf("ecomCharge refused the refund (HTTP %d): %s", resp.Status, e.text())
	}
	return out
}

// lookupOutcome classifies the answer to a look-up by tracking id.
func lookupOutcome(resp *providers.Response, key string) providers.Outcome {
	out := providers.Outcome{HTTPStatus: resp.Status}
	if resp.Status == http.StatusTooManyRequests {
		out.Kind, out.RetryAfter, out.Reason = providers.Transient, providers.RetryAfter(resp.Header), "look-up rate limited by ecomCharge"
		return out
	}
	if resp.Status != http.StatusOK {
		// Auth failures, 5xx and even a 404 prove nothing: "none" is a 200
		// with an empty list.
		msg := providers.Snippet(resp.Body)
		if e, ok := parseError(resp.Body); ok {
			msg = e.text()
		}
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("look-up failed (HTTP %d): %s", resp.Status, msg)
		return out
	}
	list, ok := parseList(resp.Body)
	if !ok {
		out.Kind, out.Reason = providers.Unknown, "unreadable look-up: "+providers.Snippet(resp.Body)
		return out
	}
	var best *transaction
	var others, dups int
	for i := range list {
		t := &list[i]
		switch {
		case t.TrackingID != "" && t.TrackingID != key, t.Type != "" && t.Type != refundType:
			others++
		case t.Status == statusFailed && isDuplicate(t.Message+" "+t.FriendlyMessage, t.Code):
			dups++ // a resend duplicate_check refused: it moved nothing
		case best == nil || rank(t.Status) > rank(best.Status):
			best = t
		}
	}
	switch {
	case best != nil:
		return classify(*best, resp.Status)
	case others > 0:
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("look-up by tracking_id %s returned %d transaction(s) that are not a refund of ours", key, others)
	default:
		out.Kind, out.Reason = providers.NotFound, "no refund with tracking_id "+key
		if dups > 0 {
			out.Reason += fmt.Sprintf(" (only %d duplicate_check rejection(s), which moved nothing)", dups)
		}
	}
	return out
}

// classify maps a refund transaction's status to an outcome.
func classify(t transaction, httpStatus int) providers.Outcome {
	out := providers.Outcome{Reference: t.UID, Status: t.Status, HTTPStatus: httpStatus}
	switch {
	case t.Status == statusSuccessful:
		out.Kind = providers.Succeeded
	case t.Status == statusFailed && isDuplicate(t.Message+" "+t.FriendlyMessage, t.Code):
		out.Kind, out.Reason = providers.Unknown, duplicateReason(firstOf(t.Message, t.FriendlyMessage, t.Code))
	case t.Status == statusFailed:
		out.Kind, out.Reason = providers.Rejected, "refund failed at ecomCharge: "+firstOf(t.Message, t.FriendlyMessage, "no message")
		if t.Code != "" {
			out.Reason += " (code " + t.Code + ")"
		}
	case isPending(t.Status):
		out.Kind, out.Reason = providers.Pending, "ecomCharge has not finished the refund"
	default: // error, expired (guess) or undocumented
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("refund transaction status %q: outcome uncertain", t.Status)
	}
	return out
}

// rank orders the statuses of several refunds with our tracking id: one
// that moved money wins, then one still running, then an uncertain one.
func rank(status string) int {
	switch {
	case status == statusSuccessful:
		return 4
	case isPending(status):
		return 3
	case status == statusFailed:
		return 1
	}
	return 2
}

func isPending(status string) bool {
	for _, s := range statusPending {
		if status == s {
			return true
		}
	}
	return false
}

func isDuplicate(text, code string) bool {
	return code != "" && code == duplicateCode ||
		strings.Contains(strings.ToLower(text), strings.ToLower(duplicateMessage))
}

func duplicateReason(msg string) string {
	return "duplicate_check fired: an identical refund (same payment and amount) was sent moments ago, most likely this one; look it up by tracking_id before anything else: " + msg
}

// parseTransaction reads {"transaction": {...}} with a uid and a status.
func parseTransaction(body []byte) (transaction, bool) {
	var env struct {
		Transaction *transaction `json:"transaction"`
	}
	if json.Unmarshal(body, &env) != nil || env.Transaction == nil || env.Transaction.UID == "" || env.Transaction.Status == "" {
		return transaction{}, false
	}
	return *env.Transaction, true
}

// parseList reads {"transactions": [...]} (or one {"transaction": {...}});
// every entry must have a uid and a status.
func parseList(body []byte) ([]transaction, bool) {
	var env struct {
		Transactions *[]transaction `json:"transactions"`
		Transaction  *transaction   `json:"transaction"`
	}
	if json.Unmarshal(body, &env) != nil {
		return nil, false
	}
	var list []transaction
	switch {
	case env.Transactions != nil && *env.Transactions != nil:
		list = *env.Transactions
	case env.Transaction != nil:
		list = []transaction{*env.Transaction}
	default:
		return nil, false
	}
	for _, t := range list {
		if t.UID == "" || t.Status == "" {
			return nil, false
		}
	}
	return list, true
}

// apiError is ecomCharge's error body, {"message", "errors"}, or the same
// inside "response" (beGateway's PHP client reads both).
type apiError struct {
	Message  string          `json:"message"`
	Errors   json.RawMessage `json:"errors"`
	Response *struct {
		Message string          `json:"message"`
		Errors  json.RawMessage `json:"errors"`
	} `json:"response"`
}

func parseError(body []byte) (apiError, bool) {
	var e apiError
	if json.Unmarshal(body, &e) != nil {
		return apiError{}, false
	}
	if e.Message == "" && len(e.Errors) == 0 && e.Response != nil {
		e.Message, e.Errors = e.Response.Message, e.Response.Errors
	}
	return e, e.Message != "" || flattenErrors(e.Errors) != ""
}

// text is the message with the field errors flattened after it.
func (e apiError) text() string {
	s := e.Message
	if f := flattenErrors(e.Errors); f != "" {
		s = strings.TrimSpace(s + " (" + f + ")")
	}
	if len(s) > 500 {
		s = s[:500] + "…"
	}
	return s
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

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
