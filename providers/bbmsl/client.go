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
// Which responseCodes mean an authentication or signature refusal is not
// documented either: isAuthCode reads the message (also a guess, not learned
// at run time; a wrong guess makes such a refusal Rejected or a look-up
// Unknown, never a resend).
//
// BBMSL keeps nothing of ours with a refund (Keyless): the worker judges a
// lost answer from the order as a whole.
package bbmsl

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
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

// Client is the BBMSL adapter; it implements providers.Provider.
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

// LoadKey reads an RSA private key from a PEM file (PKCS#1 "RSA PRIVATE
// KEY" or PKCS#8 "PRIVATE KEY"). Errors name the file, never its contents.
func LoadKey(path string) (*rsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("bbmsl: read private key file %s: %w", path, errors.Unwrap(err))
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("bbmsl: private key file %s holds no PEM block", path)
	}
	switch block.Type {
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("bbmsl: private key file %s: not a valid PKCS#1 RSA key", path)
		}
		return k, nil
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("bbmsl: private key file %s: not a valid PKCS#8 key", path)
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("bbmsl: private key file %s: not an RSA key", path)
		}
		return rk, nil
	}
	return nil, fmt.Errorf("bbmsl: private key file %s: PEM type %q, want RSA PRIVATE KEY or PRIVATE KEY", path, block.Type)
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

// Sign returns the envelope for an inner request: the request serialized
// once, and the signature of exactly those bytes.
func Sign(key *rsa.PrivateKey, inner map[string]any) ([]byte, error) {
	text, err := json.Marshal(inner)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(text)
	sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, sum[:])
	if err != nil {
		return nil, err
	}
	return json.Marshal(envelope{Request: string(text), Signature: base64.StdEncoding.EncodeToString(sig)})
}

// Verify checks an envelope's signature with the public key and returns the
// inner request text.
func Verify(pub *rsa.PublicKey, body []byte) (string, error) {
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return "", fmt.Errorf("not a signed envelope: %w", err)
	}
	sig, err := base64.StdEncoding.DecodeString(env.Signature)
	if err != nil {
		return "", errors.New("signature is not base64")
	}
	sum := sha256.Sum256([]byte(env.Request))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig); err != nil {
		return "", errors.New("signature does not match the request")
	}
	return env.Request, nil
}

type envelope struct {
	Request   string `json:"request"`
	Signature string `json:"signature"`
}

// answer is BBMSL's reply to a refund or a query: the refund answer has
// order and transaction (documented); the query's order is the guess
// GuessQueryOrder. Absent numbers are nil.
type answer struct {
	ResponseCode string       `json:"responseCode"`
	Message      string       `json:"message"`
	Order        *order       `json:"order"`
	Transaction  *transaction `json:"transaction"`
}

type order struct {
	ID                json.RawMessage `json:"id"`
	MerchantReference string          `json:"merchantReference"`
	Currency          string          `json:"currency"`
	Amount            *json.Number    `json:"amount"`
	NetAmount         *json.Number    `json:"netAmount"`
	Status            string          `json:"status"`
}

type transaction struct {
	ID       json.RawMessage `json:"id"`
	Type     string          `json:"type"`
	Amount   *json.Number    `json:"amount"`
	Currency string          `json:"currency"`
	Status   string          `json:"status"`
}

// refunded is what the order shows refunded, amount − netAmount, in the
// order's currency; an error when the order does not carry those fields.
func (o *order) refunded() (refunded, amount, net tasks.Money, err error) {
	switch {
	case o.Amount == nil || o.NetAmount == nil:
		return refunded, amount, net, errors.New("the order has no amount and netAmount")
	case o.Currency == "":
		return refunded, amount, net, errors.New("the order has no currency")
	}
	if amount, err = tasks.ParseProviderAmount(o.Amount.String(), o.Currency); err != nil {
		return refunded, amount, net, fmt.Errorf("order amount: %w", err)
	}
	if net, err = tasks.ParseProviderAmount(o.NetAmount.String(), o.Currency); err != nil {
		return refunded, amount, net, fmt.Errorf("order netAmount: %w", err)
	}
	if net.Minor > amount.Minor {
		return refunded, amount, net, fmt.Errorf("order netAmount %s is more than its amount %s", net, amount)
	}
	return tasks.Money{Minor: amount.Minor - net.Minor, Currency: amount.Currency}, amount, net, nil
}

