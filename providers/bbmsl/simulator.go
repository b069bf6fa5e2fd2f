package bbmsl

import (
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/refundq/refundq/providers/sim"
	"github.com/refundq/refundq/tasks"
)

// Simulator is a BBMSL server for tests, the demo and the sandbox: it
// verifies every request's signature with the merchant's public key, keeps
// a ledger of orders and refunds, allows one refund per order within its
// amount, answers queries, and injects faults. BBMSL answers HTTP 200 with a
// responseCode; the non-0000 codes here are invented (BBMSL's are not
// documented in PROVIDERS.md).
type Simulator struct {
	merchant string
	pub      *rsa.PublicKey
	faults   *sim.Faults
	handler  http.Handler

	mu     sync.Mutex
	orders map[string]*simOrder // by order id / merchant reference
	auto   *tasks.Money
}

type simOrder struct {
	ref      string
	amount   tasks.Money
	refunded int64 // 0 or the one refund
}

// NewSimulator returns a simulator for one merchant and its public key.
func NewSimulator(merchantID string, pub *rsa.PublicKey) *Simulator {
	s := &Simulator{merchant: merchantID, pub: pub, faults: sim.NewFaults(5), orders: map[string]*simOrder{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+refundPath, s.refund)
	mux.HandleFunc("POST "+queryPath, s.query)
	s.handler = s.faults.Wrap(mux)
	return s
}

// ServeHTTP serves BBMSL's API.
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Faults is the simulator's fault injector.
func (s *Simulator) Faults() *sim.Faults { return s.faults }

// AddOrder records a paid order under its order id or merchant reference.
func (s *Simulator) AddOrder(ref string, amount tasks.Money) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.orders[ref] = &simOrder{ref: ref, amount: amount}
}

// AutoCreate makes every unknown order a paid one of amount.
func (s *Simulator) AutoCreate(amount tasks.Money) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.auto = &amount
}

// Refunded returns the refund that moved money on the order, if any.
func (s *Simulator) Refunded(ref string) []tasks.Money {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o := s.orders[ref]; o != nil && o.refunded > 0 {
		return []tasks.Money{{Minor: o.refunded, Currency: o.amount.Currency}}
	}
	return nil
}

type inner struct {
	MerchantID        json.RawMessage `json:"merchantId"`
	OrderID           json.Number     `json:"orderId"`
	MerchantReference string          `json:"merchantReference"`
	Amount            json.Number     `json:"amount"`
}

func reply(w http.ResponseWriter, code, msg string, extra map[string]any) {
	body := map[string]any{"responseCode": code, "message": msg}
	for k, v := range extra {
		body[k] = v
	}
	sim.WriteJSON(w, http.StatusOK, body)
}

// open verifies the signature and finds the order; s.mu must be held.
func (s *Simulator) open(w http.ResponseWriter, r *http.Request) (*inner, *simOrder) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	text, err := Verify(s.pub, body)
	if err != nil {
		reply(w, "9001", "Invalid signature", nil)
		return nil, nil
	}
	var in inner
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	if err := dec.Decode(&in); err != nil {
		reply(w, "9002", "Invalid request", nil)
		return nil, nil
	}
	if m := string(in.MerchantID); m != s.merchant && m != `"`+s.merchant+`"` {
		reply(w, "9003", "Invalid merchant", nil)
		return nil, nil
	}
	ref := in.MerchantReference
	if ref == "" {
		ref = in.OrderID.String()
	}
	o := s.orders[ref]
	if o == nil && s.auto != nil && ref != "" {
		o = &simOrder{ref: ref, amount: *s.auto}
		s.orders[ref] = o
	}
	if o == nil {
		reply(w, "2004", "Order not found", nil)
		return nil, nil
	}
	return &in, o
}

func (s *Simulator) refund(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	in, o := s.open(w, r)
	if o == nil {
		return
	}
	m, err := tasks.ParseMoney(in.Amount.String(), o.amount.Currency)
	switch {
	case err != nil:
		reply(w, "2002", "Invalid amount", nil)
	case o.refunded > 0:
		reply(w, "2001", "Order has already been refunded", nil)
	case m.Minor > o.amount.Minor:
		reply(w, "2003", "Refund amount exceeds the unsettled balance", nil)
	default:
		o.refunded = m.Minor
		reply(w, successCode, "Success", map[string]any{"data": map[string]any{"id": fmt.Sprintf("RF%s", o.ref)}})
	}
}

func (s *Simulator) query(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, o := s.open(w, r)
	if o == nil {
		return
	}
	status := "SUCCESS"
	order := map[string]any{"amount": json.Number(o.amount.Decimal()), "currency": o.amount.Currency}
	if o.refunded > 0 {
		// BBMSL shows REFUNDED for a partial refund too (PROVIDERS.md).
		status = "REFUNDED"
		order["refundAmount"] = json.Number(tasks.Money{Minor: o.refunded, Currency: o.amount.Currency}.Decimal())
	}
	order["status"] = status
	reply(w, successCode, "Success", map[string]any{"order": order})
}
