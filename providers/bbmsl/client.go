// Package bbmsl is the adapter for BBMSL (Hong Kong, hosted checkout)
// refunds: POST /hosted-checkout/refund with {"request": <JSON text>,
// "signature": <base64 SHA256withRSA of that very text>}. Every BBMSL fact
// lives in this package; its simulator is providers/bbmsl/bbmslsim.
//
// Documented (shared/provider-docs/bbmsl-refund.txt, PROVIDERS.md): one
// refund per order, full or partial; the inner request names the order by
// merchantReference (the merchant's, up to 64 characters) or orderId
// (BBMSL's, a number) and carries the amount in major units; the answer is
// responseCode "0000" (anything else is an error with a message), the order
// (id, merchantReference, currency, amount, netAmount, status, …) and the
// refund transaction (id, type REFUND, amount, currency, status SUCCESS, …).
// Order statuses OPEN, SUCCESS, VOIDED, REFUNDED, CLOSED, SETTLED;
// transaction statuses SUCCESS, DECLINED, VOIDED, REFUNDED, SETTLED. The
// look-up is the signed POST /hosted-checkout/query, whose order.status is
// what PROVIDERS.md tells us to read.
//
// Routing is by explicit field: the refund's order_id is always sent as
// merchantReference; BBMSL's own order id, when the producer has it, travels
// in transaction_id and is sent as orderId too (Check enforces both rules at
// enqueue time).
//
// Guessed, and checked at run time (see Guesses): that the query answers
// with the order as the refund answer shows it, amount and netAmount
// included, so amount − netAmount is what was refunded
// ("bbmsl.query_order"). After a refund that succeeded, while nothing is
// known of the guess, the adapter makes one query: the order REFUNDED with
// amount − netAmount equal to our refund confirms it; an order that does not
// show the refund so (paid, or REFUNDED without those amounts) refutes it.
// Until it is confirmed, a paid order that shows no refund proves nothing
// (Unknown), so a refund whose answer was lost is never resent on the
// strength of a query alone.
//
// Only "0000" is documented (PROVIDERS.md: anything else is an error with a
// message), and BBMSL's docs say to query after an error rather than assume.
// So any other responseCode on a refund is Unknown: the acquirer may have
// applied it (a system error, "please query"), and the worker looks the order
// up before anything is sent again. The one exception is credentialRefusals,
// a short list of whole messages proven to mean the request was not accepted
// as ours (Blocked; see the list for why each is proven). A message that
// merely mentions the merchant or a signature is not on it.
//
// BBMSL's refund request carries no currency: it refunds in the order's.
// Prepare reads the order (the signed query, which shows order.currency and
// order.amount) before every send and refuses there, with nothing sent, a
// refund in another currency or of more than the order (see Prepare).
//
// BBMSL keeps nothing of ours with a refund (Keyless): the worker judges a
// lost answer from the order as a whole. Once the refund has BBMSL's id of
// its transaction (r.Reference: from an answer, or a person's settlement),
// a query answer that names a refund transaction beside the order (no page
// says whether it does) is read by that id alone (see byReference); an
// order that shows no refund is then no proof either way.
package bbmsl

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/tasks"
)

// TestURL is BBMSL's SIT environment; live is https://payapi.prod.bbmsl.com.
const TestURL = "https://payapi.sit.bbmsl.com"

const (
	refundPath = "/hosted-checkout/refund"
	queryPath  = "/hosted-checkout/query"
	// successCode is BBMSL's "0000".
	successCode = "0000"
	// maxReference is merchantReference's documented length.
	maxReference = 64
)

// merchantIDAsNumber: merchantId is typed string in the docs but sent as the
// number 3 in their example (PROVIDERS.md); we follow the example.
const merchantIDAsNumber = true

// Order and transaction statuses (docs.sit.bbmsl.com common params).
const (
	orderRefunded = "REFUNDED"
	orderPaid     = "SUCCESS"
	orderSettled  = "SETTLED"
	txnSuccess    = "SUCCESS"
	txnDeclined   = "DECLINED"
	txnRefund     = "REFUND" // transaction.type of a refund
)

// GuessQueryOrder: the query answers with the order as the refund answer
// does (status, amount, netAmount, currency), amount − netAmount being what
// was refunded.
const GuessQueryOrder providers.Guess = "bbmsl.query_order"

// Guesses are the undocumented facts the adapter relies on.
var Guesses = []providers.GuessInfo{{
	Guess: GuessQueryOrder,
	Means: "hosted-checkout/query answers with the order as the refund answer shows it (status, amount, netAmount, " +
		"currency), amount − netAmount being what was refunded, so a SUCCESS or SETTLED order has no refund. Learned from " +
		"one query right after a successful refund. Until confirmed, a paid order is unknown, and a refund whose answer " +
		"was lost is left for a human rather than resent.",
}}

// Schedule: BBMSL documents no pending refund state.
var Schedule = providers.Schedule{First: 10 * time.Second, Max: 10 * time.Minute, Horizon: 24 * time.Hour}

// Config configures the adapter.
type Config struct {
	BaseURL    string // default TestURL
	MerchantID string
	Key        *rsa.PrivateKey // the merchant's signing key
	HTTPClient *http.Client
}

// Client is the BBMSL adapter; it implements providers.Provider and
// providers.Preparer.
type Client struct {
	base, merchant string
	key            *rsa.PrivateKey
	hc             *http.Client
}

