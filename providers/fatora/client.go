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
	"strconv"
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

// The guesses, one per refund status: Fatora's verify page shows no refund
// field, and a verify that shows refunds in one status proves nothing of
// the other.
const (
	// GuessVerifyShowsCompleted: verify shows a payment's completed refund
	// as refund_status "completed". (Its name predates the split; what is
	// stored under it was learned from completed refunds.)
	GuessVerifyShowsCompleted providers.Guess = "fatora.verify_refund_status"
	// GuessVerifyShowsProcessing: verify shows a payment's refund that the
	// bank is still processing as refund_status "under_proccession".
	GuessVerifyShowsProcessing providers.Guess = "fatora.verify_refund_status.under_proccession"
)

// Guesses are the undocumented facts the adapter relies on.
var Guesses = []providers.GuessInfo{{
	Guess: GuessVerifyShowsCompleted,
	Means: "verify (/v1/payments/verify) shows a payment's completed refund as refund_status \"completed\". Confirmed only by " +
		"a verify that shows a completed refund (one is made right after a refund answered completed); a verify then without " +
		"refund_status refutes it. With " + string(GuessVerifyShowsProcessing) + " it lets a paid payment without refund_status " +
		"prove that no refund of ours exists; until both are confirmed, such a verify is unknown, and a refund whose answer " +
		"was lost is left for a human rather than resent.",
}, {
	Guess: GuessVerifyShowsProcessing,
	Means: "verify shows a payment's refund while the bank still processes it (2-4 weeks) as refund_status " +
		"\"under_proccession\". Confirmed only by a verify that shows an under_proccession refund (one is made right after a " +
		"refund answered under_proccession; a verify then without refund_status refutes it); a verify that shows completed " +
		"refunds says nothing of it. Until confirmed, a paid payment without refund_status is unknown: a refund whose " +
		"answer was lost may be at the bank.",
}}

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

type ids struct {
	TransactionID string `json:"transaction_id"`
	OrderID       string `json:"order_id"`
}

// envelope is every Fatora answer: status SUCCESS with a result, or ERROR
// with an error that is an object or a plain string.
type envelope struct {
	Status string          `json:"status"`
	Result json.RawMessage `json:"result"`
	Error  json.RawMessage `json:"error"`
}

// refundResult is the documented refund answer's result.
type refundResult struct {
	RefundStatus        string          `json:"refund_status"`
	Mode                string          `json:"mode"`
	RefundTransactionID json.RawMessage `json:"refund_transaction_id"`
}

// verifyResult is what the adapter reads of verify's result. PaymentStatus,
// Amount and Currency are documented; RefundStatus and RefundTransactionID
// are the guess GuessVerifyRefundStatus (nil when absent).
type verifyResult struct {
	Mode                string          `json:"mode"`
	PaymentStatus       *string         `json:"payment_status"`
	Amount              json.Number     `json:"amount"`
	Currency            string          `json:"currency"`
	RefundStatus        *string         `json:"refund_status"`
	RefundTransactionID json.RawMessage `json:"refund_transaction_id"`
}

func (v verifyResult) refundStatus() string   { return deref(v.RefundStatus) }
func (v verifyResult) paymentStatus() string  { return deref(v.PaymentStatus) }
func (v verifyResult) showsRefundField() bool { return v.RefundStatus != nil && *v.RefundStatus != "" }

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// paid is the payment's amount as verify shows it; Fatora writes decimals
// with trailing zeros ("123.100" QAR), read leniently.
func (v verifyResult) paid() (tasks.Money, error) {
	m, err := tasks.ParseProviderAmount(v.Amount.String(), v.Currency)
	if err == nil && m.Minor <= 0 {
		err = errors.New("amount is zero")
	}
	if err != nil {
		return tasks.Money{}, fmt.Errorf("verify shows no usable amount (%q %q): %w", v.Amount, v.Currency, err)
	}
	return m, nil
}

