package moyasarpg

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/refundq/refundq/providers/sim"
	"github.com/refundq/refundq/tasks"
)

// Simulator is an MPG server for tests, the demo and the sandbox: it checks
// the Bearer key, keeps a ledger of paid orders and the refunds that moved
// money, enforces MPG's rules (refund ≤ refundable amount; a transaction_id
// in flight answers "still processing"; a finished one is replayed) and can
// inject faults.
type Simulator struct {
	sim.Ledger // the refunds that moved money
	key        string
	faults     *sim.Faults
	handler    http.Handler

	mu         sync.Mutex
	orders     map[string]*simOrder
	processing map[string]int // order id → requests the next refund stays in flight
	auto       *tasks.Money
}

type simOrder struct {
	id       string
	amount   tasks.Money
	refunded int64 // approved refunds
	reserved int64 // refunds in flight
	txns     []*simTxn
}

type simTxn struct {
	ID        string `json:"id"`
	Type      string `json:"type"`
	Status    string `json:"status"`
	Amount    int64  `json:"amount"`
	Currency  string `json:"currency"`
	Message   string `json:"message,omitempty"`
	CreatedAt string `json:"created_at"`
	left      int    // requests until an initiated refund completes
}

// NewSimulator returns a simulator that accepts apiKey.
func NewSimulator(apiKey string) *Simulator {
	s := &Simulator{key: apiKey, faults: sim.NewFaults(1), orders: map[string]*simOrder{}, processing: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/orders/{id}/refund", s.refund)
	mux.HandleFunc("GET /v1/orders/{id}", s.show)
	s.handler = s.faults.Wrap(s.auth(mux))
	return s
}

// ServeHTTP serves MPG's API.
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Faults is the simulator's fault injector.
func (s *Simulator) Faults() *sim.Faults { return s.faults }

// AddOrder creates a paid order.
func (s *Simulator) AddOrder(id string, amount tasks.Money) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addOrder(id, amount)
}

func (s *Simulator) addOrder(id string, amount tasks.Money) {
	s.orders[id] = &simOrder{id: id, amount: amount, txns: []*simTxn{{
		ID: "pay-" + id, Type: "payment", Status: "approved", Amount: amount.Minor, Currency: amount.Currency,
		CreatedAt: time.Now().UTC().Format(time.RFC3339),
	}}}
}

// AutoCreate makes every unknown order id a paid order of amount, for a
// sandbox where producers invent order ids.
func (s *Simulator) AutoCreate(amount tasks.Money) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.auto = &amount
}

// SetProcessing keeps the next refund on the order in flight ("initiated";
// a resend gets 400 "Initial request is still processing.") for that many
// further requests about it, then approves it.
func (s *Simulator) SetProcessing(orderID string, requests int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.processing[orderID] = requests
}

func (s *Simulator) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+s.key {
			sim.WriteJSON(w, http.StatusUnauthorized, map[string]string{"message": "Invalid authorization credentials"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// order returns the order, creating it in auto mode; s.mu must be held.
func (s *Simulator) order(id string) *simOrder {
	if s.orders[id] == nil && s.auto != nil {
		s.addOrder(id, *s.auto)
	}
	return s.orders[id]
}

func (s *Simulator) refund(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Amount        json.Number `json:"amount"`
		TransactionID string      `json:"transaction_id"`
	}
	dec := json.NewDecoder(r.Body)
	dec.UseNumber()
	if err := dec.Decode(&body); err != nil {
		validation(w, "base", "request body is not valid JSON")
		return
	}
	amount, err := body.Amount.Int64()
	if err != nil || strings.ContainsAny(body.Amount.String(), ".eE") {
		validation(w, "amount", "must be an integer")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.order(r.PathValue("id"))
	if o == nil {
		sim.WriteJSON(w, http.StatusNotFound, map[string]string{"message": "Object not found"})
		return
	}
	if body.TransactionID != "" {
		if t := o.txn(body.TransactionID); t != nil {
			if t.Status == "initiated" && !s.advance(o, t) {
				sim.WriteJSON(w, http.StatusBadRequest, map[string]string{"message": stillProcessing})
				return
			}
			sim.WriteJSON(w, http.StatusOK, o.view()) // replay of a finished request
			return
		}
	}
	switch refundable := o.amount.Minor - o.refunded - o.reserved; {
	case amount < 1:
		validation(w, "amount", "must be greater than or equal to 1")
		return
	case amount > refundable:
		validation(w, "amount", "must be less than or equal to refundable amount")
		return
	}
	id := body.TransactionID
	if id == "" {
		id = uuid.NewString()
	}
	t := &simTxn{ID: id, Type: "refund", Status: "initiated", Amount: amount, Currency: o.amount.Currency,
		CreatedAt: time.Now().UTC().Format(time.RFC3339)}
	o.txns = append(o.txns, t)
	o.reserved += amount
	t.left = s.processing[o.id]
	delete(s.processing, o.id)
	s.advance(o, t)
	sim.WriteJSON(w, http.StatusOK, o.view())
}

// advance counts one request against an initiated refund and approves it
// when none are left; it reports whether the refund is done.
func (s *Simulator) advance(o *simOrder, t *simTxn) bool {
	if t.left > 0 {
		t.left--
		return false
	}
	t.Status = "approved"
	o.reserved -= t.Amount
	o.refunded += t.Amount
	// The refund transaction's id is the transaction_id refundq sent.
	s.Record(sim.Entry{OrderID: o.id, Ref: t.ID, Key: t.ID, Amount: tasks.Money{Minor: t.Amount, Currency: t.Currency}})
	return true
}

func (s *Simulator) show(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.order(r.PathValue("id"))
	if o == nil {
		sim.WriteJSON(w, http.StatusNotFound, map[string]string{"message": "Object not found"})
		return
	}
	for _, t := range o.txns {
		if t.Status == "initiated" {
			s.advance(o, t)
		}
	}
	sim.WriteJSON(w, http.StatusOK, o.view())
}

func (o *simOrder) txn(id string) *simTxn {
	for _, t := range o.txns {
		if t.ID == id && t.Type == "refund" {
			return t
		}
	}
	return nil
}

func (o *simOrder) view() map[string]any {
	status := "paid"
	switch {
	case o.refunded == o.amount.Minor:
		status = "refunded"
	case o.refunded > 0:
		status = "partially_refunded"
	}
	return map[string]any{
		"id": o.id, "status": status, "amount": o.amount.Minor, "currency": o.amount.Currency,
		"refunded_amount": o.refunded, "transactions": o.txns,
	}
}

func validation(w http.ResponseWriter, field, msg string) {
	sim.WriteJSON(w, http.StatusUnprocessableEntity, map[string]any{
		"message": "Data validation failed", "errors": map[string][]string{field: {msg}},
	})
}
