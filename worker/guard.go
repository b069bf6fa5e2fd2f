package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"
	"golang.org/x/time/rate"

	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/providers"
)

// guards protects each provider, and this worker's slots, from each other:
// a rate limit per provider (its Entry's RateLimit, per worker process), and
// a circuit breaker that, after breakerTrips consecutive failures (no answer,
// 5xx), stops calling the provider for Config.BreakerOpen. An outage then costs
// each refund one quick "not now" instead of a slot held through backoffs.
//
// A call is admitted before anything is marked or sent (the rate limit's
// wait included), so a refusal leaves the refund as it was: the run hands
// its task back for later without spending one of its retries, for a send
// as for a look-up.
type guards struct {
	open time.Duration // Config.BreakerOpen
	mu   sync.Mutex
	by   map[string]*guard
}

type guard struct {
	// answered is when (unix ms) a call last got an answer that was not a
	// failure of the provider's (0: none yet), for the console's health.
	answered atomic.Int64
	limiter  *rate.Limiter // nil: no limit
	breaker  *gobreaker.TwoStepCircuitBreaker[struct{}]
	open     time.Duration
}

const (
	breakerTrips = 5
	// DefaultBreakerOpen is Config.BreakerOpen's default.
	DefaultBreakerOpen = 30 * time.Second
	// halfOpenWait is how long a call waits while the breaker lets one
	// trial call through (another run's) to see if the provider is back.
	halfOpenWait = 5 * time.Second
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
	gd := &guard{open: g.open, breaker: gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        e.Name,
		MaxRequests: 1,
		Timeout:     g.open,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= breakerTrips },
		IsExcluded:  func(err error) bool { return errors.Is(err, errNotCalled) },
	})}
	if e.RateLimit > 0 {
		gd.limiter = rate.NewLimiter(rate.Limit(e.RateLimit), max(e.RateBurst, 1))
	}
	g.by[e.Name] = gd
	return gd
}

// health says, for each provider this worker has called, whether its
// breaker is open and when a call last got an answer.
func (g *guards) health() []store.ProviderHealth {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]store.ProviderHealth, 0, len(g.by))
	for name, gd := range g.by {
		ph := store.ProviderHealth{Provider: name, BreakerOpen: gd.breaker.State() == gobreaker.StateOpen}
		if ms := gd.answered.Load(); ms > 0 {
			ph.LastSuccess = time.UnixMilli(ms)
		}
		out = append(out, ph)
	}
	return out
}

// openBreakers says which providers' breakers are open now. Half-open is
// not open: gobreaker stays half-open until the next call, so a provider
// that recovered while no refund needed it would read as open for ever.
func (g *guards) openBreakers() map[string]bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := map[string]bool{}
	for name, gd := range g.by {
		if gd.breaker.State() == gobreaker.StateOpen {
			out[name] = true
		}
	}
	return out
}

// refusal is a call the guard did not let through: nothing was sent.
type refusal struct {
	why   string // "circuit_open", "rate_limit": the snooze metric's label
	after time.Duration
	msg   string
}

func (r *refusal) Error() string { return r.msg }

// admit lets one call through, after waiting for the rate limit if that
// wait is at most maxWait. The call's outcome must be passed to done (nil
// for a call that did not leave). A refusal (the breaker open or testing, a
// longer rate-limit wait, ctx ended) says how long to wait instead.
func (gd *guard) admit(ctx context.Context, maxWait time.Duration) (done func(*providers.Outcome), _ *refusal) {
	// The breaker first: while it is open, a refusal costs no rate-limit
	// wait and no token.
	cb, err := gd.breaker.Allow()
	switch {
	case errors.Is(err, gobreaker.ErrOpenState):
		return nil, &refusal{why: "circuit_open", after: gd.open,
			msg: fmt.Sprintf("circuit open: %d calls in a row failed; not calling the provider for %s", breakerTrips, gd.open)}
	case errors.Is(err, gobreaker.ErrTooManyRequests):
		return nil, &refusal{why: "circuit_open", after: min(halfOpenWait, gd.open),
			msg: "circuit half-open: one trial call is testing whether the provider is back"}
	case err != nil:
		return nil, &refusal{why: "circuit_open", after: gd.open, msg: "circuit: " + err.Error()}
	}
	// Every admitted call must report back, even one that never left:
	// while the breaker tests the provider, the one trial slot stays taken
	// until its call reports.
	done = func(out *providers.Outcome) {
		if out == nil {
			cb(errNotCalled)
		} else if failed(*out) {
			cb(errProviderFailed)
		} else {
			gd.answered.Store(time.Now().UnixMilli())
			cb(nil)
		}
	}
	if gd.limiter == nil {
		return done, nil
	}
	r := gd.limiter.Reserve()
	wait := r.Delay()
	if wait > maxWait {
		r.Cancel()
		done(nil)
		return nil, &refusal{why: "rate_limit", after: wait, msg: fmt.Sprintf("rate limit: next call in %s", wait.Round(time.Millisecond))}
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return done, nil
	case <-ctx.Done():
		r.Cancel()
		done(nil)
		return nil, &refusal{why: "rate_limit", after: time.Second, msg: "rate limit wait ended: " + context.Cause(ctx).Error()}
	}
}

var (
	errProviderFailed = errors.New("provider failed")
	// errNotCalled: an admitted call that did not leave after all (the mark
	// before it failed) is neither a success nor a failure of the provider's.
	errNotCalled = errors.New("not called")
)

// failed is what counts against the breaker: no answer at all, or a 5xx.
// A refusal, a 429 or a 4xx is the provider working.
func failed(out providers.Outcome) bool {
	switch out.Kind {
	case providers.Unknown, providers.Transient:
		return out.HTTPStatus == 0 || out.HTTPStatus >= 500
	}
	return false
}

// throttled reports an answer that says when to call again (a Retry-After
// on a 429 or another answer that is not a failure): the call is handed back
// for that long like a guard's refusal, without spending a retry. A 429
// without one counts like a failure: nothing says when it ends.
func throttled(out providers.Outcome) bool {
	if out.Kind != providers.Transient && out.Kind != providers.Unknown {
		return false
	}
	return out.RetryAfter > 0 && out.HTTPStatus > 0 && out.HTTPStatus < 500
}
