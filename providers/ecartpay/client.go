// Package ecartpay is the adapter for Ecart Pay (Mexico) refunds. Every Ecart
// Pay fact lives here.
//
// Documented (shared/provider-docs/ecartpay-refund.txt and Ecart Pay's
// reference): POST /api/orders/{id}/refund with {"amount": <decimal in major
// units>, "reason": requested|duplicate|fraudulent}, sent with a one-hour
// token from POST /api/authorizations/token (HTTP Basic with the key pair),
// raw in Authorization, no "Bearer". The answer is the whole order: status
// (created, paid, refunded, partially_refunded), totals in major units, ONE
// refund_id, updated_at, currency, and payments.data[] in minor units. The
// order is read with GET /api/orders/{id}. Cash and very old payments cannot
// be refunded. Nothing else is documented: not a refund key of ours, not a
// per-refund endpoint, not a list of the order's refunds, not the error body.
//
// Ecart Pay is keyless (Entry.Keyless): a refund whose answer was lost can
// only be judged by comparing the order with what it was just before the
// send. Prepare reads the order before every send and returns a snapshot of
// what a refund moves (status, refund_id, totals.total, updated_at, currency,
// and the refunds list where the order has one); Lookup compares the order
// with it. Unchanged is NotFound (the worker believes it only from two
// look-ups SettleDelay apart); a change only our refund explains is
// Succeeded; a change that contradicts our refund is Review; anything else
// is Unknown, with both states in the reason for a human.
//
// Prepare also refuses to send while the order shows a refund refundq cannot
// explain (see Prepare): one that is neither another refund of ours
// (OtherRefs) nor already there before an earlier attempt of this refund.
// Before a first send, such a refund is what a Redis that lost an
// acknowledged "attempt in flight" mark leaves behind: this refund's own
// attempt, paid.
// Sending again would pay a partial refund twice, and turn a full one into a
// refusal. A refusal of a send is checked against the order too: it stands
// only if the order is unchanged since the read before the send.
//
// Guesses, checked at run time (see Guesses):
//   - ecartpay.order_refunds: the order lists its refunds as {id, amount}.
//     Learned from refund answers (the new refund_id listed with our amount
//     confirms it; no `refunds` key refutes it). Confirmed, it lets a lost
//     partial refund be proven (exactly one new entry, of our amount) and
//     checks every refund's amount. Unconfirmed, only a full refund of a
//     paid order (paid → refunded, our amount equal to the total) is proven;
//     a partial one stays Unknown.
//
// Read but not declared as a guess, because a refund answer cannot confirm
// them: an error body {"message": "..."} (a 4xx without one is Unknown), and
// that a refund moves refund_id and updated_at (the two documented examples
// show refund_id set after a refund; an order that changed nothing is read as
// "not applied", and only after the settle rules).
package ecartpay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/tasks"
)

// SandboxURL is Ecart Pay's sandbox; live is https://ecartpay.com (a guess).
const SandboxURL = "https://sandbox.ecartpay.com"

var (
	tokenPath = "/api/authorizations/token"
	// TokenLifetime is how long a token is valid (one hour, documented);
	// it is renewed tokenMargin before that.
	TokenLifetime = time.Hour
	tokenMargin   = 5 * time.Minute
	// Reasons are the refund reasons Ecart Pay accepts.
	Reasons = []string{"requested", "duplicate", "fraudulent"}
)

// credentialVars names what to check when Ecart Pay refuses our credentials.
const credentialVars = "ECARTPAY_PUBLIC_KEY and ECARTPAY_PRIVATE_KEY"

// Schedule: Ecart Pay documents no pending refund state; a schedule is kept
// for uniformity should one appear.
var Schedule = providers.Schedule{First: 10 * time.Second, Max: 10 * time.Minute, Horizon: 24 * time.Hour}

// Config configures the adapter.
type Config struct {
	BaseURL               string // default SandboxURL
	PublicKey, PrivateKey string // exchanged for a token with HTTP Basic
	HTTPClient            *http.Client
}

// Client is the Ecart Pay adapter; it implements providers.Provider and
// providers.Preparer.
type Client struct {
	base, public, private string
	hc                    *http.Client

	mu      sync.Mutex
	token   string
	expires time.Time
}

// New returns an adapter; both keys are required.
func New(cfg Config) (*Client, error) {
	pub, priv := strings.TrimSpace(cfg.PublicKey), strings.TrimSpace(cfg.PrivateKey)
	if err := providers.Require(providers.EcartPay, "ECARTPAY_PUBLIC_KEY", pub, "ECARTPAY_PRIVATE_KEY", priv); err != nil {
		return nil, err
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = SandboxURL
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = providers.HTTPClient()
	}
	return &Client{base: strings.TrimRight(cfg.BaseURL, "/"), public: pub, private: priv, hc: cfg.HTTPClient}, nil
}

