// Package bbmslsim is a BBMSL hosted-checkout server for tests, the demo
// and the sandbox. It follows BBMSL's documents
// (shared/provider-docs/bbmsl-refund.txt, PROVIDERS.md), not the adapter's
// guesses, and does not import the adapter: it verifies every request's
// SHA256withRSA signature with the merchant's public key itself, keeps a
// ledger of orders and their one refund (full or partial, at most the order
// amount; "enough unsettled balance" is not simulated), answers queries,
// and injects faults through providers/sim.
//
// The refund answer has the document's shape: responseCode, message, order
// {id, merchantId, merchantReference, currency, amount, netAmount, cardType,
// email, createTime, updateTime, status, recurring} and transaction {id,
// merchantId, type REFUND, amount, currency, status SUCCESS, maskedPan,
// stan}.
//
// The query answer is {responseCode, message, order}. What our documents
// show of it is order.status (PROVIDERS.md: "read order.status"); the order
// object is the refund answer's, but by default without netAmount, which is
// the part the adapter's guess "bbmsl.query_order" relies on (amount −
// netAmount = what was refunded). Guessed(true) adds netAmount. BBMSL's
// public query page (docs.sit.bbmsl.com/docs/online-hosted/API/query) does
// list netAmount among the query's fields; what no page says is that it is
// net of refunds, and the default shape keeps the adapter from relying on
// that until it has seen it hold.
//
// The non-0000 responseCodes here are invented: BBMSL's are not documented
// to us. Every answer is HTTP 200.
//
// Quirks(true) adds what BBMSL's documents allow and the adapter does not
// count on: responseCodes no page explains, on refunds that did or did not
// move money, and query answers that also name the order's refund
// transaction (see Quirks).
package bbmslsim

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/refundq/refundq/providers/sim"
	"github.com/refundq/refundq/tasks"
)

// Paths of BBMSL's hosted-checkout API.
const (
	RefundPath = "/hosted-checkout/refund"
	QueryPath  = "/hosted-checkout/query"
)

// The simulator's responseCodes. Only "0000" is BBMSL's; the rest are
// invented, with messages like those the adapter reads.
const (
	codeSuccess      = "0000"
	codeRefunded     = "2001" // the order has its one refund
	codeBadAmount    = "2002"
	codeTooMuch      = "2003"
	codeNotFound     = "2004"
	codeBadSignature = "9001"
	codeBadRequest   = "9002"
	codeBadMerchant  = "9003"
	// With Quirks on: a refund applied and answered as a system error, and
	// a refund turned away before anything was applied.
	codeQueryMe = "9999"
	codeBusy    = "9100"
)

// The quirks' messages: an acquirer's words, not BBMSL's (none are
// documented).
const (
	msgQueryMe = "System error, please query the order status"
	msgBusy    = "System busy, please try again later"
)

// timeLayout is how BBMSL writes createTime and updateTime.
const timeLayout = "2006-01-02T15:04:05.000-07:00"

// Simulator is a BBMSL server; its ledger (sim.Ledger) holds the refunds
// that moved money, by merchant reference.
type Simulator struct {
	sim.Ledger
	merchant string
	pub      *rsa.PublicKey
	faults   *sim.Faults
	handler  http.Handler

	mu      sync.Mutex
	orders  map[string]*order // by merchant reference
	byID    map[int64]*order  // by BBMSL's order id
	nextID  int64
	nextTxn int64
	auto    *tasks.Money
	short   map[string]bool // the next refund on the order is applied one minor unit short
	guessed bool            // query answers carry netAmount
	hide    bool            // query answers carry no order
	quirks  bool
	busy    map[int64]bool // quirks: orders whose first refund request was turned away
	posts   int
}

type order struct {
	id        int64
	ref       string
	amount    tasks.Money
	refunded  int64 // minor units of the one refund, 0 before it
	refundTxn int64
	created   time.Time
	updated   time.Time
}

// New returns a simulator for one merchant and its public key.
func New(merchantID string, pub *rsa.PublicKey) *Simulator {
	s := &Simulator{merchant: merchantID, pub: pub, faults: sim.NewFaults(5),
		orders: map[string]*order{}, byID: map[int64]*order{}, short: map[string]bool{}, busy: map[int64]bool{},
		nextID: 4922, nextTxn: 3758}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+RefundPath, s.refund)
	mux.HandleFunc("POST "+QueryPath, s.query)
	s.handler = s.faults.Wrap(mux)
	return s
}

