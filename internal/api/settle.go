package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode"

	"github.com/sirupsen/logrus"

	"github.com/refundq/refundq/internal/store"
)

// settleBody is POST /v1/refunds/{id}/settle.
type settleBody struct {
	State       store.State `json:"state"`        // succeeded or failed
	ProviderRef string      `json:"provider_ref"` // the provider's refund reference, when succeeded
	Note        string      `json:"note"`         // what the provider said; required, kept in the history
}

const maxNoteLen = 1000

// settleRefund closes a needs_review refund as a human found it at the
// provider. Only needs_review can be settled (409 otherwise), and never
// while a worker holds the refund (409 with Retry-After).
func (s *Server) settleRefund(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var body settleBody
	if !readJSON(w, r, &body) {
		return
	}
	errs, err := s.settle(r, id, body)
	var busy *store.BusyError
	switch {
	case len(errs) > 0:
		validationProblem(w, r, errs)
		return
	case errors.Is(err, store.ErrNotFound):
		notFound(w, r, id)
		return
	case errors.Is(err, store.ErrNotReview), errors.Is(err, store.ErrClosed):
		writeProblem(w, r, Problem{Status: http.StatusConflict, Type: typeNotReview,
			Title: "Only a refund in needs_review can be settled", Detail: err.Error()})
		return
	case errors.As(err, &busy):
		w.Header().Set("Retry-After", strconv.Itoa(int(busy.Remaining.Seconds())+1))
		writeProblem(w, r, Problem{Status: http.StatusConflict, Type: typeBusy,
			Title: "A worker is handling the refund", Detail: "a worker holds the refund now; try again when it is done"})
		return
	case err != nil:
		s.unavailable(w, r, err, "the refund could not be settled; try again")
		return
	}
	rec, err := s.store.Get(r.Context(), id)
	if err != nil {
		s.unavailable(w, r, err, "the refund was settled, but could not be read back")
		return
	}
	writeJSON(w, http.StatusOK, refundOf(rec))
}

// settle is the one way a person settles a refund, from the JSON API or the
// console: it checks body (errs names the fields at fault), then settles
// refund id as whoever the request was admitted as. Its error wraps
// store.ErrNotFound, store.ErrNotReview, store.ErrClosed or a
// *store.BusyError; each caller says those in its own way.
func (s *Server) settle(r *http.Request, id string, body settleBody) (errs []FieldError, err error) {
	if body.State != store.Succeeded && body.State != store.Failed {
		errs = append(errs, field("state", `must be "succeeded" (the provider shows the refund) or "failed" (it shows none)`))
	}
	switch note := strings.TrimSpace(body.Note); {
	case note == "":
		errs = append(errs, field("note", "is required: what the provider said, for the history"))
	case len(note) > maxNoteLen:
		errs = append(errs, field("note", fmt.Sprintf("longer than %d characters", maxNoteLen)))
	case !printable(note):
		errs = append(errs, field("note", "contains control or non-printable characters"))
	}
	if len(body.ProviderRef) > 128 || !printable(body.ProviderRef) {
		errs = append(errs, field("provider_ref", "must be at most 128 printable characters"))
	}
	if len(errs) > 0 {
		return errs, nil
	}
	if !validRefundID(id) {
		return nil, fmt.Errorf("refund %q: %w", id, store.ErrNotFound)
	}
	// Looked up first: store.Acquire does not report an unknown refund as
	// store.ErrNotFound on Redis 7 (its script's bare "NOTFOUND" comes back
	// as "ERR NOTFOUND"). Refunds are never deleted, so this cannot race.
	if _, err := s.store.Get(r.Context(), id); err != nil {
		return nil, err
	}
	who := info(r).who
	err = s.enq.Settle(r.Context(), id, store.Settlement{State: body.State, ProviderRef: body.ProviderRef,
		Note: strings.TrimSpace(body.Note), Actor: who.Actor()})
	if err == nil {
		s.log.WithFields(logrus.Fields{"refund_id": id, "state": body.State, "provider_ref": body.ProviderRef,
			"actor": who.Actor()}).Warn("refund settled by hand")
	}
	return nil, err
}

func printable(s string) bool {
	for _, c := range s {
		if !unicode.IsPrint(c) {
			return false
		}
	}
	return true
}