// Entry returns Ecart Pay's registry entry from ECARTPAY_BASE_URL,
// ECARTPAY_PUBLIC_KEY and ECARTPAY_PRIVATE_KEY. Ecart Pay keeps no key of
// ours with a refund: the entry is Keyless.
func Entry(getenv func(string) string) providers.Entry {
	e := providers.Entry{Name: providers.EcartPay, Schedule: Schedule, Check: Check, Keyless: true, Guesses: Guesses}
	c, err := New(Config{BaseURL: strings.TrimSpace(getenv("ECARTPAY_BASE_URL")),
		PublicKey: getenv("ECARTPAY_PUBLIC_KEY"), PrivateKey: getenv("ECARTPAY_PRIVATE_KEY")})
	var me *providers.MissingError
	if errors.As(err, &me) {
		e.Missing = me.Vars
		return e
	}
	e.Provider = c
	return e
}

// Check is Ecart Pay's enqueue-time rule: the reason is one Ecart Pay
// accepts. An empty reason is sent as "requested".
func Check(r tasks.Refund) error {
	if r.Reason == "" || slices.Contains(Reasons, r.Reason) {
		return nil
	}
	return fmt.Errorf("reason %q: Ecart Pay accepts only %s", r.Reason, strings.Join(Reasons, ", "))
}

func orderPath(id string) string { return "/api/orders/" + url.PathEscape(id) }

// Prepare reads the order just before a send and returns the snapshot
// Lookup compares with. Nothing is sent when:
//
//	the order cannot be read                        Transient (429, 5xx, no answer: a read changes nothing)
//	  … Ecart Pay says it has no such order          Rejected
//	the answer is not an order                      Transient
//	the order is in another currency                Rejected (the request carries none: Ecart Pay would pay the order's)
//	it lacks what a lost answer is judged by        Review (what is missing and what was read, for a human)
//	it shows a refund refundq cannot explain        Review
//
// A refund refundq cannot explain is one that is neither another refund of
// ours (r.OtherRefs) nor on the order already before an earlier attempt of
// this refund (r.Before: that Prepare judged it, and a look-up has since
// shown the attempt not applied). It may be this refund's own earlier
// attempt whose record was lost, so the refund is not sent; and since it may
// also be a refund made elsewhere (the dashboard), it is not failed either: a
// human decides. No other refund of ours is in flight on the order then: the
// worker holds the order for this refund before it calls Prepare, and every
// other refund of ours that moved the order has its reference recorded.
// With the refunds list confirmed (GuessOrderRefunds),
// such a refund of another amount than ours is not this refund's (every
// attempt asks the same amount) and does not stop a new partial refund; an
// earlier partial refund of ours never does.
func (c *Client) Prepare(ctx context.Context, r providers.Refund) ([]byte, providers.Outcome, bool) {
	resp, out, ok := c.call(ctx, http.MethodGet, orderPath(r.OrderID), nil)
	if !ok {
		if out.Kind == providers.Unknown {
			out.Kind = providers.Transient // a read changes nothing
		}
		out.Reason = "reading the order before the send: " + out.Reason
		return nil, out, false
	}
	out = providers.Outcome{Kind: providers.Transient, HTTPStatus: resp.Status, RequestID: resp.RequestID()}
	if resp.Status != http.StatusOK {
		msg, parsed := errorMessage(resp.Body)
		switch {
		case resp.Status == http.StatusTooManyRequests:
			out.RetryAfter, out.Reason = providers.RetryAfter(resp.Header), "reading the order before the send: rate limited"
		case resp.Status == http.StatusNotFound && parsed:
			out.Kind, out.Reason = providers.Rejected, "order not found at Ecart Pay: "+msg
		default:
			out.Reason = fmt.Sprintf("reading the order before the send: HTTP %d: %s", resp.Status, providers.Snippet(resp.Body))
		}
		return nil, out, false
	}
	o, err := parseOrder(resp.Body)
	if err != nil {
		out.Reason = "reading the order before the send: " + err.Error()
		return nil, out, false
	}
	if o.Currency != "" && o.Currency != r.Amount.Currency {
		out.Kind, out.Reason = providers.Rejected, currencyReason(o.Currency, r.Amount)
		return nil, out, false
	}
	s, err := o.snap()
	if err != nil {
		out.Kind, out.Reason = providers.Review, fmt.Sprintf("nothing sent: a lost answer could not be judged, because %s; read %s", err, s)
		return nil, out, false
	}
	if found := mayBeOurs(strangers(s, r), r.Amount); len(found) > 0 {
		desc := describe(found)
		out.Kind, out.Reason = providers.Review, fmt.Sprintf("nothing sent: the order shows %s, which no attempt refundq recorded explains: "+
			"it may be this refund's own earlier attempt whose record was lost (the customer is then paid), or a refund made "+
			"elsewhere; a human decides; read %s", desc, s)
		return nil, out, false
	}
	b, _ := json.Marshal(s)
	return b, providers.Outcome{}, true
}

