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
	"slices"
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

// Refund asks for the refund, signed. What Prepare read (r.Before) is
// checked again first: a refund in another currency than the order's is
// never sent.
func (c *Client) Refund(ctx context.Context, r providers.Refund) providers.Outcome {
	inner, err := c.target(r)
	if err != nil {
		return providers.Outcome{Kind: providers.Rejected, Reason: err.Error() + "; nothing sent"}
	}
	if before, err := readSnapshot(r.Before); err == nil && before.Currency != r.Amount.Currency {
		return providers.Outcome{Kind: providers.Rejected, Reason: currencyReason(before.Currency, r.Amount)}
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
//	non-0000, a credential refusal      Blocked (nothing applied; see credentialRefusals)
//	non-0000, any other                 Unknown (undocumented: look the order up)
//	0000 without a transaction          Unknown
//	transaction.type not REFUND         Unknown
//	transaction SUCCESS, our amount     Succeeded (reference transaction.id)
//	transaction SUCCESS, other amount   Review
//	transaction DECLINED                Rejected (no reference: nothing of it is on the order)
//	any other transaction status        Unknown
func refundOutcome(a answer, r providers.Refund, out providers.Outcome) providers.Outcome {
	if a.ResponseCode != successCode {
		return refusal(a, out)
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
		// The declined transaction is no refund on the order: its id is not
		// the refund's reference (a later refund of the order would take it
		// for the order's one refund), only a word in the reason.
		out.Kind, out.Reason = providers.Rejected, fmt.Sprintf("BBMSL declined the refund (transaction %s DECLINED by the scheme or issuer)", out.Reference)
		out.Reference = ""
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

// refusal classifies a non-"0000" refund answer. No other code is
// documented, so none is read as a refusal: the acquirer may have applied
// the refund and answered with an error ("system error, please query"), as
// BBMSL's own docs allow when they say to query after an error. The worker
// looks the order up before anything is sent again; the look-up decides,
// and a paid refund is never failed on the strength of a code. That holds
// for "already refunded" above all: BBMSL refunds an order once, and the
// order's refund may be this one's, from an attempt whose answer (or whose
// record) was lost. Only a credential refusal (credentialRefusals) is
// proven to have applied nothing: Blocked.
func refusal(a answer, out providers.Outcome) providers.Outcome {
	if credentialRefusal(a.Message) {
		out.Kind, out.Reason = providers.Blocked, authReason(a)
		return out
	}
	msg := strings.TrimSpace(a.Message)
	if msg == "" {
		msg = "no message"
	}
	out.Kind, out.Reason = providers.Unknown, fmt.Sprintf(
		"BBMSL answered code %s (%s), which its documents do not explain: the refund may have been applied; the order is queried before anything is sent again",
		a.ResponseCode, msg)
	return out
}

// credentialRefusals are the only non-"0000" answers read as anything but
// Unknown, matched on the whole message (case, surrounding space and a final
// full stop aside), never on a word in it: a business refusal that mentions
// the merchant ("insufficient unsettled balance in merchant account") or a
// signature is Unknown like any other code. Each entry is proven to mean
// nothing of the request was applied, and points at our configuration
// (Blocked):
//
//   - a signature failure ("invalid signature", "signature verification
//     failed", "signature mismatch", "signature does not match"): BBMSL acts
//     only on a request whose SHA256withRSA signature verifies with the
//     merchant's public key (docs.sit.bbmsl.com/docs/api). A request it could
//     not verify is not the merchant's to it, so nothing of it was applied:
//     BBMSL_PRIVATE_KEY_FILE does not hold the key BBMSL has.
//   - an unknown merchant ("invalid merchant", "invalid merchant id",
//     "merchant not found"): the request names a merchant BBMSL does not
//     have, so it has neither an order of that merchant to refund nor a key
//     to verify the request with: BBMSL_MERCHANT_ID is wrong.
var credentialRefusals = map[string]bool{
	"invalid signature":             true,
	"signature verification failed": true,
	"signature mismatch":            true,
	"signature does not match":      true,
	"invalid merchant":              true,
	"invalid merchant id":           true,
	"merchant not found":            true,
}

// credentialRefusal reports whether msg is one of credentialRefusals.
func credentialRefusal(msg string) bool {
	m := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(msg)), ".")
	return credentialRefusals[strings.TrimSpace(m)]
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
//	non-0000, a credential refusal                Blocked
//	non-0000 (order not found, …)                 Unknown
//	no order, no status                           Unknown
//	REFUNDED, maybe another refund of ours'       Unknown (r.OtherRefs; BBMSL refunds an order once)
//	REFUNDED, amount − netAmount == ours          Succeeded
//	REFUNDED, another refunded amount             Review
//	REFUNDED, amounts missing or unreadable       Unknown
//	SUCCESS/SETTLED, netAmount == amount          NotFound if bbmsl.query_order is confirmed, else Unknown
//	SUCCESS/SETTLED otherwise, other statuses     Unknown
//
// What Prepare read before the send (r.Before) is named in the reasons.
func (c *Client) Lookup(ctx context.Context, r providers.Refund) providers.Outcome {
	a, out, ok := c.query(ctx, r)
	if !ok {
		return out
	}
	return lookupOutcome(a, r, out)
}

func lookupOutcome(a answer, r providers.Refund, out providers.Outcome) providers.Outcome {
	out = lookupKind(a, r, out)
	if before, err := readSnapshot(r.Before); err == nil && out.Kind != providers.Blocked {
		out.Reason = strings.TrimPrefix(out.Reason+"; before the send the order was "+before.String(), "; ")
	}
	return out
}

func lookupKind(a answer, r providers.Refund, out providers.Outcome) providers.Outcome {
	if a.ResponseCode != successCode {
		if credentialRefusal(a.Message) {
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
		other, why := heldByOther(a, r)
		switch {
		case other:
			out.Kind, out.Reason = providers.Unknown, "order REFUNDED: "+why
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
			if before, err := readSnapshot(r.Before); err == nil && before.Status == orderRefunded {
				out.Reason = fmt.Sprintf("the order was already REFUNDED before this attempt was sent; its one refund is of our "+
					"%s and no other refund of ours is on it, so it is this refund's, from an earlier attempt", r.Amount)
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

// heldByOther reports whether the order's one refund may be another refund
// of ours (r.OtherRefs): yes when the answer names the refund transaction
// and it is one of them, or names none and other refunds of ours exist.
func heldByOther(a answer, r providers.Refund) (bool, string) {
	if len(r.OtherRefs) == 0 {
		return false, ""
	}
	if t := a.Transaction; t != nil && t.Type == txnRefund && idText(t.ID) != "" {
		if id := idText(t.ID); slices.Contains(r.OtherRefs, id) {
			return true, fmt.Sprintf("its refund %s is another refund of ours", id)
		}
		return false, ""
	}
	return true, fmt.Sprintf("BBMSL refunds an order once, and another refund of ours (%s) is recorded on it", strings.Join(r.OtherRefs, ", "))
}

// snapshot is what Prepare read of the order just before a send. It travels
// with the attempt and comes back in r.Before to Refund (which checks the
// currency again) and Lookup (which names it). Amounts stay as BBMSL wrote
// them.
type snapshot struct {
	Status    string `json:"status"`
	Currency  string `json:"currency"`
	Amount    string `json:"amount"`
	NetAmount string `json:"netAmount,omitempty"`
}

func (s snapshot) String() string {
	out := fmt.Sprintf("{%s amount=%s %s", s.Status, s.Amount, s.Currency)
	if s.NetAmount != "" {
		out += " netAmount=" + s.NetAmount
	}
	return out + "}"
}

// readSnapshot reads what Prepare stored; an error when there is none or it
// lacks the currency.
func readSnapshot(b []byte) (snapshot, error) {
	var s snapshot
	if len(b) == 0 {
		return s, errors.New("no state of the order was read before the send")
	}
	if err := json.Unmarshal(b, &s); err != nil || s.Currency == "" {
		return s, errors.New("the order's state before the send is unreadable")
	}
	return s, nil
}

func currencyReason(orderCurrency string, asked tasks.Money) string {
	return fmt.Sprintf("the order is in %s, the refund of %s is not (BBMSL's refund request carries no currency: it refunds in the order's); nothing sent",
		orderCurrency, asked)
}

// Prepare reads the order (the signed query) just before a send. The refund
// request carries no currency, so this is where a refund in another currency
// is refused, with nothing sent:
//
//	no answer, or a non-0000 code                   Transient (a read sends nothing)
//	  … a credential refusal, HTTP 401/403           Blocked
//	no order, or no currency or amount in it         Review (nothing sent; what is missing and what was read)
//	order in another currency than the refund        Rejected
//	refund of more than the order's amount           Rejected (a refund is at most the order)
//	REFUNDED, and another refund of ours holds it    Rejected (BBMSL refunds an order once)
//	anything else                                    ok: the snapshot, for Refund and Lookup
//
// An order already REFUNDED with no other refund of ours on it is sent: BBMSL
// refunds an order once, so the send cannot pay again, and its refusal is
// Unknown; the look-up then decides whether the order's refund is this one's
// (an earlier attempt whose record was lost) or someone else's.
func (c *Client) Prepare(ctx context.Context, r providers.Refund) ([]byte, providers.Outcome, bool) {
	if _, err := c.target(r); err != nil {
		return nil, providers.Outcome{Kind: providers.Rejected, Reason: err.Error() + "; nothing sent"}, false
	}
	a, out, ok := c.query(ctx, r)
	if !ok {
		if out.Kind == providers.Unknown {
			out.Kind = providers.Transient // a read changes nothing
		}
		out.Reason = "reading the order before the send: " + out.Reason
		return nil, out, false
	}
	if a.ResponseCode != successCode {
		out.Kind, out.Reason = providers.Transient, fmt.Sprintf("reading the order before the send: BBMSL answered code %s: %s; nothing sent", a.ResponseCode, a.Message)
		if credentialRefusal(a.Message) {
			out.Kind, out.Reason = providers.Blocked, authReason(a)
		}
		return nil, out, false
	}
	o := a.Order
	if o == nil {
		out.Kind, out.Reason = providers.Review, "nothing sent: BBMSL's query answered without the order, so its currency cannot be checked before the send (read: responseCode 0000, no order)"
		return nil, out, false
	}
	s := snapshot{Status: o.Status, Currency: o.Currency}
	if o.Amount != nil {
		s.Amount = o.Amount.String()
	}
	if o.NetAmount != nil {
		s.NetAmount = o.NetAmount.String()
	}
	amount, err := tasks.ParseProviderAmount(s.Amount, s.Currency)
	switch {
	case s.Currency == "":
		out.Kind, out.Reason = providers.Review, "nothing sent: the order BBMSL's query shows has no currency, so the refund's cannot be checked before the send; read "+s.String()
		return nil, out, false
	case s.Currency != r.Amount.Currency:
		out.Kind, out.Reason = providers.Rejected, currencyReason(s.Currency, r.Amount)
		return nil, out, false
	case err != nil:
		out.Kind, out.Reason = providers.Review, fmt.Sprintf("nothing sent: the order BBMSL's query shows has no readable amount (%v); read %s", err, s)
		return nil, out, false
	case r.Amount.Minor > amount.Minor:
		out.Kind, out.Reason = providers.Rejected, fmt.Sprintf("the refund of %s is more than the order's amount, %s; nothing sent", r.Amount, amount)
		return nil, out, false
	}
	if o.Status == orderRefunded {
		if other, why := heldByOther(a, r); other {
			out.Kind, out.Reason = providers.Rejected, "the order is already REFUNDED: "+why+"; nothing sent"
			return nil, out, false
		}
	}
	b, _ := json.Marshal(s)
	return b, providers.Outcome{}, true
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
