package console

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/refundq/refundq/internal/store"
)

// refundPage is a refund's page.
type refundPage struct {
	base
	R      store.Record
	Amount string
	// Review says why it waits for a person, and whether a look-up will
	// still be made by itself.
	Review          string
	Rechecked       bool
	Intro           string // how the provider keeps refunds
	Check           []checkLine
	Timeline        []timelineEntry
	Guesses         []guessView
	Others          []store.Record // other refunds of ours on the same order
	Form            settleForm
	Settled         bool // just settled by this viewer (?settled=1)
	SettleForbidden bool // in needs_review, but the viewer lacks the settle scope
}

// settleForm is what the settle form shows: what was typed, and what was
// wrong with it or why the store refused it.
type settleForm struct {
	State, ProviderRef, Note string
	Errors                   map[string]string
	Refusal                  string
}

// timelineEntry is one history entry as a person reads it.
type timelineEntry struct {
	store.Entry
	Auto    bool     // a settle a look-up made, not a person
	Rests   []string // the provider's guesses its detail names, with their verdicts
	Settled bool
}

// guessView is what is known of one of the provider's guesses.
type guessView struct {
	store.GuessState
	Verdict string
}

// Refund is a refund's page: amounts in decimals, the references, why it
// waits, the whole history as a timeline, what to search for at the
// provider, and the settle form while it is in needs_review.
func (c *Console) Refund(w http.ResponseWriter, r *http.Request) {
	c.refundPage(w, r, http.StatusOK, settleForm{})
}

// refundPage renders the refund of the request's {id} with form as the
// settle form's content.
func (c *Console) refundPage(w http.ResponseWriter, r *http.Request, status int, form settleForm) {
	id := r.PathValue("id")
	ctx, cancel := reqCtx(r)
	defer cancel()
	rec, err := c.store.Get(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		c.message(w, r, http.StatusNotFound, "No such refund", "refundq has no refund with id "+id+".")
		return
	}
	if err != nil {
		c.unavailable(w, r, err)
		return
	}
	hist, err := c.store.History(ctx, id)
	if err != nil {
		c.unavailable(w, r, err)
		return
	}
	guesses, err := c.store.Guesses(ctx, rec.Provider)
	if err != nil {
		c.unavailable(w, r, err)
		return
	}
	others, err := c.othersOnOrder(r, rec)
	if err != nil {
		c.unavailable(w, r, err)
		return
	}
	v := c.viewer(r)
	p := refundPage{base: base{Title: "Refund " + rec.RefundID, Viewer: v}, R: rec, Amount: rec.Amount.String(),
		Others: others, Form: form, Settled: r.URL.Query().Get("settled") == "1" && form.Refusal == "" && form.Errors == nil}
	if rec.State == store.NeedsReview {
		kind := rec.Review
		if kind == "" {
			kind = store.ReviewUnclassified
		}
		p.Review, p.Rechecked = string(kind)+": "+kind.Describe(), kind.Rechecked() && !rec.RecheckAt.IsZero()
		p.SettleForbidden = !v.CanSettle
	}
	if p.Form.State == "" {
		p.Form.State = string(store.Succeeded)
	}
	if p.Form.ProviderRef == "" && form.Errors == nil {
		p.Form.ProviderRef = rec.ProviderRef
	}
	p.Intro, p.Check = whereToCheck(rec)
	for _, g := range guesses {
		p.Guesses = append(p.Guesses, guessView{GuessState: g, Verdict: g.Verdict()})
	}
	p.Timeline = timeline(hist, guesses)
	c.render(w, status, "refund", p)
}

// othersOnOrder reads the other refunds of ours on rec's order: a person
// checking the provider sees every one of them there.
func (c *Console) othersOnOrder(r *http.Request, rec store.Record) ([]store.Record, error) {
	ids, err := c.store.OrderRefunds(r.Context(), rec.Provider, rec.OrderID)
	if err != nil {
		return nil, err
	}
	var out []store.Record
	for _, id := range ids {
		if id == rec.RefundID || len(out) == 20 {
			continue
		}
		o, err := c.store.Get(r.Context(), id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}

// timeline marks, in each history entry, a settle made by a look-up and the
// guesses of the provider its detail names: what the decision rested on.
func timeline(hist []store.Entry, guesses []store.GuessState) []timelineEntry {
	out := make([]timelineEntry, len(hist))
	for i, e := range hist {
		te := timelineEntry{Entry: e, Settled: e.Event == "settled"}
		te.Auto = te.Settled && strings.HasPrefix(e.Detail, "settled by look-up")
		for _, g := range guesses {
			if strings.Contains(e.Detail, g.Guess) {
				te.Rests = append(te.Rests, g.Guess+" ("+g.Verdict()+")")
			}
		}
		out[i] = te
	}
	return out
}

// durationMS says how long a call to the provider took.
func durationMS(ms int64) string {
	if ms < 1000 {
		return fmt.Sprintf("%d ms", ms)
	}
	return duration(time.Duration(ms) * time.Millisecond)
}