// Refund verifies the payment, refuses a partial amount or an already
// refunded payment before anything is sent, then asks for the refund.
func (c *Client) Refund(ctx context.Context, r providers.Refund) providers.Outcome {
	v, out, ok := c.verify(ctx, r)
	if !ok {
		// Nothing was sent yet: a failed verify can always be retried.
		if out.Kind == providers.Unknown {
			out.Kind = providers.Transient
		}
		return out
	}
	if v.showsRefundField() {
		observeShown(&out, v, "verify before a send")
		out.Status = v.refundStatus()
		if r.Attempt > 1 {
			// An earlier attempt of ours may be that refund: look it up,
			// do not call it a refusal.
			out.Kind, out.Reason = providers.Unknown, fmt.Sprintf(
				"verify shows the payment refunded (refund_status %q) before attempt %d: likely an earlier attempt's; look it up",
				v.refundStatus(), r.Attempt)
			return out
		}
		out.Kind, out.Reason = providers.Rejected, fmt.Sprintf(
			"the payment is already refunded (refund_status %q); Fatora refunds a payment once", v.refundStatus())
		return out
	}
	paid, err := v.paid()
	if err != nil {
		out.Kind, out.Reason = providers.Transient, err.Error()+"; nothing sent"
		return out
	}
	if err := wholePayment(paid, r.Amount); err != nil {
		out.Kind, out.Reason = providers.Rejected, err.Error()
		return out
	}
	resp, err := c.post(ctx, refundPath, r)
	if err != nil {
		return providers.TransportOutcome(err)
	}
	env, o := parse(resp)
	if o.Kind != providers.Succeeded {
		return refusal(o, resp.Status, env, r.Attempt)
	}
	var rr refundResult
	if err := json.Unmarshal(env.Result, &rr); err != nil {
		return providers.Outcome{Kind: providers.Unknown, HTTPStatus: resp.Status, RequestID: o.RequestID,
			Reason: "unreadable refund result: " + providers.Snippet(resp.Body)}
	}
	out = providers.Outcome{HTTPStatus: resp.Status, RequestID: o.RequestID, Status: rr.RefundStatus, Reference: idText(rr.RefundTransactionID)}
	if kind, reason, ok := c.checkMode(rr.Mode); !ok {
		// Applied, if at all, in the other mode: by a test key, nothing
		// was paid; by a live key in a test configuration, a human must
		// see it before anything else is sent.
		if kind == providers.Unknown {
			reason += "; the refund may have been applied"
		}
		out.Kind, out.Reason = kind, reason
		return out
	}
	switch rr.RefundStatus {
	case refundCompleted:
		// The answer carries no amount: the verify above showed the
		// payment is exactly what we asked, and Fatora refunds it whole.
		out.Kind = providers.Succeeded
		if r.Known.Open(GuessVerifyShowsCompleted) {
			c.learn(ctx, r, &out, GuessVerifyShowsCompleted)
		}
	case refundProcessing:
		out.Kind, out.Reason = providers.Pending, "the bank is processing the refund (can take 2-4 weeks)"
		if r.Known.Open(GuessVerifyShowsProcessing) {
			c.learn(ctx, r, &out, GuessVerifyShowsProcessing)
		}
	default:
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("undocumented refund_status %q", rr.RefundStatus)
	}
	return out
}

// learn makes one verify right after a refund answered in the status guess
// g is about: the payment has a refund in that status now, so verify shows
// it (g holds) or, showing no refund field, does not show refunds in that
// status (g refuted). A verify that shows the refund in the other status
// (it completed meanwhile) says something of that status only.
func (c *Client) learn(ctx context.Context, r providers.Refund, out *providers.Outcome, g providers.Guess) {
	v, _, ok := c.verify(ctx, r)
	status := map[providers.Guess]string{GuessVerifyShowsCompleted: refundCompleted, GuessVerifyShowsProcessing: refundProcessing}[g]
	switch {
	case !ok:
		// No answer: nothing learned this time.
	case v.showsRefundField():
		observeShown(out, v, fmt.Sprintf("verify after a refund answered %s", status))
	case v.PaymentStatus != nil:
		out.Observe(g, false, fmt.Sprintf(
			"verify after a refund answered %s shows payment_status %q and no refund_status", status, v.paymentStatus()))
	}
}

