package spans_test

import (
	"context"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/refundq/refundq/internal/spans"
)

// A payload's carrier holds the W3C trace context of the span, and
// extracting it makes that span the parent of the next; an oversized
// tracestate is dropped, the traceparent kept.
func TestInjectExtract(t *testing.T) {
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ts, _ := trace.ParseTraceState("vendor=abc")
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, TraceState: ts})
	ctx := trace.ContextWithSpanContext(context.Background(), sc)
	c := spans.Inject(ctx)
	if c["traceparent"] != "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" || c["tracestate"] != "vendor=abc" || len(c) != 2 {
		t.Fatalf("Inject = %v", c)
	}
	back := trace.SpanContextFromContext(spans.Extract(context.Background(), c))
	if !back.IsRemote() || back.TraceID() != tid || back.SpanID() != sid || !back.IsSampled() {
		t.Fatalf("Extract = %+v, want the injected span as a remote parent", back)
	}

	var members []string
	for i := range 30 {
		members = append(members, "v"+strings.Repeat("x", 3)+string(rune('a'+i%26))+string(rune('a'+i/26))+"="+strings.Repeat("y", 30))
	}
	big, err := trace.ParseTraceState(strings.Join(members, ","))
	if err != nil {
		t.Fatal(err)
	}
	c = spans.Inject(trace.ContextWithSpanContext(context.Background(), sc.WithTraceState(big)))
	if _, ok := c["tracestate"]; ok || c["traceparent"] == "" {
		t.Fatalf("Inject with a %d-byte tracestate = %v; want the traceparent alone", len(big.String()), c)
	}

	for _, bad := range []map[string]string{nil, {}, {"traceparent": "00-zz-00-01"}, {"traceparent": "00-00000000000000000000000000000000-00f067aa0ba902b7-01"}} {
		if sc := trace.SpanContextFromContext(spans.Extract(context.Background(), bad)); sc.IsValid() {
			t.Errorf("Extract(%v) = %v, want no span context", bad, sc)
		}
	}
}
