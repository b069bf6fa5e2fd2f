package ecomchargesim

import (
	"net/http"
	"time"

	"github.com/refundq/refundq/providers/sim"
)

// lookedUp counts one look-up against a non-final refund, which ends
// (successful, or failed at the acquirer: PendThenDecline) at the last one;
// s.mu held.
func (s *Simulator) lookedUp(t *refundTxn) {
	if t.status != statusPending && t.status != statusIncomplete {
		return
	}
	if t.left--; t.left > 0 {
		return
	}
	p := s.payments[t.parent]
	p.reserved -= t.amount.Minor
	if t.decline {
		t.status, t.message, t.code, t.updated = statusFailed, declineMessage, declineCode, time.Now().UTC()
		return
	}
	s.succeed(p, t)
}

func (s *Simulator) byUID(w http.ResponseWriter, r *http.Request) {
	uid := r.PathValue("uid")
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.refunds {
		if t.uid == uid {
			s.lookedUp(t)
			sim.WriteJSON(w, http.StatusOK, map[string]any{"transaction": s.view(t, r)})
			return
		}
	}
	if p := s.payment(uid); p != nil {
		sim.WriteJSON(w, http.StatusOK, map[string]any{"transaction": s.paymentView(p, r)})
		return
	}
	// beGateway's message for an unknown uid (its PHP client's tests).
	sim.WriteJSON(w, http.StatusNotFound, map[string]any{"message": "Record not found"})
}

// byTracking lists the refunds kept with this tracking_id: none in the
// documented shape, where refunds do not keep it. With the quirks on it
// lists the payments made with it instead, and never a refund.
func (s *Simulator) byTracking(w http.ResponseWriter, r *http.Request) {
	tid := r.PathValue("tid")
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hidden {
		sim.WriteJSON(w, http.StatusOK, map[string]any{})
		return
	}
	list := []map[string]any{}
	if s.quirks {
		for _, p := range s.payments {
			if p.tracking != "" && p.tracking == tid && len(list) < maxTrackingResults {
				list = append(list, s.paymentView(p, r))
			}
		}
		sim.WriteJSON(w, http.StatusOK, map[string]any{"transactions": list})
		return
	}
	for i := len(s.refunds) - 1; i >= 0 && len(list) < maxTrackingResults; i-- {
		if t := s.refunds[i]; t.tracking != "" && t.tracking == tid {
			s.lookedUp(t)
			list = append(list, s.view(t, r))
		}
	}
	sim.WriteJSON(w, http.StatusOK, map[string]any{"transactions": list})
}
