package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sony/gobreaker/v2"
	"golang.org/x/time/rate"

	"github.com/refundq/refundq/providers"
)

// guards protects each provider, and this worker's slots, from each other:
// a rate limit per provider (its Entry's RateLimit, per worker process), and
// a circuit breaker that, after breakerTrips consecutive failures (no answer,
// 5xx), stops calling the provider for breakerOpen. An outage then costs
// each refund one quick "not now" instead of a slot held through backoffs.
type guards struct {
	mu sync.Mutex
	by map[string]*guard
}

type guard struct {
	limiter *rate.Limiter // nil: no limit
	breaker *gobreaker.CircuitBreaker[providers.Outcome]
}

const (
	breakerTrips = 5
	breakerOpen  = 30 * time.Second
)

func (g *guards) of(e providers.Entry) *guard {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.by == nil {
		g.by = map[string]*guard{}
	}
	if gd := g.by[e.Name]; gd != nil {
		return gd
	}
	gd := &guard{breaker: gobreaker.NewCircuitBreaker[providers.Outcome](gobreaker.Settings{
		Name:        e.Name,
		MaxRequests: 1,
		Timeout:     breakerOpen,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= breakerTrips },
	})}
	if e.RateLimit > 0 {
		gd.limiter = rate.NewLimiter(rate.Limit(e.RateLimit), max(e.RateBurst, 1))
	}
	g.by[e.Name] = gd
	return gd
}

// open reports, before anything is marked sent, that the provider is not
// being called now.
func (gd *guard) open() (providers.Outcome, bool) {
	if gd.breaker.State() != gobreaker.StateOpen {
		return providers.Outcome{}, false
	}
	return providers.Outcome{Kind: providers.Transient, RetryAfter: breakerOpen,
		Reason: fmt.Sprintf("circuit open: %d calls in a row failed; not calling the provider for %s", breakerTrips, breakerOpen)}, true
}

// call makes fn through the rate limit and the breaker. A call the guard
// does not let through comes back Transient: nothing was sent.
func (gd *guard) call(ctx context.Context, fn func() providers.Outcome) providers.Outcome {
	if gd.limiter != nil {
		if err := gd.limiter.Wait(ctx); err != nil {
			return providers.Outcome{Kind: providers.Transient, Reason: "rate limit: " + err.Error()}
		}
	}
	out, err := gd.breaker.Execute(func() (providers.Outcome, error) {
		out := fn()
		if failed(out) {
			return out, errProviderFailed
		}
		return out, nil
	})
	switch {
	case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
		return providers.Outcome{Kind: providers.Transient, RetryAfter: breakerOpen, Reason: "circuit open: " + err.Error()}
	}
	return out
}

var errProviderFailed = errors.New("provider failed")

// failed is what counts against the breaker: no answer at all, or a 5xx.
// A refusal, a 429 or a 4xx is the provider working.
func failed(out providers.Outcome) bool {
	switch out.Kind {
	case providers.Unknown, providers.Transient:
		return out.HTTPStatus == 0 || out.HTTPStatus >= 500
	}
	return false
}
