// Package ecartpaysim is an Ecart Pay server for tests, the demo and the
// sandbox. It answers as Ecart Pay's refund page shows
// (shared/provider-docs/ecartpay-refund.txt): a refund and an order look-up
// both answer with the whole order — status (paid, refunded,
// partially_refunded), totals in major units, one refund_id (the latest
// refund's), updated_at (which moves on every refund), currency, and
// payments.data[] with amounts in minor units. There is no list of the
// order's refunds in that document; Guessed(true) adds the one refundq's
// adapter only guesses at (refunds: [{id, amount, reason, created_at}]).
//
// It issues one-hour tokens for HTTP Basic keys and accepts them raw in
// Authorization (no "Bearer"), refuses refunds of cash payments and refunds
// beyond what is left to refund, keeps a ledger of the money moved, and
// injects faults through providers/sim. It does not import the adapter: it
// follows the document, not our reading of it.
package ecartpaysim

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/refundq/refundq/providers/sim"
	"github.com/refundq/refundq/tasks"
)

// The API paths, as Ecart Pay documents them.
const (
	TokenPath  = "/api/authorizations/token"
	ordersPath = "/api/orders/"
)

// RefundPath is the refund call of an order.
func RefundPath(orderID string) string { return ordersPath + orderID + "/refund" }

// OrderPath is the order look-up.
func OrderPath(orderID string) string { return ordersPath + orderID }

// reasons are the refund reasons Ecart Pay accepts.
var reasons = []string{"requested", "duplicate", "fraudulent"}

// timeLayout is how Ecart Pay writes created_at and updated_at.
const timeLayout = "2006-01-02T15:04:05.000Z"

// Simulator is an Ecart Pay server. Refunded (from the embedded ledger)
// lists the money each order's refunds moved.
type Simulator struct {
	sim.Ledger

	public, private string
	faults          *sim.Faults
	handler         http.Handler
	// TokenTTL is how long issued tokens are accepted; one hour by default,
	// as documented.
	TokenTTL time.Duration

	mu      sync.Mutex
	tokens  map[string]time.Time
	orders  map[string]*order
	auto    *tasks.Money
	nextID  int
	guessed bool
	hidden  bool
}

type order struct {
	id      string
	amount  tasks.Money
	method  string
	refunds []refund
	created time.Time
	updated time.Time
	short   bool // the next refund is applied one minor unit short
}

type refund struct {
	id      string
	minor   int64
	reason  string
	created time.Time
}

// New returns a simulator accepting one key pair.
func New(publicKey, privateKey string) *Simulator {
	s := &Simulator{public: publicKey, private: privateKey, faults: sim.NewFaults(4), TokenTTL: time.Hour,
		tokens: map[string]time.Time{}, orders: map[string]*order{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+TokenPath, s.issue)
	mux.Handle("POST "+ordersPath+"{id}/refund", s.auth(http.HandlerFunc(s.refund)))
	mux.Handle("GET "+ordersPath+"{id}", s.auth(http.HandlerFunc(s.show)))
	s.handler = s.faults.Wrap(mux)
	return s
}

// ServeHTTP serves Ecart Pay's API.
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Faults is the simulator's fault injector.
func (s *Simulator) Faults() *sim.Faults { return s.faults }

// AddOrder records a paid order (card payment) of amount.
func (s *Simulator) AddOrder(id string, amount tasks.Money) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.orders[id] = newOrder(id, amount)
}

func newOrder(id string, amount tasks.Money) *order {
	now := time.Now().UTC().Truncate(time.Millisecond)
	return &order{id: id, amount: amount, method: "card", created: now, updated: now}
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

// Guessed switches on (true) the field refundq only guesses at: a refunds
// list on the order. Off (the default), answers have exactly the documented
// shape.
func (s *Simulator) Guessed(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.guessed = on
}

// HideEvidence makes every order look-up from now on leave out what would
// show a refund (status, refund_id, updated_at, and the refunds list), as a
// provider that changed its answers might.
func (s *Simulator) HideEvidence() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hidden = true
}

// WrongAmount makes the next refund on the order be applied one minor unit
// short of what was asked. Only the refunds list (Guessed) shows a refund's
// own amount; the documented answer shows it only through the status.
func (s *Simulator) WrongAmount(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o := s.order(id); o != nil {
		o.short = true
	}
}

// RefundIDs lists the ids of the refunds on the order, oldest first: what a
// person finds in Ecart Pay's dashboard to settle a refund by hand.
func (s *Simulator) RefundIDs(id string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	if o := s.orders[id]; o != nil {
		for _, r := range o.refunds {
			ids = append(ids, r.id)
		}
	}
	return ids
}

