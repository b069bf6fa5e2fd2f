package worker

import (
	"context"

	"github.com/hibiken/asynq"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/refundq/refundq/internal/spans"
	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/providers"
)

// Span names of a task's run; a provider call's span is named for its
// call ("refundq.provider.send").
const (
	spanRefund = "refundq.refund"
	spanPoll   = "refundq.poll"
)

func tracer() trace.Tracer { return otel.Tracer("github.com/refundq/refundq/worker") }

// startRun starts the span of one run of a task, a child of the span that
// enqueued it when the payload carries one (carrier): the enqueue's for a
// refund task, the run that scheduled it for a poll.
func startRun(ctx context.Context, name string, carrier map[string]string, refundID string) (context.Context, trace.Span) {
	ctx, span := tracer().Start(spans.Extract(ctx, carrier), name, trace.WithSpanKind(trace.SpanKindConsumer))
	if span.IsRecording() {
		retried, _ := asynq.GetRetryCount(ctx)
		span.SetAttributes(spans.RefundID.String(refundID), spans.RetryCount.Int(retried))
	}
	return ctx, span
}

// endRun ends a run's span. A hand-back (snooze) is not an error: the
// refund waits, and its record says why.
func endRun(span trace.Span, err error) {
	defer span.End()
	if !span.IsRecording() || err == nil {
		return
	}
	if isSnooze(err) {
		span.SetAttributes(spans.HandedBack.Bool(true))
		return
	}
	span.SetStatus(codes.Error, err.Error())
}

// noteRefund puts what the record says on the run's span: its provider,
// and the state it is in (read again at the end of the run: the state the
// run reached).
func noteRefund(ctx context.Context, rec store.Record) {
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.SetAttributes(spans.Provider.String(rec.Provider), spans.State.String(string(rec.State)))
	}
}

// startCall starts the client span of one provider call.
func (h *run) startCall(ctx context.Context, c call, attempt int) (context.Context, trace.Span) {
	ctx, span := tracer().Start(ctx, "refundq.provider."+string(c), trace.WithSpanKind(trace.SpanKindClient))
	if span.IsRecording() {
		span.SetAttributes(spans.Provider.String(h.rec.Provider), spans.Op.String(string(c)), spans.Attempt.Int(attempt))
	}
	return ctx, span
}

// endCall records the answer's kind and HTTP status and ends the call's
// span. A call with no usable answer (unknown, transient) or refused for
// our configuration (blocked) is an error; the provider's own verdicts
// (rejected, pending, not found, …) are answers, not errors.
func endCall(span trace.Span, out providers.Outcome) {
	defer span.End()
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(spans.Outcome.String(out.Kind.String()))
	if out.HTTPStatus != 0 {
		span.SetAttributes(spans.HTTPStatus.Int(out.HTTPStatus))
	}
	switch out.Kind {
	case providers.Unknown, providers.Transient, providers.Blocked:
		span.SetStatus(codes.Error, out.Kind.String())
	}
}
