package enqueue_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/refundq/refundq/enqueue"
	"github.com/refundq/refundq/internal/redistest"
	"github.com/refundq/refundq/internal/spans"
	"github.com/refundq/refundq/internal/tracing/tracingtest"
	"github.com/refundq/refundq/tasks"
)

// taskTrace returns the span context refund id's queued task carries.
func taskTrace(t *testing.T, env *redistest.Env, id string) trace.SpanContext {
	t.Helper()
	for _, info := range pending(t, env) {
		if info.ID == tasks.RefundTaskID(id) {
			return trace.SpanContextFromContext(spans.Extract(context.Background(), tasks.TraceOf(info.Payload)))
		}
	}
	t.Fatalf("no queued task for refund %s", id)
	return trace.SpanContext{}
}

// The enqueue is a span of the caller's trace, and the task it queues
// carries that span as its runs' parent.
func TestEnqueueIsASpanAndItsTaskCarriesIt(t *testing.T) {
	rec := tracingtest.Install(t)
	c, env := newClient(t)
	ctx, caller := otel.Tracer("test").Start(context.Background(), "caller")
	if _, err := c.Enqueue(ctx, req("rf-tr", "10.00")); err != nil {
		t.Fatal(err)
	}
	caller.End()
	enqs := rec.Named("refundq.enqueue", spans.RefundID, "rf-tr")
	if len(enqs) != 1 {
		t.Fatalf("%d enqueue spans, want 1: %v", len(enqs), rec.Spans())
	}
	s := enqs[0]
	if s.Parent.SpanID() != caller.SpanContext().SpanID() || s.SpanKind != trace.SpanKindProducer {
		t.Fatalf("enqueue span's parent = %v, kind %v; want the caller's span %v, producer", s.Parent.SpanID(), s.SpanKind, caller.SpanContext().SpanID())
	}
	if tracingtest.Attr(s, spans.Created) != "true" || tracingtest.Attr(s, spans.State) != "queued" || tracingtest.Attr(s, spans.Provider) != "moyasarpg" {
		t.Fatalf("enqueue span attributes = %v", s.Attributes)
	}
	if got := taskTrace(t, env, "rf-tr"); got.TraceID() != s.SpanContext.TraceID() || got.SpanID() != s.SpanContext.SpanID() {
		t.Fatalf("task carries %v/%v, want the enqueue span %v/%v", got.TraceID(), got.SpanID(), s.SpanContext.TraceID(), s.SpanContext.SpanID())
	}
}

// The trace context is no part of the refund: the same refund enqueued
// again from another trace is the same refund (no conflict, no second
// task), and its task keeps the first trace.
func TestSameRefundFromAnotherTraceIsTheSameRefund(t *testing.T) {
	rec := tracingtest.Install(t)
	c, env := newClient(t)
	first, span1 := otel.Tracer("test").Start(context.Background(), "first request")
	res, err := c.Enqueue(first, req("rf-same", "10.00"))
	span1.End()
	if err != nil || !res.Created {
		t.Fatalf("first enqueue = %+v, %v", res, err)
	}
	second, span2 := otel.Tracer("test").Start(context.Background(), "second request")
	again, err := c.Enqueue(second, req("rf-same", "10.00"))
	span2.End()
	if err != nil || again.Created || again.Record.Key != res.Record.Key {
		t.Fatalf("second enqueue from another trace = %+v, %v; want the same refund", again, err)
	}
	if span1.SpanContext().TraceID() == span2.SpanContext().TraceID() {
		t.Fatal("the two requests share a trace; the test proves nothing")
	}
	if n := len(pending(t, env)); n != 1 {
		t.Fatalf("%d tasks queued, want 1", n)
	}
	if got := taskTrace(t, env, "rf-same"); got.TraceID() != span1.SpanContext().TraceID() {
		t.Fatalf("task's trace = %v, want the first request's %v", got.TraceID(), span1.SpanContext().TraceID())
	}
	enqs := rec.Named("refundq.enqueue", spans.RefundID, "rf-same")
	if len(enqs) != 2 || tracingtest.Attr(enqs[1], spans.Created) != "false" || enqs[1].Status.Code != 0 {
		t.Fatalf("enqueue spans = %+v; want the second one created=false, no error", enqs)
	}
	// What the worker checks a task against (store.Record.Differs) does
	// not see the trace either.
	payload := res.Record.Refund()
	payload.Trace = spans.Inject(second)
	if diff := again.Record.Differs(payload); diff != "" {
		t.Fatalf("record differs from the same refund with another trace: %s", diff)
	}
}

