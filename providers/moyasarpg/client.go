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
// "fails when retries are exhausted" (MPG's pages also use 400 for business
// rules in general); 401 and 403 are auth; 422 is a validation failure. The
// order is read by GET /v1/orders/{id}. Transaction statuses: initiated (in
// flight), approved, failed, timeout and system_error (outcome uncertain:
// MPG offers reversal, POST /v1/transactions/{id}/reverse, not a resend).
//
// The refund call carries no currency; the order shows it. Prepare reads
// the order before every send, refuses a refund in another currency, and
// keeps what it read (a snapshot: the currency and the refund transactions
// already on the order) for the send and the look-ups of that attempt.
//
// Guessed, and checked at run time (GuessRefundID): that the refund's
// transaction in the order carries our transaction_id (providers.Refund.Key)
// as its id. A refund answer listing a refund transaction with our id
// confirms it; a refund answer listing a new refund of our amount under
// another id, and none under ours, refutes it. Until it is confirmed, our
// refund is matched by amount among the refund transactions that appeared
// since the snapshot and that refundq does not know as another refund's
// (r.OtherRefs); two of our amount are no match.
//
// A look-up never answers NotFound: MPG's pages do not promise that an
// applied refund shows in the order at once, so an order without our refund
// proves nothing. The worker reconciles such a look-up by resending with the
// same transaction_id, which MPG answers from the first request.
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
		"answer listing a refund transaction with our id; refuted by one listing a new refund of our amount " +
		"under another id and none under ours. Until it is confirmed, our refund is the one refund transaction " +
		"of our amount that appeared on the order since the read before our send and that refundq does not " +
		"know as another refund's; two or more are no match (unknown from a look-up, review from a refund " +
		"answer). Either way, a look-up without our refund is unknown, never not found: MPG does not promise " +
		"that an applied refund shows in the order at once.",
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
	// Transaction statuses (doc). timeout and system_error are "outcome
	// uncertain"; a status the documents do not name is unknown.
	statusApproved, statusFailed, statusInitiated = "approved", "failed", "initiated"
	statusTimeout, statusSystemError              = "timeout", "system_error"
	// reversePath is where MPG offers to reverse a transaction whose outcome
	// is uncertain (doc: reverse-transaction).
	reversePath = func(txn string) string { return "/v1/transactions/" + url.PathEscape(txn) + "/reverse" }
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

// Client is the MPG adapter; it implements providers.Provider and
// providers.Preparer.
type Client struct {
	base string
	key  string
	hc   *http.Client
}

var _ providers.Preparer = (*Client)(nil)

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

// snapshot is what Prepare read of the order just before a send, kept by
// the worker with the attempt and handed back as r.Before.
type snapshot struct {
	Key      string `json:"key"`      // the transaction_id it was read for
	Currency string `json:"currency"` // the order's
	// Listed: the order showed its transactions, so Refunds is every refund
	// transaction on the order before this refund's first send: one that is
	// not in it appeared since, and may be ours.
	Listed  bool     `json:"listed"`
	Refunds []string `json:"refunds,omitempty"`
}

// readSnapshot returns the snapshot taken for r's key; nil when there is
// none (no Prepare, or one of another refund).
func readSnapshot(r providers.Refund) *snapshot {
	var s snapshot
	if len(r.Before) == 0 || json.Unmarshal(r.Before, &s) != nil || s.Key != r.Key || s.Currency == "" {
		return nil
	}
	return &s
}

