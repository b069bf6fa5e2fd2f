// Package fatorasim is a Fatora server for tests, the demo and the sandbox.
// It follows Fatora's documents (shared/provider-docs/fatora-refund.txt and
// fatora.io/api/verify.php), not the adapter's guesses: api_key auth, whole
// payments refunded once, "under_proccession" (so spelled) that completes
// after some verify calls, both documented error forms, and faults injected
// through providers/sim. It does not import the adapter.
//
// By default its answers have exactly the documented shape: verify shows the
// payment (payment_status, amount, currency and the rest of the verify
// page's fields) and no refund field. Guessed(true) adds what the adapter
// only guesses at: refund_status and refund_transaction_id in verify once
// the payment has a refund.
//
// Both /v1/payments/... (Fatora's API pages) and /api/v1/payments/... (the
// seed's code samples) are served.
package fatorasim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/refundq/refundq/providers/sim"
	"github.com/refundq/refundq/tasks"
)

// Paths of Fatora's API as its pages write them; each is also served under
// the /api prefix of the seed's code samples.
const (
	RefundPath = "/v1/payments/refund"
	VerifyPath = "/v1/payments/verify"
)

// Refund statuses, as Fatora spells them.
const (
	refundCompleted  = "completed"
	refundProcessing = "under_proccession"
)

// Simulator is a Fatora server; its ledger (sim.Ledger) holds the refunds
// Fatora accepted: the money is on its way back.
type Simulator struct {
	sim.Ledger
	key     string
	faults  *sim.Faults
	handler http.Handler

	mu       sync.Mutex
	payments map[string]*payment // by order id
	pending  map[string]int      // order id → verify calls the next refund stays under_proccession
	auto     *tasks.Money
	posts    int
	guessed  bool // answers carry the guessed fields
	quirks   bool // verify hides under_proccession refunds; "already under process" refusals
	mode     string
	hide     bool // verify leaves out payment_status
	nextRef  int
}

type payment struct {
	orderID, txnID string
	amount         tasks.Money
	refund         string // "", under_proccession, completed
	left           int
	refundID       int
}

// New returns a simulator that accepts apiKey.
func New(apiKey string) *Simulator {
	s := &Simulator{key: apiKey, faults: sim.NewFaults(3), payments: map[string]*payment{}, pending: map[string]int{}, nextRef: 5521,
		mode: "test"}
	mux := http.NewServeMux()
	for _, prefix := range []string{"", "/api"} {
		mux.HandleFunc("POST "+prefix+RefundPath, s.refund)
		mux.HandleFunc("POST "+prefix+VerifyPath, s.verify)
	}
	s.handler = s.faults.Wrap(s.auth(mux))
	return s
}

// ServeHTTP serves Fatora's API.
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Faults is the simulator's fault injector.
func (s *Simulator) Faults() *sim.Faults { return s.faults }

// Guessed switches the fields the adapter only guesses at on or off (off,
// the documented shape, by default): refund_status and
// refund_transaction_id in verify.
func (s *Simulator) Guessed(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.guessed = on
}

// Quirks switches on (or off, the default) the behaviours Fatora's documents
// allow and the adapter does not count on: verify shows a refund only once
// it is completed, and a refund request for a payment whose refund is still
// under_proccession is answered HTTP 400 "Refund is already under process".
func (s *Simulator) Quirks(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.quirks = on
}

// SetMode sets the mode every answer carries ("test" by default: the
// sandbox's key is a test key; "live" for a live key).
func (s *Simulator) SetMode(mode string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mode = mode
}

// HideEvidence makes every later verify leave out payment_status, as a
// Fatora that changed its answer might: then nothing in verify can show
// that a paid payment has no refund.
func (s *Simulator) HideEvidence() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hide = true
}

// AddPayment records a paid payment and returns its transaction id.
func (s *Simulator) AddPayment(orderID string, amount tasks.Money) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.add(orderID, amount).txnID
}

func (s *Simulator) add(orderID string, amount tasks.Money) *payment {
	p := &payment{orderID: orderID, txnID: "txn-" + orderID, amount: amount}
	s.payments[orderID] = p
	return p
}

// AutoCreate makes every unknown order a paid payment of amount whose
// transaction id is "txn-<order id>", for a sandbox where producers invent ids.
func (s *Simulator) AutoCreate(amount tasks.Money) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.auto = &amount
}

