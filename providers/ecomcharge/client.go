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
// The status query page documents GET /transactions/{uid} (the payment, with
// its currency and the shop's "test" flag) and GET
// /v2/transactions/tracking_id/{tracking_id}, which lists the transactions
// carrying a tracking_id "submitted in an authorization or payment request".
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
// constants and variables below.
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
	// EnvMode is the mode of the configured shop, ModeLive (the default) or
	// ModeTest; an answer of a shop in the other mode is Blocked.
	EnvMode = "ECOMCHARGE_MODE"
)

// The modes EnvMode takes.
const (
	ModeLive = "live"
	ModeTest = "test"
)

// The guesses (see the package doc).
const (
	// GuessTrackingEcho: a refund request accepts our tracking_id and its
	// answer echoes it. Informational: an echo proves the field was
	// accepted, not that anything can find the refund by it.
	GuessTrackingEcho providers.Guess = "ecomcharge.tracking_id"
	// GuessTrackingLookup: GET /v2/transactions/tracking_id/{tracking_id}
	// lists our refunds. The only guess a look-up's "none" rests on.
	GuessTrackingLookup providers.Guess = "ecomcharge.tracking_lookup"
)

// Guesses are the undocumented facts the adapter relies on.
var Guesses = []providers.GuessInfo{{
	Guess: GuessTrackingEcho,
	Means: "ecomCharge accepts the tracking_id sent with a refund (the refund page does not list it) and echoes it in " +
		"the refund's answer. Confirmed by a refund answer echoing it, refuted by a successful one without it. " +
		"Nothing is decided on it: an echo does not show that the look-up by tracking_id lists refunds " +
		"(see ecomcharge.tracking_lookup).",
}, {
	Guess: GuessTrackingLookup,
	Means: "GET /v2/transactions/tracking_id/{tracking_id} lists our refunds (the status query page documents it for " +
		"tracking_ids of authorization and payment requests). Confirmed only by that look-up showing a successful " +
		"refund of ours (our tracking_id, our amount, type refund); refuted when the look-up made right after a " +
		"successful refund answer does not list that refund. Until confirmed, a look-up listing nothing is unknown, " +
		"never not found: a refund whose answer was lost is not resent and waits for reconciliation or a human.",
}}

