// Package sim is the plumbing every provider simulator shares: injected
// faults (5xx, 429, slow answers, a refund applied and its answer lost) and
// JSON replies. The simulators themselves live with their adapters.
package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// Kind is a fault a simulator can inject.
type Kind string

// The faults. "Applied" faults run the real handler, so the ledger changes,
// and then lose the answer: the case that pays twice when a client resends
// without asking first.
const (
	Status5xx          Kind = "5xx"                  // 503 with an HTML body; nothing applied
	RateLimited        Kind = "429"                  // 429 with Retry-After; nothing applied
	Slow               Kind = "slow"                 // wait, then answer normally
	AppliedThenTimeout Kind = "applied_then_timeout" // applied; the answer never comes
	AppliedThenReset   Kind = "applied_then_reset"   // applied; the connection is reset
	ResetBeforeApply   Kind = "reset_before_apply"   // connection reset; nothing applied
	// AppliedLate: the provider keeps working on the request after the
	// client gave up: no answer comes (the client times out, or is reset
	// after HangFor), and the refund is applied LateBy after that. A client
	// that looks up at once and resends on "not found" pays twice.
	AppliedLate Kind = "applied_late"
	// Unauthorized: 401, as a provider answers a key it no longer accepts
	// (rotated, revoked); nothing applied.
	Unauthorized Kind = "401"
)

// Faults decides, per request, whether to inject a fault. Queue faults for
// the next matching requests with Next, or set rates with SetRate. It is
// safe for concurrent use.
type Faults struct {
	mu      sync.Mutex
	queued  []queued
	rates   []rate
	rng     *rand.Rand
	counts  map[Kind]int
	SlowFor time.Duration // how long Slow waits; default 2s
	RetryIn int           // Retry-After seconds of RateLimited; default 1
	HangFor time.Duration // how long AppliedThenTimeout and AppliedLate hold the answer at most; default 2m
	LateBy  time.Duration // how long after the client left AppliedLate applies; default 1s

	late sync.WaitGroup

	outage      Kind
	outageUntil time.Time
}

type queued struct {
	method, path string
	kind         Kind
	left         int
}

type rate struct {
	method, prefix string
	kind           Kind
	p              float64
}

// NewFaults returns an injector with no faults; seed makes rate-based faults
// reproducible.
func NewFaults(seed uint64) *Faults {
	return &Faults{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), counts: map[Kind]int{}}
}

// Next injects kind into the next n requests whose method and path match
// exactly (path "" matches any path).
func (f *Faults) Next(n int, method, path string, kind Kind) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queued = append(f.queued, queued{method, path, kind, n})
}

// SetRate injects kind into a share p (0..1) of the requests whose method
// matches and whose path starts with prefix.
func (f *Faults) SetRate(method, prefix string, kind Kind, p float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rates = append(f.rates, rate{method, prefix, kind, p})
}

// Counts returns how many faults of each kind were injected.
func (f *Faults) Counts() map[Kind]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[Kind]int, len(f.counts))
	for k, v := range f.counts {
		out[k] = v
	}
	return out
}

// String lists the injected faults, e.g. "429=3 5xx=1".
func (f *Faults) String() string {
	c := f.Counts()
	parts := make([]string, 0, len(c))
	for k, v := range c {
		parts = append(parts, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

// Outage injects kind into every request for d (e.g. Unauthorized: the
// provider refuses our key for a while).
func (f *Faults) Outage(kind Kind, d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.outage, f.outageUntil = kind, time.Now().Add(d)
}

func (f *Faults) pick(r *http.Request) (Kind, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.outage != "" && time.Now().Before(f.outageUntil) {
		f.counts[f.outage]++
		return f.outage, true
	}
	for i := range f.queued {
		q := &f.queued[i]
		if q.left > 0 && q.method == r.Method && (q.path == "" || q.path == r.URL.Path) {
			q.left--
			f.counts[q.kind]++
			return q.kind, true
		}
	}
	for _, rt := range f.rates {
		if rt.method == r.Method && strings.HasPrefix(r.URL.Path, rt.prefix) && f.rng.Float64() < rt.p {
			f.counts[rt.kind]++
			return rt.kind, true
		}
	}
	return "", false
}

// Wrap returns next with faults injected in front of it.
func (f *Faults) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kind, ok := f.pick(r)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		switch kind {
		case Status5xx:
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>")
		case Unauthorized:
			WriteJSON(w, http.StatusUnauthorized, map[string]string{"message": "Unauthorized"})
		case RateLimited:
			w.Header().Set("Retry-After", fmt.Sprint(max(f.RetryIn, 1)))
			WriteJSON(w, http.StatusTooManyRequests, map[string]string{"message": "Too many requests"})
		case Slow:
			d := f.SlowFor
			if d <= 0 {
				d = 2 * time.Second
			}
			select {
			case <-time.After(d):
				next.ServeHTTP(w, r)
			case <-r.Context().Done():
			}
		case AppliedThenTimeout:
			next.ServeHTTP(Discard{}, r)
			d := f.HangFor
			if d <= 0 {
				d = 2 * time.Minute
			}
			select {
			case <-time.After(d):
			case <-r.Context().Done():
			}
			Reset(w)
		case AppliedThenReset:
			next.ServeHTTP(Discard{}, r)
			Reset(w)
		case ResetBeforeApply:
			Reset(w)
		case AppliedLate:
			f.applyLate(w, r, next)
		}
	})
}

func (f *Faults) applyLate(w http.ResponseWriter, r *http.Request, next http.Handler) {
	body, _ := io.ReadAll(r.Body)
	hang, by := f.HangFor, f.LateBy
	if hang <= 0 {
		hang = 2 * time.Minute
	}
	if by <= 0 {
		by = time.Second
	}
	select {
	case <-time.After(hang):
	case <-r.Context().Done():
	}
	late := r.Clone(context.Background())
	late.Body = io.NopCloser(bytes.NewReader(body))
	f.late.Add(1)
	go func() {
		defer f.late.Done()
		time.Sleep(by)
		next.ServeHTTP(Discard{}, late)
	}()
	Reset(w)
}

// WaitLate waits until every AppliedLate refund injected so far is applied.
func (f *Faults) WaitLate() { f.late.Wait() }

// Reset closes the client's connection abruptly (RST), without an answer.
func Reset(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	conn.Close()
}

// Discard is where an applied-then-lost answer goes.
type Discard struct{}

func (Discard) Header() http.Header         { return http.Header{} }
func (Discard) Write(b []byte) (int, error) { return len(b), nil }
func (Discard) WriteHeader(int)             {}

// WriteJSON writes v as a JSON answer with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
