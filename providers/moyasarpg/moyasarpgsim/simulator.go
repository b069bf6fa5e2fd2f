// Package moyasarpgsim is a Moyasar Payment Gateway (MPG) server for tests,
// the demo and the sandbox, following MPG's documents (shared/provider-docs/
// moyasarpg-refund.txt, shared/PROVIDERS.md), not refundq's adapter: it does
// not import the adapter.
//
// Its orders have the document's shape (id, merchant, currency, amount,
// captured_amount, refunded_amount, voided_amount, …, transactions[] with
// id, status, type, amount, …). A refund's transaction_id is the idempotency
// key (doc): a resend with the same one answers the order as it is now (the
// replay of a finished request), or 400 "Initial request is still
// processing." while the first is in flight.
//
// The one field refundq guesses at is the refund transaction's id. The
// document shows a refund transaction and, separately, that the request may
// carry a transaction_id, but never the two together, so by default (the
// documented shape) the refund transaction gets an id of MPG's own (a
// UUIDv7, like the example's other ids). Guessed(true) makes it the client's
// transaction_id, which is what the adapter hopes for.
//
// SetUncertain ends the next refund on an order in timeout or system_error,
// the statuses MPG's documents call "outcome uncertain". Quirks(true) adds
// what MPG's documents allow and refundq's adapter must not count on: a
// resend is validated (amount against what is left to refund) before it is
// replayed, so the resend of an applied refund can be refused with 422; and
// an applied refund shows in GET /v1/orders/{id} only some answers later.
package moyasarpgsim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/refundq/refundq/providers/sim"
	"github.com/refundq/refundq/tasks"
)

// MPG's API, as documented, written here again so the simulator does not
// depend on the adapter.
const (
	stillProcessing = "Initial request is still processing." // 400 (seed)
	validationError = "Data validation failed"               // 422 (doc)
	missingAuth     = "Missing authentication information"   // 401 (doc)
	forbidden       = "Unauthorized"                         // 403 (doc)
	refundType      = "refund"
	captureType     = "capture"
	approved        = "approved"
	initiated       = "initiated"
	timeout         = "timeout"      // outcome uncertain (doc)
	systemError     = "system_error" // outcome uncertain (doc)
)

// QuirkLag is how many look-up answers (GET /v1/orders/{id}) about an order
// leave out a refund applied on it, with Quirks on.
const QuirkLag = 2

// Simulator is an MPG merchant account. It checks the Bearer key (no key:
// 401; another key: 403), keeps paid orders and the refunds that moved
// money, enforces MPG's rules (an amount of at least 1 and at most what is
// left to refund; transaction_id idempotency) and injects faults.
type Simulator struct {
	sim.Ledger // the refunds that moved money
	key        string
	faults     *sim.Faults
	handler    http.Handler

	mu         sync.Mutex
	guessed    bool // a refund transaction's id is the client's transaction_id
	hidden     bool // orders are shown without transactions
	quirks     bool // resends validated before their replay; look-ups lag behind refunds
	orders     map[string]*simOrder
	processing map[string]int    // order id → requests the next refund stays in flight
	short      map[string]bool   // order id → its next refund is applied one minor unit short
	uncertain  map[string]string // order id → the status its next refund ends in (timeout, system_error)
	auto       *tasks.Money
	stan       int
}

type simOrder struct {
	id       string
	amount   tasks.Money
	refunded int64 // approved refunds
	reserved int64 // refunds in flight
	created  time.Time
	updated  time.Time
	txns     []*simTxn
}

type simTxn struct {
	id, key, typ, status, message string // key: the client's transaction_id, "" if none
	amount                        int64
	stan                          string
	created                       time.Time
	left                          int // requests until an initiated refund is approved
	lag                           int // look-up answers that still leave this refund out (Quirks)
}