// The API's facts. Each is one line to change if it proves wrong.
var (
	// refundPath takes the refund request (seed).
	refundPath = "/transactions/refunds"
	// paymentPath + uid reads a transaction, here the parent payment (doc:
	// status query). It answers an unknown uid 404 "Record not found"
	// (beGateway's PHP client tests).
	paymentPath = "/transactions/"
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

// transaction is the part of ecomCharge's transaction the adapter reads.
type transaction struct {
	UID             string       `json:"uid"`
	Status          string       `json:"status"`
	Type            string       `json:"type"`
	Amount          *json.Number `json:"amount"` // integer minor units; nil when absent
	Currency        string       `json:"currency"`
	Message         string       `json:"message"`
	ParentUID       string       `json:"parent_uid"`
	TrackingID      string       `json:"tracking_id"` // documented on payments; a guess on refunds
	Test            *bool        `json:"test"`        // the shop's mode; nil when absent
	Code            string       `json:"code"`
	FriendlyMessage string       `json:"friendly_message"`
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

// before is what Prepare read of the parent payment, kept with the attempt.
type before struct {
	Payment  string `json:"payment"`
	Currency string `json:"currency"`
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

// Prepare reads the parent payment (GET /transactions/{parent_uid}) just
// before a send. The refund request carries no currency, ecomCharge refunds
// in the payment's: a payment in another currency than the refund is
// Rejected (nothing sent). A payment of a shop in the other mode is Blocked.
// A read that fails, or does not show the currency, is Transient (a read
// sends nothing). A 404 is told apart by paymentNotFound.
func (c *Client) Prepare(ctx context.Context, r providers.Refund) ([]byte, providers.Outcome, bool) {
	if strings.TrimSpace(r.TransactionID) == "" {
		return nil, providers.Outcome{Kind: providers.Rejected, Reason: "ecomcharge needs transaction_id: the parent payment uid (nothing sent)"}, false
	}
	resp, err := c.do(ctx, http.MethodGet, paymentPath+url.PathEscape(r.TransactionID), nil)
	if err != nil {
		out := providers.TransportOutcome(err)
		out.Kind, out.Reason = providers.Transient, "reading the payment before the send: "+out.Reason
		return nil, out, false
	}
	out := providers.Outcome{Kind: providers.Transient, HTTPStatus: resp.Status, RequestID: resp.RequestID()}
	switch {
	case resp.Status == http.StatusTooManyRequests:
		out.RetryAfter, out.Reason = providers.RetryAfter(resp.Header), "reading the payment before the send: rate limited by ecomCharge"
		return nil, out, false
	case resp.Status == http.StatusUnauthorized || resp.Status == http.StatusForbidden:
		o := authOutcome(resp.Status)
		o.RequestID = out.RequestID
		return nil, o, false
	case resp.Status == http.StatusNotFound:
		return nil, c.paymentNotFound(ctx, r, resp, out), false
	case resp.Status != http.StatusOK:
		out.Reason = fmt.Sprintf("reading the payment before the send: HTTP %d: %s", resp.Status, providers.Snippet(resp.Body))
		return nil, out, false
	}
	t, ok := parseTransaction(resp.Body)
	switch {
	case !ok || t.UID != r.TransactionID:
		out.Reason = "reading the payment before the send: no transaction " + r.TransactionID + " in the answer: " + providers.Snippet(resp.Body)
	case c.otherMode(t.Test) != "":
		out.Kind, out.Reason = providers.Blocked, c.otherMode(t.Test)
	case strings.TrimSpace(t.Currency) == "":
		out.Reason = "payment " + t.UID + " shows no currency: the refund's (" + r.Amount.Currency + ") cannot be checked before the send"
	case !strings.EqualFold(t.Currency, r.Amount.Currency):
		out.Kind, out.Reason = providers.Rejected, currencyReason(t.UID, t.Currency, r.Amount.Currency)
	default:
		b, _ := json.Marshal(before{Payment: t.UID, Currency: strings.ToUpper(t.Currency)})
		return b, providers.Outcome{}, true
	}
	return nil, out, false
}

func currencyReason(payment, paid, asked string) string {
	return fmt.Sprintf("payment %s is in %s, the refund in %s: ecomCharge refunds in the payment's currency (nothing sent)", payment, strings.ToUpper(paid), asked)
}

// paymentNotFound reads a 404 to the payment read. It is either a payment
// ecomCharge does not know or a wrong base URL (or path); the look-up by
// tracking_id, documented on the same host, tells them apart: where the base
// URL is right it answers 200 with a list (empty for a tracking_id nobody
// used), anywhere else 404 too. A base URL proven right and ecomCharge's
// error body make the payment unknown: Rejected before a first attempt; once
// an attempt was sent (it found the payment then) a contradiction for a
// human (Review).
func (c *Client) paymentNotFound(ctx context.Context, r providers.Refund, resp *providers.Response, out providers.Outcome) providers.Outcome {
	e, parsed := parseError(resp.Body)
	msg := providers.Snippet(resp.Body)
	if parsed {
		msg = e.text()
	}
	id := r.Key
	if strings.TrimSpace(id) == "" {
		id = baseCheckID
	}
	check, err := c.do(ctx, http.MethodGet, trackingPath+url.PathEscape(id), nil)
	if err != nil {
		out.Reason = fmt.Sprintf("reading the payment before the send: HTTP 404 (%s), and the base URL could not be checked: %v", msg, err)
		return out
	}
	_, listed := parseList(check.Body)
	switch {
	case check.Status == http.StatusUnauthorized || check.Status == http.StatusForbidden:
		o := authOutcome(check.Status)
		o.RequestID = out.RequestID
		return o
	case check.Status == http.StatusNotFound:
		return baseURLOutcome(out, msg)
	case check.Status != http.StatusOK || !listed:
		out.Reason = fmt.Sprintf("reading the payment before the send: HTTP 404 (%s), and the look-up that checks the base URL answered HTTP %d: %s",
			msg, check.Status, providers.Snippet(check.Body))
	case !parsed:
		out.Reason = "reading the payment before the send: HTTP 404 without ecomCharge's error body: " + msg
	case r.Attempt >= 1:
		out.Kind, out.Reason = providers.Review, fmt.Sprintf("ecomCharge does not know payment %s (HTTP 404: %s), yet %d attempt(s) of this refund were sent: a human must look",
			r.TransactionID, msg, r.Attempt)
	default:
		out.Kind, out.Reason = providers.Rejected, fmt.Sprintf("ecomCharge does not know payment %s (HTTP 404: %s); nothing sent", r.TransactionID, msg)
	}
	return out
}

// baseURLOutcome is a 404 that ecomCharge's documented API does not give:
// our base URL (or path) is wrong. Blocked, never a refusal.
func baseURLOutcome(out providers.Outcome, msg string) providers.Outcome {
	out.Kind = providers.Blocked
	out.Reason = fmt.Sprintf("ecomCharge answered HTTP 404 (%s) where its documented API answers: check %s (default %s)", msg, EnvBaseURL, DefaultURL)
	return out
}

// Refund sends the refund with duplicate_check on and r.Key as tracking_id,
// unless what Prepare read (r.Before) shows the payment in another currency.
// While GuessTrackingLookup is open, a successful answer is followed by one
// look-up by tracking_id, to learn whether it lists refunds.
func (c *Client) Refund(ctx context.Context, r providers.Refund) providers.Outcome {
	if strings.TrimSpace(r.TransactionID) == "" {
		return providers.Outcome{Kind: providers.Rejected, Reason: "ecomcharge needs transaction_id: the parent payment uid (nothing sent)"}
	}
	var b before
	if len(r.Before) > 0 && json.Unmarshal(r.Before, &b) == nil && b.Currency != "" && !strings.EqualFold(b.Currency, r.Amount.Currency) {
		return providers.Outcome{Kind: providers.Rejected, Reason: currencyReason(r.TransactionID, b.Currency, r.Amount.Currency)}
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
	out, probe := c.refundOutcome(resp, r)
	if probe && r.Known.Open(GuessTrackingLookup) && r.Key != "" {
		c.learnLookup(ctx, r, out.Reference, &out)
	}
	return out
}

// learnLookup looks our refund up by tracking_id right after ecomCharge
// answered it successful: the refund is there to be listed. Listed as a
// successful refund of ours (showsOurs) confirms GuessTrackingLookup; not
// listed at all refutes it. Anything else (a failed look-up, an unreadable
// answer, our refund listed in another state or amount) teaches nothing. A
// refutation that was only a slow index costs look-ups that stay Unknown
// (fail closed), never a resend; an operator can clear it.
func (c *Client) learnLookup(ctx context.Context, r providers.Refund, uid string, out *providers.Outcome) {
	resp, err := c.do(ctx, http.MethodGet, trackingPath+url.PathEscape(r.Key), nil)
	if err != nil || resp.Status != http.StatusOK {
		return
	}
	list, ok := parseList(resp.Body)
	if !ok {
		return
	}
	for _, t := range list {
		if t.UID != uid {
			continue
		}
		if c.showsOurs(t, r) {
			out.Observe(GuessTrackingLookup, true, "the look-up by tracking_id right after lists successful refund "+uid+" of ours")
		}
		return
	}
	out.Observe(GuessTrackingLookup, false, fmt.Sprintf("refund %s was answered successful, and the look-up by its tracking_id right after does not list it (%d other transaction(s) listed)", uid, len(list)))
}

// showsOurs reports whether a listed transaction is a successful refund of
// ours, field by field: our tracking_id, type refund, status successful, our
// amount (and currency and parent payment where shown), in our mode. Only
// such a row shows that the look-up by tracking_id lists our refunds.
func (c *Client) showsOurs(t transaction, r providers.Refund) bool {
	return r.Key != "" && t.TrackingID == r.Key && t.Type == refundType && t.Status == statusSuccessful &&
		notOurs(t, r) == "" && mismatch(t, r.Amount) == "" && c.otherMode(t.Test) == ""
}

// Lookup lists the transactions carrying our tracking id and classifies our
// refunds among them (see lookupOutcome).
func (c *Client) Lookup(ctx context.Context, r providers.Refund) providers.Outcome {
	if strings.TrimSpace(r.Key) == "" {
		return providers.Outcome{Kind: providers.Unknown, Reason: "refund has no key (tracking_id) to look it up by"}
	}
	resp, err := c.do(ctx, http.MethodGet, trackingPath+url.PathEscape(r.Key), nil)
	if err != nil {
		return providers.TransportOutcome(err)
	}
	return c.lookupOutcome(resp, r)
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

// authOutcome is a refused credential: Blocked, never Rejected.
func authOutcome(status int) providers.Outcome {
	return providers.Outcome{Kind: providers.Blocked, HTTPStatus: status,
		Reason: fmt.Sprintf("authentication failed (HTTP %d): check %s and %s", status, EnvShopID, EnvSecretKey)}
}

// refundOutcome classifies the answer to a refund request. probe says the
// answer is a successful refund of ours in our mode, so a look-up right
// after can learn GuessTrackingLookup.
func (c *Client) refundOutcome(resp *providers.Response, r providers.Refund) (out providers.Outcome, probe bool) {
	out = providers.Outcome{HTTPStatus: resp.Status, RequestID: resp.RequestID()}
	switch {
	case resp.Status == http.StatusTooManyRequests:
		out.Kind, out.RetryAfter, out.Reason = providers.Transient, providers.RetryAfter(resp.Header), "rate limited by ecomCharge"
		return out, false
	case resp.Status >= 500:
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("HTTP %d after the refund was sent: %s", resp.Status, providers.Snippet(resp.Body))
		return out, false
	case resp.Status == http.StatusUnauthorized || resp.Status == http.StatusForbidden:
		o := authOutcome(resp.Status)
		o.RequestID = out.RequestID
		return o, false
	}
	// A transaction answer is read on 2xx; on 4xx only a failed one is
	// (anything else there, or under a 1xx/3xx, contradicts the status and
	// stays unknown).
	if t, ok := parseTransaction(resp.Body); ok && (resp.Status >= 200 && resp.Status < 300 || resp.Status >= 400 && t.Status == statusFailed) {
		if why := notOurs(t, r); why != "" {
			out.Kind, out.Reason = providers.Unknown, "the answer is not our refund: "+why
			return out, false
		}
		if why := c.otherMode(t.Test); why != "" {
			// A test shop's refund pays nothing, and a failed one moved
			// nothing: this attempt is settled, and blocked until the
			// configuration is fixed. A live shop's answer to a test
			// configuration may have moved real money: Unknown, and the
			// look-up that follows is blocked by the same mismatch, keeping
			// the attempt open until the configuration is fixed.
			out.Reference, out.Status = t.UID, t.Status
			out.Kind, out.Reason = providers.Blocked, why
			if !*t.Test && t.Status != statusFailed {
				out.Kind, out.Reason = providers.Unknown, why+"; this refund may have moved money: look it up once that is fixed"
			}
			return out, false
		}
		out = classify(t, r, out)
		if t.Status == statusSuccessful {
			if r.Key != "" && t.TrackingID == r.Key {
				out.Observe(GuessTrackingEcho, true, "refund answer "+t.UID+" echoes our tracking_id")
			} else {
				out.Observe(GuessTrackingEcho, false, "successful refund answer "+t.UID+" does not show our tracking_id")
			}
			probe = true
		}
		return out, probe
	}
	e, ok := parseError(resp.Body)
	switch {
	case resp.Status == http.StatusNotFound:
		out = refundNotFound(e, ok, resp.Body, r, out)
	case !ok:
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("unreadable answer (HTTP %d): %s", resp.Status, providers.Snippet(resp.Body))
	case resp.Status < 400:
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("HTTP %d without a refund transaction: %s", resp.Status, e.text())
	case isDuplicate(e.text()+" "+e.FriendlyMessage, e.Code):
		out = duplicateOutcome(r.Attempt, e.text(), out)
	case refused(resp.Status):
		out.Kind, out.Reason = providers.Rejected, fmt.Sprintf("ecomCharge refused the refund (HTTP %d): %s", resp.Status, e.text())
	default:
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("undocumented HTTP %d: %s", resp.Status, e.text())
	}
	return out, false
}

// refundNotFound reads a 404 to the refund request. The refund path is
// fixed, so a 404 there is a wrong base URL or path (Blocked), unless the
// body has ecomCharge's documented error shape ({"message", "errors":
// {...}}) saying "not found" and the payment was not read fine just before
// (r.Before): that is the parent payment unknown, Rejected on a first
// attempt; on a resend it could be anything (Unknown).
func refundNotFound(e apiError, parsed bool, body []byte, r providers.Refund, out providers.Outcome) providers.Outcome {
	msg := providers.Snippet(body)
	if parsed {
		msg = e.text()
	}
	if !parsed || flattenErrors(e.Errors) == "" || len(r.Before) > 0 || !strings.Contains(strings.ToLower(e.text()), notFoundWords) {
		return baseURLOutcome(out, msg)
	}
	if r.Attempt <= 1 {
		out.Kind, out.Reason = providers.Rejected, fmt.Sprintf("ecomCharge does not know payment %s (HTTP 404): %s", r.TransactionID, msg)
		return out
	}
	out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("HTTP 404 to a resend, saying %s: an earlier attempt may have been applied", msg)
	return out
}

// lookupOutcome classifies the answer to a look-up by tracking id. Our
// refunds are the listed transactions notOurs does not exclude. One that
// moved or may move money decides (classify). When every one of ours is
// failed, failedOutcome decides. A list without any of ours is NotFound
// only once GuessTrackingLookup is confirmed (r.Known); before that it is
// Unknown.
func (c *Client) lookupOutcome(resp *providers.Response, r providers.Refund) providers.Outcome {
	out := providers.Outcome{HTTPStatus: resp.Status, RequestID: resp.RequestID()}
	switch {
	case resp.Status == http.StatusTooManyRequests:
		out.Kind, out.RetryAfter, out.Reason = providers.Transient, providers.RetryAfter(resp.Header), "look-up rate limited by ecomCharge"
		return out
	case resp.Status == http.StatusUnauthorized || resp.Status == http.StatusForbidden:
		o := authOutcome(resp.Status)
		o.RequestID = out.RequestID
		return o
	case resp.Status == http.StatusNotFound:
		// An unknown tracking_id is a 200 with an empty list: a 404 is the
		// base URL or path.
		msg := providers.Snippet(resp.Body)
		if e, ok := parseError(resp.Body); ok {
			msg = e.text()
		}
		return baseURLOutcome(out, msg)
	case resp.Status != http.StatusOK:
		// 5xx proves nothing: "none" is a 200 with an empty list.
		msg := providers.Snippet(resp.Body)
		if e, ok := parseError(resp.Body); ok {
			msg = e.text()
		}
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("look-up failed (HTTP %d): %s", resp.Status, msg)
		return out
	}
	list, ok := parseList(resp.Body)
	if !ok {
		out.Kind, out.Reason = providers.Unknown, "look-up without a readable transaction list: "+providers.Snippet(resp.Body)
		return out
	}
	for _, t := range list {
		if why := c.otherMode(t.Test); why != "" {
			out.Kind, out.Reason = providers.Blocked, why
			return out
		}
	}
	var ours []transaction
	var others int
	var best *transaction
	for i := range list {
		t := &list[i]
		if notOurs(*t, r) != "" {
			others++
			continue
		}
		ours = append(ours, *t)
		if best == nil || rank(t.Status) > rank(best.Status) {
			best = t
		}
		if c.showsOurs(*t, r) && len(out.Observed) == 0 {
			out.Observe(GuessTrackingLookup, true, "the look-up by tracking_id lists successful refund "+t.UID+" of ours")
		}
	}
	switch {
	case best != nil && best.Status != statusFailed:
		obs := out.Observed
		out = classify(*best, r, out)
		out.Observed = obs
	case best != nil:
		out = failedOutcome(ours, r, out)
	case others > 0:
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("look-up by tracking_id %s lists %d transaction(s) that are not a refund of ours", r.Key, others)
	case !r.Known.Holds(GuessTrackingLookup):
		// Only what the worker has recorded counts as confirmed: a look-up
		// that showed a successful refund of ours.
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("look-up by tracking_id %s lists no refund of ours, but that it lists refunds at all is %s (guess %s): proves nothing",
			r.Key, verdict(r.Known, GuessTrackingLookup), GuessTrackingLookup)
	default:
		out.Kind, out.Reason = providers.NotFound, "no refund with tracking_id "+r.Key
	}
	return out
}

// failedOutcome reads a look-up in which every refund of ours is failed.
// Each attempt of ours makes at most one transaction, so unless the list
// shows a failed one for every attempt sent (r.Attempt), an attempt of ours
// is not shown, and it may still land (its answer lost, ecomCharge still at
// work on it, a look-up that shows refunds only once final): Unknown. With
// every attempt shown failed, a failure that is not duplicate_check's is
// ecomCharge's refusal (Rejected); duplicate_check refusals alone moved
// nothing and refused nothing of the refund itself: NotFound once the
// look-up is known to list our refunds, else Unknown.
func failedOutcome(ours []transaction, r providers.Refund, out providers.Outcome) providers.Outcome {
	attempts := max(r.Attempt, 1)
	uids := map[string]bool{}
	var refusal *transaction
	for i := range ours {
		uids[ours[i].UID] = true
		if refusal == nil && !isDuplicate(ours[i].Message+" "+ours[i].FriendlyMessage, ours[i].Code) {
			refusal = &ours[i]
		}
	}
	switch {
	case len(uids) < attempts:
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("look-up by tracking_id %s shows %d failed refund(s) of ours for %d attempt(s) sent: an attempt it does not show may still be applied",
			r.Key, len(uids), attempts)
	case refusal != nil:
		obs := out.Observed
		out = classify(*refusal, r, out)
		out.Observed = obs
	case !r.Known.Holds(GuessTrackingLookup):
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("look-up by tracking_id %s shows only duplicate_check refusals of ours, but that it lists refunds at all is %s (guess %s): proves nothing",
			r.Key, verdict(r.Known, GuessTrackingLookup), GuessTrackingLookup)
	default:
		out.Kind, out.Reason = providers.NotFound, fmt.Sprintf("no refund with tracking_id %s applied: only %d duplicate_check refusal(s), which moved nothing", r.Key, len(uids))
	}
	return out
}

func verdict(k providers.Knowledge, g providers.Guess) string {
	if k == nil {
		return providers.Unconfirmed.String()
	}
	return k[g].String()
}

// notOurs says why a transaction is not a refund of ours ("" if it may be):
// another tracking_id, another type, another parent payment.
func notOurs(t transaction, r providers.Refund) string {
	switch {
	case t.TrackingID != "" && t.TrackingID != r.Key:
		return fmt.Sprintf("transaction %s has tracking_id %q", t.UID, t.TrackingID)
	case t.Type != "" && t.Type != refundType:
		return fmt.Sprintf("transaction %s is of type %q", t.UID, t.Type)
	case t.ParentUID != "" && r.TransactionID != "" && t.ParentUID != r.TransactionID:
		return fmt.Sprintf("transaction %s refunds payment %s", t.UID, t.ParentUID)
	}
	return ""
}

// classify maps a refund transaction to an outcome, checking a success's
// amount and currency against the request.
func classify(t transaction, r providers.Refund, out providers.Outcome) providers.Outcome {
	out.Reference, out.Status = t.UID, t.Status
	switch {
	case t.Status == statusSuccessful:
		out.Kind, out.Reason = providers.Succeeded, ""
		if why := mismatch(t, r.Amount); why != "" {
			out.Kind, out.Reason = providers.Review, why
		}
	case t.Status == statusFailed && isDuplicate(t.Message+" "+t.FriendlyMessage, t.Code):
		out = duplicateOutcome(r.Attempt, firstOf(t.Message, t.FriendlyMessage, t.Code), out)
		out.Reference, out.Status = t.UID, t.Status
	case t.Status == statusFailed:
		out.Kind, out.Reason = providers.Rejected, "refund failed at ecomCharge: "+firstOf(t.Message, t.FriendlyMessage, "no message")
		if t.Code != "" {
			out.Reason += " (code " + t.Code + ")"
		}
	case isPending(t.Status):
		out.Kind, out.Reason = providers.Pending, "ecomCharge has not finished the refund"
	default: // error, expired (guess) or undocumented: fail closed
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("refund transaction status %q: whether money moved is not known", t.Status)
	}
	return out
}

// mismatch says how a successful refund differs from what was asked: its
// amount (integer minor units) and, when the answer has one, its currency.
// An absent or non-integer amount cannot be checked, and is a mismatch.
func mismatch(t transaction, want tasks.Money) string {
	if t.Currency != "" && !strings.EqualFold(t.Currency, want.Currency) {
		return fmt.Sprintf("ecomCharge refunded %s %s while %s was asked: another currency", amountText(t.Amount), t.Currency, want)
	}
	if t.Amount == nil {
		return fmt.Sprintf("ecomCharge answered refund %s successful without an amount; %s was asked", t.UID, want)
	}
	got, err := t.Amount.Int64()
	if err != nil {
		return fmt.Sprintf("ecomCharge answered refund %s successful with amount %q, not an integer in minor units; %s was asked", t.UID, t.Amount.String(), want)
	}
	if got != want.Minor {
		return fmt.Sprintf("ecomCharge refunded %d minor units while %d (%s) was asked", got, want.Minor, want)
	}
	return ""
}

func amountText(n *json.Number) string {
	if n == nil {
		return "(no amount)"
	}
	return n.String()
}

// duplicateOutcome reads a duplicate_check refusal. On a first attempt
// nothing of ours was sent before, so the equal refund it clashed with is
// someone else's (two equal partial refunds inside 30 s are legitimate):
// nothing was applied, send again after the window. On a resend it is most
// likely our own earlier attempt, applied: reconcile first.
func duplicateOutcome(attempt int, detail string, out providers.Outcome) providers.Outcome {
	out.Status = "duplicate_check"
	if attempt <= 1 {
		out.Kind, out.RetryAfter = providers.Transient, DuplicateRetry
		out.Reason = fmt.Sprintf("duplicate_check refused it: an equal refund of this payment was made in the last %s, not by this refund (its first attempt); nothing applied, send again after %s: %s",
			DuplicateWindow, DuplicateRetry, detail)
		return out
	}
	out.Kind = providers.Unknown
	out.Reason = "duplicate_check refused the resend: most likely our own earlier attempt was applied; look it up by tracking_id before anything else: " + detail
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

func refused(status int) bool {
	for _, s := range refusedStatuses {
		if status == s {
			return true
		}
	}
	return false
}

// isDuplicate reports whether a refusal is duplicate_check's: the word
// "duplicate" anywhere in its text, or beGateway's code F.0108.
func isDuplicate(text, code string) bool {
	return strings.EqualFold(strings.TrimSpace(code), duplicateCode) ||
		strings.Contains(strings.ToLower(text), duplicateWord)
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
// every entry must have a uid and a status. An answer without either key
// (e.g. {}) is unreadable, never an empty list.
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

// apiError is ecomCharge's error body, {"message", "errors"} (with code and
// friendly_message under API version 3), or the same inside "response"
// (beGateway's PHP client reads both).
type apiError struct {
	Message         string          `json:"message"`
	Errors          json.RawMessage `json:"errors"`
	Code            string          `json:"code"`
	FriendlyMessage string          `json:"friendly_message"`
	Response        *struct {
		Message         string          `json:"message"`
		Errors          json.RawMessage `json:"errors"`
		Code            string          `json:"code"`
		FriendlyMessage string          `json:"friendly_message"`
	} `json:"response"`
}

func parseError(body []byte) (apiError, bool) {
	var e apiError
	if json.Unmarshal(body, &e) != nil {
		return apiError{}, false
	}
	if e.Message == "" && len(e.Errors) == 0 && e.Response != nil {
		e.Message, e.Errors, e.Code, e.FriendlyMessage = e.Response.Message, e.Response.Errors, e.Response.Code, e.Response.FriendlyMessage
	}
	return e, e.Message != "" || flattenErrors(e.Errors) != ""
}

// text is the message with the field errors flattened after it.
func (e apiError) text() string {
	s := e.Message
	if f := flattenErrors(e.Errors); f != "" {
		s = strings.TrimSpace(s + " (" + f + ")")
	}
	if e.Code != "" {
		s += " [code " + e.Code + "]"
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
