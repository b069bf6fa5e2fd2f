// Package tracingtest records the spans a test makes: it installs, as the
// global tracer provider and propagator, what tracing.Setup installs in
// production, with every ended span kept in memory instead of exported.
package tracingtest

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace/noop"
)

// Recorder holds the spans ended since Install.
type Recorder struct {
	exp *tracetest.InMemoryExporter
}

// Install makes every span from now on recorded (all sampled, whatever
// OTEL_TRACES_SAMPLER says) and puts the no-op provider back when the test
// ends. Tests that call it must not run in parallel with others of their
// package: the provider is global.
func Install(t testing.TB) *Recorder {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() {
		otel.SetTracerProvider(noop.NewTracerProvider())
		otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator())
		tp.Shutdown(context.Background())
	})
	return &Recorder{exp: exp}
}

// Spans returns the spans ended so far.
func (r *Recorder) Spans() tracetest.SpanStubs { return r.exp.GetSpans() }

// Named returns the ended spans called name whose attribute key is value
// (any value when key is "").
func (r *Recorder) Named(name string, key attribute.Key, value string) tracetest.SpanStubs {
	var out tracetest.SpanStubs
	for _, s := range r.exp.GetSpans() {
		if s.Name == name && (key == "" || Attr(s, key) == value) {
			out = append(out, s)
		}
	}
	return out
}

// Await waits until n spans called name have key = value and returns
// them; spans of a worker end on its goroutines, after the record a test
// waits on. It fails the test after 30 s.
func (r *Recorder) Await(t testing.TB, n int, name string, key attribute.Key, value string) tracetest.SpanStubs {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := r.Named(name, key, value)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d span(s) %q with %s=%s after 30s, want %d; all spans: %v", len(got), name, key, value, n, names(r.Spans()))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Attr returns span s's attribute key as a string ("" when it has none).
func Attr(s tracetest.SpanStub, key attribute.Key) string {
	for _, kv := range s.Attributes {
		if kv.Key == key {
			return kv.Value.Emit()
		}
	}
	return ""
}

func names(spans tracetest.SpanStubs) []string {
	out := make([]string, len(spans))
	for i, s := range spans {
		out[i] = s.Name
	}
	return out
}
