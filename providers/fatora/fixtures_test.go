package fatora

import (
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/refundq/refundq/providers"
)

// The seed's sample response is not valid JSON; testdata holds it repaired.
func TestDocumentedEnvelopesParse(t *testing.T) {
	tests := []struct {
		file, want string
		status     int
		kind       providers.Kind
	}{
		{"refund_completed.json", "", 200, providers.Succeeded},
		{"refund_under_proccession.json", "", 200, providers.Succeeded},
		{"error_object.json", "bad request (code 400)", 400, providers.Rejected},
		{"error_string.json", "Transaction already refunded", 409, providers.Rejected},
	}
	for _, tt := range tests {
		b, err := os.ReadFile("testdata/" + tt.file)
		if err != nil {
			t.Fatal(err)
		}
		_, _, out := parse(&providers.Response{Status: tt.status, Header: http.Header{}, Body: b}, false)
		if out.Kind != tt.kind || !strings.Contains(out.Reason, tt.want) {
			t.Errorf("%s: %v; want %s with %q", tt.file, out, tt.kind, tt.want)
		}
	}
	_, _, out := parse(&providers.Response{Status: 200, Body: []byte("<html>")}, false)
	if out.Kind != providers.Unknown {
		t.Errorf("HTML 200 = %v, want unknown", out)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{`{"status":"SUCCESS","result":{"refund_status":"completed"}}`, `{"status":"ERROR","error":"x"}`, `{"status":"ERROR","error":{"error_code":400}}`, `<html>`} {
		f.Add(200, []byte(s))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		if status < 100 || status > 599 {
			return
		}
		_, _, out := parse(&providers.Response{Status: status, Header: http.Header{}, Body: body}, false)
		if out.Kind == providers.Succeeded && (status != 200 || !strings.Contains(string(body), "SUCCESS")) {
			t.Fatalf("status %d %q parsed as a success envelope", status, body)
		}
		_ = errorText(body)
	})
}