// Prepare reads the order (GET /v1/orders/{id}) before a send: the refund
// call carries no currency, so a refund in another currency than the
// order's is refused here (Rejected, nothing sent). A read that fails is
// Transient (a read changes nothing); credentials refused are Blocked.
//
// The snapshot it returns lists the refund transactions on the order before
// this refund's first send: on a resend (r.Before holds the previous
// attempt's snapshot of the same key) the list is carried over, since any
// refund that appeared after the first send may be that attempt's, ours.
func (c *Client) Prepare(ctx context.Context, r providers.Refund) ([]byte, providers.Outcome, bool) {
	if strings.TrimSpace(r.OrderID) == "" || strings.TrimSpace(r.Key) == "" {
		return nil, providers.Outcome{Kind: providers.Rejected, Reason: "moyasarpg needs the order id and a transaction_id (nothing sent)"}, false
	}
	resp, err := c.do(ctx, http.MethodGet, orderPath(r.OrderID), nil)
	if err != nil {
		out := providers.TransportOutcome(err)
		out.Kind, out.Reason = providers.Transient, "reading the order before the send: "+out.Reason
		return nil, out, false
	}
	out := providers.Outcome{Kind: providers.Transient, HTTPStatus: resp.Status, RequestID: resp.RequestID()}
	switch {
	case resp.Status == http.StatusUnauthorized || resp.Status == http.StatusForbidden:
		out.Kind, out.Reason = providers.Blocked, authReason(resp.Status)
		return nil, out, false
	case resp.Status == http.StatusTooManyRequests:
		out.RetryAfter, out.Reason = providers.RetryAfter(resp.Header), "reading the order before the send: rate limited by MPG"
		return nil, out, false
	case resp.Status != http.StatusOK:
		e, parsed := parseError(resp.Body)
		out.Reason = fmt.Sprintf("reading the order before the send: HTTP %d: %s", resp.Status, errText(e, parsed, resp.Body))
		return nil, out, false
	}
	var o order
	if err := json.Unmarshal(resp.Body, &o); err != nil || o.ID == "" {
		out.Reason = "reading the order before the send: unreadable order: " + providers.Snippet(resp.Body)
		return nil, out, false
	}
	if o.ID != r.OrderID {
		out.Reason = fmt.Sprintf("reading the order before the send: MPG answered with order %s, not %s", o.ID, r.OrderID)
		return nil, out, false
	}
	if strings.TrimSpace(o.Currency) == "" {
		out.Reason = "reading the order before the send: order " + o.ID + " shows no currency, so the refund's cannot be checked (nothing sent)"
		return nil, out, false
	}
	if !strings.EqualFold(o.Currency, r.Amount.Currency) {
		out.Kind, out.Reason = providers.Rejected, currencyReason(o.ID, o.Currency, r.Amount)
		return nil, out, false
	}
	s := snapshot{Key: r.Key, Currency: strings.ToUpper(o.Currency)}
	if prev := readSnapshot(r); prev != nil && prev.Listed {
		s.Listed, s.Refunds = true, prev.Refunds
	} else if o.Transactions != nil {
		s.Listed = true
		for _, t := range *o.Transactions {
			if t.Type == refundType && t.ID != "" {
				s.Refunds = append(s.Refunds, t.ID)
			}
		}
	}
	b, err := json.Marshal(s)
	if err != nil {
		out.Reason = "cannot keep the order read before the send: " + err.Error()
		return nil, out, false
	}
	return b, providers.Outcome{}, true
}

func currencyReason(order, currency string, want tasks.Money) string {
	return fmt.Sprintf("order %s is in %s and the refund is asked in %s: MPG refunds in the order's currency (its refund call carries none), so nothing was sent",
		order, strings.ToUpper(currency), want)
}