// Refund asks for the refund, signed.
func (c *Client) Refund(ctx context.Context, r providers.Refund) providers.Outcome {
	inner, err := c.target(r)
	if err != nil {
		return providers.Outcome{Kind: providers.Rejected, Reason: err.Error() + "; nothing sent"}
	}
	inner["amount"] = json.Number(r.Amount.Decimal())
	a, out, ok := c.post(ctx, refundPath, inner)
	if !ok {
		return out
	}
	out = refundOutcome(a, r, out)
	if out.Kind == providers.Succeeded && r.Known.Open(GuessQueryOrder) {
		c.learn(ctx, r, &out)
	}
	return out
}

// refundOutcome classifies a refund answer with a responseCode:
//
//	non-0000, auth message              Blocked
//	non-0000                            Rejected (BBMSL refused the refund)
//	0000 without a transaction          Unknown
//	transaction.type not REFUND         Unknown
//	transaction SUCCESS, our amount     Succeeded (reference transaction.id)
//	transaction SUCCESS, other amount   Review
//	transaction DECLINED                Rejected
//	any other transaction status        Unknown
func refundOutcome(a answer, r providers.Refund, out providers.Outcome) providers.Outcome {
	if a.ResponseCode != successCode {
		return refusal(a, r, out)
	}
	t := a.Transaction
	if t == nil {
		out.Kind, out.Reason = providers.Unknown, `responseCode "0000" without a transaction: nothing says what was refunded`
		return out
	}
	out.Status, out.Reference = t.Status, idText(t.ID)
	if t.Type != txnRefund {
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("transaction type %q, not %q", t.Type, txnRefund)
		return out
	}
	switch t.Status {
	case txnSuccess:
		got, err := t.money(a.Order, r.Amount.Currency)
		switch {
		case err != nil:
			out.Kind, out.Reason = providers.Unknown, "refund transaction SUCCESS, but "+err.Error()
		case got != r.Amount:
			out.Kind, out.Reason = providers.Review, fmt.Sprintf("BBMSL refunded %s; the refund asks %s", got, r.Amount)
		default:
			out.Kind = providers.Succeeded
		}
	case txnDeclined:
		out.Kind, out.Reason = providers.Rejected, "BBMSL declined the refund (transaction DECLINED by the scheme or issuer)"
		if a.Message != "" {
			out.Reason += ": " + a.Message
		}
	default:
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("refund transaction status %q", t.Status)
	}
	return out
}

// money is the transaction's amount in its currency (the order's, or the
// request's, when the answer names none: the parameter table lists no
// transaction.currency, the example has one).
func (t *transaction) money(o *order, fallback string) (tasks.Money, error) {
	cur := t.Currency
	if cur == "" && o != nil {
		cur = o.Currency
	}
	if cur == "" {
		cur = fallback
	}
	if t.Amount == nil {
		return tasks.Money{}, errors.New("the transaction has no amount")
	}
	m, err := tasks.ParseProviderAmount(t.Amount.String(), cur)
	if err != nil {
		return tasks.Money{}, fmt.Errorf("transaction amount: %w", err)
	}
	return m, nil
}

// refusal classifies a non-0000 refund answer.
func refusal(a answer, r providers.Refund, out providers.Outcome) providers.Outcome {
	if isAuthCode(a) {
		out.Kind, out.Reason = providers.Blocked, authReason(a)
		return out
	}
	out.Kind, out.Reason = providers.Rejected, fmt.Sprintf("BBMSL refused (code %s): %s", a.ResponseCode, a.Message)
	if r.Attempt > 1 {
		// BBMSL refunds an order once: this may be the echo of an earlier
		// attempt's refund. The worker looks it up before believing it.
		out.Reason += fmt.Sprintf(" (attempt %d: an earlier attempt may have refunded the order)", r.Attempt)
	}
	return out
}

func authReason(a answer) string {
	return fmt.Sprintf("authentication failed (code %s: %s): check BBMSL_MERCHANT_ID and BBMSL_PRIVATE_KEY_FILE, "+
		"and that BBMSL holds the matching public key", a.ResponseCode, a.Message)
}