// ServeHTTP serves BBMSL's API.
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Faults is the simulator's fault injector.
func (s *Simulator) Faults() *sim.Faults { return s.faults }

// Guessed switches the fields the adapter only guesses at on or off (off,
// the documented shape, by default): netAmount in the query's order.
func (s *Simulator) Guessed(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.guessed = on
}

// Quirks switches on (true) the answers BBMSL's documents allow and the
// adapter does not count on: responseCodes other than "0000", which no page
// explains. Which one an order meets depends on BBMSL's order id, so a test
// can pick it (AddOrder returns the id), and one order in five meets one:
//
//   - QuirkApplied (ids ending in 1): a refund BBMSL applies is answered
//     "9999" "System error, please query the order status", without order
//     or transaction; the money has moved (the ledger has it) and only a
//     query shows it.
//   - QuirkBusy (ids ending in 2): the order's first refund request is
//     answered "9100" "System busy, please try again later" and nothing is
//     applied; later requests are answered as without quirks.
//
// Refusals (already refunded, amount too big, order not found) keep their
// codes, which are undocumented too. And a query about an order that has
// its refund answers, beside the order, that refund's transaction, as the
// refund answer shows it (id, type REFUND, amount, currency, status): no
// page shows the query's answer beyond order.status, so nothing says it
// does, or that it does not.
func (s *Simulator) Quirks(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.quirks = on
}

// QuirkApplied reports whether, with Quirks on, a refund of the order with
// BBMSL id id is applied and answered with an undocumented code.
func QuirkApplied(id int64) bool { return id%10 == 1 }

// QuirkBusy reports whether, with Quirks on, the first refund request of the
// order with BBMSL id id is turned away with an undocumented code.
func QuirkBusy(id int64) bool { return id%10 == 2 }

// HideEvidence makes every later query answer without its order, as a BBMSL
// that changed its answer might.
func (s *Simulator) HideEvidence() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hide = true
}

// WrongAmount makes the next refund on the order move one minor unit less
// than asked, and its answer say so.
func (s *Simulator) WrongAmount(ref string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.short[ref] = true
}

// AddOrder records a paid order under its merchant reference and returns
// BBMSL's id for it (what a producer may send as transaction_id).
func (s *Simulator) AddOrder(ref string, amount tasks.Money) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.add(ref, amount).id
}

func (s *Simulator) add(ref string, amount tasks.Money) *order {
	now := time.Now().UTC()
	o := &order{id: s.nextID, ref: ref, amount: amount, created: now, updated: now}
	s.nextID++
	s.orders[ref], s.byID[o.id] = o, o
	return o
}

// AutoCreate makes every unknown merchant reference a paid order of amount.
func (s *Simulator) AutoCreate(amount tasks.Money) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.auto = &amount
}

// RefundRequests counts the refund requests that passed the signature check.
func (s *Simulator) RefundRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.posts
}