// Refund sends the refund with r.Key as transaction_id; a resend with the
// same key is answered from MPG's record of the first. r.Before is the
// snapshot Prepare took for this attempt.
func (c *Client) Refund(ctx context.Context, r providers.Refund) providers.Outcome {
	if strings.TrimSpace(r.OrderID) == "" || strings.TrimSpace(r.Key) == "" {
		return providers.Outcome{Kind: providers.Rejected, Reason: "moyasarpg needs the order id and a transaction_id (nothing sent)"}
	}
	snap := readSnapshot(r)
	if snap != nil && !strings.EqualFold(snap.Currency, r.Amount.Currency) {
		return providers.Outcome{Kind: providers.Rejected, Reason: currencyReason(r.OrderID, snap.Currency, r.Amount)}
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
	return refundOutcome(resp, r, snap)
}

// Lookup reads the order and finds our refund transaction: by our key, or,
// while GuessRefundID is not confirmed, by amount among the refund
// transactions that appeared since the snapshot (see match).
//
// It never answers NotFound. MPG's pages do not promise that an applied
// refund shows in the order at once, so an order without our refund proves
// nothing, even once refunds are known to carry our transaction_id; such a
// look-up is Unknown, which the worker reconciles by resending with the same
// transaction_id (MPG's documented idempotency key: the resend is answered
// from the first request). An order without a transactions array shows
// nothing at all: Unknown too.
func (c *Client) Lookup(ctx context.Context, r providers.Refund) providers.Outcome {
	if strings.TrimSpace(r.OrderID) == "" || strings.TrimSpace(r.Key) == "" {
		return providers.Outcome{Kind: providers.Unknown, Reason: "refund has no order id or transaction_id to look it up by"}
	}
	resp, err := c.do(ctx, http.MethodGet, orderPath(r.OrderID), nil)
	if err != nil {
		return providers.TransportOutcome(err)
	}
	return lookupOutcome(resp, r, readSnapshot(r))
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
func refundOutcome(resp *providers.Response, r providers.Refund, snap *snapshot) providers.Outcome {
	out := providers.Outcome{HTTPStatus: resp.Status, RequestID: resp.RequestID()}
	if resp.Status == http.StatusOK {
		return fromRefundOrder(resp.Body, r, snap, out)
	}
	e, parsed := parseError(resp.Body)
	switch {
	case resp.Status == http.StatusBadRequest && parsed && e.Message == stillProcessing:
		out.Kind, out.Status, out.Reason = providers.Pending, "still_processing", "MPG is still processing the first request with this transaction_id"
	case resp.Status == http.StatusBadRequest:
		// MPG's page gives 400 as "fails when retries are exhausted", and
		// its pages use 400 for business rules in general; none says that
		// nothing was applied. Unknown, on a first attempt as on a resend.
		out.Kind, out.Reason = providers.Unknown, "HTTP 400 (MPG: retries exhausted, or a business rule), and MPG does not say whether anything was applied: "+errText(e, parsed, resp.Body)
	case resp.Status == http.StatusUnauthorized || resp.Status == http.StatusForbidden:
		out.Kind, out.Reason = providers.Blocked, authReason(resp.Status)
	case resp.Status == http.StatusUnprocessableEntity:
		// A validation failure refuses this request. On a resend it says
		// nothing of the earlier attempt: MPG may validate a resend before
		// replaying it, and an applied first attempt is what makes the
		// amount too much. (The worker looks up before believing it.)
		out.Kind, out.Reason = providers.Rejected, "MPG refused the refund: "+errText(e, parsed, resp.Body)
		if r.Attempt > 1 {
			out.Reason = "MPG refused this resend: " + errText(e, parsed, resp.Body) +
				"; this may be MPG validating the resend against a refund an earlier attempt already made, and proves nothing about that attempt"
		}
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
func lookupOutcome(resp *providers.Response, r providers.Refund, snap *snapshot) providers.Outcome {
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
		return classify(*t, o, r, snap, out)
	}
	out.Kind = providers.Unknown
	if r.Known.Holds(GuessRefundID) {
		out.Reason = fmt.Sprintf("order %s lists no refund transaction %s (yet): MPG does not promise that an applied refund shows in the order at once, so this proves nothing",
			o.ID, r.Key)
		return out
	}
	m := match(txns, r, snap)
	switch {
	case m.why != "":
		out.Reason = fmt.Sprintf("order %s lists no refund transaction %s, and %s", o.ID, r.Key, m.why)
	case len(m.same) == 1 && m.same[0].Status == statusFailed:
		// A failed refund found only by its amount may be anyone's, and
		// failed rows say nothing of where an applied one would be.
		out.Reason = fmt.Sprintf("order %s lists no refund transaction %s; the one new refund of %s, %s, failed, and being matched only by amount it proves nothing about ours",
			o.ID, r.Key, r.Amount, m.same[0].ID)
	case len(m.same) == 1:
		out = classify(m.same[0], o, r, snap, out)
		out.Reason = strings.TrimPrefix(out.Reason+"; matched by amount: the one refund transaction of "+r.Amount.String()+" that appeared on the order since the read before our send", "; ")
	case len(m.same) > 1:
		out.Reason = fmt.Sprintf("order %s lists %d refund transactions of %s since the read before our send (%s) and none with our transaction_id %s: which is ours cannot be told",
			o.ID, len(m.same), r.Amount, ids(m.same), r.Key)
	default:
		out.Reason = fmt.Sprintf("order %s lists no refund transaction %s and no new refund of %s (yet): MPG does not promise that an applied refund shows in the order at once, so this proves nothing",
			o.ID, r.Key, r.Amount)
	}
	return out
}

// candidates are the refund transactions that may be ours when none carries
// our transaction_id.
type candidates struct {
	same, others []transaction // of our amount; of another
	why          string        // why none can be matched by amount at all
}

// match lists the refund transactions that appeared on the order since the
// snapshot (the read before this refund's first send) and that refundq does
// not know as another refund's (r.OtherRefs), split by whether they are of
// our amount. Without a snapshot that listed the order's refunds, any of
// them may be older than our send: none is a candidate (why says so).
func match(txns []transaction, r providers.Refund, snap *snapshot) candidates {
	if snap == nil || !snap.Listed {
		return candidates{why: "without the refunds the order had before our send, no refund can be matched to ours by amount"}
	}
	var c candidates
	for _, t := range txns {
		if t.Type != refundType || slices.Contains(snap.Refunds, t.ID) || slices.Contains(r.OtherRefs, t.ID) {
			continue
		}
		if n, err := minor(t.Amount); err == nil && n == r.Amount.Minor {
			c.same = append(c.same, t)
		} else {
			c.others = append(c.others, t)
		}
	}
	return c
}

// fromRefundOrder classifies the order MPG answers a refund request with.
// Our refund is the refund transaction with our transaction_id. Without
// one, the answer still says MPG processed our request (idempotency: the
// answer to a transaction_id is that request's result), so our refund is the
// one refund transaction of our amount that appeared since the snapshot and
// that refundq does not know as another refund's (see match); seeing it
// under another id refutes GuessRefundID. Anything less clear is Review or,
// when the order shows no new refund at all, Unknown.
func fromRefundOrder(body []byte, r providers.Refund, snap *snapshot, out providers.Outcome) providers.Outcome {
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
		return classify(*t, o, r, snap, out)
	}
	m := match(txns, r, snap)
	if len(m.same) > 0 {
		out.Observe(GuessRefundID, false, fmt.Sprintf("refund answer lists new refund transaction %s of our amount, and none with our transaction_id %s", m.same[0].ID, r.Key))
	}
	var refunds []transaction
	for _, t := range txns {
		if t.Type == refundType && !slices.Contains(r.OtherRefs, t.ID) {
			refunds = append(refunds, t)
		}
	}
	switch {
	case m.why != "" && len(refunds) > 0:
		out.Kind, out.Reason = providers.Review, fmt.Sprintf("MPG answered our refund with order %s listing refund transaction(s) %s and none with our transaction_id %s; %s",
			o.ID, ids(refunds), r.Key, m.why)
	case len(m.same) == 1:
		out = classify(m.same[0], o, r, snap, out)
		out.Reason = strings.TrimPrefix(out.Reason+"; matched by amount: MPG did not give the refund transaction our transaction_id", "; ")
	case len(m.same) > 1:
		out.Kind, out.Reason = providers.Review, fmt.Sprintf("MPG answered our refund with order %s listing %d new refund transactions of %s that refundq does not know (%s) and none with our transaction_id %s: which is ours cannot be told",
			o.ID, len(m.same), r.Amount, ids(m.same), r.Key)
	case len(m.others) > 0:
		out.Kind, out.Reason = providers.Review, fmt.Sprintf("MPG answered our refund of %s with order %s listing new refund transaction(s) %s of other amounts, and none with our transaction_id %s",
			r.Amount, o.ID, ids(m.others), r.Key)
	default:
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("MPG answered our refund with order %s without a new refund transaction of ours", o.ID)
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
// one's amount and the order's currency (the snapshot's, where the answer
// has none) against the request.
func classify(t transaction, o order, r providers.Refund, snap *snapshot, out providers.Outcome) providers.Outcome {
	out.Reference, out.Status = t.ID, t.Status
	if o.Currency == "" && snap != nil {
		o.Currency = snap.Currency
	}
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
	case statusTimeout, statusSystemError:
		// MPG's own documents call these "outcome uncertain" and offer a
		// reversal, not a resend (which would replay the same answer).
		out.Kind = providers.Uncertain
		out.Reason = fmt.Sprintf("MPG shows refund transaction %s of order %s in status %q, which its documents call outcome uncertain: "+
			"whether the money left is not known. Do not resend; check transaction %s with MPG, which offers to reverse it (POST %s)",
			t.ID, o.ID, t.Status, t.ID, reversePath(t.ID))
	default: // a status MPG has not documented
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("refund transaction %s status %q, which MPG does not document: whether money moved is not known", t.ID, t.Status)
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
