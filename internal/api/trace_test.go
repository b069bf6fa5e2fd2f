package api_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/refundq/refundq/internal/spans"
	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/internal/tracing/tracingtest"
	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/providers/moyasarpg"
	"github.com/refundq/refundq/providers/moyasarpg/moyasarpgsim"
	"github.com/refundq/refundq/worker"
)

// One refund's whole life is one trace: the merchant's request (its
// traceparent), the API's server span, the enqueue, the refund task's run,
// its provider calls, and the polls of a refund the provider kept pending,
// each a child of the run that scheduled it.
func TestOneTracePerRefund(t *testing.T) {
	rec := tracingtest.Install(t)
	h := newHarness(t)
	const key = "sk_test_traceSECRETkey1"
	sim := moyasarpgsim.New(key)
	sim.Guessed(true) // the refund's id is our key, so look-ups find it
	simSrv := httptest.NewServer(sim)
	t.Cleanup(simSrv.Close)
	client, err := moyasarpg.New(moyasarpg.Config{BaseURL: simSrv.URL, APIKey: key})
	if err != nil {
		t.Fatal(err)
	}
	log := logrus.New()
	log.SetOutput(h.logs)
	log.SetFormatter(&logrus.JSONFormatter{})
	w, err := worker.New(worker.Config{AcceptRedisLoss: true,
		Redis: h.env.Asynq, RDB: h.env.Client, Prefix: h.env.Prefix, Queue: h.env.Queue, Logger: log, RecoverEvery: time.Hour,
		Registry: providers.NewRegistry(providers.Entry{
			Name: providers.MoyasarPG, Provider: client, SettleDelay: 300 * time.Millisecond, Idempotent: true, Guesses: moyasarpg.Guesses,
			Schedule: providers.Schedule{First: 100 * time.Millisecond, Max: 100 * time.Millisecond, Horizon: time.Minute},
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Shutdown)
	sim.AddOrder("ord-tr", money(t, "25.00", "SAR"))
	sim.SetProcessing("ord-tr", 2) // pending at the send and at the first poll; done at the second

	// The merchant's back end is traced too, and says so.
	const callerTrace, callerSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	b, _ := json.Marshal(refund("rf-tr", "ord-tr", "25.00"))
	resp, body := h.call(t, http.MethodPost, "/v1/refunds", token, bytes.NewReader(b),
		"Content-Type", "application/json", "traceparent", "00-"+callerTrace+"-"+callerSpan+"-01")
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST = %d %s", resp.StatusCode, body)
	}
	if r := h.awaitFinal(t, "rf-tr"); r.State != store.Succeeded {
		t.Fatalf("refund = %+v, want succeeded", r)
	}

	// Worker spans end on its goroutines, just after the record is written.
	polls := rec.Await(t, 2, "refundq.poll", spans.RefundID, "rf-tr")
	server := one(t, rec.Named("POST /v1/refunds", "", ""))
	enq := one(t, rec.Named("refundq.enqueue", spans.RefundID, "rf-tr"))
	run := one(t, rec.Named("refundq.refund", spans.RefundID, "rf-tr"))
	send := one(t, rec.Named("refundq.provider.send", spans.Provider, providers.MoyasarPG))
	byStep := map[string]tracetest.SpanStub{}
	for _, p := range polls {
		byStep[tracingtest.Attr(p, spans.PollStep)] = p
	}

	for _, s := range rec.Spans() {
		if s.Name == "GET /v1/refunds/{id}" {
			// The test's own reads of the refund: requests of their own.
			if got := tracingtest.Attr(s, spans.RefundID); got != "rf-tr" {
				t.Errorf("span %q: refund.id = %q, want rf-tr", s.Name, got)
			}
			continue
		}
		if s.SpanContext.TraceID().String() != callerTrace {
			t.Errorf("span %q is in trace %s, not the refund's %s", s.Name, s.SpanContext.TraceID(), callerTrace)
		}
	}
	parentIs := func(child tracetest.SpanStub, parentName, parentID string, kind trace.SpanKind) {
		t.Helper()
		if child.Parent.SpanID().String() != parentID || child.SpanKind != kind {
			t.Errorf("span %q: parent %s, kind %v; want %s (%s), kind %v", child.Name, child.Parent.SpanID(), child.SpanKind, parentID, parentName, kind)
		}
	}
	parentIs(server, "the merchant's request", callerSpan, trace.SpanKindServer)
	parentIs(enq, "POST /v1/refunds", server.SpanContext.SpanID().String(), trace.SpanKindProducer)
	parentIs(run, "refundq.enqueue", enq.SpanContext.SpanID().String(), trace.SpanKindConsumer)
	parentIs(send, "refundq.refund", run.SpanContext.SpanID().String(), trace.SpanKindClient)
	parentIs(byStep["1"], "refundq.refund", run.SpanContext.SpanID().String(), trace.SpanKindConsumer)
	parentIs(byStep["2"], "refundq.poll step 1", byStep["1"].SpanContext.SpanID().String(), trace.SpanKindConsumer)
	lookups := rec.Named("refundq.provider.lookup", spans.Provider, providers.MoyasarPG)
	for _, l := range lookups {
		if l.Parent.SpanID() != byStep["1"].SpanContext.SpanID() && l.Parent.SpanID() != byStep["2"].SpanContext.SpanID() {
			t.Errorf("lookup span's parent %s is not a poll's run", l.Parent.SpanID())
		}
	}
	if len(lookups) < 2 {
		t.Errorf("%d lookup spans, want one per poll", len(lookups))
	}

	for _, want := range []struct {
		span       tracetest.SpanStub
		key, value string
	}{
		{server, "http.request.method", "POST"},
		{server, "http.route", "/v1/refunds"},
		{server, "http.response.status_code", strconv.Itoa(http.StatusCreated)},
		{server, string(spans.RefundID), "rf-tr"},
		{enq, string(spans.Created), "true"},
		{run, string(spans.Provider), providers.MoyasarPG},
		{run, string(spans.State), string(store.Pending)},
		{run, string(spans.RetryCount), "0"},
		{send, string(spans.Op), "send"},
		{send, string(spans.Outcome), providers.Pending.String()},
		{send, string(spans.HTTPStatus), "200"},
		{byStep["1"], string(spans.State), string(store.Pending)},
		{byStep["2"], string(spans.State), string(store.Succeeded)},
	} {
		if got := tracingtest.Attr(want.span, attribute.Key(want.key)); got != want.value {
			t.Errorf("span %q: %s = %q, want %q", want.span.Name, want.key, got, want.value)
		}
	}
	// Probes say nothing about a refund, and are not traced.
	if resp, _ := h.call(t, http.MethodGet, "/healthz", "", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /healthz = %d", resp.StatusCode)
	}
	for _, s := range rec.Spans() {
		if !strings.Contains(s.Name, "/v1/") && !strings.HasPrefix(s.Name, "refundq.") {
			t.Errorf("span %q: only the /v1/ routes are traced", s.Name)
		}
	}
	// Nothing of the merchant's key reaches a span.
	for _, s := range rec.Spans() {
		for _, kv := range s.Attributes {
			if v := kv.Value.Emit(); v == key || v == "Bearer "+token {
				t.Errorf("span %q holds a secret in %s", s.Name, kv.Key)
			}
		}
	}
}

// one returns the only span found.
func one(t *testing.T, found tracetest.SpanStubs) tracetest.SpanStub {
	t.Helper()
	if len(found) != 1 {
		t.Fatalf("%d spans, want 1: %+v", len(found), found)
	}
	return found[0]
}