// Backdate moves everything that happened to the order d into the past
// (created_at, updated_at, its refunds' created_at), as if it had all
// happened that much earlier: a test's way to let time pass.
func (s *Simulator) Backdate(id string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.order(id)
	if o == nil {
		return
	}
	o.created, o.updated = o.created.Add(-d), o.updated.Add(-d)
	for i := range o.refunds {
		o.refunds[i].created = o.refunds[i].created.Add(-d)
	}
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
func (s *Simulator) order(id string) *order {
	if s.orders[id] == nil && s.auto != nil {
		s.orders[id] = newOrder(id, *s.auto)
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
	for _, ok := range reasons {
		valid = valid || in.Reason == ok
	}
	if !valid {
		sim.WriteJSON(w, http.StatusBadRequest, map[string]string{"message": "reason must be one of " + strings.Join(reasons, ", ")})
		return
	}
	// The request carries no currency: the amount is in the order's.
	m, err := tasks.ParseProviderAmount(in.Amount.String(), o.amount.Currency)
	if err != nil || m.Minor <= 0 {
		sim.WriteJSON(w, http.StatusBadRequest, map[string]string{"message": fmt.Sprintf("Invalid amount %q", in.Amount)})
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
	if o.short && m.Minor > 1 {
		m.Minor--
		o.short = false
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	if !now.After(o.updated) {
		now = o.updated.Add(time.Millisecond) // updated_at moves on every refund
	}
	s.nextID++
	f := refund{id: fmt.Sprintf("%08x%016x", now.Unix(), s.nextID), minor: m.Minor, reason: in.Reason, created: now}
	o.refunds = append(o.refunds, f)
	o.updated = now
	s.Record(sim.Entry{OrderID: o.id, Ref: f.id, Amount: m})
	sim.WriteJSON(w, http.StatusOK, o.view(s.guessed, false))
}

func (s *Simulator) show(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.order(r.PathValue("id"))
	if o == nil {
		sim.WriteJSON(w, http.StatusNotFound, map[string]string{"message": "Order not found"})
		return
	}
	sim.WriteJSON(w, http.StatusOK, o.view(s.guessed, s.hidden))
}

func (o *order) refunded() int64 {
	var n int64
	for _, f := range o.refunds {
		n += f.minor
	}
	return n
}

// view is the order as Ecart Pay's document shows it (the fields refundq
// could read, with a few of the others for realism).
func (o *order) view(guessed, hidden bool) map[string]any {
	cur := o.amount.Currency
	total := decimal(o.amount)
	method := map[string]any{"object": "card_payment", "type": "credit", "brand": "visa", "last4": "4242"}
	if o.method == "cash" {
		method = map[string]any{"object": "cash_payment"}
	}
	v := map[string]any{
		"id": o.id, "account_id": "5d2d436e3199ae000449065b", "number": "OR" + fmt.Sprint(o.created.UnixMilli()%1e8),
		"currency":   cur,
		"totals":     map[string]any{"subtotal": total, "total": total, "tax": 0, "discount": 0, "shipping": 0},
		"created_at": o.created.Format(timeLayout),
		// Nested payment amounts are minor units; the payment keeps status
		// "paid" after a refund, as in the document's examples.
		"payments": map[string]any{"gateway": "conekta", "paid_at": o.created.Format(timeLayout),
			"data": []map[string]any{{"id": "pay_" + o.id, "object": "charge", "currency": cur, "status": "paid",
				"amount": o.amount.Minor, "payment_method": method, "created_at": o.created.Unix()}}},
	}
	if hidden {
		return v
	}
	refunded := o.refunded()
	switch {
	case refunded == 0:
		v["status"] = "paid"
	case refunded >= o.amount.Minor:
		v["status"] = "refunded"
	default:
		v["status"] = "partially_refunded"
	}
	v["updated_at"] = o.updated.Format(timeLayout)
	if len(o.refunds) > 0 {
		v["refund_id"] = o.refunds[len(o.refunds)-1].id
	}
	if guessed {
		list := make([]map[string]any, len(o.refunds))
		for i, f := range o.refunds {
			list[i] = map[string]any{"id": f.id, "amount": decimal(tasks.Money{Minor: f.minor, Currency: cur}),
				"reason": f.reason, "created_at": f.created.Format(timeLayout)}
		}
		v["refunds"] = list
	}
	return v
}

// decimal writes an amount in major units as Ecart Pay's JavaScript does: a
// JSON number without trailing zeros (403.33, 160, 10.5).
func decimal(m tasks.Money) json.Number {
	s := m.Decimal()
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return json.Number(s)
}