// New returns a simulator that accepts apiKey, answering in the
// documented shape.
func New(apiKey string) *Simulator {
	s := &Simulator{key: apiKey, faults: sim.NewFaults(1), orders: map[string]*simOrder{},
		processing: map[string]int{}, short: map[string]bool{}, uncertain: map[string]string{}}
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

// Guessed switches on (true) what refundq only guesses MPG does: give a
// refund's transaction the client's transaction_id as its id. Off (the
// default), the id is MPG's own. It applies to refunds made from now on.
func (s *Simulator) Guessed(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.guessed = on
}

// Quirks switches on (true) what MPG's documents allow and refundq's adapter
// must not count on, for refunds made from now on:
//   - a resend with a transaction_id MPG already finished is validated
//     before it is replayed: an amount above what is now left to refund
//     (because the first request was applied) is refused with 422 "Data
//     validation failed" instead of the replay;
//   - an applied refund shows in the look-up (GET /v1/orders/{id}) only after
//     QuirkLag answers about its order have left it out (the refund answer
//     shows it at once).
func (s *Simulator) Quirks(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.quirks = on
}

// SetUncertain ends the next refund on the order in status, "timeout" or
// "system_error" (MPG's "outcome uncertain"): its transaction shows that
// status for good, a resend replays it, and no money moves in the ledger
// (the amount stays held, as MPG cannot tell whether it left).
func (s *Simulator) SetUncertain(orderID, status string) {
	if status != timeout && status != systemError {
		panic("moyasarpgsim: SetUncertain takes timeout or system_error, not " + status)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.uncertain[orderID] = status
}

// HideEvidence shows every order from now on without its transactions, as
// an MPG that changed its answer might.
func (s *Simulator) HideEvidence() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hidden = true
}

// WrongAmount makes the next refund on the order be applied one minor unit
// short; its transaction in the order says so.
func (s *Simulator) WrongAmount(orderID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.short[orderID] = true
}

// AddOrder creates a paid (captured) order.
func (s *Simulator) AddOrder(id string, amount tasks.Money) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addOrder(id, amount)
}

