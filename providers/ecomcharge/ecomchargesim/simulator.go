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
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

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
// refund pending or incomplete for a number of look-ups, serves
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
	status string // pending or incomplete
	n      int    // look-ups
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
	left                          int // look-ups until a non-final refund succeeds
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
	s.pending[uid] = hold{statusPending, n}
}

// MakeIncomplete is MakePending with the status "incomplete" (doc: not
// final either).
func (s *Simulator) MakeIncomplete(uid string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending[uid] = hold{statusIncomplete, n}
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

// refuse answers 422 in ecomCharge's error shape (doc).
func refuse(w http.ResponseWriter, msg string, errs map[string][]string) {
	sim.WriteJSON(w, http.StatusUnprocessableEntity, map[string]any{"message": msg, "errors": errs})
}

func (s *Simulator) refund(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Request *struct {
			ParentUID      string      `json:"parent_uid"`
			Amount         json.Number `json:"amount"`
			Reason         string      `json:"reason"`
			DuplicateCheck *bool       `json:"duplicate_check"`
			TrackingID     string      `json:"tracking_id"`
		} `json:"request"`
	}
	dec := json.NewDecoder(r.Body)
	dec.UseNumber()
	if err := dec.Decode(&in); err != nil || in.Request == nil {
		refuse(w, "Request is invalid", map[string][]string{"request": {"must be a JSON object with a request"}})
		return
	}
	q := in.Request
	amount, err := q.Amount.Int64()
	switch {
	case strings.TrimSpace(q.ParentUID) == "":
		refuse(w, "Parent uid can't be blank.", map[string][]string{"parent_uid": {"can't be blank"}})
		return
	case err != nil || strings.ContainsAny(q.Amount.String(), ".eE") || amount < 1:
		refuse(w, "Amount must be a positive integer.", map[string][]string{"amount": {"must be a positive integer in minor units"}})
		return
	case strings.TrimSpace(q.Reason) == "":
		refuse(w, "Reason can't be blank.", map[string][]string{"reason": {"can't be blank"}})
		return
	case utf8.RuneCountInString(q.Reason) > maxReason:
		refuse(w, "Reason is too long.", map[string][]string{"reason": {fmt.Sprintf("is too long (maximum is %d characters)", maxReason)}})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.payment(q.ParentUID)
	if p == nil {
		refuse(w, "Parent transaction not found.", map[string][]string{"parent_uid": {"not found"}})
		return
	}
	if left := p.amount.Minor - p.refunded - p.reserved; amount > left {
		refuse(w, "transaction can't be refunded", map[string][]string{
			"base":   {"transaction can't be refunded"},
			"amount": {fmt.Sprintf("is more than the %d left to refund", left)},
		})
		return
	}
	now := time.Now().UTC()
	if q.DuplicateCheck == nil || *q.DuplicateCheck {
		for _, t := range s.refunds {
			if t.parent == p.uid && t.asked == amount && t.status != statusFailed && now.Sub(t.created) < s.window {
				refuse(w, duplicateMessage, map[string][]string{"base": {
					duplicateMessage + ": an identical refund of this payment was made less than " + s.window.String() + " ago"}})
				return
			}
		}
	}
	applied := amount
	if s.short[p.uid] {
		delete(s.short, p.uid)
		applied--
	}
	t := &refundTxn{uid: uuid.NewString(), parent: p.uid, reason: q.Reason, asked: amount,
		amount: tasks.Money{Minor: applied, Currency: p.amount.Currency}, created: now, updated: now}
	if s.guessed {
		t.tracking = q.TrackingID
	}
	if s.decline[p.uid] {
		delete(s.decline, p.uid)
		t.status, t.message, t.code = statusFailed, declineMessage, declineCode
		s.refunds = append(s.refunds, t)
		sim.WriteJSON(w, http.StatusOK, map[string]any{"transaction": s.view(t, r)})
		return
	}
	if h := s.pending[p.uid]; h.n > 0 {
		delete(s.pending, p.uid)
		t.status, t.message, t.code, t.left = h.status, "Refund is being processed", "P.0000", h.n // P.0000: guess
		p.reserved += applied
	} else {
		s.succeed(p, t)
	}
	s.refunds = append(s.refunds, t)
	sim.WriteJSON(w, http.StatusOK, map[string]any{"transaction": s.view(t, r)})
}

// payment returns the payment, creating it in auto mode; s.mu held.
func (s *Simulator) payment(uid string) *payment {
	if s.payments[uid] == nil && s.auto != nil && uid != "" {
		s.add(uid, *s.auto)
	}
	return s.payments[uid]
}

// succeed moves the refund's money; s.mu held.
func (s *Simulator) succeed(p *payment, t *refundTxn) {
	now := time.Now().UTC()
	t.status, t.message, t.code, t.updated, t.paid = statusSuccessful, "Successfully processed", "S.0000", now, &now
	p.refunded += t.amount.Minor
	s.Record(sim.Entry{OrderID: p.uid, Ref: t.uid, Key: t.tracking, Amount: t.amount})
}

// lookedUp counts one look-up against a non-final refund; s.mu held.
func (s *Simulator) lookedUp(t *refundTxn) {
	if t.status != statusPending && t.status != statusIncomplete {
		return
	}
	if t.left--; t.left <= 0 {
		p := s.payments[t.parent]
		p.reserved -= t.amount.Minor
		s.succeed(p, t)
	}
}

func (s *Simulator) byUID(w http.ResponseWriter, r *http.Request) {
	uid := r.PathValue("uid")
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.refunds {
		if t.uid == uid {
			s.lookedUp(t)
			sim.WriteJSON(w, http.StatusOK, map[string]any{"transaction": s.view(t, r)})
			return
		}
	}
	if p := s.payment(uid); p != nil {
		sim.WriteJSON(w, http.StatusOK, map[string]any{"transaction": s.paymentView(p, r)})
		return
	}
	// beGateway's message for an unknown uid (its PHP client's tests).
	sim.WriteJSON(w, http.StatusNotFound, map[string]any{"message": "Record not found"})
}

// byTracking lists the refunds kept with this tracking_id: none in the
// documented shape, where refunds do not keep it. With the quirks on it
// lists the payments made with it instead, and never a refund.
func (s *Simulator) byTracking(w http.ResponseWriter, r *http.Request) {
	tid := r.PathValue("tid")
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hidden {
		sim.WriteJSON(w, http.StatusOK, map[string]any{})
		return
	}
	list := []map[string]any{}
	if s.quirks {
		for _, p := range s.payments {
			if p.tracking != "" && p.tracking == tid && len(list) < maxTrackingResults {
				list = append(list, s.paymentView(p, r))
			}
		}
		sim.WriteJSON(w, http.StatusOK, map[string]any{"transactions": list})
		return
	}
	for i := len(s.refunds) - 1; i >= 0 && len(list) < maxTrackingResults; i-- {
		if t := s.refunds[i]; t.tracking != "" && t.tracking == tid {
			s.lookedUp(t)
			list = append(list, s.view(t, r))
		}
	}
	sim.WriteJSON(w, http.StatusOK, map[string]any{"transactions": list})
}

// view is the refund as the document's example shows it; code and
// friendly_message only with X-API-Version 3; tracking_id only in the
// guessed shape. s.mu held.
func (s *Simulator) view(t *refundTxn, r *http.Request) map[string]any {
	var paid any
	if t.paid != nil {
		paid = t.paid.Format(time.RFC3339Nano)
	}
	v := map[string]any{
		"uid": t.uid, "id": t.uid, "status": t.status, "amount": t.amount.Minor, "currency": t.amount.Currency,
		"reason": t.reason, "type": "refund", "message": t.message, "test": s.test,
		"created_at": t.created.Format(time.RFC3339Nano), "updated_at": t.updated.Format(time.RFC3339Nano),
		"paid_at": paid, "closed_at": nil, "settled_at": nil, "manually_corrected_at": nil,
		"parent_uid": t.parent, "receipt_url": "https://gateway.ecomcharge.com/customer/transactions/" + t.uid + "?language=en",
		"status_code": nil, "mute_notifications": nil,
		"smart_routing_verification": map[string]any{"status": statusSuccessful},
		"refund": map[string]any{"message": refundMessage(t.status), "ref_id": refID(t.uid), "rrn": nil, "auth_code": nil,
			"bank_code": "05", "gateway_id": gatewayID, "status": t.status},
	}
	if r.Header.Get(apiVersionHeader) == apiVersion {
		v["code"], v["friendly_message"] = t.code, friendly(t.status)
	}
	if s.guessed && t.tracking != "" {
		v["tracking_id"] = t.tracking
	}
	return v
}

func refundMessage(status string) string {
	switch status {
	case statusSuccessful:
		return "Refund was approved"
	case statusFailed:
		return "Refund was declined"
	}
	return "Refund is being processed"
}

func friendly(status string) string {
	switch status {
	case statusSuccessful:
		return "The operation is successful."
	case statusFailed:
		return "Do not honor. Failed to complete the transaction."
	}
	return "The operation is being processed."
}

// refID is an acquirer reference, seven digits as in the example.
func refID(uid string) string {
	var n uint32
	for _, c := range uid {
		n = n*31 + uint32(c)
	}
	return fmt.Sprintf("%07d", n%10000000)
}

// paymentView is the payment as the status query page's example shows it
// (the fields a refund reads); s.mu held.
func (s *Simulator) paymentView(p *payment, r *http.Request) map[string]any {
	v := map[string]any{
		"uid": p.uid, "id": p.uid, "status": statusSuccessful, "amount": p.amount.Minor, "currency": p.amount.Currency,
		"type": "payment", "message": "Successfully processed", "test": s.test, "created_at": p.created.Format(time.RFC3339Nano),
	}
	if p.tracking != "" {
		v["tracking_id"] = p.tracking
	}
	if r.Header.Get(apiVersionHeader) == apiVersion {
		v["code"], v["friendly_message"] = "S.0000", "The operation is successful."
	}
	return v
}
