// Package bbmsl is the adapter for BBMSL (Hong Kong, hosted checkout)
// refunds: POST /hosted-checkout/refund with {"request": <JSON text>,
// "signature": <base64 SHA256withRSA of that very text>}. One refund per
// order; look-up by the signed hosted-checkout/query. Every BBMSL fact lives
// in this package.
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

var (
	refundPath = "/hosted-checkout/refund"
	queryPath  = "/hosted-checkout/query"
	// successCode is BBMSL's "0000".
	successCode = "0000"
	// merchantIDAsNumber: merchantId is typed string in the docs but sent as
	// the number 3 in their example (PROVIDERS.md); we follow the example.
	merchantIDAsNumber = true
)

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
	e := providers.Entry{Name: providers.BBMSL, Schedule: Schedule, OncePerOrder: true}
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

// orderFields names the order in a request: orderId (a number) when the
// order id is all digits, else merchantReference (up to 64 characters).
func orderFields(m map[string]any, orderID string) {
	if n, err := strconv.ParseInt(orderID, 10, 64); err == nil && n > 0 && strconv.FormatInt(n, 10) == orderID {
		m["orderId"] = n
		return
	}
	m["merchantReference"] = orderID
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

// answer is BBMSL's reply; order appears on queries (its shape is a guess).
type answer struct {
	ResponseCode string `json:"responseCode"`
	Message      string `json:"message"`
	Data         struct {
		ID json.RawMessage `json:"id"`
	} `json:"data"`
	Order *struct {
		Status       string      `json:"status"`
		Amount       json.Number `json:"amount"`
		RefundAmount json.Number `json:"refundAmount"`
	} `json:"order"`
}

// Refund asks for the refund, signed.
func (c *Client) Refund(ctx context.Context, r providers.Refund) providers.Outcome {
	inner := map[string]any{"merchantId": c.merchantField(), "amount": json.Number(r.Amount.Decimal())}
	orderFields(inner, r.OrderID)
	a, out, ok := c.post(ctx, refundPath, inner)
	if !ok {
		return out
	}
	if a.ResponseCode == successCode {
		out.Kind, out.Reference = providers.Succeeded, strings.Trim(string(a.Data.ID), `"`)
		return out
	}
	out.Kind, out.Reason = providers.Rejected, fmt.Sprintf("BBMSL refused (code %s): %s", a.ResponseCode, a.Message)
	if isAuthCode(a) {
		out.Reason = fmt.Sprintf("authentication failed (code %s: %s): check BBMSL_MERCHANT_ID and BBMSL_PRIVATE_KEY_FILE", a.ResponseCode, a.Message)
	}
	return out
}

// Lookup queries the order: REFUNDED with our amount is ours (BBMSL allows
// one refund per order), a paid order without refund is NotFound.
func (c *Client) Lookup(ctx context.Context, r providers.Refund) providers.Outcome {
	inner := map[string]any{"merchantId": c.merchantField()}
	orderFields(inner, r.OrderID)
	a, out, ok := c.post(ctx, queryPath, inner)
	if !ok {
		return out
	}
	if a.ResponseCode != successCode || a.Order == nil {
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("query answered code %s: %s", a.ResponseCode, a.Message)
		return out
	}
	out.Status = a.Order.Status
	switch a.Order.Status {
	case "REFUNDED":
		refunded, err := tasks.ParseMoney(a.Order.RefundAmount.String(), r.Amount.Currency)
		if err == nil && refunded != r.Amount {
			out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("order refunded %s, not %s: another refund?", refunded, r.Amount)
			return out
		}
		out.Kind = providers.Succeeded
	case "SUCCESS", "SETTLED":
		out.Kind, out.Reason = providers.NotFound, "order paid and not refunded"
	default: // OPEN, VOIDED, CLOSED or undocumented
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("order status %q", a.Order.Status)
	}
	return out
}

// post signs and sends; ok is false with a classified outcome when there is
// no readable answer.
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

func parse(resp *providers.Response) (answer, providers.Outcome, bool) {
	out := providers.Outcome{HTTPStatus: resp.Status}
	if resp.Status == http.StatusTooManyRequests {
		out.Kind, out.RetryAfter, out.Reason = providers.Transient, providers.RetryAfter(resp.Header), "rate limited by BBMSL"
		return answer{}, out, false
	}
	var a answer
	if err := json.Unmarshal(resp.Body, &a); err != nil || a.ResponseCode == "" || resp.Status >= 500 {
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("HTTP %d: %s", resp.Status, providers.Snippet(resp.Body))
		return answer{}, out, false
	}
	out.Status = a.ResponseCode
	return a, out, true
}

// isAuthCode reports a refusal about the merchant or the signature. BBMSL's
// codes are undocumented here; the message is matched (a guess).
func isAuthCode(a answer) bool {
	m := strings.ToLower(a.Message)
	return strings.Contains(m, "signature") || strings.Contains(m, "merchant")
}