// A bulk file is one span of the caller's trace; each of its refunds
// starts a trace of its own (so each refund's life is one trace, and a big
// file is not one enormous trace), linked to the file's span.
func TestBulkRefundsStartTracesOfTheirOwn(t *testing.T) {
	rec := tracingtest.Install(t)
	c, env := newClient(t)
	ctx, caller := otel.Tracer("test").Start(context.Background(), "upload")
	rows, err := enqueue.ReadBulk(strings.NewReader("refund_id,provider,order_id,amount,currency\nrf-b1,moyasarpg,o1,1.00,SAR\nrf-b2,moyasarpg,o2,2.00,SAR\n"), enqueue.CSV)
	if err != nil {
		t.Fatal(err)
	}
	sum := c.EnqueueBulk(ctx, rows, enqueue.BulkOptions{})
	caller.End()
	if sum.Enqueued != 2 {
		t.Fatalf("summary %+v", sum)
	}
	bulk := rec.Named("refundq.enqueue_bulk", "", "")
	if len(bulk) != 1 || bulk[0].Parent.SpanID() != caller.SpanContext().SpanID() || tracingtest.Attr(bulk[0], "refundq.bulk.enqueued") != "2" {
		t.Fatalf("bulk spans = %+v; want one, the upload's child, 2 enqueued", bulk)
	}
	traces := map[trace.TraceID]bool{}
	for _, id := range []string{"rf-b1", "rf-b2"} {
		enqs := rec.Named("refundq.enqueue", spans.RefundID, id)
		if len(enqs) != 1 {
			t.Fatalf("%s: %d enqueue spans, want 1", id, len(enqs))
		}
		s := enqs[0]
		if s.Parent.IsValid() || len(s.Links) != 1 || s.Links[0].SpanContext.SpanID() != bulk[0].SpanContext.SpanID() {
			t.Fatalf("%s: enqueue span parent %v, links %+v; want a root linked to the file's span", id, s.Parent, s.Links)
		}
		traces[s.SpanContext.TraceID()] = true
		if got := taskTrace(t, env, id); got.SpanID() != s.SpanContext.SpanID() {
			t.Fatalf("%s: task carries span %v, want its enqueue span %v", id, got.SpanID(), s.SpanContext.SpanID())
		}
	}
	if len(traces) != 2 || traces[caller.SpanContext().TraceID()] {
		t.Fatalf("refund traces %v; want two of their own, not the upload's", traces)
	}
}

// A bulk file is the merchant's data: it cannot name a trace context for
// its refunds, in either format.
func TestBulkFilesTakeNoTraceColumn(t *testing.T) {
	if _, err := enqueue.ReadBulk(strings.NewReader("refund_id,provider,order_id,amount,currency,trace\n"), enqueue.CSV); err == nil || !strings.Contains(err.Error(), "unknown column") {
		t.Fatalf("CSV with a trace column: %v; want unknown column", err)
	}
	rows, err := enqueue.ReadBulk(strings.NewReader(`{"refund_id":"rf-1","provider":"moyasarpg","order_id":"o","amount":"1","currency":"SAR","trace":{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}`+"\n"), enqueue.JSONL)
	if err != nil || len(rows) != 1 || rows[0].Err == nil || !strings.Contains(rows[0].Err.Error(), "unknown field") {
		t.Fatalf("JSON Lines row with a trace = %+v, %v; want the row refused (unknown field)", rows, err)
	}
}

// With tracing off the task carries no trace context: the payload is what
// it was before tracing existed.
func TestTracingOffTaskCarriesNoTrace(t *testing.T) {
	c, env := newClient(t)
	if _, err := c.Enqueue(context.Background(), req("rf-off", "10.00")); err != nil {
		t.Fatal(err)
	}
	for _, info := range pending(t, env) {
		if strings.Contains(string(info.Payload), "trace") {
			t.Fatalf("payload %s carries a trace with tracing off", info.Payload)
		}
	}
}

// The producers' library speaks the OpenTelemetry API alone: a merchant's
// program that links it gets no SDK, no exporter and no gRPC from refundq,
// and traces into whatever provider it installed itself.
func TestProducersLibraryLinksNoTracingSDK(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/refundq/refundq/enqueue").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "go.opentelemetry.io/otel/sdk") || strings.HasPrefix(dep, "go.opentelemetry.io/otel/exporters") ||
			strings.HasPrefix(dep, "google.golang.org/grpc") || dep == "github.com/refundq/refundq/internal/tracing" {
			t.Errorf("enqueue links %s", dep)
		}
	}
}
