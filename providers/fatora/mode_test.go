package fatora_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/providers/fatora"
	"github.com/refundq/refundq/providers/fatora/fatorasim"
	"github.com/refundq/refundq/providers/sandbox"
	"github.com/refundq/refundq/tasks"
)

// entryAt is Fatora's registry entry from an environment pointing at the
// simulator served at url.
func entryAt(url string, env ...string) providers.Entry {
	vars := map[string]string{"FATORA_BASE_URL": url, "FATORA_API_KEY": key}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	return fatora.Entry(func(k string) string { return vars[k] })
}

// Fatora's answers say whether the key is a test or a live one
// (result.mode). A test key in a live configuration records refunds that
// pay nothing, a live key in a test one moves real money: either is our
// configuration, Blocked, never a refund applied or refused, and nothing is
// sent once verify has shown the other mode.
func TestAnswerInTheOtherModeIsBlocked(t *testing.T) {
	qar := tasks.Money{Minor: 1000, Currency: "QAR"}
	tests := []struct {
		name, simMode string
		env           []string
		want          string // in the reason
	}{
		{"test key, FATORA_MODE unset (live)", "test", nil, "set FATORA_MODE=test or use the live key"},
		{"test key, FATORA_MODE=live", "test", []string{"FATORA_MODE=live"}, "a test key in a live configuration"},
		{"live key, FATORA_MODE=test", "live", []string{"FATORA_MODE=test"}, "set FATORA_MODE=live or use a test key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := fatorasim.New(key)
			s.SetMode(tt.simMode)
			srv := httptest.NewServer(s)
			t.Cleanup(srv.Close)
			e := entryAt(srv.URL, tt.env...)
			if e.Err != nil || !e.Enabled() {
				t.Fatalf("entry: %+v", e)
			}
			r := providers.Refund{OrderID: "ord-m", TransactionID: s.AddPayment("ord-m", qar), Amount: qar, Attempt: 0}
			if p, ok := e.Provider.(providers.Preparer); ok {
				if _, out, ok := p.Prepare(context.Background(), r); ok || out.Kind != providers.Blocked || !strings.Contains(out.Reason, tt.want) {
					t.Fatalf("prepare = %v (ok %v); want blocked saying %q", out, ok, tt.want)
				}
			}
			r.Attempt = 1
			out := e.Provider.Refund(context.Background(), r)
			if out.Kind != providers.Blocked || !strings.Contains(out.Reason, tt.want) || !strings.Contains(out.Reason, "FATORA_MODE") {
				t.Fatalf("refund = %v; want blocked saying %q", out, tt.want)
			}
			if n := s.RefundRequests(); n != 0 {
				t.Fatalf("%d refund requests sent after verify showed the other mode", n)
			}
			if out := e.Provider.Lookup(context.Background(), r); out.Kind != providers.Blocked {
				t.Fatalf("look-up = %v; want blocked", out)
			}
		})
	}
}

func TestModeIsReadFromFATORA_MODE(t *testing.T) {
	for _, v := range []string{"staging", "production", "1"} {
		e := entryAt("http://127.0.0.1:1", "FATORA_MODE="+v)
		if e.Err == nil || e.Enabled() || !strings.Contains(e.Err.Error(), "FATORA_MODE") {
			t.Errorf("FATORA_MODE=%s: enabled %v, err %v; want an error naming FATORA_MODE (the worker refuses to start)", v, e.Enabled(), e.Err)
		}
	}
	for _, v := range []string{"", "live", "test", " Test "} {
		if e := entryAt("http://127.0.0.1:1", "FATORA_MODE="+v); e.Err != nil || !e.Enabled() {
			t.Errorf("FATORA_MODE=%q: enabled %v, err %v", v, e.Enabled(), e.Err)
		}
	}
}

// The sandbox's key is a test key: its environment says so, and a worker
// configured from it refunds at the simulator.
func TestSandboxEnvMatchesTheSimulatorsMode(t *testing.T) {
	sims, err := sandbox.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sims {
		if s.Name != providers.Fatora {
			continue
		}
		srv := httptest.NewServer(s.Handler)
		t.Cleanup(srv.Close)
		e := fatora.Entry(func(k string) string {
			for _, kv := range s.Env(srv.URL) {
				if name, v, _ := strings.Cut(kv, "="); name == k {
					return v
				}
			}
			return ""
		})
		qar := tasks.Money{Minor: 1000, Currency: "QAR"}
		r := providers.Refund{OrderID: "ord-sb", TransactionID: s.Pay("ord-sb", qar), Amount: qar, Attempt: 1}
		if out := e.Provider.Refund(context.Background(), r); out.Kind != providers.Succeeded {
			t.Fatalf("refund at the sandbox with its own environment = %v", out)
		}
		return
	}
	t.Fatal("no Fatora simulator in the sandbox")
}
