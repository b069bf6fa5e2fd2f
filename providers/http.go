package providers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"time"
)

// maxBody bounds what is read of a provider's answer; refund answers are a few KiB.
const maxBody = 1 << 20

// Response is a provider's HTTP answer, read whole.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// TransportError is a failed HTTP exchange. Sent says whether the request may
// have reached the provider: false only when the request was never written
// (dial refused, DNS, TLS handshake), which is the one case where retrying
// cannot pay twice.
type TransportError struct {
	Sent bool
	Err  error
}

func (e *TransportError) Error() string {
	if e.Sent {
		return "request sent, no answer: " + e.Err.Error()
	}
	return "request not sent: " + e.Err.Error()
}

func (e *TransportError) Unwrap() error { return e.Err }

// Do sends req and reads the answer. A failure is a *TransportError that
// knows whether the request left the process.
func Do(ctx context.Context, hc *http.Client, req *http.Request) (*Response, error) {
	var wrote bool
	trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { wrote = true }}
	req = req.WithContext(httptrace.WithClientTrace(ctx, trace))
	resp, err := hc.Do(req)
	if err != nil {
		return nil, &TransportError{Sent: wrote, Err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		// The status line arrived, so the provider saw the request.
		return nil, &TransportError{Sent: true, Err: fmt.Errorf("read body of HTTP %d: %w", resp.StatusCode, err)}
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: body}, nil
}

// TransportOutcome classifies a failed exchange: Transient when the request
// never left, Unknown when it may have been applied.
func TransportOutcome(err error) Outcome {
	var te *TransportError
	if errors.As(err, &te) && !te.Sent && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return Outcome{Kind: Transient, Reason: err.Error()}
	}
	return Outcome{Kind: Unknown, Reason: err.Error()}
}

// RetryAfter parses a Retry-After header (seconds or HTTP date); 0 if absent
// or unreadable.
func RetryAfter(h http.Header) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return 0
}

// Snippet returns the start of a body for an error message, on one line.
// Adapters use it for bodies they could not parse; provider error bodies
// carry no secret of ours.
func Snippet(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	if s == "" {
		return "(empty body)"
	}
	return s
}

// HTTPClient returns the client adapters use by default: a whole-call timeout
// shorter than the worker's shutdown grace, so a call in flight at SIGTERM
// finishes and records its outcome.
func HTTPClient() *http.Client {
	return &http.Client{Timeout: CallTimeout}
}

// CallTimeout bounds one HTTP call to a provider. The worker's ShutdownTimeout
// is derived from it.
const CallTimeout = 20 * time.Second
