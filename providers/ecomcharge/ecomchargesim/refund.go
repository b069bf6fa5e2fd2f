package ecomchargesim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/refundq/refundq/providers/sim"
	"github.com/refundq/refundq/tasks"
)

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
		t.decline = h.decline
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
