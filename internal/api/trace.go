package api

import (
	"net/http"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/refundq/refundq/internal/spans"
)

// traced gives each request of a /v1/ route a server span named for its
// route pattern ("POST /v1/refunds"), continuing the caller's trace when
// the request carries a W3C traceparent. The enqueue of a refund is its
// child, and the refund's task runs join the same trace (package spans).
// It records the method, the route, the status and, on a successful
// answer about one refund, its id; nothing of the body, the query or the
// headers. Other routes (health probes, metrics, the OpenAPI document,
// asynqmon) are returned as they are: they are polled every few seconds
// and say nothing about a refund.
func traced(pattern string, next http.Handler) http.Handler {
	if _, path, _ := strings.Cut(pattern, " "); !strings.HasPrefix(path, "/v1/") {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := otel.GetTextMapPropagator().Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := otel.Tracer("github.com/refundq/refundq/internal/api").Start(ctx, pattern, trace.WithSpanKind(trace.SpanKindServer))
		if !span.SpanContext().IsValid() {
			// Tracing is off: nothing to record, nothing to pass on.
			next.ServeHTTP(w, r)
			return
		}
		sw, ok := w.(*statusWriter) // ServeHTTP's, in the server as built
		if !ok {
			sw = &statusWriter{ResponseWriter: w}
		}
		returned := false
		defer func() {
			status := sw.code()
			if !returned {
				status = http.StatusInternalServerError // a panic, answered by ServeHTTP
			}
			endRequest(span, pattern, r, sw, status)
		}()
		next.ServeHTTP(sw, r.WithContext(ctx))
		returned = true
	})
}

// endRequest records what the answer was and ends the request's span.
func endRequest(span trace.Span, pattern string, r *http.Request, w http.ResponseWriter, status int) {
	defer span.End()
	if !span.IsRecording() {
		return
	}
	route := pattern
	if _, path, ok := strings.Cut(pattern, " "); ok {
		route = path
	}
	span.SetAttributes(semconv.HTTPRequestMethodKey.String(r.Method), semconv.HTTPRouteKey.String(route),
		semconv.HTTPResponseStatusCodeKey.Int(status))
	if status < 400 {
		id := r.PathValue("id")
		if loc, ok := strings.CutPrefix(w.Header().Get("Location"), "/v1/refunds/"); ok && id == "" {
			id = loc // a refund just enqueued
		}
		if id != "" {
			span.SetAttributes(spans.RefundID.String(id))
		}
	}
	if status >= 500 {
		span.SetStatus(codes.Error, http.StatusText(status))
	}
}
