package console

import (
	"net/http"
	"time"

	"github.com/refundq/refundq/internal/store"
)

// providerHealth is one provider's section of the health page.
type providerHealth struct {
	Provider    string
	Workers     []store.ProviderHealth
	OpenOn      []string // the workers whose breaker is open
	LastSuccess time.Time
	Blocked     int
	InReview    int
	Guesses     []guessView
}

type healthPage struct {
	base
	Providers []providerHealth
	Truncated bool
}

// Health shows, per provider: on which workers its circuit breaker is
// open, when a call last got an answer, how many refunds are blocked or in
// review, and what each of its guesses came to, with the evidence.
func (c *Console) Health(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := reqCtx(r)
	defer cancel()
	_, blocked, _, nBlocked, err := c.store.WorkList(ctx, workLimit)
	if err != nil {
		c.unavailable(w, r, err)
		return
	}
	counts, err := c.store.ReviewCounts(ctx)
	if err != nil {
		c.unavailable(w, r, err)
		return
	}
	p := healthPage{base: base{Title: "Providers", Viewer: c.viewer(r)}, Truncated: nBlocked > len(blocked)}
	for _, name := range providerNames() {
		ph := providerHealth{Provider: name}
		if ph.Workers, err = c.store.Health(ctx, name); err != nil {
			c.unavailable(w, r, err)
			return
		}
		for _, wh := range ph.Workers {
			if wh.BreakerOpen {
				ph.OpenOn = append(ph.OpenOn, wh.Worker)
			}
			if wh.LastSuccess.After(ph.LastSuccess) {
				ph.LastSuccess = wh.LastSuccess
			}
		}
		for _, b := range blocked {
			if b.Provider == name {
				ph.Blocked++
			}
		}
		for _, rc := range counts {
			if rc.Provider == name {
				ph.InReview += rc.Count
			}
		}
		gs, err := c.store.Guesses(ctx, name)
		if err != nil {
			c.unavailable(w, r, err)
			return
		}
		for _, g := range gs {
			ph.Guesses = append(ph.Guesses, guessView{GuessState: g, Verdict: g.Verdict()})
		}
		p.Providers = append(p.Providers, ph)
	}
	c.render(w, http.StatusOK, "health", p)
}