// New returns an adapter; merchant id and key are required.
func New(cfg Config) (*Client, error) {
	if strings.TrimSpace(cfg.MerchantID) == "" || cfg.Key == nil {
		return nil, errors.New("bbmsl: merchant id and private key are required")
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = TestURL
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = providers.HTTPClient()
	}
	return &Client{base: strings.TrimRight(cfg.BaseURL, "/"), merchant: strings.TrimSpace(cfg.MerchantID), key: cfg.Key, hc: cfg.HTTPClient}, nil
}

// Entry returns BBMSL's registry entry from BBMSL_BASE_URL,
// BBMSL_MERCHANT_ID and BBMSL_PRIVATE_KEY_FILE.
func Entry(getenv func(string) string) providers.Entry {
	e := providers.Entry{Name: providers.BBMSL, Schedule: Schedule, Check: Check, OncePerOrder: true,
		Keyless: true, Guesses: Guesses}
	merchant, file := strings.TrimSpace(getenv("BBMSL_MERCHANT_ID")), strings.TrimSpace(getenv("BBMSL_PRIVATE_KEY_FILE"))
	if merchant == "" {
		e.Missing = append(e.Missing, "BBMSL_MERCHANT_ID")
	}
	if file == "" {
		e.Missing = append(e.Missing, "BBMSL_PRIVATE_KEY_FILE")
	}
	if len(e.Missing) > 0 {
		return e
	}
	key, err := LoadKey(file)
	if err != nil {
		e.Missing, e.Err = []string{"BBMSL_PRIVATE_KEY_FILE to a readable RSA key"}, err
		return e
	}
	c, _ := New(Config{BaseURL: strings.TrimSpace(getenv("BBMSL_BASE_URL")), MerchantID: merchant, Key: key})
	e.Provider = c
	return e
}

// Check is BBMSL's enqueue-time rule: order_id is sent as merchantReference
// (at most 64 characters); transaction_id, when set, is BBMSL's own order id
// and is sent as orderId, a number.
func Check(r tasks.Refund) error {
	if len(r.OrderID) > maxReference {
		return fmt.Errorf("order_id is sent as BBMSL's merchantReference, at most %d characters; got %d", maxReference, len(r.OrderID))
	}
	if r.TransactionID != "" {
		if _, err := orderNumber(r.TransactionID); err != nil {
			return err
		}
	}
	return nil
}

// orderNumber reads BBMSL's order id from transaction_id: a positive
// integer, written plainly.
func orderNumber(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || strconv.FormatInt(n, 10) != s {
		return 0, fmt.Errorf("transaction_id %q: BBMSL's order id (sent as orderId) is a positive integer such as 4922", s)
	}
	return n, nil
}

// target names the order in an inner request: merchantReference always,
// orderId too when the refund carries BBMSL's order id.
func (c *Client) target(r providers.Refund) (map[string]any, error) {
	if len(r.OrderID) > maxReference {
		return nil, fmt.Errorf("order_id is longer than BBMSL's %d-character merchantReference", maxReference)
	}
	m := map[string]any{"merchantId": c.merchantField(), "merchantReference": r.OrderID}
	if r.TransactionID != "" {
		n, err := orderNumber(r.TransactionID)
		if err != nil {
			return nil, err
		}
		m["orderId"] = n
	}
	return m, nil
}

func (c *Client) merchantField() any {
	if n, err := strconv.ParseInt(c.merchant, 10, 64); err == nil && merchantIDAsNumber {
		return n
	}
	return c.merchant
}

// query asks for the order, signed.
func (c *Client) query(ctx context.Context, r providers.Refund) (answer, providers.Outcome, bool) {
	inner, err := c.target(r)
	if err != nil {
		return answer{}, providers.Outcome{Kind: providers.Unknown, Reason: err.Error()}, false
	}
	return c.post(ctx, queryPath, inner)
}

// post signs and sends; ok is false with a classified outcome when there is
// no answer with a responseCode.
func (c *Client) post(ctx context.Context, path string, inner map[string]any) (answer, providers.Outcome, bool) {
	body, err := Sign(c.key, inner)
	if err != nil {
		return answer{}, providers.Outcome{Kind: providers.Transient, Reason: "sign request: " + err.Error()}, false
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(body))
	if err != nil {
		return answer{}, providers.Outcome{Kind: providers.Transient, Reason: err.Error()}, false
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := providers.Do(ctx, c.hc, req)
	if err != nil {
		return answer{}, providers.TransportOutcome(err), false
	}
	return parse(resp)
}

// parse reads an answer. It never decides success: ok means the answer has
// a responseCode for the caller to read. 429 is Transient, an HTTP 401/403
// Blocked, and a 5xx or a body without a responseCode Unknown.
func parse(resp *providers.Response) (answer, providers.Outcome, bool) {
	out := providers.Outcome{HTTPStatus: resp.Status, RequestID: resp.RequestID()}
	if resp.Status == http.StatusTooManyRequests {
		out.Kind, out.RetryAfter, out.Reason = providers.Transient, providers.RetryAfter(resp.Header), "rate limited by BBMSL"
		return answer{}, out, false
	}
	var a answer
	err := json.Unmarshal(resp.Body, &a)
	switch {
	case resp.Status == http.StatusUnauthorized || resp.Status == http.StatusForbidden:
		out.Kind, out.Reason = providers.Blocked, fmt.Sprintf("authentication failed (HTTP %d: %s): check BBMSL_MERCHANT_ID and BBMSL_PRIVATE_KEY_FILE",
			resp.Status, providers.Snippet(resp.Body))
		return answer{}, out, false
	case err != nil || a.ResponseCode == "" || resp.Status >= 500:
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("HTTP %d: %s", resp.Status, providers.Snippet(resp.Body))
		return answer{}, out, false
	}
	out.Status = a.ResponseCode
	return a, out, true
}
