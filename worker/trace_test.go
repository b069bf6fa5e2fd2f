package worker_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel"

	"github.com/refundq/refundq/internal/spans"
	"github.com/refundq/refundq/internal/tracing/tracingtest"
	"github.com/refundq/refundq/tasks"
)

// A task the recoverer re-creates in place of an archived one carries the
// archived task's trace context on, so the refund stays one trace. A task
// that is gone took its trace context along: the new task's run starts a
// trace of its own, still named by its refund id.
func TestRecoveredTaskKeepsItsTrace(t *testing.T) {
	rec := tracingtest.Install(t)
	h := start(t, func(s *setup) { s.noStart = true })
	h.sim.AddOrder("ord-rtr", mustMoney(t, "11.00", "SAR"))
	h.sim.AddOrder("ord-gone", mustMoney(t, "12.00", "SAR"))
	for _, r := range []struct{ id, order, amount string }{{"rf-rtr", "ord-rtr", "11.00"}, {"rf-gone", "ord-gone", "12.00"}} {
		ctx, span := otel.Tracer("test").Start(context.Background(), "request")
		if _, err := h.enq.Enqueue(ctx, req(r.id, r.order, r.amount)); err != nil {
			t.Fatal(err)
		}
		span.End()
	}
	if err := h.insp.ArchiveTask(h.env.Queue, tasks.RefundTaskID("rf-rtr")); err != nil {
		t.Fatal(err)
	}
	if err := h.insp.DeleteTask(h.env.Queue, tasks.RefundTaskID("rf-gone")); err != nil {
		t.Fatal(err)
	}
	if err := h.worker.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.worker.Shutdown)
	for _, id := range []string{"rf-rtr", "rf-gone"} {
		if n := h.recoverNow(t, id); n != 1 {
			t.Fatalf("recoverer re-created %d tasks for %s, want 1", n, id)
		}
	}
	h.awaitPaidOnce(t, "rf-rtr", "ord-rtr")
	h.awaitPaidOnce(t, "rf-gone", "ord-gone")

	enq := rec.Named("refundq.enqueue", spans.RefundID, "rf-rtr")[0]
	run := rec.Await(t, 1, "refundq.refund", spans.RefundID, "rf-rtr")[0]
	if run.SpanContext.TraceID() != enq.SpanContext.TraceID() || run.Parent.SpanID() != enq.SpanContext.SpanID() {
		t.Fatalf("recovered run: trace %s parent %s; want the enqueue's trace %s, parent %s",
			run.SpanContext.TraceID(), run.Parent.SpanID(), enq.SpanContext.TraceID(), enq.SpanContext.SpanID())
	}
	enq = rec.Named("refundq.enqueue", spans.RefundID, "rf-gone")[0]
	run = rec.Await(t, 1, "refundq.refund", spans.RefundID, "rf-gone")[0]
	if run.Parent.IsValid() || run.SpanContext.TraceID() == enq.SpanContext.TraceID() {
		t.Fatalf("run of a task re-created from its record alone: parent %v, trace %s; want a trace of its own",
			run.Parent, run.SpanContext.TraceID())
	}
}
