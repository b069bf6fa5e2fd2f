package providers

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
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
// have reached the provider: false only when no connection was ever made
// (dial refused, DNS, TLS handshake), which is the one case where retrying
// cannot pay twice. A request cut while being written, a reset, a timeout
// waiting for the answer: all Sent.
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
// knows whether the request can have left the process.
func Do(ctx context.Context, hc *http.Client, req *http.Request) (*Response, error) {
	resp, err := hc.Do(req.WithContext(ctx))
	if err != nil {
		return nil, &TransportError{Sent: !neverConnected(err), Err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	r := &Response{Status: resp.StatusCode, Header: resp.Header, Body: body}
	if sink, ok := ctx.Value(requestIDKey{}).(*string); ok {
		if id := r.RequestID(); id != "" {
			*sink = id
		}
	}
	if err != nil {
		// The status line arrived, so the provider saw the request.
		return nil, &TransportError{Sent: true, Err: fmt.Errorf("read body of HTTP %d: %w", resp.StatusCode, err)}
	}
	return r, nil
}

type requestIDKey struct{}

// WithRequestID returns a context in which Do writes to *id the provider's
// request id of each answer it reads, so the caller can keep it with the
// outcome without every adapter passing it along.
func WithRequestID(ctx context.Context, id *string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// neverConnected reports whether err shows that no connection to the provider
// was made, judged from the error's kind alone: a failed dial or name look-up,
// or a TLS handshake that did not complete. Nothing of the request can have
// been written then. Anything else may have reached the provider.
func neverConnected(err error) bool {
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return true
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var (
		verify *tls.CertificateVerificationError
		header tls.RecordHeaderError
		alert  tls.AlertError
		ua     x509.UnknownAuthorityError
		host   x509.HostnameError
		inv    x509.CertificateInvalidError
	)
	return errors.As(err, &verify) || errors.As(err, &header) || errors.As(err, &alert) ||
		errors.As(err, &ua) || errors.As(err, &host) || errors.As(err, &inv)
}

// TransportOutcome classifies a failed exchange: Transient when the request
// never left, Unknown when it may have been applied.
func TransportOutcome(err error) Outcome {
	var te *TransportError
	if errors.As(err, &te) && !te.Sent {
		return Outcome{Kind: Transient, Reason: err.Error()}
	}
	return Outcome{Kind: Unknown, Reason: err.Error()}
}

// RequestID returns the provider's id of the request from the usual response
// headers, for the refund's history; "" if there is none.
func (r *Response) RequestID() string {
	for _, h := range []string{"X-Request-Id", "Request-Id", "X-Correlation-Id", "X-Trace-Id"} {
		if v := strings.TrimSpace(r.Header.Get(h)); v != "" {
			if len(v) > 100 {
				v = v[:100]
			}
			return v
		}
	}
	return ""
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
// finishes and records its outcome, and a connection pool that keeps as many
// idle connections per provider host as refunds are handled at once (Go's
// default keeps 2, so most refunds would open a new TLS connection).
func HTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 0 // no overall cap; per host below
	t.MaxIdleConnsPerHost = PoolSize
	t.IdleConnTimeout = 90 * time.Second
	return &http.Client{Timeout: CallTimeout, Transport: t}
}

// PoolSize is how many idle connections each provider's client keeps per
// host; the worker sets it to its concurrency before building the adapters.
var PoolSize = 10

// CallTimeout bounds one HTTP request to a provider.
const CallTimeout = 20 * time.Second

// OperationTimeout bounds one provider operation as a whole: every request a
// Refund, Lookup or Prepare makes (a token, a verify and the refund, a retry
// with a fresh token). The worker gives each operation this deadline; the
// settle delay and the worker's ShutdownTimeout are derived from it, so a
// request still running somewhere has ended before anything relies on its
// silence.
const OperationTimeout = 30 * time.Second

// IDText reads an id a provider writes as a JSON number or a string; "" for
// none (absent, null, or anything else).
func IDText(raw json.RawMessage) string {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		return ""
	}
	var str string
	if json.Unmarshal(raw, &str) == nil {
		return str
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}
