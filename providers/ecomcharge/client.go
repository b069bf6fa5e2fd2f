// Package ecomcharge is the adapter for ecomCharge (beGateway family)
// refunds.
//
// Documented (shared/provider-docs/ecomcharge-refund.txt and ecomCharge's
// card API pages): POST /transactions/refunds with a {"request": ...}
// envelope naming the parent payment's uid, an integer amount in minor
// units, a reason and duplicate_check (default true: the same parent_uid and
// amount within 30 s is refused); the answer is {"transaction": {...}} with
// uid, status (successful, failed; incomplete and pending are not final),
// amount, currency, type "refund", message, test, code and friendly_message.
// The status query page documents GET /transactions/{uid} (any transaction:
// the payment, with its currency and the shop's "test" flag, or a refund)
// and GET /v2/transactions/tracking_id/{tracking_id}, which lists the
// transactions carrying a tracking_id "submitted in an authorization or
// payment request".
//
// Once an answer of ecomCharge named our refund (providers.Refund.Reference,
// e.g. the uid of a refund it answered pending), Lookup asks for that uid
// and nothing else: the transaction answered identifies our refund, or
// contradicts it, without any guess. The look-up by tracking_id, and the
// guesses below, serve only a refund no answer has named.
//
// The refund request carries no currency: ecomCharge refunds in the
// payment's. Prepare reads the payment before every send and refuses a
// refund in another currency (nothing is sent), and an answer of a shop in
// the other mode than ECOMCHARGE_MODE blocks.
//
// Guessed, and checked at run time (see Guesses): nothing documents that a
// refund accepts our tracking_id (providers.Refund.Key), nor that the look-up
// by tracking_id lists refunds. Two guesses, kept apart because an echo
// proves only the first:
//   - GuessTrackingEcho: the refund answer echoes our tracking_id. Learned
//     from refund answers; nothing is decided on it.
//   - GuessTrackingLookup: the look-up by tracking_id lists our refunds. Only
//     a look-up showing a successful refund of ours (our tracking_id, our
//     amount, type refund, status successful) confirms it; a look-up made
//     right after a successful refund answer that does not list that refund
//     refutes it. Echoes, failed rows and duplicate_check refusals confirm
//     nothing. Until it is confirmed, a look-up that lists nothing is
//     Unknown, never NotFound, so a refund whose answer was lost is never
//     resent on the strength of a look-up that may not show refunds at all.
//
// Every ecomCharge-specific fact lives in this package, in the named
// constants and variables below (the guesses in guess.go). The files, by
// job: client.go (configuration, Entry, Check, the HTTP call), prepare.go
// (the read of the payment before a send), refund.go (the send and its
// answer), lookup.go (what became of a refund), transaction.go (reading a
// transaction of ours), errors.go (refusals and errors), guess.go (the
// guesses and how answers teach them).
package ecomcharge

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
	// EnvMode is the mode of the configured shop, ModeLive (the default) or
	// ModeTest; an answer of a shop in the other mode is Blocked.
	EnvMode = "ECOMCHARGE_MODE"
)

// The modes EnvMode takes.
const (
	ModeLive = "live"
	ModeTest = "test"
)

// The API's facts. Each is one line to change if it proves wrong.
var (
	// refundPath takes the refund request (seed).
	refundPath = "/transactions/refunds"
	// transactionPath + uid reads one transaction (doc: status query): the
	// parent payment before a send, our refund by its uid in a look-up. It
	// answers an unknown uid 404 "Record not found" (beGateway's PHP client
	// tests).
	transactionPath = "/transactions/"
	// trackingPath + tracking_id lists the transactions carrying that
	// tracking_id (doc). Its answer is {"transactions": [...]}, empty (a 200)
	// when there is none (beGateway's PHP client tests), so a 404 there is
	// a wrong base URL or path; bePaid's page also shows a single
	// {"transaction": {...}}, so both are read.
	trackingPath = "/v2/transactions/tracking_id/"
	// baseCheckID is the tracking_id looked up to tell a wrong base URL from
	// an unknown payment when the refund has no key.
	baseCheckID = "refundq-base-url-check"
	// apiVersionHeader: version 3 adds code and friendly_message (doc).
	apiVersionHeader, apiVersion = "X-API-Version", "3"
	// refundType is a refund transaction's "type" (seed).
	refundType = "refund"
	// Transaction statuses: successful and failed are terminal, incomplete
	// and pending are not (doc). error and expired (guess) and anything else
	// are uncertain: nothing says whether money moved, so they stay Unknown
	// (fail closed) and the refund is reconciled or left to a human.
	statusSuccessful = "successful"
	statusFailed     = "failed"
	statusPending    = []string{"incomplete", "pending"}
	// maxReason is the longest reason ecomCharge takes, in characters (seed).
	maxReason = 255
	// defaultReason is sent when the refund has none: beGateway answers
	// "Reason can't be blank." without one (beGateway's PHP client tests).
	defaultReason = "Refund requested by merchant"
	// duplicateWord identifies duplicate_check's refusal (same parent_uid
	// and amount within DuplicateWindow), matched case-insensitively anywhere
	// in the message, errors and friendly_message. The exact wording is not
	// documented; beGateway's code list says "Duplicate transaction or
	// order" (F.0108).
	duplicateWord = "duplicate"
	// duplicateCode is beGateway's code for a duplicate transaction
	// (begateway/status_code F.0108); that duplicate_check answers with it
	// is a guess, matched case-insensitively.
	duplicateCode = "F.0108"
	// notFoundWords, in a 404 to the refund request that has ecomCharge's
	// documented error shape ({"message", "errors": {...}}), say the parent
	// payment does not exist. Any other 404 there is a wrong base URL or
	// path (the refund path is fixed).
	notFoundWords = "not found"
	// refusedStatuses are the HTTP statuses under which ecomCharge's error
	// body is read as a refusal of the refund itself. Any other 4xx with an
	// error body is undocumented, so unknown (404: see notFoundWords).
	refusedStatuses = []int{http.StatusBadRequest, http.StatusPaymentRequired, http.StatusUnprocessableEntity}
)

