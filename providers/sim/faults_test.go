package sim_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/refundq/refundq/providers/sim"
)

// serve wraps a handler that counts the requests it really handled.
func serve(t *testing.T, f *sim.Faults) (*httptest.Server, *atomic.Int32) {
	var handled atomic.Int32
	srv := httptest.NewServer(f.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handled.Add(1)
		sim.WriteJSON(w, http.StatusOK, map[string]string{"ok": "yes"})
	})))
	t.Cleanup(srv.Close)
	return srv, &handled
}

func post(srv *httptest.Server, path string, timeout time.Duration) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	return resp, err
}

func TestFaultsOverRealHTTP(t *testing.T) {
	tests := []struct {
		kind    sim.Kind
		applied bool // the wrapped handler ran
		status  int  // 0: the client gets no answer
	}{
		{sim.Status5xx, false, 503},
		{sim.RateLimited, false, 429},
		{sim.Slow, true, 200},
		{sim.AppliedThenReset, true, 0},
		{sim.AppliedThenTimeout, true, 0},
		{sim.ResetBeforeApply, false, 0},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind), func(t *testing.T) {
			f := sim.NewFaults(1)
			f.SlowFor = 50 * time.Millisecond
			srv, handled := serve(t, f)
			f.Next(1, http.MethodPost, "/refund", tt.kind)
			resp, err := post(srv, "/refund", 300*time.Millisecond)
			switch {
			case tt.status == 0 && err == nil:
				t.Fatalf("got HTTP %d, want no answer", resp.StatusCode)
			case tt.status != 0 && (err != nil || resp.StatusCode != tt.status):
				t.Fatalf("got %v, %v; want HTTP %d", resp, err, tt.status)
			}
			if got := handled.Load() == 1; got != tt.applied {
				t.Fatalf("handler ran: %v, want %v", got, tt.applied)
			}
			if tt.kind == sim.RateLimited && resp.Header.Get("Retry-After") == "" {
				t.Fatal("429 without Retry-After")
			}
			// The fault was for one request only.
			if resp, err := post(srv, "/refund", time.Second); err != nil || resp.StatusCode != 200 {
				t.Fatalf("second request: %v, %v", resp, err)
			}
			if f.Counts()[tt.kind] != 1 {
				t.Fatalf("counts = %v", f.Counts())
			}
		})
	}
}

func TestFaultsMatchMethodAndPath(t *testing.T) {
	f := sim.NewFaults(1)
	srv, _ := serve(t, f)
	f.Next(1, http.MethodPost, "/refund", sim.Status5xx)
	if resp, _ := post(srv, "/lookup", time.Second); resp.StatusCode != 200 {
		t.Fatalf("fault hit another path: %d", resp.StatusCode)
	}
	if resp, _ := post(srv, "/refund", time.Second); resp.StatusCode != 503 {
		t.Fatalf("fault missed its path: %d", resp.StatusCode)
	}
}

func TestRatesAreReproducible(t *testing.T) {
	hits := func() []bool {
		f := sim.NewFaults(42)
		srv, _ := serve(t, f)
		f.SetRate(http.MethodPost, "/", sim.Status5xx, 0.3)
		var out []bool
		for range 50 {
			resp, _ := post(srv, "/x", time.Second)
			out = append(out, resp.StatusCode == 503)
		}
		return out
	}
	a, b := hits(), hits()
	n := 0
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("request %d differs between two runs with one seed", i)
		}
		if a[i] {
			n++
		}
	}
	if n == 0 || n == 50 {
		t.Fatalf("rate 0.3 injected %d of 50", n)
	}
}