// MakePending keeps the next refund of the order under_proccession for n
// verify calls, then completes it.
func (s *Simulator) MakePending(orderID string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending[orderID] = n
}

// RefundRequests counts the refund requests that reached the ledger logic.
func (s *Simulator) RefundRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.posts
}

func (s *Simulator) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.TrimSpace(r.Header.Get("api_key")) != s.key {
			// The string form of Fatora's error envelope.
			sim.WriteJSON(w, http.StatusUnauthorized, map[string]any{"status": "ERROR", "error": "Invalid api key"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// fail writes the object form of Fatora's error envelope.
func fail(w http.ResponseWriter, status int, desc string) {
	sim.WriteJSON(w, status, map[string]any{"status": "ERROR",
		"error": map[string]string{"error_code": strconv.Itoa(status), "description": desc}})
}

// find reads the two ids and returns the payment; s.mu must be held.
func (s *Simulator) find(w http.ResponseWriter, r *http.Request) *payment {
	var in struct {
		TransactionID string `json:"transaction_id"`
		OrderID       string `json:"order_id"`
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		fail(w, http.StatusUnsupportedMediaType, "unsupported media type")
		return nil
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.OrderID == "" || in.TransactionID == "" {
		fail(w, http.StatusBadRequest, "bad request")
		return nil
	}
	p := s.payments[in.OrderID]
	if p == nil && s.auto != nil {
		p = s.add(in.OrderID, *s.auto)
	}
	if p == nil || p.txnID != in.TransactionID {
		fail(w, http.StatusNotFound, "payment not found")
		return nil
	}
	return p
}

func (s *Simulator) refund(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.find(w, r)
	if p == nil {
		return
	}
	s.posts++
	switch {
	case p.refund == refundProcessing && s.quirks:
		fail(w, http.StatusBadRequest, "Refund is already under process")
		return
	case p.refund != "":
		fail(w, http.StatusConflict, "payment already refunded")
		return
	}
	p.refund, p.refundID = refundCompleted, s.nextRef
	s.nextRef++
	if n := s.pending[p.orderID]; n > 0 {
		p.refund, p.left = refundProcessing, n
		delete(s.pending, p.orderID)
	}
	s.Record(sim.Entry{OrderID: p.orderID, Ref: strconv.Itoa(p.refundID), Amount: p.amount})
	sim.WriteJSON(w, http.StatusOK, map[string]any{"status": "SUCCESS", "result": map[string]any{
		"refund_status": p.refund, "mode": s.mode, "refund_transaction_id": p.refundID,
	}})
}

func (s *Simulator) verify(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.find(w, r)
	if p == nil {
		return
	}
	if p.refund == refundProcessing {
		if p.left--; p.left <= 0 {
			p.refund = refundCompleted
		}
	}
	// The fields of Fatora's verify page. Its amounts are written with
	// three decimals, as its pages do ("123.100" QAR).
	res := map[string]any{
		"order_id":       p.orderID,
		"transaction_id": p.txnID,
		"amount":         json.Number(pageDecimal(p.amount)),
		"currency":       p.amount.Currency,
		"client":         map[string]string{"name": "Sandbox Client", "email": "client@example.com", "phone": "+97400000000"},
		"note":           "refundq sandbox payment",
		"payment_date":   "",
		"payment_status": "SUCCESS",
		"mode":           s.mode,
		"auth_code":      "000000",
		"description":    "Transaction Successful - Approved",
		"card_token":     "",
	}
	if s.hide {
		delete(res, "payment_status")
	}
	// With quirks, a refund still under_proccession does not show at all.
	if s.guessed && p.refund != "" && !(s.quirks && p.refund == refundProcessing) {
		res["refund_status"] = p.refund
		res["refund_transaction_id"] = p.refundID
	}
	sim.WriteJSON(w, http.StatusOK, map[string]any{"status": "SUCCESS", "result": res})
}

// pageDecimal writes an amount with one more decimal than the currency has,
// a trailing zero, as Fatora's pages write QAR ("123.100").
func pageDecimal(m tasks.Money) string {
	d := m.Decimal()
	if strings.Contains(d, ".") {
		return d + "0"
	}
	return fmt.Sprint(d, ".0")
}
