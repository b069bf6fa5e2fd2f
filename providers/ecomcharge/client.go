// Package ecomcharge is the adapter for ecomCharge (beGateway family)
// refunds.
//
// Documented (shared/provider-docs/ecomcharge-refund.txt and ecomCharge's
// card API pages): POST /transactions/refunds with a {"request": ...}
// envelope naming the parent payment's uid, an integer amount in minor
// units, a reason and duplicate_check (default true: the same parent_uid and
// amount within 30 s is refused); the answer is {"transaction": {...}} with
// uid, status (successful, failed; incomplete and pending are not final),
// amount, currency, type "refund", message, code and friendly_message. A
// transaction is read by GET /v2/transactions/tracking_id/{tracking_id}
// (status query page), which lists the transactions carrying that
// tracking_id.
//
// Guessed, and checked at run time (GuessTracking): that a refund accepts
// the tracking_id we send (providers.Refund.Key), keeps it, and is listed by
// the tracking_id look-up. The refund page does not list tracking_id. A
// refund answer that echoes our tracking_id confirms it; a successful answer
// without it leads, while nothing is known, to one look-up by tracking_id
// right after the success: our refund listed confirms it, an empty list
// refutes it. Until it is confirmed, a look-up that lists nothing is
// Unknown, never NotFound, so a refund whose answer was lost is never resent
// on the strength of a field ecomCharge may drop.
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
)

// GuessTracking is the guess that ecomCharge keeps our tracking_id on a
// refund and lists the refund under it (see the package doc).
const GuessTracking providers.Guess = "ecomcharge.tracking_id"

// Guesses are the undocumented facts the adapter relies on.
var Guesses = []providers.GuessInfo{{
	Guess: GuessTracking,
	Means: "ecomCharge keeps the tracking_id sent with a refund and lists the refund under " +
		"GET /v2/transactions/tracking_id/{tracking_id}. Confirmed by a refund answer that echoes it, or by " +
		"the one look-up made after a success while nothing is known (our refund listed); refuted when that " +
		"look-up lists nothing. Until confirmed, a look-up listing nothing is unknown, never not found: a " +
		"refund whose answer was lost is not resent and waits for reconciliation or a human.",
}}