// DuplicateWindow is duplicate_check's window: the same parent_uid and
// amount within it is refused (seed).
const DuplicateWindow = 30 * time.Second

// DuplicateRetry is when a refund that duplicate_check refused on its first
// attempt is sent again: just after the window, so the equal refund that
// caused it (a legitimate second partial refund of the same amount) no
// longer counts.
const DuplicateRetry = DuplicateWindow + time.Second

// SettleDelay is how long after a send a look-up's "not applied" is
// believed, and so the earliest a resend follows the attempt it replaces.
// It rests on exactly two facts, and must stay longer than both:
//
//   - DuplicateWindow (30 s, seed: duplicate_check refuses the same
//     parent_uid and amount within 30 s). A resend inside the window is
//     refused as a duplicate of the attempt it replaces, and on a resend
//     that refusal is read as "probably ours, applied" (Unknown), so the
//     refund would go to a human instead of being paid.
//   - providers.OperationTimeout (30 s, refundq: the deadline the worker
//     gives one Refund, Lookup or Prepare). The attempt's request may still
//     be in flight, and be applied, until then.
//
// The 5 s above both is a margin for ecomCharge finishing a request after
// our client hung up; nothing documents how long that can take (the
// registry's DefaultSettleDelay allows 10 s). Change either fact and this
// moves with it.
const SettleDelay = max(DuplicateWindow, providers.OperationTimeout) + 5*time.Second

// Schedule polls a pending or incomplete refund after 10 s, doubling to
// every 15 minutes, for three days: card refunds are normally answered at
// once, and a pending one waits on the acquirer, which can take a weekend.
var Schedule = providers.Schedule{First: 10 * time.Second, Max: 15 * time.Minute, Horizon: 72 * time.Hour}

// Config configures the adapter.
type Config struct {
	BaseURL    string // default DefaultURL
	ShopID     string // HTTP Basic user
	SecretKey  string // HTTP Basic password
	Mode       string // ModeLive (the default, also for "") or ModeTest
	HTTPClient *http.Client
}

// Client is the ecomCharge adapter; it implements providers.Provider and
// providers.Preparer.
type Client struct {
	base, shop, secret string
	test               bool // configured for a test shop (EnvMode)
	hc                 *http.Client
}

// ModeError is a mode other than ModeLive and ModeTest.
type ModeError struct{ Mode string }

func (e *ModeError) Error() string {
	return fmt.Sprintf("ecomcharge: %s %q is neither %q nor %q", EnvMode, e.Mode, ModeLive, ModeTest)
}

// parseMode reads EnvMode's value: "" is live.
func parseMode(mode string) (test bool, err error) {
	switch strings.ToLower(strings.TrimSpace(mode)) {
	case "", ModeLive:
		return false, nil
	case ModeTest:
		return true, nil
	}
	return false, &ModeError{Mode: mode}
}

// New returns an adapter. Shop id and secret key are required: a
// *providers.MissingError names the unset variables; a mode other than live
// or test is a *ModeError.
func New(cfg Config) (*Client, error) {
	shop, secret := strings.TrimSpace(cfg.ShopID), strings.TrimSpace(cfg.SecretKey)
	if err := providers.Require(providers.EcomCharge, EnvShopID, shop, EnvSecretKey, secret); err != nil {
		return nil, err
	}
	test, err := parseMode(cfg.Mode)
	if err != nil {
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
	return &Client{base: base, shop: shop, secret: secret, test: test, hc: hc}, nil
}

// Entry returns ecomCharge's registry entry from ECOMCHARGE_BASE_URL,
// ECOMCHARGE_SHOP_ID, ECOMCHARGE_SECRET_KEY and ECOMCHARGE_MODE: disabled,
// with Missing set, when a credential is unset; with Err set when the base
// URL is unusable or the mode is neither live nor test (whether or not the
// credentials are set: the worker refuses to start).
// It is not Keyless: the tracking_id is a key of ours, once confirmed.
func Entry(getenv func(string) string) providers.Entry {
	e := providers.Entry{Name: providers.EcomCharge, Schedule: Schedule, Check: Check,
		SettleDelay: SettleDelay, Guesses: Guesses}
	if _, err := parseMode(getenv(EnvMode)); err != nil {
		e.Missing, e.Err = []string{EnvMode + " to " + ModeLive + " or " + ModeTest}, err
		return e
	}
	c, err := New(Config{BaseURL: getenv(EnvBaseURL), ShopID: getenv(EnvShopID), SecretKey: getenv(EnvSecretKey), Mode: getenv(EnvMode)})
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

// otherMode says how an answer's "test" flag contradicts the configured
// mode, naming EnvMode; "" when it agrees or the answer does not show it.
func (c *Client) otherMode(test *bool) string {
	switch {
	case test == nil || *test == c.test:
		return ""
	case *test:
		return fmt.Sprintf("a test shop/key in a live configuration: ecomCharge answered in test mode (refunds there pay nothing) while %s is %s; set %s=%s or use the live key (%s, %s)",
			EnvMode, ModeLive, EnvMode, ModeTest, EnvShopID, EnvSecretKey)
	}
	return fmt.Sprintf("a live shop/key in a test configuration: ecomCharge answered in live mode while %s is %s; set %s=%s or use the test key (%s, %s)",
		EnvMode, ModeTest, EnvMode, ModeLive, EnvShopID, EnvSecretKey)
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