// request is the inner request of both calls.
type request struct {
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

// verify checks the envelope's signature over the exact request text and
// returns that text.
func (s *Simulator) verify(body []byte) (string, error) {
	var env struct {
		Request   string `json:"request"`
		Signature string `json:"signature"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return "", err
	}
	sig, err := base64.StdEncoding.DecodeString(env.Signature)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(env.Request))
	if err := rsa.VerifyPKCS1v15(s.pub, crypto.SHA256, sum[:], sig); err != nil {
		return "", errors.New("signature does not match")
	}
	return env.Request, nil
}

// open verifies the signature, reads the request and finds the order; s.mu
// must be held. It has answered when the order is nil.
func (s *Simulator) open(w http.ResponseWriter, r *http.Request) (*request, *order) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	text, err := s.verify(body)
	if err != nil {
		reply(w, codeBadSignature, "Invalid signature", nil)
		return nil, nil
	}
	var in request
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	if err := dec.Decode(&in); err != nil || (in.OrderID == "" && in.MerchantReference == "") || len(in.MerchantReference) > 64 {
		reply(w, codeBadRequest, "Invalid request", nil)
		return nil, nil
	}
	if m := string(in.MerchantID); m != s.merchant && m != strconv.Quote(s.merchant) {
		reply(w, codeBadMerchant, "Invalid merchant", nil)
		return nil, nil
	}
	var o *order
	if in.OrderID != "" {
		id, err := in.OrderID.Int64()
		if err != nil {
			reply(w, codeBadRequest, "Invalid request", nil)
			return nil, nil
		}
		o = s.byID[id]
		if o != nil && in.MerchantReference != "" && o.ref != in.MerchantReference {
			o = nil // the two ids name different orders
		}
	} else {
		o = s.orders[in.MerchantReference]
		if o == nil && s.auto != nil {
			o = s.add(in.MerchantReference, *s.auto)
		}
	}
	if o == nil {
		reply(w, codeNotFound, "Order not found", nil)
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
	s.posts++
	if s.quirks && QuirkBusy(o.id) && !s.busy[o.id] {
		s.busy[o.id] = true
		reply(w, codeBusy, msgBusy, nil)
		return
	}
	m, err := tasks.ParseMoney(in.Amount.String(), o.amount.Currency)
	switch {
	case err != nil:
		reply(w, codeBadAmount, "Invalid amount", nil)
		return
	case o.refunded > 0:
		reply(w, codeRefunded, "Order has already been refunded", nil)
		return
	case m.Minor > o.amount.Minor:
		reply(w, codeTooMuch, "Refund amount exceeds the order amount", nil)
		return
	}
	if s.short[o.ref] {
		m.Minor--
		delete(s.short, o.ref)
	}
	o.refunded, o.refundTxn, o.updated = m.Minor, s.nextTxn, time.Now().UTC()
	s.nextTxn++
	s.Record(sim.Entry{OrderID: o.ref, Ref: strconv.FormatInt(o.refundTxn, 10), Amount: m})
	if s.quirks && QuirkApplied(o.id) {
		reply(w, codeQueryMe, msgQueryMe, nil)
		return
	}
	reply(w, codeSuccess, "Success", map[string]any{"order": s.orderJSON(o, true), "transaction": s.refundJSON(o)})
}

func (s *Simulator) query(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, o := s.open(w, r)
	if o == nil {
		return
	}
	if s.hide {
		reply(w, codeSuccess, "Success", nil)
		return
	}
	body := map[string]any{"order": s.orderJSON(o, s.guessed)}
	if s.quirks && o.refunded > 0 {
		body["transaction"] = s.refundJSON(o)
	}
	reply(w, codeSuccess, "Success", body)
}

// refundJSON is the transaction object of the refund answer, for the order's
// one refund.
func (s *Simulator) refundJSON(o *order) map[string]any {
	m := tasks.Money{Minor: o.refunded, Currency: o.amount.Currency}
	return map[string]any{
		"id": o.refundTxn, "merchantId": s.merchantJSON(), "type": "REFUND",
		"amount": json.Number(m.Decimal()), "currency": m.Currency, "status": "SUCCESS",
		"maskedPan": "400000XXXXXX0028", "stan": "S" + strconv.FormatInt(o.refundTxn%10000, 10),
	}
}

// orderJSON is the order object of the refund answer; netAmount (amount
// less the refund) only when withNet.
func (s *Simulator) orderJSON(o *order, withNet bool) map[string]any {
	status := "SUCCESS"
	if o.refunded > 0 {
		// BBMSL shows REFUNDED for a partial refund too (PROVIDERS.md).
		status = "REFUNDED"
	}
	m := map[string]any{
		"id": o.id, "merchantId": s.merchantJSON(), "merchantReference": o.ref,
		"currency": o.amount.Currency, "amount": json.Number(o.amount.Decimal()),
		"cardType": "VISA", "email": "",
		"createTime": o.created.Format(timeLayout), "updateTime": o.updated.Format(timeLayout),
		"status": status, "recurring": false,
	}
	if withNet {
		m["netAmount"] = json.Number(tasks.Money{Minor: o.amount.Minor - o.refunded, Currency: o.amount.Currency}.Decimal())
	}
	return m
}

// merchantJSON writes the merchant id as BBMSL's example does: a number.
func (s *Simulator) merchantJSON() any {
	if n, err := strconv.ParseInt(s.merchant, 10, 64); err == nil {
		return n
	}
	return s.merchant
}