// observeShown records what a verify that shows a refund field proves: that
// verify shows refunds in the status it shows, and nothing of the other.
func observeShown(out *providers.Outcome, v verifyResult, what string) {
	switch v.refundStatus() {
	case refundCompleted:
		out.Observe(GuessVerifyShowsCompleted, true, fmt.Sprintf("%s shows refund_status %q", what, v.refundStatus()))
	case refundProcessing:
		out.Observe(GuessVerifyShowsProcessing, true, fmt.Sprintf("%s shows refund_status %q", what, v.refundStatus()))
	}
}

// showsEveryRefund reports whether what refundq has learned lets a verify
// without refund_status prove that the payment has no refund: verify has
// been seen to show refunds in both statuses a refund can be in.
func showsEveryRefund(k providers.Knowledge) bool {
	return k.Holds(GuessVerifyShowsCompleted) && k.Holds(GuessVerifyShowsProcessing)
}

// refusal classifies a documented refusal of a refund call. A refusal that
// says the payment already has a refund, or one under process, is evidence
// that a refund exists: Fatora refunds a payment once and refundq sends one
// refund of its own per order, so after an earlier attempt of ours that
// refund is most likely ours. It is then Pending (under process: poll, the
// bank may take weeks) or Unknown (look it up), never a refusal the worker
// could fail the refund on. Only on the first attempt, when nothing of this
// refund was ever sent (the worker records each attempt before it leaves),
// is it a refusal of this refund: the payment was refunded before it.
func refusal(o providers.Outcome, status int, env envelope, attempt int) providers.Outcome {
	if o.Kind != providers.Rejected {
		return o
	}
	msg := errorText(env.Error)
	exists, processing := refundExists(status, msg)
	switch {
	case !exists:
		if status == http.StatusNotFound {
			o.Reason = fmt.Sprintf("Fatora refused: payment not found (HTTP %d): %s", status, msg)
		}
	case attempt > 1 && processing:
		o.Kind, o.Reason = providers.Pending, fmt.Sprintf("Fatora says a refund of the payment is already under process "+
			"(HTTP %d: %s): an earlier attempt of ours, at the bank (2-4 weeks); poll it, never send it again", status, msg)
	case attempt > 1:
		o.Kind, o.Reason = providers.Unknown, fmt.Sprintf("Fatora says the payment already has a refund (HTTP %d: %s): "+
			"likely an earlier attempt of ours; look it up", status, msg)
	default:
		o.Reason = fmt.Sprintf("Fatora refused: the payment already has a refund (HTTP %d: %s), made before refundq's "+
			"first attempt of this refund (outside refundq, or by an earlier refund of this order); Fatora refunds a payment once",
			status, msg)
	}
	return o
}

// refundExists reads a refusal for what it says about a refund of the
// payment: exists when it says one exists (HTTP 409, "already refunded",
// "already under process", "refund exists", …), processing when it says
// one is still being processed. Read broadly on purpose: after an earlier
// attempt a wrong "exists" only makes the worker look before it acts.
func refundExists(status int, msg string) (exists, processing bool) {
	m := strings.ToLower(msg)
	has := func(words ...string) bool {
		for _, w := range words {
			if strings.Contains(m, w) {
				return true
			}
		}
		return false
	}
	processing = has("under process", "under_process", "under proccess", "under_proccession", "in process", "processing",
		"in progress", "pending")
	exists = processing || status == http.StatusConflict || has("already", "refunded", "duplicate") ||
		(has("refund") && has("exist"))
	return exists, processing
}

// prepared is what Prepare read of the payment, kept with the attempt for
// the refund's history.
type prepared struct {
	PaymentStatus string `json:"payment_status,omitempty"`
	Amount        string `json:"amount"`
	Currency      string `json:"currency"`
	RefundStatus  string `json:"refund_status,omitempty"`
}