func currencyReason(orderCurrency string, asked tasks.Money) string {
	return fmt.Sprintf("the order is in %s, the refund in %s (Ecart Pay refunds in the order's currency); nothing sent", orderCurrency, asked.Currency)
}

// Refund asks for the refund and checks the order it answers with (see
// judgeRefund); the token is fetched, cached and renewed here.
func (c *Client) Refund(ctx context.Context, r providers.Refund) providers.Outcome {
	var before *snapshot
	if s, err := readSnapshot(r.Before); err == nil {
		if s.Currency != r.Amount.Currency {
			return providers.Outcome{Kind: providers.Rejected, Reason: currencyReason(s.Currency, r.Amount)}
		}
		before = &s
	}
	reason := r.Reason
	if reason == "" {
		reason = Reasons[0]
	}
	body, _ := json.Marshal(map[string]any{"amount": json.Number(r.Amount.Decimal()), "reason": reason})
	resp, out, ok := c.call(ctx, http.MethodPost, orderPath(r.OrderID)+"/refund", body)
	if !ok {
		return out
	}
	if resp.Status != http.StatusOK && resp.Status != http.StatusCreated {
		out = refundError(resp, r.Attempt)
		out.RequestID = resp.RequestID()
		if out.Kind == providers.Rejected && resp.Status != http.StatusNotFound {
			out = c.checkRefusal(ctx, r, out)
		}
		return out
	}
	o, err := parseOrder(resp.Body)
	if err != nil {
		return providers.Outcome{Kind: providers.Unknown, HTTPStatus: resp.Status, RequestID: resp.RequestID(), Reason: err.Error()}
	}
	out = judgeRefund(o, before, r)
	out.HTTPStatus, out.RequestID = resp.Status, resp.RequestID()
	return out
}

// checkRefusal reads the order after a refusal. Ecart Pay's refusals are
// undocumented, and one such as "exceeds the refundable amount" may be the
// echo of a refund of ours that reached the order after the read before the
// send (an earlier attempt applied late). The refusal stands only when the
// order is unchanged since that read; otherwise, or when the order cannot be
// read or compared, it is Unknown, and the worker looks up before anything
// else (a look-up that finds our refund makes it Succeeded, never failed).
// A 404 (no such order) needs no check: no refund of ours is on it.
func (c *Client) checkRefusal(ctx context.Context, r providers.Refund, refused providers.Outcome) providers.Outcome {
	unknown := func(why string) providers.Outcome {
		refused.Kind = providers.Unknown
		refused.Reason += "; but " + why + ": the refusal may be the echo of a refund of ours, so the order is looked up"
		return refused
	}
	before, err := readSnapshot(r.Before)
	if err != nil {
		return unknown(err.Error())
	}
	resp, _, ok := c.call(ctx, http.MethodGet, orderPath(r.OrderID), nil)
	if !ok || resp.Status != http.StatusOK {
		return unknown("the order could not be read after it")
	}
	o, err := parseOrder(resp.Body)
	if err != nil {
		return unknown("the order read after it is unreadable")
	}
	now, err := o.snap()
	switch {
	case err != nil:
		return unknown(fmt.Sprintf("after it, %s", err))
	case !before.sameAs(now):
		return unknown(fmt.Sprintf("the order changed since the read before the send (before %s, now %s)", before, now))
	}
	refused.Reason += "; the order is unchanged since the read before the send"
	return refused
}

