package ecomcharge

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

// maxTrackingResults is how many transactions a tracking_id look-up lists
// at most, most recent first (doc: "up to 10 recent transactions").
const maxTrackingResults = 10

// Simulator is an ecomCharge server for tests, the demo and the sandbox. It
// checks HTTP Basic auth (shop id, secret key), keeps payments and the
// refunds made of them (several partial refunds per payment, each at most
// what is left; a refund is in the payment's currency, as the request has
// none), applies duplicate_check (same parent_uid and amount within the
// window is refused with duplicateMessage), can keep a refund pending for a
// number of look-ups, serves GET /transactions/{uid} and
// GET /v2/transactions/tracking_id/{tracking_id}, and injects faults.
type Simulator struct {
	sim.Ledger   // the refunds that moved money; OrderID is the parent payment's uid
	shop, secret string
	faults       *sim.Faults
	handler      http.Handler

	mu       sync.Mutex
	window   time.Duration
	payments map[string]*payment // by uid
	refunds  []*refundTxn        // every refund transaction, oldest first
	pending  map[string]int      // payment uid → look-ups its next refund stays pending
	auto     *tasks.Money
}

type payment struct {
	uid      string
	amount   tasks.Money
	refunded int64 // successful refunds
	reserved int64 // pending refunds
	created  time.Time
}

type refundTxn struct {
	uid, parent, tracking, reason string
	amount                        tasks.Money
	status, message, code         string
	left                          int // look-ups until a pending refund succeeds
	created                       time.Time
}

// NewSimulator returns a simulator of one shop with these credentials.
func NewSimulator(shopID, secretKey string) *Simulator {
	s := &Simulator{shop: shopID, secret: secretKey, faults: sim.NewFaults(2), window: DuplicateWindow,
		payments: map[string]*payment{}, pending: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+refundPath, s.refund)
	mux.HandleFunc("GET "+uidPath+"{uid}", s.byUID)
	mux.HandleFunc("GET "+trackingPath+"{tid}", s.byTracking)
	s.handler = s.faults.Wrap(s.auth(mux))
	return s
}

// ServeHTTP serves ecomCharge's API.
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Faults is the simulator's fault injector.
func (s *Simulator) Faults() *sim.Faults { return s.faults }

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
	s.pending[uid] = n
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

// refuse answers 422 in ecomCharge's error shape.
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
			if t.parent == p.uid && t.amount.Minor == amount && t.status != statusFailed && now.Sub(t.created) < s.window {
				refuse(w, duplicateMessage, map[string][]string{"base": {
					duplicateMessage + ": an identical refund of this payment was made less than " + s.window.String() + " ago"}})
				return
			}
		}
	}
	t := &refundTxn{uid: uuid.NewString(), parent: p.uid, tracking: q.TrackingID, reason: q.Reason,
		amount: tasks.Money{Minor: amount, Currency: p.amount.Currency}, created: now}
	if n := s.pending[p.uid]; n > 0 {
		delete(s.pending, p.uid)
		t.status, t.message, t.left = "pending", "Refund is being processed", n
		p.reserved += amount
	} else {
		s.succeed(p, t)
	}
	s.refunds = append(s.refunds, t)
	sim.WriteJSON(w, http.StatusOK, map[string]any{"transaction": t.view(r)})
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
	t.status, t.message, t.code = statusSuccessful, "Successfully processed", "S.0000"
	p.refunded += t.amount.Minor
	s.Record(sim.Entry{OrderID: p.uid, Ref: t.uid, Key: t.tracking, Amount: t.amount})
}

// lookedUp counts one look-up against a pending refund; s.mu held.
func (s *Simulator) lookedUp(t *refundTxn) {
	if !isPending(t.status) {
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
			sim.WriteJSON(w, http.StatusOK, map[string]any{"transaction": t.view(r)})
			return
		}
	}
	if p := s.payment(uid); p != nil {
		sim.WriteJSON(w, http.StatusOK, map[string]any{"transaction": p.view(r)})
		return
	}
	sim.WriteJSON(w, http.StatusNotFound, map[string]any{"message": "Record not found"})
}

func (s *Simulator) byTracking(w http.ResponseWriter, r *http.Request) {
	tid := r.PathValue("tid")
	s.mu.Lock()
	defer s.mu.Unlock()
	list := []map[string]any{}
	for i := len(s.refunds) - 1; i >= 0 && len(list) < maxTrackingResults; i-- {
		if t := s.refunds[i]; t.tracking != "" && t.tracking == tid {
			s.lookedUp(t)
			list = append(list, t.view(r))
		}
	}
	sim.WriteJSON(w, http.StatusOK, map[string]any{"transactions": list})
}

// view is the refund as ecomCharge shows it; code and friendly_message only
// with X-API-Version 3.
func (t *refundTxn) view(r *http.Request) map[string]any {
	v := map[string]any{
		"uid": t.uid, "status": t.status, "amount": t.amount.Minor, "currency": t.amount.Currency,
		"type": refundType, "message": t.message, "parent_uid": t.parent, "tracking_id": t.tracking,
		"reason": t.reason, "test": true, "created_at": t.created.Format(time.RFC3339),
		"refund": map[string]any{"status": t.status, "message": t.message, "ref_id": nil, "rrn": nil, "auth_code": nil},
	}
	if r.Header.Get(apiVersionHeader) == apiVersion {
		code := t.code
		if code == "" {
			code = "P.0000" // guess: a pending code
		}
		v["code"], v["friendly_message"] = code, t.message
	}
	return v
}

func (p *payment) view(r *http.Request) map[string]any {
	v := map[string]any{
		"uid": p.uid, "status": statusSuccessful, "amount": p.amount.Minor, "currency": p.amount.Currency,
		"type": "payment", "message": "Successfully processed", "test": true, "created_at": p.created.Format(time.RFC3339),
	}
	if r.Header.Get(apiVersionHeader) == apiVersion {
		v["code"], v["friendly_message"] = "S.0000", "The payment is successfully processed."
	}
	return v
}