// learn makes one query right after a successful refund: the order has our
// refund now, so the query either shows it as the refund answer did, or
// the guess does not hold.
func (c *Client) learn(ctx context.Context, r providers.Refund, out *providers.Outcome) {
	a, _, ok := c.query(ctx, r)
	if !ok || a.ResponseCode != successCode || a.Order == nil {
		return // no usable answer: nothing learned this time
	}
	o := a.Order
	switch o.Status {
	case orderRefunded:
		refunded, amount, net, err := o.refunded()
		switch {
		case err != nil:
			out.Observe(GuessQueryOrder, false, "query after a refund shows the order REFUNDED, but "+err.Error())
		case refunded == r.Amount:
			out.Observe(GuessQueryOrder, true, fmt.Sprintf("query after a refund of %s shows the order REFUNDED, amount %s, netAmount %s", r.Amount, amount, net))
		default:
			out.Observe(GuessQueryOrder, false, fmt.Sprintf("query after a refund of %s shows the order REFUNDED, amount %s, netAmount %s", r.Amount, amount, net))
		}
	case orderPaid, orderSettled:
		out.Observe(GuessQueryOrder, false, fmt.Sprintf("query after a refund of %s shows the order %s", r.Amount, o.Status))
	}
}

// Lookup queries the order. BBMSL refunds an order once, so the order
// shows our refund or none:
//
//	non-0000, auth message                        Blocked
//	non-0000 (order not found, …)                 Unknown
//	no order, no status                           Unknown
//	REFUNDED, amount − netAmount == ours          Succeeded
//	REFUNDED, another refunded amount             Review
//	REFUNDED, amounts missing or unreadable       Unknown
//	SUCCESS/SETTLED, netAmount == amount          NotFound if bbmsl.query_order is confirmed, else Unknown
//	SUCCESS/SETTLED otherwise, other statuses     Unknown
func (c *Client) Lookup(ctx context.Context, r providers.Refund) providers.Outcome {
	a, out, ok := c.query(ctx, r)
	if !ok {
		return out
	}
	return lookupOutcome(a, r, out)
}

func lookupOutcome(a answer, r providers.Refund, out providers.Outcome) providers.Outcome {
	if a.ResponseCode != successCode {
		if isAuthCode(a) {
			out.Kind, out.Reason = providers.Blocked, authReason(a)
			return out
		}
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("query answered code %s: %s", a.ResponseCode, a.Message)
		return out
	}
	o := a.Order
	if o == nil || o.Status == "" {
		out.Kind, out.Reason = providers.Unknown, "query answer shows no order status"
		return out
	}
	out.Status = o.Status
	refunded, amount, net, err := o.refunded()
	switch o.Status {
	case orderRefunded:
		switch {
		case err != nil:
			out.Kind, out.Reason = providers.Unknown, "order REFUNDED, but "+err.Error()
		case r.Known[GuessQueryOrder] == providers.Refuted:
			out.Kind, out.Reason = providers.Unknown, fmt.Sprintf(
				"order REFUNDED, amount %s, netAmount %s; %s is refuted, so what was refunded is unknown", amount, net, GuessQueryOrder)
		case refunded != r.Amount:
			out.Kind, out.Reason = providers.Review, fmt.Sprintf(
				"order REFUNDED %s (amount %s, netAmount %s); the refund asks %s", refunded, amount, net, r.Amount)
		default:
			out.Kind = providers.Succeeded
			if t := a.Transaction; t != nil && t.Type == txnRefund {
				out.Reference = idText(t.ID)
			}
		}
	case orderPaid, orderSettled:
		switch {
		case !r.Known.Holds(GuessQueryOrder):
			out.Kind, out.Reason = providers.Unknown, fmt.Sprintf(
				"order %s shows no refund; whether the query shows refunds is unconfirmed (%s), so this proves nothing", o.Status, GuessQueryOrder)
		case err != nil:
			out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("order %s, but %s", o.Status, err)
		case refunded.Minor != 0:
			out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("order %s with amount %s and netAmount %s", o.Status, amount, net)
		default:
			out.Kind, out.Reason = providers.NotFound, fmt.Sprintf("order %s, amount %s, nothing refunded", o.Status, amount)
		}
	default: // OPEN, VOIDED, CLOSED or undocumented
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("order status %q", o.Status)
	}
	return out
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

// isAuthCode reports a refusal about the merchant or the signature. BBMSL's
// responseCodes are not documented to us; the message is matched (a guess,
// not learned at run time: see the package comment).
func isAuthCode(a answer) bool {
	m := strings.ToLower(a.Message)
	return strings.Contains(m, "signature") || strings.Contains(m, "merchant")
}

// idText reads an id BBMSL writes as a number (or a string); "" for none.
func idText(raw json.RawMessage) string {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		return ""
	}
	var str string
	if json.Unmarshal(raw, &str) == nil {
		return str
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}
