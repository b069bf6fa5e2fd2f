package logs_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/refundq/refundq/internal/redisproc"
	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/providers/sandbox"
	"github.com/refundq/refundq/tasks"
)

const apiToken = "tok_logs_0123456789abcdef0123456789abcdef"

// The real refund-api and refund-worker binaries, through a Redis crash:
// every line either prints is a JSON object with level, msg and time, and
// the crash really was logged (go-redis's pool errors, the log package's
// lines from asynq's metrics collector, errors), so the check is not of an
// empty stream.
func TestBinariesLogOnlyJSONThroughARedisCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two binaries and crashes a Redis")
	}
	rds, err := redisproc.Start(t.TempDir(), redisproc.Durable)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rds.Stop)

	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin,
		"github.com/refundq/refundq/cmd/refund-api", "github.com/refundq/refundq/cmd/refund-worker")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	sims, err := sandbox.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var sim sandbox.Sim
	for _, s := range sims {
		if s.Name == providers.MoyasarPG {
			sim = s
		}
	}
	simSrv := httptest.NewServer(sim.Handler)
	t.Cleanup(simSrv.Close)

	common := []string{"REDIS_URL=redis://" + rds.Addr + "/0", "REFUNDQ_SKIP_REDIS_CHECK=1", "REFUNDQ_ACCEPT_REDIS_LOSS=1",
		"LOG_LEVEL=debug"}
	worker := run(t, filepath.Join(bin, "refund-worker"),
		append(append(common, "HEALTH_LISTEN=127.0.0.1:0"), sim.Env(simSrv.URL)...))
	api := run(t, filepath.Join(bin, "refund-api"), append(common, "API_TOKENS="+apiToken, "API_LISTEN=127.0.0.1:0"))
	workerURL := "http://" + worker.await(t, 0, "the start", msg("refund-worker started"))["health"].(string)
	apiURL := "http://" + api.await(t, 0, "the start", msg("refund-api started"))["listen"].(string)

	// A refund through both, so each has Redis connections to lose.
	sim.Pay("ord_logs_1", tasks.Money{Minor: 1000, Currency: "SAR"})
	refund := `{"refund_id":"rf_logs_1","provider":"moyasarpg","order_id":"ord_logs_1","amount":"10.00","currency":"SAR"}`
	if code := call(t, "POST", apiURL+"/v1/refunds", refund); code != http.StatusCreated {
		t.Fatalf("POST /v1/refunds = %d, want 201", code)
	}
	worker.await(t, 0, "the refund paid", func(m map[string]any) bool {
		return m["refund_id"] == "rf_logs_1" && m["state"] == "succeeded"
	})

	// Redis crashes; both are asked for what needs it.
	apiFrom, workerFrom := api.count(), worker.count()
	rds.Kill()
	if code := call(t, "GET", apiURL+"/readyz", ""); code != http.StatusServiceUnavailable {
		t.Errorf("API /readyz with Redis down = %d, want 503", code)
	}
	refund2 := strings.ReplaceAll(refund, "logs_1", "logs_2")
	if code := call(t, "POST", apiURL+"/v1/refunds", refund2); code != http.StatusServiceUnavailable {
		t.Errorf("POST /v1/refunds with Redis down = %d, want 503", code)
	}
	call(t, "GET", apiURL+"/v1/refunds/rf_logs_1", "")
	call(t, "GET", apiURL+"/metrics", "") // where the API serves metrics (any answer will do)
	if code := call(t, "GET", workerURL+"/readyz", ""); code != http.StatusServiceUnavailable {
		t.Errorf("worker /readyz with Redis down = %d, want 503", code)
	}
	call(t, "GET", workerURL+"/metrics", "")
	for _, p := range []*proc{api, worker} {
		from := map[*proc]int{api: apiFrom, worker: workerFrom}[p]
		p.await(t, from, "a go-redis line", component("go-redis"))
		p.await(t, from, "an error", func(m map[string]any) bool { return m["level"] == "error" })
	}
	// asynq's x/metrics says it could not collect through the log package.
	worker.await(t, workerFrom, "the metrics collector's complaint", func(m map[string]any) bool {
		return component("log")(m) && strings.Contains(m["msg"].(string), "metrics")
	})

	// Redis comes back, and the API serves again.
	if err := rds.Restart(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for call(t, "GET", apiURL+"/readyz", "") != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("API not ready 30 s after Redis came back")
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, p := range []*proc{api, worker} {
		if err := p.stop(); err != nil {
			t.Errorf("%s: %v", p.name, err)
		}
		lines := p.all()
		for i, line := range lines {
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Errorf("%s line %d is not a JSON object: %q", p.name, i+1, line)
				continue
			}
			for _, k := range []string{"level", "msg", "time"} {
				if s, _ := m[k].(string); s == "" {
					t.Errorf("%s line %d has no %s: %q", p.name, i+1, k, line)
				}
			}
		}
		t.Logf("%s: %d lines, every one JSON", p.name, len(lines))
	}
}

func msg(s string) func(map[string]any) bool {
	return func(m map[string]any) bool { return m["msg"] == s }
}

func component(c string) func(map[string]any) bool {
	return func(m map[string]any) bool { return m["component"] == c }
}

// call sends a request with the API token and returns the status.
func call(t *testing.T, method, url, body string) int {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+apiToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// proc is a binary the test runs, with its stdout and stderr kept line by
// line.
type proc struct {
	name string
	cmd  *exec.Cmd

	mu    sync.Mutex
	lines []string
	more  chan struct{} // closed, and replaced, at each new line
	ended chan struct{} // closed when the output ends

	exited chan struct{} // closed when the process has exited, with err
	err    error
}

func run(t *testing.T, bin string, env []string) *proc {
	t.Helper()
	p := &proc{name: filepath.Base(bin), cmd: exec.Command(bin),
		more: make(chan struct{}), ended: make(chan struct{}), exited: make(chan struct{})}
	p.cmd.Env = env
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stdout, p.cmd.Stderr = w, w
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	go func() { p.err = p.cmd.Wait(); close(p.exited) }()
	go func() {
		defer close(p.ended)
		sc := bufio.NewScanner(r)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			close(p.more)
			p.more = make(chan struct{})
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() { p.cmd.Process.Kill(); <-p.exited })
	return p
}

func (p *proc) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.lines)
}

func (p *proc) all() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

// await returns the first JSON line from line from on that matches, waiting
// up to 30 s for it.
func (p *proc) await(t *testing.T, from int, what string, match func(map[string]any) bool) map[string]any {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for i := from; ; {
		p.mu.Lock()
		lines, more := p.lines[i:], p.more
		p.mu.Unlock()
		for _, line := range lines {
			i++
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil && match(m) {
				return m
			}
		}
		select {
		case <-more:
		case <-p.ended:
			if p.count() == i {
				t.Fatalf("%s ended before %s:\n%s", p.name, what, strings.Join(p.all(), "\n"))
			}
		case <-timeout:
			t.Fatalf("%s: waited 30 s for %s:\n%s", p.name, what, strings.Join(p.all(), "\n"))
		}
	}
}

// stop sends SIGTERM and waits for a clean exit and the end of the output.
func (p *proc) stop() error {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(60 * time.Second):
		return fmt.Errorf("still running 60 s after SIGTERM")
	}
	<-p.ended
	if p.err != nil {
		return fmt.Errorf("exit after SIGTERM: %v", p.err)
	}
	return nil
}