// Prepare reads the payment through verify just before each send and
// refuses (Rejected: nothing was sent) a refund that is not the whole
// payment in the payment's currency: Fatora's refund request carries
// neither, and refunds the whole payment in its own currency. A failed read
// is Transient, a refused key or an answer in the other mode Blocked.
// Refund checks the same again right before it sends.
func (c *Client) Prepare(ctx context.Context, r providers.Refund) ([]byte, providers.Outcome, bool) {
	v, out, ok := c.verify(ctx, r)
	if !ok {
		switch {
		case out.Kind == providers.Blocked:
		case out.Kind == providers.Rejected && r.Attempt == 0:
			// Fatora refused the payment's ids, and no attempt of ours
			// was ever sent.
		case out.Kind == providers.Rejected:
			// After an attempt of ours, a refusal of verify proves
			// nothing of it: Refund reads again and the worker looks up.
			return nil, providers.Outcome{}, true
		default:
			out.Kind = providers.Transient
			out.Reason = "reading the payment before the send: " + out.Reason
		}
		return nil, out, false
	}
	paid, err := v.paid()
	if err != nil {
		out.Kind, out.Reason = providers.Transient, err.Error()+"; nothing sent"
		return nil, out, false
	}
	if err := wholePayment(paid, r.Amount); err != nil {
		out.Kind, out.Reason = providers.Rejected, err.Error()+"; nothing sent"
		return nil, out, false
	}
	before, _ := json.Marshal(prepared{PaymentStatus: v.paymentStatus(), Amount: v.Amount.String(), Currency: v.Currency,
		RefundStatus: v.refundStatus()})
	return before, out, true
}

// Precheck refuses, at enqueue time, a refund that is not the whole payment
// (amount and currency), as Prepare and Refund would before sending. Any
// answer short of a readable payment decides nothing. The mode is not
// compared here: refusing to enqueue sends nothing, and the worker checks
// the mode before any send.
func (c *Client) Precheck(ctx context.Context, r providers.Refund) error {
	v, _, ok := c.read(ctx, r)
	if !ok {
		return nil
	}
	paid, err := v.paid()
	if err != nil {
		return nil
	}
	return wholePayment(paid, r.Amount)
}

func wholePayment(paid, asked tasks.Money) error {
	if paid.Currency != asked.Currency {
		return fmt.Errorf("Fatora refunds a payment in its own currency: the payment is %s, the refund asks %s", paid, asked)
	}
	if paid != asked {
		return fmt.Errorf("Fatora refunds whole payments only: the payment is %s, the refund asks %s", paid, asked)
	}
	return nil
}

// Lookup reads the payment through verify.
func (c *Client) Lookup(ctx context.Context, r providers.Refund) providers.Outcome {
	v, out, ok := c.verify(ctx, r)
	if !ok {
		if out.Kind == providers.Rejected {
			// A 400/404/409/422 of verify says nothing about our refund.
			out.Kind = providers.Unknown
		}
		return out
	}
	return lookupOutcome(v, r, out)
}

// lookupOutcome classifies a verify answer for a look-up.
func lookupOutcome(v verifyResult, r providers.Refund, out providers.Outcome) providers.Outcome {
	out.Status = v.refundStatus()
	switch {
	case v.showsRefundField():
		observeShown(&out, v, "verify")
		switch v.refundStatus() {
		case refundCompleted:
			paid, err := v.paid()
			switch {
			case err != nil:
				out.Kind, out.Reason = providers.Unknown, "verify shows the refund completed, but "+err.Error()
			case paid != r.Amount:
				out.Kind, out.Reason = providers.Review, fmt.Sprintf(
					"verify shows a completed refund of a payment of %s; the refund asks %s", paid, r.Amount)
			default:
				out.Kind, out.Reference = providers.Succeeded, idText(v.RefundTransactionID)
			}
		case refundProcessing:
			out.Kind, out.Reason = providers.Pending, "the bank is processing the refund"
		default:
			out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("undocumented refund_status %q", v.refundStatus())
		}
	case v.PaymentStatus == nil:
		out.Kind, out.Reason = providers.Unknown, "verify shows neither payment_status nor refund_status"
	case !showsEveryRefund(r.Known):
		out.Kind, out.Status = providers.Unknown, v.paymentStatus()
		out.Reason = fmt.Sprintf("verify shows payment_status %q and no refund field; that verify shows a refund in every "+
			"status is not confirmed (%s: %s, %s: %s), so this proves nothing (a refund of ours may be under_proccession)",
			v.paymentStatus(), GuessVerifyShowsCompleted, r.Known[GuessVerifyShowsCompleted],
			GuessVerifyShowsProcessing, r.Known[GuessVerifyShowsProcessing])
	case v.paymentStatus() == paymentPaid:
		out.Kind, out.Status, out.Reason = providers.NotFound, v.paymentStatus(), "payment is paid and shows no refund"
	default:
		out.Kind, out.Status = providers.Unknown, v.paymentStatus()
		out.Reason = fmt.Sprintf("payment_status %q and no refund_status", v.paymentStatus())
	}
	return out
}

