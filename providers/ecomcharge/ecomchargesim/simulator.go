// Package ecomchargesim is an ecomCharge server for tests, the demo and the
// sandbox, following ecomCharge's documents (shared/provider-docs/
// ecomcharge-refund.txt, shared/PROVIDERS.md), not refundq's adapter: it
// does not import the adapter, and the adapter's guesses are off unless
// Guessed(true) switches them on.
//
// By default (the documented shape) a refund answers exactly as the refund
// page's example: {"transaction": {...}} without a tracking_id field, and the
// tracking_id of the request is ignored, so GET
// /v2/transactions/tracking_id/{tracking_id} lists nothing for a refund, as
// a real shop that drops it would. With Guessed(true) the tracking_id is
// kept, echoed in refund answers and listed by that look-up.
//
// Quirks(true) adds what ecomCharge's documents allow and refundq's adapter
// does not count on: the status query page says tracking_id "is submitted in
// an authorization or payment request", so the look-up by tracking_id lists
// payments only, never a refund, even where the refund answer echoes the
// tracking_id (Guessed(true)).
//
// Every answer shows the shop's mode in "test" (true by default, as the
// document's example; SetTestMode(false) makes a live shop).
package ecomchargesim

import (
	"net/http"
	"sync"
	"time"

	"github.com/refundq/refundq/providers/sim"
	"github.com/refundq/refundq/tasks"
)

// DuplicateWindow is duplicate_check's window: the same parent_uid and
// amount within it is refused (seed).
const DuplicateWindow = 30 * time.Second

// ecomCharge's API, as documented (doc/seed) and written here again so the
// simulator does not depend on the adapter.
const (
	refundPath       = "/transactions/refunds"
	uidPath          = "/transactions/"
	trackingPath     = "/v2/transactions/tracking_id/"
	apiVersionHeader = "X-API-Version" // version 3 adds code and friendly_message (doc)
	apiVersion       = "3"
	maxReason        = 255 // characters (seed)
	// maxTrackingResults is how many transactions a tracking_id look-up
	// lists at most, most recent first (doc: "up to 10 recent transactions").
	maxTrackingResults = 10
	// duplicateMessage is duplicate_check's refusal. Its wording is not
	// documented; beGateway's code list says "Duplicate transaction or
	// order" (F.0108).
	duplicateMessage = "Duplicate transaction"
	// declineMessage and declineCode are an acquirer's refusal of a refund
	// (beGateway's code list: F.0105 "Do not honor"); the refund is answered
	// and kept as a failed transaction.
	declineMessage = "Do not honor. Contact the payment service provider for details."
	declineCode    = "F.0105"
	gatewayID      = 3483 // as in the document's example
)

// Transaction statuses (doc).
const (
	statusSuccessful = "successful"
	statusFailed     = "failed"
	statusPending    = "pending"
	statusIncomplete = "incomplete"
)

// Simulator is an ecomCharge shop. It checks HTTP Basic auth (shop id,
// secret key), keeps payments and the refunds made of them (several partial
// refunds per payment, each at most what is left; a refund is in the
// payment's currency, as the request has none), applies duplicate_check
// (same parent_uid and amount within the window is refused), can keep a
// refund pending or incomplete for a number of look-ups (then successful,
// or failed at the acquirer), serves
// GET /transactions/{uid} and GET /v2/transactions/tracking_id/{tracking_id},
// and injects faults.
type Simulator struct {
	sim.Ledger   // the refunds that moved money; OrderID is the parent payment's uid
	shop, secret string
	faults       *sim.Faults
	handler      http.Handler

	mu       sync.Mutex
	window   time.Duration
	guessed  bool                // keep, echo and list our tracking_id
	quirks   bool                // look-ups by tracking_id list payments only
	test     bool                // the shop is in test mode ("test": true)
	hidden   bool                // look-ups by tracking_id answer {}
	payments map[string]*payment // by uid
	refunds  []*refundTxn        // every refund transaction, oldest first
	pending  map[string]hold     // payment uid → how its next refund stays non-final
	short    map[string]bool     // payment uid → its next refund is applied one minor unit short
	decline  map[string]bool     // payment uid → its next refund fails at the acquirer
	auto     *tasks.Money
}

type hold struct {
	status  string // pending or incomplete
	n       int    // look-ups
	decline bool   // then the acquirer refuses it (failed), instead of successful
}

type payment struct {
	uid      string
	tracking string // the tracking_id of the payment request, if any
	amount   tasks.Money
	refunded int64 // successful refunds
	reserved int64 // pending refunds
	created  time.Time
}

type refundTxn struct {
	uid, parent, tracking, reason string
	asked                         int64       // the amount requested, for duplicate_check
	amount                        tasks.Money // the amount refunded
	status, message, code         string
	left                          int  // look-ups until a non-final refund ends
	decline                       bool // a non-final refund ends failed, not successful
	created, updated              time.Time
	paid                          *time.Time
}

