package fatora

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"

	"github.com/refundq/refundq/providers/sim"
	"github.com/refundq/refundq/tasks"
)

// Simulator is a Fatora server for tests, the demo and the sandbox: api_key
// auth, a ledger of payments and refunds, whole-payment refunds only, one
// refund per payment, "under_proccession" that completes after some
// look-ups, both error forms, and injected faults.
type Simulator struct {
	sim.Ledger // the refunds Fatora accepted: the money is on its way back
	key        string
	faults     *sim.Faults
	handler    http.Handler

	mu       sync.Mutex
	payments map[string]*payment // by order id
	pending  map[string]int      // order id → verify calls the next refund stays under_proccession
	auto     *tasks.Money
	posts    int
}

type payment struct {
	orderID, txnID string
	amount         tasks.Money
	refund         string // "", under_proccession, completed
	left           int
	refundID       int
}

// NewSimulator returns a simulator that accepts apiKey.
func NewSimulator(apiKey string) *Simulator {
	s := &Simulator{key: apiKey, faults: sim.NewFaults(3), payments: map[string]*payment{}, pending: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+refundPath, s.refund)
	mux.HandleFunc("POST "+verifyPath, s.verify)
	s.handler = s.faults.Wrap(s.auth(mux))
	return s
}

// ServeHTTP serves Fatora's API.
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Faults is the simulator's fault injector.
func (s *Simulator) Faults() *sim.Faults { return s.faults }

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
		if r.Header.Get("api_key") != s.key {
			// The string form of Fatora's error envelope.
			sim.WriteJSON(w, http.StatusUnauthorized, map[string]any{"status": "ERROR", "error": "Invalid api key"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

func fail(w http.ResponseWriter, status int, desc string) {
	sim.WriteJSON(w, status, map[string]any{"status": "ERROR",
		"error": map[string]string{"error_code": fmt.Sprint(status), "description": desc}})
}

// find reads the ids and returns the payment; s.mu must be held.
func (s *Simulator) find(w http.ResponseWriter, r *http.Request) *payment {
	var in ids
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
	if p.refund != "" {
		fail(w, http.StatusConflict, "payment already refunded")
		return
	}
	p.refund, p.refundID = refundCompleted, len(s.Entries())+1000
	if n := s.pending[p.orderID]; n > 0 {
		p.refund, p.left = refundProcessing, n
		delete(s.pending, p.orderID)
	}
	s.Record(sim.Entry{OrderID: p.orderID, Ref: strconv.Itoa(p.refundID), Amount: p.amount})
	sim.WriteJSON(w, http.StatusOK, map[string]any{"status": "SUCCESS", "result": map[string]any{
		"refund_status": p.refund, "mode": "test", "refund_transaction_id": p.refundID,
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
	res := map[string]any{"payment_status": "SUCCESS", "amount": json.Number(p.amount.Decimal()), "currency": p.amount.Currency,
		"order_id": p.orderID, "transaction_id": p.txnID, "mode": "test"}
	if p.refund != "" {
		res["refund_status"] = p.refund
	}
	sim.WriteJSON(w, http.StatusOK, map[string]any{"status": "SUCCESS", "result": res})
}
