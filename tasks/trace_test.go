package tasks

import (
	"maps"
	"strings"
	"testing"
)

var carrier = map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "tracestate": "vendor=x"}

// With tracing off a payload is what it was before the field existed, so
// a worker of an older build reads it, and asynqmon shows nothing new.
func TestNoTraceLeavesThePayloadAsItWas(t *testing.T) {
	b, err := EncodeRefund(valid())
	if err != nil {
		t.Fatal(err)
	}
	p, err := EncodePoll(Poll{RefundID: "rf_1", Step: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, payload := range [][]byte{b, p} {
		if strings.Contains(string(payload), "trace") {
			t.Errorf("payload %s names a trace; want none without one", payload)
		}
		if TraceOf(payload) != nil {
			t.Errorf("TraceOf(%s) = %v, want nil", payload, TraceOf(payload))
		}
	}
}

// The trace context travels with a refund and a poll, and TraceOf reads it
// from either without knowing which it is.
func TestTraceTravelsInThePayload(t *testing.T) {
	r := valid()
	r.Trace = carrier
	b, err := EncodeRefund(r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeRefund(b)
	if err != nil || !maps.Equal(got.Trace, carrier) {
		t.Fatalf("refund round trip = %+v, %v; want trace %v", got, err, carrier)
	}
	b, err = EncodePoll(Poll{RefundID: "rf_1", Step: 3, Trace: carrier})
	if err != nil {
		t.Fatal(err)
	}
	p, err := DecodePoll(b)
	if err != nil || p.Step != 3 || !maps.Equal(p.Trace, carrier) {
		t.Fatalf("poll round trip = %+v, %v; want trace %v", p, err, carrier)
	}
	if tr := TraceOf(b); !maps.Equal(tr, carrier) {
		t.Fatalf("TraceOf(poll) = %v", tr)
	}
	for _, bad := range []string{``, `{`, `[]`, `{"trace":"x"}`} {
		if tr := TraceOf([]byte(bad)); tr != nil {
			t.Errorf("TraceOf(%q) = %v, want nil", bad, tr)
		}
	}
}