// New returns a simulator of one shop with these credentials,
// answering in the documented shape.
func New(shopID, secretKey string) *Simulator {
	s := &Simulator{shop: shopID, secret: secretKey, faults: sim.NewFaults(2), window: DuplicateWindow, test: true,
		payments: map[string]*payment{}, pending: map[string]hold{}, short: map[string]bool{}, decline: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+refundPath, s.refund)
	mux.HandleFunc("GET "+uidPath+"{uid}", s.byUID)
	mux.HandleFunc("GET "+trackingPath+"{tid}", s.byTracking)
	// Any other path (a wrong base URL or path) is a 404 with a JSON body.
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		sim.WriteJSON(w, http.StatusNotFound, map[string]any{"message": "Not found"})
	})
	s.handler = s.faults.Wrap(s.auth(mux))
	return s
}

// ServeHTTP serves ecomCharge's API.
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Faults is the simulator's fault injector.
func (s *Simulator) Faults() *sim.Faults { return s.faults }

// Guessed switches on (true) what refundq only guesses ecomCharge does:
// keep the tracking_id sent with a refund, echo it in the refund's answers
// and list the refund under it. Off (the default), answers have exactly the
// documented shape. It applies to refunds made from now on.
func (s *Simulator) Guessed(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.guessed = on
}

// Quirks switches on (true) what ecomCharge's documents allow and refundq's
// adapter does not count on: the look-up by tracking_id lists payments only
// (the page documents tracking_id on authorization and payment requests),
// never a refund, even one whose answer echoed the tracking_id.
func (s *Simulator) Quirks(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.quirks = on
}

// SetTestMode makes the shop a test shop (true, the default: answers show
// "test": true, as the document's example) or a live one (false).
func (s *Simulator) SetTestMode(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.test = on
}

// TestMode reports whether the shop answers in test mode.
func (s *Simulator) TestMode() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.test
}

// Decline makes the acquirer refuse the next refund of the payment: it is
// answered, and kept, as a failed transaction (F.0105, "Do not honor").
func (s *Simulator) Decline(uid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.decline[uid] = true
}

// TrackPayment gives the payment the tracking_id its payment request
// carried, so the look-up by tracking_id lists it.
func (s *Simulator) TrackPayment(uid, trackingID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.payments[uid]; p != nil {
		p.tracking = trackingID
	}
}

// HideEvidence makes every look-up by tracking_id from now on answer {}
// (no transactions list), as a provider that changed its answer might.
func (s *Simulator) HideEvidence() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hidden = true
}

// WrongAmount makes the next refund of the payment be applied one minor
// unit short, and answered with that amount.
func (s *Simulator) WrongAmount(uid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.short[uid] = true
}

// AddPayment records a successful payment with this uid and returns the
// uid: the refund's transaction_id (parent_uid), and the id RefundsFor,
// Refunded and MakePending take.
func (s *Simulator) AddPayment(uid string, amount tasks.Money) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.add(uid, amount)
	return uid
}

func (s *Simulator) add(uid string, amount tasks.Money) *payment {
	p := &payment{uid: uid, amount: amount, created: time.Now().UTC()}
	s.payments[uid] = p
	return p
}

// AutoCreate makes every unknown parent uid a successful payment of amount,
// for a sandbox where producers invent ids.
func (s *Simulator) AutoCreate(amount tasks.Money) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.auto = &amount
}

// MakePending keeps the next refund of the payment "pending" for n
// look-ups of it (by uid or tracking id), then makes it successful.
func (s *Simulator) MakePending(uid string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending[uid] = hold{status: statusPending, n: n}
}

// MakeIncomplete is MakePending with the status "incomplete" (doc: not
// final either).
func (s *Simulator) MakeIncomplete(uid string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending[uid] = hold{status: statusIncomplete, n: n}
}

// PendThenDecline keeps the next refund of the payment "pending" for n
// look-ups of it, then the acquirer refuses it: it ends failed (F.0105,
// "Do not honor"), as the documents allow a non-final refund to end, and
// moves no money.
func (s *Simulator) PendThenDecline(uid string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending[uid] = hold{status: statusPending, n: n, decline: true}
}

// SetDuplicateWindow changes duplicate_check's window (default 30 s), so
// tests need not wait it out; 0 turns the check off.
func (s *Simulator) SetDuplicateWindow(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.window = d
}

func (s *Simulator) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != s.shop || p != s.secret {
			sim.WriteJSON(w, http.StatusUnauthorized, map[string]any{"message": "Unauthorized"})
			return
		}
		next.ServeHTTP(w, r)
	})
}