func (s *Simulator) addOrder(id string, amount tasks.Money) {
	now := time.Now().UTC()
	o := &simOrder{id: id, amount: amount, created: now, updated: now}
	o.txns = []*simTxn{{id: s.newID(), typ: captureType, status: approved, message: "APPROVED",
		amount: amount.Minor, stan: s.nextStan(), created: now}}
	s.orders[id] = o
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
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		switch {
		case !ok || strings.TrimSpace(got) == "":
			sim.WriteJSON(w, http.StatusUnauthorized, map[string]string{"message": missingAuth})
		case got != s.key:
			sim.WriteJSON(w, http.StatusForbidden, map[string]string{"message": forbidden})
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// order returns the order, creating it in auto mode; s.mu held.
func (s *Simulator) order(id string) *simOrder {
	if s.orders[id] == nil && s.auto != nil && id != "" {
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
		validation(w, "base", "The request body must be a JSON object.")
		return
	}
	amount, err := body.Amount.Int64()
	if err != nil || strings.ContainsAny(body.Amount.String(), ".eE") {
		validation(w, "amount", "The value must be an integer.")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.order(r.PathValue("id"))
	if o == nil {
		sim.WriteJSON(w, http.StatusNotFound, map[string]string{"message": "Object not found"}) // undocumented
		return
	}
	if body.TransactionID != "" {
		if t := o.byKey(body.TransactionID); t != nil {
			if s.quirks && t.status != initiated && amount > o.amount.Minor-o.refunded-o.reserved {
				// Quirk: the resend is validated like a new request before it
				// is replayed, so the first one, applied, makes it too much.
				validation(w, "amount", fmt.Sprintf("The value must be less than or equal to %d.", o.amount.Minor-o.refunded-o.reserved))
				return
			}
			if t.status == initiated && !s.advance(o, t) {
				sim.WriteJSON(w, http.StatusBadRequest, map[string]string{"message": stillProcessing})
				return
			}
			sim.WriteJSON(w, http.StatusOK, s.view(o)) // replay of a finished request
			return
		}
	}
	switch refundable := o.amount.Minor - o.refunded - o.reserved; {
	case amount < 1:
		validation(w, "amount", "The value must be greater than or equal to 1.")
		return
	case amount > refundable:
		validation(w, "amount", fmt.Sprintf("The value must be less than or equal to %d.", refundable))
		return
	}
	if s.short[o.id] {
		delete(s.short, o.id)
		amount--
	}
	id := s.newID()
	if s.guessed && body.TransactionID != "" {
		id = body.TransactionID
	}
	t := &simTxn{id: id, key: body.TransactionID, typ: refundType, status: initiated, message: "INITIATED",
		amount: amount, stan: s.nextStan(), created: time.Now().UTC(), left: s.processing[o.id]}
	if s.quirks {
		t.lag = QuirkLag
	}
	delete(s.processing, o.id)
	o.txns = append(o.txns, t)
	o.reserved += amount
	if st := s.uncertain[o.id]; st != "" {
		delete(s.uncertain, o.id)
		t.status, t.message = st, strings.ToUpper(st) // held: neither refunded nor released
	} else {
		s.advance(o, t)
	}
	sim.WriteJSON(w, http.StatusOK, s.view(o))
}

// advance counts one request against an initiated refund and approves it
// when none are left; it reports whether the refund is done. s.mu held.
func (s *Simulator) advance(o *simOrder, t *simTxn) bool {
	if t.left > 0 {
		t.left--
		return false
	}
	t.status, t.message = approved, "APPROVED"
	o.reserved -= t.amount
	o.refunded += t.amount
	o.updated = time.Now().UTC()
	s.Record(sim.Entry{OrderID: o.id, Ref: t.id, Key: t.key, Amount: tasks.Money{Minor: t.amount, Currency: o.amount.Currency}})
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
		if t.status == initiated {
			s.advance(o, t)
		}
	}
	sim.WriteJSON(w, http.StatusOK, s.lookupView(o))
}

func (o *simOrder) byKey(key string) *simTxn {
	for _, t := range o.txns {
		if t.key == key && t.typ == refundType {
			return t
		}
	}
	return nil
}

// newID is an id of MPG's own: a UUIDv7, as in the document's example.
func (s *Simulator) newID() string { return uuid.Must(uuid.NewV7()).String() }

func (s *Simulator) nextStan() string {
	s.stan++
	return fmt.Sprintf("%06d", s.stan%1000000)
}

// lookupView is the order as a look-up shows it: with Quirks, without the
// refunds still lagging (each answer counts one off their lag). s.mu held.
func (s *Simulator) lookupView(o *simOrder) map[string]any {
	var late []*simTxn
	for _, t := range o.txns {
		if t.lag > 0 {
			late = append(late, t)
			t.lag--
		}
	}
	return s.viewWithout(o, late)
}

// view is the order as the document's example shows it. s.mu held.
func (s *Simulator) view(o *simOrder) map[string]any { return s.viewWithout(o, nil) }

// viewWithout is the order as if the refunds in late were not made. s.mu
// held.
func (s *Simulator) viewWithout(o *simOrder, late []*simTxn) map[string]any {
	refunded := o.refunded
	for _, t := range late {
		if t.status == approved {
			refunded -= t.amount
		}
	}
	v := map[string]any{
		"id": o.id,
		"merchant": map[string]any{"id": "0191f5a7-44a5-7700-8c11-ffc3703a7990", "acquirer_id": "0191f5a7-44a2-73d5-9a9c-745f40f8db31",
			"name": "Merchant 52", "arabic_name": "الإسم العربي", "merchant_id": "60052", "rule_precedence": "mixed"},
		"currency": o.amount.Currency, "amount": o.amount.Minor, "captured_amount": o.amount.Minor,
		"refunded_amount": refunded, "voided_amount": 0, "description": "Order " + o.id,
		"created_at": o.created.Format(time.RFC3339), "updated_at": o.updated.Format(time.RFC3339),
		"source": map[string]any{"type": "card", "issuer": nil, "card_type": nil, "category": nil, "country_alpha2": nil,
			"scheme": "mastercard", "first_digits": "55555555", "last_digits": "4444", "month": 12, "year": 2026},
		"reauthorized_order_id": nil,
		"airline":               map[string]any{"reference": "576449881"},
		"sub_merchant": map[string]any{"id": "ecb0e32fd3d95b41cbf2ca9a9513a3", "registered_name": "Rolfson-Legros",
			"trading_name": "Hane-Jerde", "email": "herschel@kilback-hamill.test"},
		"agreement": nil,
	}
	if !s.hidden {
		txns := make([]map[string]any, 0, len(o.txns))
		for _, t := range o.txns {
			if !slices.Contains(late, t) {
				txns = append(txns, t.view())
			}
		}
		v["transactions"] = txns
	}
	return v
}

func (t *simTxn) view() map[string]any {
	var auth any
	if t.typ == captureType {
		auth = "663390"
	}
	code := "00"
	if t.status == initiated || t.status == timeout || t.status == systemError {
		code = "" // guess: no response code without the network's answer
	}
	return map[string]any{
		"id": t.id, "status": t.status, "type": t.typ, "source_type": "merchant",
		"reverse_reason": nil, "justification": nil, "reversed_transaction_id": nil,
		"message": t.message, "response_code": code, "retrieval_reference": "2425900" + t.stan[1:],
		"stan": t.stan, "auth_code": auth, "amount": t.amount, "refunded_amount": 0,
		"created_at": t.created.Format(time.RFC3339),
	}
}

func validation(w http.ResponseWriter, field, msg string) {
	sim.WriteJSON(w, http.StatusUnprocessableEntity, map[string]any{
		"message": validationError, "errors": map[string][]string{field: {msg}},
	})
}
