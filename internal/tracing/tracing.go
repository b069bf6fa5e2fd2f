// Package tracing turns OpenTelemetry tracing on in refundq's commands from
// the standard OTEL_* variables (docs/TRACING.md). What the spans record,
// and how a refund's trace context travels with its tasks, is package
// spans.
//
// With no endpoint set it installs nothing: the global tracer provider
// stays OpenTelemetry's no-op, and a span costs well under a microsecond.
package tracing

import (
	"context"
	"fmt"
	"strings"

	"github.com/sirupsen/logrus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// Enabled reports whether the environment asks for traces: an OTLP
// endpoint is set (OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT), and neither OTEL_SDK_DISABLED=true
// nor OTEL_TRACES_EXPORTER=none says otherwise.
func Enabled(getenv func(string) string) bool {
	if getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		return false
	}
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return false
	}
	return strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")) != "none"
}

// Setup installs the global tracer provider, exporting in batches over
// OTLP (HTTP, or gRPC when OTEL_EXPORTER_OTLP_PROTOCOL says so), and the
// W3C trace context propagator, when Enabled says so; otherwise it
// installs nothing. service names the process (OTEL_SERVICE_NAME wins over
// it). getenv decides whether tracing is on and which exporter; the
// exporter and the SDK read the rest of the standard variables from the
// process's environment themselves (OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT,
// _COMPRESSION, _CERTIFICATE, OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER
// and _ARG, OTEL_BSP_*). OpenTelemetry's errors (a collector that does not
// answer) go to log as warnings. The returned shutdown flushes the spans
// not yet exported; call it before the process exits. A configuration
// refundq cannot honour (another exporter, an unknown protocol) is an
// error, so it is noticed at start.
func Setup(ctx context.Context, service string, getenv func(string) string, log logrus.FieldLogger) (shutdown func(context.Context) error, err error) {
	none := func(context.Context) error { return nil }
	if !Enabled(getenv) {
		return none, nil
	}
	if e := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")); e != "" && e != "otlp" {
		return none, fmt.Errorf("OTEL_TRACES_EXPORTER=%q: refundq exports traces with otlp (or none)", e)
	}
	var exp sdktrace.SpanExporter
	switch p := protocol(getenv); p {
	case "http/protobuf", "http/json":
		exp, err = otlptracehttp.New(ctx)
	case "grpc":
		exp, err = otlptracegrpc.New(ctx) // connects when it first exports
	default:
		return none, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL=%q: want http/protobuf (the default), http/json or grpc", p)
	}
	if err != nil {
		return none, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	// Later sources win: the service's own name, then OTEL_SERVICE_NAME
	// and OTEL_RESOURCE_ATTRIBUTES.
	res, err := resource.New(ctx, resource.WithAttributes(semconv.ServiceName(service)),
		resource.WithTelemetrySDK(), resource.WithFromEnv())
	if err != nil {
		return none, fmt.Errorf("tracing: resource (OTEL_RESOURCE_ATTRIBUTES?): %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.WithField("component", "opentelemetry").WithError(err).Warn("tracing: spans may not reach the collector")
	}))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	return tp.Shutdown, nil
}

// protocol is the OTLP protocol the variables ask for traces.
func protocol(getenv func(string) string) string {
	if p := strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")); p != "" {
		return p
	}
	if p := strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_PROTOCOL")); p != "" {
		return p
	}
	return "http/protobuf"
}
