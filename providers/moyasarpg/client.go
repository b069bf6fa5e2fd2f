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
// Once one of MPG's answers has named our refund's transaction (a refund it
// had initiated, or left in an uncertain status) or a person has settled the
// refund with a reference, the worker hands that id back (r.Reference), and
// a look-up reads the transaction with exactly that id and nothing else: no
// guess, no match by amount (see byReference).
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
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/refundq/refundq/providers"
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