// verify calls /v1/payments/verify; ok is false with a classified outcome
// when there is no usable answer, or one in the other mode (Blocked).
func (c *Client) verify(ctx context.Context, r providers.Refund) (verifyResult, providers.Outcome, bool) {
	v, out, ok := c.read(ctx, r)
	if !ok {
		return v, out, false
	}
	if _, reason, ok := c.checkMode(v.Mode); !ok {
		// A read: nothing was applied, and nothing is sent on the word of
		// a key in the other mode (or one whose mode nobody documents).
		out.Kind, out.Reason = providers.Blocked, reason
		return verifyResult{}, out, false
	}
	return v, out, true
}

// read is verify without the mode check.
func (c *Client) read(ctx context.Context, r providers.Refund) (verifyResult, providers.Outcome, bool) {
	resp, err := c.post(ctx, verifyPath, r)
	if err != nil {
		return verifyResult{}, providers.TransportOutcome(err), false
	}
	env, out := parse(resp)
	if out.Kind != providers.Succeeded {
		if resp.Status == http.StatusNotFound && env.Status == "" {
			// Not Fatora's answer: no such path here. A read changes
			// nothing, and the base URL is ours to fix.
			out.Kind, out.Reason = providers.Blocked, fmt.Sprintf("verify answered HTTP 404 without Fatora's envelope (%s): "+
				"check FATORA_BASE_URL (Fatora's pages use %s, the seed's samples /api%s)", providers.Snippet(resp.Body), verifyPath, verifyPath)
		}
		return verifyResult{}, out, false
	}
	var v verifyResult
	if err := json.Unmarshal(env.Result, &v); err != nil {
		out.Kind, out.Reason = providers.Unknown, "unreadable verify result: "+providers.Snippet(resp.Body)
		return verifyResult{}, out, false
	}
	return v, providers.Outcome{HTTPStatus: resp.Status, RequestID: out.RequestID}, true
}

