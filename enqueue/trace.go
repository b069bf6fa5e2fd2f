package enqueue

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/refundq/refundq/internal/spans"
	"github.com/refundq/refundq/tasks"
)

func tracer() trace.Tracer { return otel.Tracer("github.com/refundq/refundq/enqueue") }

// bulkFile is a bulk file's span, which the traces of its refunds link to.
type bulkFile struct{ span trace.SpanContext }

// startEnqueue starts the span of one refund's enqueue, a child of ctx's
// span. In a bulk file (file not nil) each refund starts a trace of its
// own, linked to the file's span: a refund's trace holds its whole life,
// and a file of a million rows must not make a trace of millions of spans.
func startEnqueue(ctx context.Context, r tasks.Refund, file *bulkFile) (context.Context, trace.Span) {
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindProducer)}
	if file != nil {
		opts = append(opts, trace.WithNewRoot(), trace.WithLinks(trace.Link{SpanContext: file.span}))
	}
	ctx, span := tracer().Start(ctx, "refundq.enqueue", opts...)
	if span.IsRecording() {
		span.SetAttributes(spans.RefundID.String(r.RefundID), spans.Provider.String(r.Provider))
	}
	return ctx, span
}

// endEnqueue records what the enqueue found or made and ends its span.
func endEnqueue(span trace.Span, res Result, err error) {
	defer span.End()
	if !span.IsRecording() {
		return
	}
	if res.Record.State != "" {
		span.SetAttributes(spans.State.String(string(res.Record.State)))
	}
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
		return
	}
	span.SetAttributes(spans.Created.Bool(res.Created))
}

// startBulk starts the span of a bulk file's enqueue; file is what each
// refund's own trace links to (nil when tracing is off).
func startBulk(ctx context.Context, rows int, dryRun bool) (context.Context, trace.Span, *bulkFile) {
	ctx, span := tracer().Start(ctx, "refundq.enqueue_bulk", trace.WithSpanKind(trace.SpanKindInternal))
	if !span.SpanContext().IsValid() {
		return ctx, span, nil
	}
	span.SetAttributes(attribute.Int("refundq.bulk.rows", rows), attribute.Bool("refundq.bulk.dry_run", dryRun))
	return ctx, span, &bulkFile{span: span.SpanContext()}
}

// endBulk records the file's counts and ends its span.
func endBulk(span trace.Span, sum BulkSummary) {
	defer span.End()
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(attribute.Int("refundq.bulk.enqueued", sum.Enqueued), attribute.Int("refundq.bulk.existing", sum.Existing),
		attribute.Int("refundq.bulk.invalid", sum.Invalid), attribute.Int("refundq.bulk.failed", sum.Failed))
	if sum.Failed > 0 {
		span.SetStatus(codes.Error, "some rows could not be written")
	}
}
