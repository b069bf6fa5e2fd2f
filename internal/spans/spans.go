// Package spans names what refundq's spans record, and carries a span's
// trace context through a task payload (tasks.Refund.Trace), so that one
// refund's whole life (the API request, the enqueue, every run and poll of
// its task, every provider call) is one trace. It uses the OpenTelemetry
// API alone: the producers' library links no SDK and no exporter. Package
// tracing installs them in refundq's own commands.
package spans

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// Attribute keys refundq puts on its spans, in one place so the API, the
// producers' library and the worker name a thing alike. Values are ids,
// states and outcome kinds: never a secret, card data or a merchant's
// metadata.
const (
	RefundID   = attribute.Key("refund.id")
	Provider   = attribute.Key("refund.provider")
	State      = attribute.Key("refund.state") // the state an enqueue found or a run left the refund in
	Created    = attribute.Key("refundq.created")
	RetryCount = attribute.Key("refundq.retry_count") // runs of the task before this one
	PollStep   = attribute.Key("refundq.poll_step")
	Op         = attribute.Key("refundq.op") // prepare, send or lookup
	Attempt    = attribute.Key("refundq.attempt")
	Outcome    = attribute.Key("refundq.outcome") // the provider answer's kind
	HandedBack = attribute.Key("refundq.handed_back")
	HTTPStatus = semconv.HTTPResponseStatusCodeKey
)

// maxTraceState bounds the tracestate a payload carries: W3C asks that at
// least 512 characters be passed on, and a caller's header could hold
// kilobytes that every task of the refund would then carry.
const maxTraceState = 512

// Inject returns the W3C trace context of ctx's span, for a task payload
// (tasks.Refund.Trace), or nil when ctx has no span (tracing off). It uses
// the W3C propagator whatever the global one is: the payload's format is
// refundq's, and a producer's own propagator may add baggage, which a
// payload must not carry.
func Inject(ctx context.Context) map[string]string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return nil
	}
	c := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, c)
	if len(c["tracestate"]) > maxTraceState {
		delete(c, "tracestate")
	}
	return c
}

// Extract returns ctx with the span context a payload carries as its
// remote parent; ctx itself when it carries none or a malformed one.
func Extract(ctx context.Context, carrier map[string]string) context.Context {
	if len(carrier) == 0 {
		return ctx
	}
	return propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier(carrier))
}
