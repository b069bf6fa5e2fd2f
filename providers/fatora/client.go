// Package fatora is the adapter for Fatora (Qatar) refunds:
// POST /v1/payments/refund with the payment's transaction_id and order_id.
// Every Fatora-specific fact lives in this package; its simulator is
// providers/fatora/fatorasim.
//
// Documented (shared/provider-docs/fatora-refund.txt, fatora.io/api): the
// refund request carries no amount, so a Fatora refund is the whole payment;
// its answer is {"status":"SUCCESS","result":{"refund_status":"completed" |
// "under_proccession" (so spelled), "mode", "refund_transaction_id"}} and
// carries no amount either; errors are {"status":"ERROR","error":{...} or
// "<text>"} with HTTP 400, 401, 403, 404, 409, 415, 422 or 5xx. The look-up
// is POST /v1/payments/verify, whose page shows the payment (payment_status
// SUCCESS | PENDING | FAILURE, amount, currency) and no refund field.
//
// Guessed, and checked at run time (see Guesses), one guess per refund
// status, because a verify that shows a completed refund proves nothing
// about one the bank is still processing (Fatora may well show a refund
// only once it is completed): that verify shows refund_status "completed"
// once the payment's refund is completed ("fatora.verify_refund_status"),
// and that it shows refund_status "under_proccession" while the bank
// processes it ("fatora.verify_refund_status.under_proccession"). Each is
// confirmed only by a verify that showed a refund in its status. After a
// refund answered in a status whose guess is still open, the adapter makes
// one verify: the refund there confirms that status's guess, no refund
// field refutes it. A paid payment without refund_status proves no refund
// of ours only while both are confirmed; otherwise it is Unknown, so a
// refund whose answer was lost is never resent on the strength of verify
// alone.
//
// Fatora keeps nothing of ours with a refund (Keyless): the worker judges a
// lost answer from the payment as a whole. Fatora refunds a payment once,
// and refundq sends one refund of its own per order, so a refusal saying
// the payment already has a refund (or one under process) after an earlier
// attempt of ours is evidence of that attempt: Pending or Unknown, never a
// refusal the worker could fail the refund on.
//
// Test or live is a property of the key, echoed as result.mode by the
// refund answer (and by verify). The adapter compares it with FATORA_MODE
// (live, the default, or test): an answer in the other mode is Blocked, a
// configuration to fix (a test key in production records refunds that pay
// nothing), and nothing is sent once verify has shown it.
package fatora

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/tasks"
)

// DefaultURL is Fatora's API; test or live is a property of the key.
const DefaultURL = "https://api.fatora.io"

// Paths of Fatora's API. The docs use /v1/...; the seed's code samples say
// /api/v1/... (PROVIDERS.md): if live calls 404, that is the line to change.
const (
	refundPath = "/v1/payments/refund"
	verifyPath = "/v1/payments/verify"
)

// Refund statuses. "under_proccession" is Fatora's spelling.
const (
	refundCompleted  = "completed"
	refundProcessing = "under_proccession"
)

// paymentPaid is verify's payment_status of a paid payment.
const paymentPaid = "SUCCESS"

// Modes, as result.mode writes them; EnvMode names the one configured.
const (
	ModeLive = "live"
	ModeTest = "test"
	EnvMode  = "FATORA_MODE"
)

// parseMode reads FATORA_MODE: live (also when empty) or test.
func parseMode(s string) (string, error) {
	switch m := strings.ToLower(strings.TrimSpace(s)); m {
	case "", ModeLive:
		return ModeLive, nil
	case ModeTest:
		return ModeTest, nil
	}
	return "", fmt.Errorf("fatora: %s=%q: want live or test (the mode of FATORA_API_KEY)", EnvMode, s)
}

// Schedule polls an under_proccession refund hourly at first, then daily,
// for five weeks: the bank may take 2–4 weeks. Poll tasks are scheduled in
// Redis, so this holds no worker.
var Schedule = providers.Schedule{First: time.Hour, Max: 24 * time.Hour, Horizon: 35 * 24 * time.Hour}

// Config configures the adapter.
type Config struct {
	BaseURL string // default DefaultURL
	APIKey  string // sent in the api_key header
	// Mode is the key's mode, live (default) or test; an answer in the
	// other mode is Blocked.
	Mode       string
	HTTPClient *http.Client
}

// Client is the Fatora adapter; it implements providers.Provider,
// providers.Preparer and providers.Prechecker.
type Client struct {
	base, key, mode string
	hc              *http.Client
}

// New returns an adapter; the API key is required.
func New(cfg Config) (*Client, error) {
	key := strings.TrimSpace(cfg.APIKey)
	if key == "" {
		return nil, errors.New("fatora: API key is required (FATORA_API_KEY)")
	}
	mode, err := parseMode(cfg.Mode)
	if err != nil {
		return nil, err
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultURL
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = providers.HTTPClient()
	}
	return &Client{base: strings.TrimRight(cfg.BaseURL, "/"), key: key, mode: mode, hc: cfg.HTTPClient}, nil
}

// Entry returns Fatora's registry entry from FATORA_BASE_URL, FATORA_API_KEY
// and FATORA_MODE; disabled when the key is unset, with Err set (the worker
// refuses to start) when FATORA_MODE is neither live nor test.
func Entry(getenv func(string) string) providers.Entry {
	e := providers.Entry{Name: providers.Fatora, Schedule: Schedule, Check: Check, OncePerOrder: true,
		Keyless: true, Guesses: Guesses}
	mode, err := parseMode(getenv(EnvMode))
	if err != nil {
		e.Missing, e.Err = []string{EnvMode + " to live or test"}, err
		return e
	}
	c, err := New(Config{BaseURL: strings.TrimSpace(getenv("FATORA_BASE_URL")), APIKey: getenv("FATORA_API_KEY"), Mode: mode})
	if err != nil {
		e.Missing = []string{"FATORA_API_KEY"}
		return e
	}
	e.Provider = c
	return e
}

// Check is Fatora's enqueue-time rule: the refund names the payment's
// transaction. Whether the amount is the whole payment only Fatora knows:
// Precheck asks it at enqueue time where FATORA_API_KEY is set, and Refund
// asks again before sending.
func Check(r tasks.Refund) error {
	if strings.TrimSpace(r.TransactionID) == "" {
		return errors.New("transaction_id is required: Fatora refunds a payment by its transaction id")
	}
	return nil
}

func (c *Client) post(ctx context.Context, path string, r providers.Refund) (*providers.Response, error) {
	body, _ := json.Marshal(ids{TransactionID: r.TransactionID, OrderID: r.OrderID})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, &providers.TransportError{Err: err}
	}
	req.Header.Set("api_key", c.key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	return providers.Do(ctx, c.hc, req)
}
