// Package moyasarpg is the adapter for Moyasar Payment Gateway (MPG)
// refunds.
//
// Documented (shared/provider-docs/moyasarpg-refund.txt, shared/PROVIDERS.md):
// POST /v1/orders/{id}/refund with an integer amount in minor units (at
// least 1) and an optional transaction_id, a client-generated id that MPG
// uses as the idempotency key: a resend with the same transaction_id replays
// the first request's result, or answers 400 "Initial request is still
// processing." while that one runs. 200 answers the order (currency, amount,
// refunded_amount, transactions[] with id, type, status, amount, …); 400
// "fails when retries are exhausted"; 401 and 403 are auth; 422 is a
// validation failure. The order is read by GET /v1/orders/{id}. Transaction
// statuses: initiated (in flight), approved, failed, timeout and system_error
// (outcome uncertain).
//
// Guessed, and checked at run time (GuessRefundID): that the refund's
// transaction in the order carries our transaction_id (providers.Refund.Key)
// as its id. A refund answer listing a refund transaction with our id
// confirms it; a refund answer listing a refund of our amount under another
// id, and none under ours, refutes it. While it is not refuted, a look-up
// that finds no refund transaction with our id is NotFound: the resend that
// follows carries the same transaction_id, which MPG documents as its
// idempotency key, so it cannot pay twice (see Lookup). A refund answer
// without our id is matched by amount among the refunds refundq does not
// already know (see fromRefundOrder).
//
// Every MPG-specific fact lives in this package.
package moyasarpg

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/tasks"
)

// SandboxURL is MPG's sandbox; the live API is https://pg.moyasar.com (doc).
const SandboxURL = "https://pg.mysr.dev"

// Environment variables Entry reads.
const (
	EnvBaseURL = "MOYASAR_PG_BASE_URL"
	EnvAPIKey  = "MOYASAR_PG_API_KEY"
)

// GuessRefundID is the guess that MPG gives the refund's transaction our
// transaction_id as its id (see the package doc).
const GuessRefundID providers.Guess = "moyasarpg.refund_id"

// Guesses are the undocumented facts the adapter relies on.
var Guesses = []providers.GuessInfo{{
	Guess: GuessRefundID,
	Means: "MPG gives a refund's transaction in the order our transaction_id as its id. Confirmed by a refund " +
		"answer listing a refund transaction with our id; refuted by one listing a refund of our amount under " +
		"another id and none under ours. A refund answer without our id is matched to the one refund " +
		"transaction of our amount that refundq does not already know; anything less clear goes to review. " +
		"While the guess is unconfirmed, a look-up without our id is still not found, because the resend " +
		"carries the same transaction_id, MPG's documented idempotency key; once refuted, it is unknown.",
}}

// The API's facts. Each is one line to change if it proves wrong.
var (
	refundPath = func(order string) string { return "/v1/orders/" + url.PathEscape(order) + "/refund" }
	orderPath  = func(order string) string { return "/v1/orders/" + url.PathEscape(order) }
	// refundType is a refund transaction's type (seed).
	refundType = "refund"
	// stillProcessing is the one 400 that means "the first request with this
	// transaction_id is still running" (seed); any other 400 is the
	// documented "fails when retries are exhausted", whose effect is unknown.
	stillProcessing = "Initial request is still processing."
	// Transaction statuses (doc). timeout, system_error and anything else
	// leave the outcome uncertain.
	statusApproved, statusFailed, statusInitiated = "approved", "failed", "initiated"
)

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

// New returns an adapter; the API key is required (a
// *providers.MissingError names it).
func New(cfg Config) (*Client, error) {
	key := strings.TrimSpace(cfg.APIKey)
	if err := providers.Require(providers.MoyasarPG, EnvAPIKey, key); err != nil {
		return nil, err
	}
	base := strings.TrimRight(strings.TrimSpace(cfg.BaseURL), "/")
	if base == "" {
		base = SandboxURL
	}
	if u, err := url.Parse(base); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("moyasarpg: %s %q is not an http(s) URL", EnvBaseURL, base)
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = providers.HTTPClient()
	}
	return &Client{base: base, key: key, hc: hc}, nil
}