// The API's facts. Each is one line to change if it proves wrong.
var (
	// refundPath takes the refund request (seed).
	refundPath = "/transactions/refunds"
	// trackingPath + tracking_id lists the transactions carrying that
	// tracking_id (doc). Its answer is {"transactions": [...]}, empty when
	// there is none (beGateway's PHP client tests); bePaid's page also shows
	// a single {"transaction": {...}}, so both are read.
	trackingPath = "/v2/transactions/tracking_id/"
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
	// refusedStatuses are the HTTP statuses under which ecomCharge's error
	// body is read as a refusal of the refund itself. Any other 4xx with an
	// error body is undocumented, so unknown.
	refusedStatuses = []int{http.StatusBadRequest, http.StatusPaymentRequired, http.StatusNotFound, http.StatusUnprocessableEntity}
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
// believed. It is longer than duplicate_check's window, so a resend of a
// refund proven not applied is not itself refused as a duplicate of the
// attempt it replaces.
const SettleDelay = 35 * time.Second

// Schedule polls a pending or incomplete refund after 10 s, doubling to
// every 15 minutes, for three days: card refunds are normally answered at
// once, and a pending one waits on the acquirer, which can take a weekend.
var Schedule = providers.Schedule{First: 10 * time.Second, Max: 15 * time.Minute, Horizon: 72 * time.Hour}

// Config configures the adapter.
type Config struct {
	BaseURL    string // default DefaultURL
	ShopID     string // HTTP Basic user
	SecretKey  string // HTTP Basic password
	HTTPClient *http.Client
}

// Client is the ecomCharge adapter; it implements providers.Provider.
type Client struct {
	base, shop, secret string
	hc                 *http.Client
}

// New returns an adapter. Shop id and secret key are required: a
// *providers.MissingError names the unset variables.
func New(cfg Config) (*Client, error) {
	shop, secret := strings.TrimSpace(cfg.ShopID), strings.TrimSpace(cfg.SecretKey)
	if err := providers.Require(providers.EcomCharge, EnvShopID, shop, EnvSecretKey, secret); err != nil {
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
	return &Client{base: base, shop: shop, secret: secret, hc: hc}, nil
}

// Entry returns ecomCharge's registry entry from ECOMCHARGE_BASE_URL,
// ECOMCHARGE_SHOP_ID and ECOMCHARGE_SECRET_KEY: disabled, with Missing set,
// when a credential is unset; with Err set when the base URL is unusable.
// It is not Keyless: the tracking_id is a key of ours, once confirmed.
func Entry(getenv func(string) string) providers.Entry {
	e := providers.Entry{Name: providers.EcomCharge, Schedule: Schedule, Check: Check,
		SettleDelay: SettleDelay, Guesses: Guesses}
	c, err := New(Config{BaseURL: getenv(EnvBaseURL), ShopID: getenv(EnvShopID), SecretKey: getenv(EnvSecretKey)})
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
	TrackingID      string       `json:"tracking_id"` // guess: not on the refund page
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

// Refund sends the refund with duplicate_check on and r.Key as tracking_id.
// While GuessTracking is open, a success whose answer does not show our
// tracking_id is followed by one look-up by it, to learn the guess.
func (c *Client) Refund(ctx context.Context, r providers.Refund) providers.Outcome {
	if strings.TrimSpace(r.TransactionID) == "" {
		return providers.Outcome{Kind: providers.Rejected, Reason: "ecomcharge needs transaction_id: the parent payment uid (nothing sent)"}
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
	out, probe := refundOutcome(resp, r)
	if probe && r.Known.Open(GuessTracking) && r.Key != "" {
		c.learnTracking(ctx, r.Key, out.Reference, &out)
	}
	return out
}

// learnTracking looks our refund up by tracking_id right after ecomCharge
// answered it successful without showing the tracking_id: the refund is
// there to be listed, so our uid in the list confirms GuessTracking and an
// empty list refutes it. Anything else teaches nothing. A refutation that
// was only a slow index costs look-ups that stay Unknown (fail closed), never
// a resend; an operator can clear it.
func (c *Client) learnTracking(ctx context.Context, key, uid string, out *providers.Outcome) {
	resp, err := c.do(ctx, http.MethodGet, trackingPath+url.PathEscape(key), nil)
	if err != nil || resp.Status != http.StatusOK {
		return
	}
	list, ok := parseList(resp.Body)
	switch {
	case !ok:
	case len(list) == 0:
		out.Observe(GuessTracking, false, "refund "+uid+" succeeded without echoing our tracking_id, and the look-up by tracking_id right after lists nothing")
	default:
		for _, t := range list {
			if t.UID == uid {
				out.Observe(GuessTracking, true, "the look-up by tracking_id lists refund "+uid)
				return
			}
		}
	}
}

// Lookup lists the transactions carrying our tracking id and classifies our
// refund among them. A list without a refund of ours is NotFound only once
// GuessTracking is confirmed (r.Known); before that it is Unknown.
func (c *Client) Lookup(ctx context.Context, r providers.Refund) providers.Outcome {
	if strings.TrimSpace(r.Key) == "" {
		return providers.Outcome{Kind: providers.Unknown, Reason: "refund has no key (tracking_id) to look it up by"}
	}
	resp, err := c.do(ctx, http.MethodGet, trackingPath+url.PathEscape(r.Key), nil)
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
// answer is a success that does not show whether our tracking_id was kept.
func refundOutcome(resp *providers.Response, r providers.Refund) (out providers.Outcome, probe bool) {
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
		out = classify(t, r, out)
		if t.Status == statusSuccessful {
			if t.TrackingID == r.Key && r.Key != "" {
				out.Observe(GuessTracking, true, "refund answer "+t.UID+" echoes our tracking_id")
			} else {
				probe = true
			}
		}
		return out, probe
	}
	e, ok := parseError(resp.Body)
	switch {
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

// lookupOutcome classifies the answer to a look-up by tracking id.
func lookupOutcome(resp *providers.Response, r providers.Refund) providers.Outcome {
	out := providers.Outcome{HTTPStatus: resp.Status, RequestID: resp.RequestID()}
	switch {
	case resp.Status == http.StatusTooManyRequests:
		out.Kind, out.RetryAfter, out.Reason = providers.Transient, providers.RetryAfter(resp.Header), "look-up rate limited by ecomCharge"
		return out
	case resp.Status == http.StatusUnauthorized || resp.Status == http.StatusForbidden:
		o := authOutcome(resp.Status)
		o.RequestID = out.RequestID
		return o
	case resp.Status != http.StatusOK:
		// 5xx and even a 404 prove nothing: "none" is a 200 with an empty list.
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
	var best *transaction
	var others, dups int
	for i := range list {
		t := &list[i]
		switch {
		case notOurs(*t, r) != "":
			others++
		case t.Status == statusFailed && isDuplicate(t.Message+" "+t.FriendlyMessage, t.Code):
			dups++ // a resend duplicate_check refused: it moved nothing
		case best == nil || rank(t.Status) > rank(best.Status):
			best = t
		}
	}
	if best != nil || dups > 0 {
		// ecomCharge listed a refund of ours under our tracking_id.
		out.Observe(GuessTracking, true, "the look-up by tracking_id lists a refund of ours")
	}
	switch {
	case best != nil:
		obs := out.Observed
		out = classify(*best, r, out)
		out.Observed = obs
	case others > 0:
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("look-up by tracking_id %s lists %d transaction(s) that are not a refund of ours", r.Key, others)
	case !r.Known.Holds(GuessTracking):
		// Only what the worker has recorded counts as confirmed, not what
		// this very answer suggests (a refused duplicate kept with our
		// tracking_id says little about successful refunds).
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("look-up by tracking_id %s lists no refund of ours, but that ecomCharge keeps tracking_id on refunds is %s (guess %s): proves nothing",
			r.Key, verdict(r.Known, GuessTracking), GuessTracking)
	default:
		out.Kind, out.Reason = providers.NotFound, "no refund with tracking_id "+r.Key
		if dups > 0 {
			out.Reason += fmt.Sprintf(" (only %d duplicate_check refusal(s), which moved nothing)", dups)
		}
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