// call sends an API request with the cached token; on a 401 it fetches a new
// token and tries once more (a 401 was not applied). ok is false with a
// classified outcome when no API answer was had: Blocked for credentials
// refused, Transient when nothing was sent, Unknown when it may have been.
func (c *Client) call(ctx context.Context, method, path string, body []byte) (*providers.Response, providers.Outcome, bool) {
	for try := 0; ; try++ {
		tok, out, ok := c.getToken(ctx, try > 0)
		if !ok {
			return nil, out, false
		}
		req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
		if err != nil {
			return nil, providers.Outcome{Kind: providers.Transient, Reason: err.Error()}, false
		}
		req.Header.Set("Authorization", tok) // no "Bearer": Ecart Pay wants the raw token
		req.Header.Set("Accept", "application/json")
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := providers.Do(ctx, c.hc, req)
		if err != nil {
			return nil, providers.TransportOutcome(err), false
		}
		switch {
		case resp.Status == http.StatusUnauthorized && try == 0:
			continue
		case resp.Status == http.StatusUnauthorized || resp.Status == http.StatusForbidden:
			return nil, providers.Outcome{Kind: providers.Blocked, HTTPStatus: resp.Status, RequestID: resp.RequestID(),
				Reason: fmt.Sprintf("authentication refused (HTTP %d with a fresh token): check %s", resp.Status, credentialVars)}, false
		}
		return resp, providers.Outcome{}, true
	}
}

// getToken returns the cached token, or a new one when it is near expiry
// or force is set. Nothing has been sent to the refund API yet, so a failure
// here is Transient (or Blocked for keys refused).
func (c *Client) getToken(ctx context.Context, force bool) (string, providers.Outcome, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !force && c.token != "" && time.Until(c.expires) > tokenMargin {
		return c.token, providers.Outcome{}, true
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+tokenPath, nil)
	if err != nil {
		return "", providers.Outcome{Kind: providers.Transient, Reason: err.Error()}, false
	}
	req.SetBasicAuth(c.public, c.private)
	start := time.Now()
	resp, err := providers.Do(ctx, c.hc, req)
	if err != nil {
		return "", providers.Outcome{Kind: providers.Transient, Reason: "token: " + err.Error()}, false
	}
	switch {
	case resp.Status == http.StatusUnauthorized || resp.Status == http.StatusForbidden:
		return "", providers.Outcome{Kind: providers.Blocked, HTTPStatus: resp.Status,
			Reason: fmt.Sprintf("authentication failed (HTTP %d on the token request): check %s", resp.Status, credentialVars)}, false
	case resp.Status == http.StatusTooManyRequests:
		return "", providers.Outcome{Kind: providers.Transient, HTTPStatus: resp.Status, RetryAfter: providers.RetryAfter(resp.Header), Reason: "token: rate limited"}, false
	case resp.Status != http.StatusOK && resp.Status != http.StatusCreated:
		return "", providers.Outcome{Kind: providers.Transient, HTTPStatus: resp.Status, Reason: fmt.Sprintf("token: HTTP %d", resp.Status)}, false
	}
	var t struct {
		Token string `json:"token"`
	}
	if json.Unmarshal(resp.Body, &t) != nil || t.Token == "" {
		return "", providers.Outcome{Kind: providers.Transient, HTTPStatus: resp.Status, Reason: "token: unreadable answer"}, false
	}
	c.token, c.expires = t.Token, start.Add(TokenLifetime)
	return c.token, providers.Outcome{}, true
}

// errorMessage reads Ecart Pay's error body. Its format is undocumented;
// {"message": "..."} is a guess, so ok is false for anything else.
func errorMessage(body []byte) (string, bool) {
	var e struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &e) != nil || strings.TrimSpace(e.Message) == "" {
		return "", false
	}
	return e.Message, true
}

// refundError classifies a refund call's answer other than 200/201 (401/403
// are handled in call). Rejected only for a refusal the provider worded: a
// 400/404/409/422 whose body carries a message; anything else may have been
// applied or says nothing, so it is Unknown (429: Transient). On a resend
// the reason says an earlier attempt may be the cause; the worker looks up
// before believing it.
func refundError(resp *providers.Response, attempt int) providers.Outcome {
	out := providers.Outcome{Kind: providers.Unknown, HTTPStatus: resp.Status,
		Reason: fmt.Sprintf("HTTP %d: %s", resp.Status, providers.Snippet(resp.Body))}
	msg, parsed := errorMessage(resp.Body)
	switch {
	case resp.Status == http.StatusTooManyRequests:
		out.Kind, out.RetryAfter, out.Reason = providers.Transient, providers.RetryAfter(resp.Header), "rate limited by Ecart Pay"
	case !parsed:
	case resp.Status == http.StatusNotFound:
		out.Kind, out.Reason = providers.Rejected, "order not found at Ecart Pay: "+msg
	case resp.Status == http.StatusBadRequest || resp.Status == http.StatusConflict || resp.Status == http.StatusUnprocessableEntity:
		out.Kind, out.Reason = providers.Rejected, fmt.Sprintf("Ecart Pay refused (HTTP %d): %s", resp.Status, msg)
	}
	if out.Kind == providers.Rejected && attempt > 1 {
		out.Reason += " (after an earlier attempt, which may have been applied)"
	}
	return out
}
