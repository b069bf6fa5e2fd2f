package ecartpay

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/refundq/refundq/providers/sim"
	"github.com/refundq/refundq/tasks"
)

// Simulator is an Ecart Pay server for tests, the demo and the sandbox:
// Basic-auth token issuing with expiry, raw-token auth on the API, a ledger
// of orders and refunds (refund ≤ refundable, same currency, no refunds of
// cash payments), and injected faults.
type Simulator struct {
	public, private string
	faults          *sim.Faults
	handler         http.Handler
	// TokenTTL is how long issued tokens are accepted; one hour by default.
	TokenTTL time.Duration

	mu     sync.Mutex
	tokens map[string]time.Time
	orders map[string]*simOrder
	auto   *tasks.Money
	nextID int
}

type simOrder struct {
	id      string
	amount  tasks.Money
	method  string
	refunds []simRefund
}

type simRefund struct {
	ID        string      `json:"id"`
	Amount    json.Number `json:"amount"`
	Reason    string      `json:"reason"`
	CreatedAt string      `json:"created_at"`
	minor     int64
}

// NewSimulator returns a simulator accepting one key pair.
func NewSimulator(publicKey, privateKey string) *Simulator {
	s := &Simulator{public: publicKey, private: privateKey, faults: sim.NewFaults(4), TokenTTL: TokenLifetime,
		tokens: map[string]time.Time{}, orders: map[string]*simOrder{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+tokenPath, s.issue)
	mux.Handle("POST /api/orders/{id}/refund", s.auth(http.HandlerFunc(s.refund)))
	mux.Handle("GET /api/orders/{id}", s.auth(http.HandlerFunc(s.show)))
	s.handler = s.faults.Wrap(mux)
	return s
}

// ServeHTTP serves Ecart Pay's API.
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Faults is the simulator's fault injector.
func (s *Simulator) Faults() *sim.Faults { return s.faults }

// AddOrder records a paid order (card payment).
func (s *Simulator) AddOrder(id string, amount tasks.Money) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.orders[id] = &simOrder{id: id, amount: amount, method: "card"}
}

// SetMethod sets the order's payment method; "cash" cannot be refunded.
func (s *Simulator) SetMethod(id, method string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.orders[id].method = method
}

// AutoCreate makes every unknown order a paid one of amount.
func (s *Simulator) AutoCreate(amount tasks.Money) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.auto = &amount
}

// ExpireTokens makes every issued token invalid, as an hour passing would.
func (s *Simulator) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.tokens)
}

// Refunded returns the refunds that moved money on the order.
func (s *Simulator) Refunded(id string) []tasks.Money {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.orders[id]
	if o == nil {
		return nil
	}
	out := make([]tasks.Money, len(o.refunds))
	for i, f := range o.refunds {
		out[i] = tasks.Money{Minor: f.minor, Currency: o.amount.Currency}
	}
	return out
}

func (s *Simulator) issue(w http.ResponseWriter, r *http.Request) {
	if u, p, ok := r.BasicAuth(); !ok || u != s.public || p != s.private {
		sim.WriteJSON(w, http.StatusUnauthorized, map[string]string{"message": "Invalid credentials"})
		return
	}
	b := make([]byte, 24)
	rand.Read(b)
	tok := "eyJhbGciOiJIUzI1NiJ9." + base64.RawURLEncoding.EncodeToString(b)
	s.mu.Lock()
	s.tokens[tok] = time.Now().Add(s.TokenTTL)
	s.mu.Unlock()
	sim.WriteJSON(w, http.StatusOK, map[string]string{"token": tok})
}

func (s *Simulator) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		exp, ok := s.tokens[r.Header.Get("Authorization")] // raw token; "Bearer …" is not it
		s.mu.Unlock()
		if !ok || time.Now().After(exp) {
			sim.WriteJSON(w, http.StatusUnauthorized, map[string]string{"message": "Unauthorized"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// order returns the order, creating it in auto mode; s.mu must be held.
func (s *Simulator) order(id string) *simOrder {
	if s.orders[id] == nil && s.auto != nil {
		s.orders[id] = &simOrder{id: id, amount: *s.auto, method: "card"}
	}
	return s.orders[id]
}

func (s *Simulator) refund(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Amount json.Number `json:"amount"`
		Reason string      `json:"reason"`
	}
	dec := json.NewDecoder(r.Body)
	dec.UseNumber()
	if err := dec.Decode(&in); err != nil {
		sim.WriteJSON(w, http.StatusBadRequest, map[string]string{"message": "Invalid body"})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.order(r.PathValue("id"))
	if o == nil {
		sim.WriteJSON(w, http.StatusNotFound, map[string]string{"message": "Order not found"})
		return
	}
	valid := false
	for _, ok := range Reasons {
		valid = valid || in.Reason == ok
	}
	if !valid {
		sim.WriteJSON(w, http.StatusBadRequest, map[string]string{"message": "reason must be one of requested, duplicate, fraudulent"})
		return
	}
	m, err := tasks.ParseMoney(in.Amount.String(), o.amount.Currency)
	if err != nil {
		sim.WriteJSON(w, http.StatusBadRequest, map[string]string{"message": "Invalid amount: " + err.Error()})
		return
	}
	if o.method == "cash" {
		sim.WriteJSON(w, http.StatusBadRequest, map[string]string{"message": "This payment method does not support refunds"})
		return
	}
	if m.Minor > o.amount.Minor-o.refunded() {
		sim.WriteJSON(w, http.StatusBadRequest, map[string]string{"message": "Amount exceeds the refundable amount"})
		return
	}
	s.nextID++
	o.refunds = append(o.refunds, simRefund{ID: "rfd_" + o.id + "_" + strconv.Itoa(s.nextID), Amount: json.Number(m.Decimal()),
		Reason: in.Reason, CreatedAt: time.Now().UTC().Format(time.RFC3339), minor: m.Minor})
	sim.WriteJSON(w, http.StatusOK, o.view())
}

func (s *Simulator) show(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.order(r.PathValue("id"))
	if o == nil {
		sim.WriteJSON(w, http.StatusNotFound, map[string]string{"message": "Order not found"})
		return
	}
	sim.WriteJSON(w, http.StatusOK, o.view())
}

func (o *simOrder) refunded() int64 {
	var n int64
	for _, f := range o.refunds {
		n += f.minor
	}
	return n
}

func (o *simOrder) view() map[string]any {
	status, refundID := "paid", ""
	switch {
	case o.refunded() == o.amount.Minor:
		status = "refunded"
	case o.refunded() > 0:
		status = "partially_refunded"
	}
	if len(o.refunds) > 0 {
		refundID = o.refunds[len(o.refunds)-1].ID
	}
	refunds := append([]simRefund{}, o.refunds...)
	return map[string]any{
		"id": o.id, "status": status, "currency": o.amount.Currency,
		"amount": json.Number(o.amount.Decimal()), "refund_id": refundID, "refunds": refunds,
		// Nested payment amounts are minor units, as in Ecart Pay's answers.
		"payments": map[string]any{"data": []map[string]any{{"amount": o.amount.Minor, "method": o.method, "status": "paid"}}},
	}
}