// checkMode compares the mode an answer shows with the configured one. An
// answer that shows none is taken as it is (the mode was compared where
// verify showed it). The other documented mode is Blocked; an undocumented
// one is Unknown (its caller decides what a read of it is worth).
func (c *Client) checkMode(shown string) (providers.Kind, string, bool) {
	m := strings.ToLower(strings.TrimSpace(shown))
	switch {
	case m == "" || m == c.mode:
		return 0, "", true
	case m == ModeTest:
		return providers.Blocked, fmt.Sprintf("Fatora answered in test mode, but %s is live: a test key in a live configuration "+
			"records refunds that pay nothing (set %s=test or use the live key)", EnvMode, EnvMode), false
	case m == ModeLive:
		return providers.Blocked, fmt.Sprintf("Fatora answered in live mode, but %s is test: a live key in a test configuration "+
			"moves real money (set %s=live or use a test key)", EnvMode, EnvMode), false
	}
	return providers.Unknown, fmt.Sprintf("Fatora answered in mode %q (documented: live, test) and %s is %s: check the key",
		shown, EnvMode, c.mode), false
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

// refusalCodes are the HTTP codes Fatora's pages document for a request it
// refused (fatora.io/api/responseCode.php); 401 and 403 are the key's.
var refusalCodes = map[int]bool{http.StatusBadRequest: true, http.StatusNotFound: true, http.StatusConflict: true,
	http.StatusUnsupportedMediaType: true, http.StatusUnprocessableEntity: true}

// parse reads the envelope. A SUCCESS envelope with HTTP 200 comes back as
// Kind Succeeded for the caller to read its result; anything else is
// classified:
//
//	429                                  Transient (Retry-After passed on)
//	401, 403                             Blocked: the key is refused
//	400, 404, 409, 415, 422 with the     Rejected: Fatora refused the request
//	  page's ERROR envelope and an error
//	  that says why (its error_code, if
//	  any, one of those codes too)
//	5xx, other codes, any other body     Unknown: after the request may have
//	  (a SUCCESS envelope with a refusal  reached Fatora, only what its pages
//	  code, an ERROR without its error)   document is read as a refusal
func parse(resp *providers.Response) (envelope, providers.Outcome) {
	out := providers.Outcome{HTTPStatus: resp.Status, RequestID: resp.RequestID()}
	var env envelope
	if resp.Status == http.StatusTooManyRequests {
		out.Kind, out.RetryAfter, out.Reason = providers.Transient, providers.RetryAfter(resp.Header), "rate limited by Fatora"
		return env, out
	}
	if err := json.Unmarshal(resp.Body, &env); err != nil || (env.Status != "SUCCESS" && env.Status != "ERROR") {
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("HTTP %d: %s", resp.Status, providers.Snippet(resp.Body))
		if resp.Status == http.StatusUnauthorized || resp.Status == http.StatusForbidden {
			out.Kind, out.Reason = providers.Blocked, authReason(resp.Status, providers.Snippet(resp.Body))
		}
		return env, out
	}
	if env.Status == "SUCCESS" && resp.Status == http.StatusOK {
		out.Kind = providers.Succeeded
		return env, out
	}
	msg := errorText(env.Error)
	code, readable := errorCode(env.Error)
	switch {
	case resp.Status == http.StatusUnauthorized || resp.Status == http.StatusForbidden:
		out.Kind, out.Reason = providers.Blocked, authReason(resp.Status, msg)
	case refusalCodes[resp.Status] && env.Status == "ERROR" && readable && (code == "" || refusalCodes[atoi(code)]):
		out.Kind, out.Reason = providers.Rejected, fmt.Sprintf("Fatora refused (HTTP %d): %s", resp.Status, msg)
	default:
		out.Kind, out.Reason = providers.Unknown, fmt.Sprintf("HTTP %d %s: %s", resp.Status, env.Status, msg)
		if env.Status == "SUCCESS" {
			out.Reason = fmt.Sprintf("HTTP %d with a SUCCESS envelope (undocumented): %s", resp.Status, providers.Snippet(resp.Body))
		}
	}
	return env, out
}

// errorCode reads the error of an ERROR envelope: readable when it is one
// of the two documented forms with something in it (a non-empty string, or
// an object with error_code or description); code is the object's
// error_code ("" for the string form or none).
func errorCode(raw json.RawMessage) (code string, readable bool) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return "", strings.TrimSpace(s) != ""
	}
	var o struct {
		Code        json.RawMessage `json:"error_code"`
		Description string          `json:"description"`
	}
	if json.Unmarshal(raw, &o) != nil {
		return "", false
	}
	code = strings.TrimSpace(strings.Trim(string(o.Code), `"`))
	if code == "null" {
		code = ""
	}
	return code, code != "" || strings.TrimSpace(o.Description) != ""
}

// atoi is the number s writes, or 0.
func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0
	}
	return n
}

func authReason(status int, msg string) string {
	return fmt.Sprintf("authentication failed (HTTP %d: %s): check FATORA_API_KEY (and FATORA_BASE_URL: test or live is a setting of the key)", status, msg)
}

// errorText reads both documented error forms: {"error_code","description"}
// and a plain string.
func errorText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil && s != "" {
		return s
	}
	var o struct {
		Code        json.RawMessage `json:"error_code"`
		Description string          `json:"description"`
	}
	if json.Unmarshal(raw, &o) == nil && (o.Description != "" || len(o.Code) > 0) {
		return strings.TrimSpace(o.Description + " (code " + strings.Trim(string(o.Code), `"`) + ")")
	}
	return providers.Snippet(raw)
}

// idText reads an id Fatora writes as a number or a string; "" for none.
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