// Entry returns MPG's registry entry from MOYASAR_PG_BASE_URL and
// MOYASAR_PG_API_KEY: disabled when the key is unset, with Err set when the
// base URL is unusable. It is not Keyless: transaction_id is our key.
func Entry(getenv func(string) string) providers.Entry {
	e := providers.Entry{Name: providers.MoyasarPG, Schedule: Schedule, Guesses: Guesses, Idempotent: true}
	c, err := New(Config{BaseURL: getenv(EnvBaseURL), APIKey: getenv(EnvAPIKey)})
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

// order is the part of MPG's order object the adapter reads.
type order struct {
	ID           string         `json:"id"`
	Currency     string         `json:"currency"`
	Transactions *[]transaction `json:"transactions"` // nil when the key is absent
}

type transaction struct {
	ID      string       `json:"id"`
	Type    string       `json:"type"`
	Status  string       `json:"status"`
	Amount  *json.Number `json:"amount"` // integer minor units; nil when absent
	Message string       `json:"message"`
}

type apiError struct {
	Message string              `json:"message"`
	Errors  map[string][]string `json:"errors"`
}

// Refund sends the refund with r.Key as transaction_id; a resend with the
// same key is answered from MPG's record of the first.
func (c *Client) Refund(ctx context.Context, r providers.Refund) providers.Outcome {
	if strings.TrimSpace(r.OrderID) == "" || strings.TrimSpace(r.Key) == "" {
		return providers.Outcome{Kind: providers.Rejected, Reason: "moyasarpg needs the order id and a transaction_id (nothing sent)"}
	}
	body, err := json.Marshal(struct {
		Amount        int64  `json:"amount"`
		TransactionID string `json:"transaction_id"`
	}{r.Amount.Minor, r.Key})
	if err != nil {
		return providers.Outcome{Kind: providers.Rejected, Reason: "cannot encode the refund: " + err.Error()}
	}
	resp, err := c.do(ctx, http.MethodPost, refundPath(r.OrderID), body)
	if err != nil {
		return providers.TransportOutcome(err)
	}
	return refundOutcome(resp, r)
}

// Lookup reads the order and finds the refund transaction with our key.
//
// No such transaction is NotFound, even while GuessRefundID is unconfirmed.
// That is safe, unlike a NotFound that rests on a guess elsewhere: what the
// worker does with NotFound is send the refund again, and it sends it with
// the same transaction_id, which MPG documents as the idempotency key of the
// refund call. If the first request was applied after all, the resend
// replays its result (or answers "still processing" while it runs) instead
// of refunding again, and that answer is then judged by refundOutcome.
//
// Once the guess is refuted, though, the order can never show our refund
// by its id, so "none with our id" would be said of an applied refund too:
// Unknown. So is an order without a transactions array, which shows
// nothing at all.
func (c *Client) Lookup(ctx context.Context, r providers.Refund) providers.Outcome {
	if strings.TrimSpace(r.OrderID) == "" || strings.TrimSpace(r.Key) == "" {
		return providers.Outcome{Kind: providers.Unknown, Reason: "refund has no order id or transaction_id to look it up by"}
	}
	resp, err := c.do(ctx, http.MethodGet, orderPath(r.OrderID), nil)
	if err != nil {
		return providers.TransportOutcome(err)
	}
	return lookupOutcome(resp, r)
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
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return providers.Do(ctx, c.hc, req)
}

// refundOutcome classifies the answer to a refund request.
func refundOutcome(resp *providers.Response, r providers.Refund) providers.Outcome {
	out := providers.Outcome{HTTPStatus: resp.Status, RequestID: resp.RequestID()}
	if resp.Status == http.StatusOK {
		return fromRefundOrder(resp.Body, r, out)
	}
	e, parsed := parseError(resp.Body)
	switch {
	case resp.Status == http.StatusBadRequest && parsed && e.Message == stillProcessing:
		out.Kind, out.Status, out.Reason = providers.Pending, "still_processing", "MPG is still processing the first request with this transaction_id"
	case resp.Status == http.StatusBadRequest:
		// The document's 400 is "fails when retries are exhausted": MPG gave
		// up somewhere, and whether the refund was applied is not known.
		out.Kind, out.Reason = providers.Unknown, "HTTP 400 (MPG: fails when retries are exhausted), outcome unknown: "+errText(e, parsed, resp.Body)
	case resp.Status == http.StatusUnauthorized || resp.Status == http.StatusForbidden:
		out.Kind, out.Reason = providers.Blocked, authReason(resp.Status)
	case resp.Status == http.StatusUnprocessableEntity:
		out.Kind, out.Reason = providers.Rejected, "MPG refused the refund: "+errText(e, parsed, resp.Body)
	case resp.Status == http.StatusTooManyRequests:
		out.Kind, out.RetryAfter, out.Reason = providers.Transient, providers.RetryAfter(resp.Header), "rate limited by MPG"
	default:
		// 5xx, 404 (no such order, or a wrong base URL) and anything else
		// the document does not list: MPG may have applied it.
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("HTTP %d after the refund was sent: %s", resp.Status, errText(e, parsed, resp.Body))
	}
	return out
}

// lookupOutcome classifies the answer to GET /v1/orders/{id}.
func lookupOutcome(resp *providers.Response, r providers.Refund) providers.Outcome {
	out := providers.Outcome{HTTPStatus: resp.Status, RequestID: resp.RequestID()}
	switch {
	case resp.Status == http.StatusTooManyRequests:
		out.Kind, out.RetryAfter, out.Reason = providers.Transient, providers.RetryAfter(resp.Header), "look-up rate limited by MPG"
		return out
	case resp.Status == http.StatusUnauthorized || resp.Status == http.StatusForbidden:
		out.Kind, out.Reason = providers.Blocked, authReason(resp.Status)
		return out
	case resp.Status != http.StatusOK:
		// A 404, a 5xx, a validation error of a read: none proves anything.
		e, parsed := parseError(resp.Body)
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("look-up failed (HTTP %d): %s", resp.Status, errText(e, parsed, resp.Body))
		return out
	}
	o, txns, why := parseOrder(resp.Body, r)
	if why != "" {
		out.Kind, out.Reason = providers.Unknown, why
		return out
	}
	if t, why := ours(txns, r.Key); why != "" {
		out.Kind, out.Reason = providers.Unknown, why
		return out
	} else if t != nil {
		out.Observe(GuessRefundID, true, "order "+o.ID+" lists refund transaction "+t.ID+", our transaction_id")
		return classify(*t, o, r, out)
	}
	if !r.Known.Holds(GuessRefundID) {
		// Without the guess confirmed, the order cannot show that our refund
		// is absent: it may be there under MPG's own id. Unknown, never not
		// found. (The worker may still reconcile by resending: the
		// transaction_id is MPG's documented idempotency key, and a resend is
		// answered from the first request.)
		out.Kind = providers.Unknown
		out.Reason = fmt.Sprintf("order %s lists no refund transaction %s, and whether MPG gives refunds our transaction_id as id is %s (guess %s): the order cannot show our refund",
			o.ID, r.Key, r.Known[GuessRefundID], GuessRefundID)
		return out
	}
	out.Kind = providers.NotFound
	out.Reason = "order " + o.ID + " lists no refund transaction " + r.Key
	return out
}

// fromRefundOrder classifies the order MPG answers a refund request with.
// Our refund is the refund transaction with our transaction_id. Without
// one, the answer still says MPG processed our request (idempotency: the
// answer to a transaction_id is that request's result), so our refund is the
// one refund transaction of our amount that refundq does not already know
// (r.OtherRefs); seeing it under another id refutes GuessRefundID. Anything
// less clear is Review or, when the order shows no new refund at all,
// Unknown.
func fromRefundOrder(body []byte, r providers.Refund, out providers.Outcome) providers.Outcome {
	o, txns, why := parseOrder(body, r)
	if why != "" {
		out.Kind, out.Reason = providers.Unknown, why
		return out
	}
	t, why := ours(txns, r.Key)
	if why != "" {
		out.Kind, out.Reason = providers.Unknown, why
		return out
	}
	if t != nil {
		out.Observe(GuessRefundID, true, "refund answer lists refund transaction "+t.ID+", our transaction_id")
		return classify(*t, o, r, out)
	}
	var same, others []transaction
	for _, t := range txns {
		if t.Type != refundType || slices.Contains(r.OtherRefs, t.ID) {
			continue
		}
		if n, err := minor(t.Amount); err == nil && n == r.Amount.Minor {
			same = append(same, t)
		} else {
			others = append(others, t)
		}
	}
	if len(same) > 0 {
		out.Observe(GuessRefundID, false, fmt.Sprintf("refund answer lists refund transaction %s of our amount, and none with our transaction_id %s", same[0].ID, r.Key))
	}
	switch {
	case len(same) == 1:
		out = classify(same[0], o, r, out)
		if out.Reason == "" {
			out.Reason = "matched by amount: MPG did not give the refund transaction our transaction_id"
		}
		return out
	case len(same) > 1:
		out.Kind, out.Reason = providers.Review, fmt.Sprintf("MPG answered our refund with order %s listing %d refund transactions of %s that refundq does not know (%s) and none with our transaction_id %s: which is ours cannot be told",
			o.ID, len(same), r.Amount, ids(same), r.Key)
	case len(others) > 0:
		out.Kind, out.Reason = providers.Review, fmt.Sprintf("MPG answered our refund of %s with order %s listing refund transaction(s) %s of other amounts, and none with our transaction_id %s",
			r.Amount, o.ID, ids(others), r.Key)
	default:
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("MPG answered our refund with order %s without a refund transaction of ours", o.ID)
	}
	return out
}

// parseOrder reads a 200 order: it must have an id (ours, where it says)
// and a transactions array, whose entries must have an id, a type and a
// status.
func parseOrder(body []byte, r providers.Refund) (order, []transaction, string) {
	var o order
	if err := json.Unmarshal(body, &o); err != nil || o.ID == "" {
		return order{}, nil, "unreadable order: " + providers.Snippet(body)
	}
	if o.ID != r.OrderID {
		return order{}, nil, fmt.Sprintf("MPG answered with order %s, not %s", o.ID, r.OrderID)
	}
	if o.Transactions == nil {
		return order{}, nil, "order " + o.ID + " answered without its transactions: nothing shows whether our refund is there"
	}
	for _, t := range *o.Transactions {
		if t.ID == "" || t.Type == "" || t.Status == "" {
			return order{}, nil, "order " + o.ID + " lists a transaction without id, type or status: " + providers.Snippet(body)
		}
	}
	return o, *o.Transactions, ""
}

// ours returns the refund transaction with our key, nil if none; a
// transaction with our key that is not a refund, or several, are odd
// answers (why).
func ours(txns []transaction, key string) (*transaction, string) {
	var found *transaction
	for i, t := range txns {
		if t.ID != key {
			continue
		}
		if t.Type != refundType || found != nil {
			return nil, fmt.Sprintf("the order lists transaction %s of type %q more than once or not as a refund", key, t.Type)
		}
		found = &txns[i]
	}
	return found, ""
}

// classify maps our refund transaction to an outcome, checking an approved
// one's amount and the order's currency against the request.
func classify(t transaction, o order, r providers.Refund, out providers.Outcome) providers.Outcome {
	out.Reference, out.Status = t.ID, t.Status
	switch t.Status {
	case statusApproved:
		out.Kind, out.Reason = providers.Succeeded, ""
		if why := mismatch(t, o, r.Amount); why != "" {
			out.Kind, out.Reason = providers.Review, why
		}
	case statusFailed:
		out.Kind, out.Reason = providers.Rejected, "refund failed at MPG: "+orDefault(t.Message, "no message")
	case statusInitiated:
		out.Kind, out.Reason = providers.Pending, "MPG is processing the refund"
	default: // timeout, system_error, or a status MPG has not documented
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("refund transaction status %q: whether money moved is not known", t.Status)
	}
	return out
}

// mismatch says how an approved refund differs from what was asked: the
// order's currency (where given) and the refund transaction's amount, in
// integer minor units. An absent or non-integer amount cannot be checked,
// and is a mismatch.
func mismatch(t transaction, o order, want tasks.Money) string {
	if o.Currency != "" && !strings.EqualFold(o.Currency, want.Currency) {
		return fmt.Sprintf("MPG refunded on an order in %s while %s was asked: another currency", o.Currency, want)
	}
	n, err := minor(t.Amount)
	if err != nil {
		return fmt.Sprintf("MPG approved refund %s with %s; %s was asked", t.ID, err, want)
	}
	if n != want.Minor {
		return fmt.Sprintf("MPG refunded %d minor units while %d (%s) was asked", n, want.Minor, want)
	}
	return ""
}

func minor(n *json.Number) (int64, error) {
	if n == nil {
		return 0, errors.New("no amount")
	}
	v, err := n.Int64()
	if err != nil {
		return 0, fmt.Errorf("amount %q, not an integer in minor units", n.String())
	}
	return v, nil
}

func ids(ts []transaction) string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = t.ID
	}
	return strings.Join(s, ", ")
}

func authReason(status int) string {
	return fmt.Sprintf("authentication failed (HTTP %d): check %s and %s", status, EnvAPIKey, EnvBaseURL)
}

func parseError(body []byte) (apiError, bool) {
	var e apiError
	if json.Unmarshal(body, &e) != nil || e.Message == "" {
		return apiError{}, false
	}
	return e, true
}

// errText is MPG's message with the field errors, or the body's start.
func errText(e apiError, parsed bool, body []byte) string {
	if !parsed {
		return providers.Snippet(body)
	}
	return e.Message + fieldErrors(e.Errors)
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
