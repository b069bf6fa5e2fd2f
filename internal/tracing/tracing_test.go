package tracing_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/refundq/refundq/internal/spans"
	"github.com/refundq/refundq/internal/tracing"
)

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

// Without an endpoint (or with tracing switched off by the standard
// variables) Setup installs nothing: the global provider stays the no-op
// one, a span records nothing and has no id to pass on, and a payload gets
// no trace context.
func TestSetupOffInstallsNothing(t *testing.T) {
	tp, prop := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	for _, getenv := range []func(string) string{
		env(),
		env("OTEL_SERVICE_NAME", "x", "OTEL_TRACES_SAMPLER", "always_on"),
		env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1", "OTEL_SDK_DISABLED", "true"),
		env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:1", "OTEL_TRACES_EXPORTER", "none"),
	} {
		shutdown, err := tracing.Setup(context.Background(), "refund-test", getenv, logrus.StandardLogger())
		if err != nil {
			t.Fatal(err)
		}
		if err := shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if otel.GetTracerProvider() != tp || otel.GetTextMapPropagator() != prop {
		t.Fatal("Setup installed a tracer provider or a propagator with tracing off")
	}
	ctx, span := otel.Tracer("t").Start(context.Background(), "s")
	defer span.End()
	if span.IsRecording() || span.SpanContext().IsValid() {
		t.Fatalf("a span with tracing off records (%v) or has an id (%v)", span.IsRecording(), span.SpanContext())
	}
	if c := spans.Inject(ctx); c != nil {
		t.Fatalf("Inject with tracing off = %v, want nil", c)
	}
}

// A configuration refundq cannot honour is refused at start, not ignored.
func TestSetupRefusesWhatItCannotHonour(t *testing.T) {
	tp := otel.GetTracerProvider()
	for _, getenv := range []func(string) string{
		env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_PROTOCOL", "thrift"),
		env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http"),
		env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1", "OTEL_TRACES_EXPORTER", "zipkin"),
	} {
		if _, err := tracing.Setup(context.Background(), "refund-test", getenv, logrus.StandardLogger()); err == nil {
			t.Error("Setup accepted a configuration it cannot honour")
		}
	}
	if otel.GetTracerProvider() != tp {
		t.Fatal("a refused Setup installed a tracer provider")
	}
}

// childEnv marks the process TestSetupExportsToTheCollector starts.
const childEnv = "REFUNDQ_TRACING_TEST_CHILD"

// With an endpoint set, Setup installs the SDK, and its shutdown flushes
// the spans to the collector, over OTLP/HTTP by default or gRPC when
// OTEL_EXPORTER_OTLP_PROTOCOL says so, with the service name from
// OTEL_SERVICE_NAME. Each export runs in a child process: the global
// provider is installed once a process, and TestSetupOffInstallsNothing
// needs it untouched.
func TestSetupExportsToTheCollector(t *testing.T) {
	if os.Getenv(childEnv) == "1" {
		exportOneSpan(t)
		return
	}
	for _, protocol := range []string{"", "http/protobuf", "grpc"} {
		t.Run("protocol="+protocol, func(t *testing.T) {
			got := make(chan *coltrace.ExportTraceServiceRequest, 10)
			var endpoint string
			if protocol == "grpc" {
				endpoint = grpcCollector(t, got)
			} else {
				endpoint = httpCollector(t, got)
			}
			cmd := exec.Command(os.Args[0], "-test.run=^TestSetupExportsToTheCollector$", "-test.v")
			cmd.Env = append(os.Environ(), childEnv+"=1", "OTEL_EXPORTER_OTLP_ENDPOINT="+endpoint, "OTEL_EXPORTER_OTLP_PROTOCOL="+protocol,
				"OTEL_SERVICE_NAME=refund-traced")
			if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "PASS") {
				t.Fatalf("child: %v\n%s", err, out)
			}
			close(got)
			var service, span string
			for req := range got {
				for _, rs := range req.ResourceSpans {
					for _, a := range rs.Resource.Attributes {
						if a.Key == "service.name" {
							service = a.Value.GetStringValue()
						}
					}
					for _, ss := range rs.ScopeSpans {
						for _, s := range ss.Spans {
							span = s.Name
						}
					}
				}
			}
			if service != "refund-traced" || span != "exported-span" {
				t.Fatalf("collector got span %q of service %q; want exported-span of refund-traced", span, service)
			}
		})
	}
}

// httpCollector is an OTLP/HTTP collector passing what it gets to got; it
// returns its endpoint.
func httpCollector(t *testing.T, got chan<- *coltrace.ExportTraceServiceRequest) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req := &coltrace.ExportTraceServiceRequest{}
		if r.URL.Path != "/v1/traces" || proto.Unmarshal(body, req) != nil {
			t.Errorf("collector: %s %s, %d bytes that are not an OTLP trace export", r.Method, r.URL.Path, len(body))
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		got <- req
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// grpcCollector is an OTLP/gRPC collector passing what it gets to got; it
// returns its endpoint.
func grpcCollector(t *testing.T, got chan<- *coltrace.ExportTraceServiceRequest) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	coltrace.RegisterTraceServiceServer(srv, &traceService{got: got})
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return "http://" + ln.Addr().String() // http: no TLS
}

type traceService struct {
	coltrace.UnimplementedTraceServiceServer
	got chan<- *coltrace.ExportTraceServiceRequest
}

func (s *traceService) Export(_ context.Context, req *coltrace.ExportTraceServiceRequest) (*coltrace.ExportTraceServiceResponse, error) {
	s.got <- req
	return &coltrace.ExportTraceServiceResponse{}, nil
}

func exportOneSpan(t *testing.T) {
	shutdown, err := tracing.Setup(context.Background(), "refund-test", os.Getenv, logrus.StandardLogger())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := otel.GetTracerProvider().(*sdktrace.TracerProvider); !ok {
		t.Fatalf("global provider is %T, want the SDK's", otel.GetTracerProvider())
	}
	if _, ok := otel.GetTextMapPropagator().(propagation.TraceContext); !ok {
		t.Fatalf("global propagator is %T, want W3C trace context", otel.GetTextMapPropagator())
	}
	_, span := otel.Tracer("t").Start(context.Background(), "exported-span")
	span.End()
	if err := shutdown(context.Background()); err != nil {
		t.Fatalf("shutdown (flush): %v", err)
	}
}

// What a span costs with tracing off: the price of one run's or request's
// span on the hot path (compare a Redis round trip, ~50-100 µs).
func BenchmarkSpanTracingOff(b *testing.B) {
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		sctx, span := otel.Tracer("github.com/refundq/refundq/worker").Start(ctx, "refundq.refund", trace.WithSpanKind(trace.SpanKindConsumer))
		if span.IsRecording() {
			b.Fatal("recording with tracing off")
		}
		_ = spans.Inject(sctx)
		span.End()
	}
}
