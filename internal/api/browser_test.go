package api_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/refundq/refundq/internal/api"
	"github.com/refundq/refundq/internal/logs/logstest"
)

// TestMonitoringInBrowser signs in to /monitoring in a real headless
// Chromium, finds a refund's task by id with asynqmon's search box, checks
// that the page shows the decimal amount and the worker's result (and not the
// metadata), and saves a screenshot to $ARTIFACTS/monitoring.png (default
// ./artifacts). It runs only with REFUNDQ_BROWSER_TEST=1 (`make
// browser-test`), and then fails if Chromium cannot run.
func TestMonitoringInBrowser(t *testing.T) {
	needBrowser(t)
	h := newHarness(t, withMonitoring)
	sim := withWorker(t, h)
	sim.Pay("ord_browser_1", money(t, "2623.46", "SAR"))
	body := refund("rf_browser_1", "ord_browser_1", "2623.46")
	body["metadata"] = map[string]string{"customer_email": "jo@example.com"}
	resp, b := h.postJSON(t, "/v1/refunds", body)
	decode[api.Refund](t, resp, b, http.StatusCreated)
	final := h.awaitFinal(t, "rf_browser_1")
	h.awaitTask(t, "refund:rf_browser_1")

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	br := startChromium(t, ctx)

	// Unsigned, the queue page sends the browser to the sign-in form; the
	// form sets the session cookie and goes on to the queue.
	br.navigate(t, h.url+"/monitoring/queues/"+h.env.Queue)
	br.waitFor(t, `document.querySelector('input[name=token]') !== null`, "the sign-in form")
	br.eval(t, fmt.Sprintf(`document.querySelector('input[name=token]').value = %q; document.querySelector('form').submit(); true`, token))
	search := `document.querySelector('input[placeholder="Search by ID"]')`
	br.waitFor(t, search+` !== null`, "asynqmon's queue page with its search box")

	// Find the refund's task by id, as an operator would.
	br.eval(t, search+`.focus(); true`)
	br.call(t, "Input.insertText", map[string]any{"text": "refund:rf_browser_1"})
	for _, typ := range []string{"keyDown", "keyUp"} {
		br.call(t, "Input.dispatchKeyEvent", map[string]any{"type": typ, "key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13, "text": "\r"})
	}
	wantPayload := "refund rf_browser_1: 2623.46 SAR moyasarpg order ord_browser_1"
	wantResult := "succeeded, provider ref " + final.ProviderRef
	br.waitFor(t, fmt.Sprintf(`document.body.innerText.includes(%q) && document.body.innerText.includes(%q)`, wantPayload, wantResult),
		"the task's page with the decimal amount and the result")
	text := br.evalString(t, `document.body.innerText`)
	if strings.Contains(text, "jo@example.com") || strings.Contains(text, "262346") {
		t.Errorf("the page shows the metadata or the amount in minor units:\n%s", text)
	}
	if path := br.evalString(t, `location.pathname`); !strings.HasSuffix(path, "/tasks/refund:rf_browser_1") {
		t.Errorf("page is %s, want the task's details", path)
	}

	br.screenshot(t, "monitoring.png")
}

// screenshot saves the page as name in $ARTIFACTS (default ./artifacts),
// which CI keeps.
func (b *browser) screenshot(t *testing.T, name string) {
	t.Helper()
	dir := os.Getenv("ARTIFACTS")
	if dir == "" {
		dir = "artifacts"
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	shot := b.call(t, "Page.captureScreenshot", map[string]any{"format": "png"})
	var img struct{ Data string }
	if err := json.Unmarshal(shot, &img); err != nil {
		t.Fatal(err)
	}
	png, err := base64.StdEncoding.DecodeString(img.Data)
	if err != nil || len(png) < 1000 {
		t.Fatalf("screenshot: %d bytes, %v", len(png), err)
	}
	path, _ := filepath.Abs(filepath.Join(dir, name))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", path, len(png))
}

// needBrowser skips a browser test unless REFUNDQ_BROWSER_TEST=1; then a
// Chromium that cannot run fails it.
func needBrowser(t *testing.T) {
	t.Helper()
	if os.Getenv("REFUNDQ_BROWSER_TEST") != "1" {
		t.Skip("set REFUNDQ_BROWSER_TEST=1 (make browser-test) to run it in headless Chromium")
	}
}

// browser drives one Chromium page over the DevTools protocol on a pipe
// (--remote-debugging-pipe: NUL-terminated JSON on file descriptors 3 and
// 4), so no WebSocket client or port is needed.
type browser struct {
	ctx      context.Context
	toChrome io.Writer
	session  string

	mu      sync.Mutex
	nextID  int
	waiting map[int]chan cdpMessage
	stderr  *logstest.Buffer
}

type cdpMessage struct {
	ID     int             `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Message string `json:"message"`
	} `json:"error"`
}

// chromiumFlags are the headless flags for a clean, quiet, offline-ish run.
var chromiumFlags = []string{
	"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
	"--disable-background-networking", "--disable-component-update", "--disable-sync",
	"--disable-dev-shm-usage", "--window-size=1440,1000", "--remote-debugging-pipe",
}

func startChromium(t *testing.T, ctx context.Context) *browser {
	t.Helper()
	bin := os.Getenv("CHROMIUM")
	if bin == "" {
		bin = "chromium"
	}
	if _, err := exec.LookPath(bin); err != nil {
		t.Fatalf("no %s on PATH (Debian: apt-get install -y chromium; or set CHROMIUM): %v", bin, err)
	}
	toChromeR, toChromeW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	fromChromeR, fromChromeW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	args := append(append([]string{}, chromiumFlags...), "--user-data-dir="+t.TempDir(), "about:blank")
	cmd := exec.Command(bin, args...)
	cmd.ExtraFiles = []*os.File{toChromeR, fromChromeW} // fd 3, fd 4
	br := &browser{ctx: ctx, toChrome: toChromeW, waiting: map[int]chan cdpMessage{}, stderr: &logstest.Buffer{}}
	cmd.Stderr = br.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	toChromeR.Close()
	fromChromeW.Close()
	t.Cleanup(func() {
		toChromeW.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		fromChromeR.Close()
	})
	go br.read(fromChromeR)

	var target struct{ TargetID string }
	if err := json.Unmarshal(br.call(t, "Target.createTarget", map[string]any{"url": "about:blank"}), &target); err != nil {
		t.Fatal(err)
	}
	var attached struct{ SessionID string }
	if err := json.Unmarshal(br.call(t, "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}), &attached); err != nil {
		t.Fatal(err)
	}
	br.session = attached.SessionID
	br.call(t, "Page.enable", nil)
	return br
}

// read hands each answer to the call waiting for it; events are dropped.
func (b *browser) read(r io.Reader) {
	br := bufio.NewReader(r)
	for {
		msg, err := br.ReadBytes(0)
		if err != nil {
			b.mu.Lock()
			for id, ch := range b.waiting {
				close(ch)
				delete(b.waiting, id)
			}
			b.mu.Unlock()
			return
		}
		var m cdpMessage
		if json.Unmarshal(msg[:len(msg)-1], &m) != nil || m.ID == 0 {
			continue
		}
		b.mu.Lock()
		ch := b.waiting[m.ID]
		delete(b.waiting, m.ID)
		b.mu.Unlock()
		if ch != nil {
			ch <- m
		}
	}
}

// call sends one command (to the page once attached) and returns its result.
func (b *browser) call(t *testing.T, method string, params any) json.RawMessage {
	t.Helper()
	res, err := b.try(method, params)
	if err != nil {
		t.Fatalf("%s: %v\nchromium stderr:\n%s", method, err, b.stderr.String())
	}
	return res
}

func (b *browser) try(method string, params any) (json.RawMessage, error) {
	b.mu.Lock()
	b.nextID++
	id := b.nextID
	ch := make(chan cdpMessage, 1)
	b.waiting[id] = ch
	b.mu.Unlock()
	msg := map[string]any{"id": id, "method": method, "params": params}
	if params == nil {
		msg["params"] = map[string]any{}
	}
	if b.session != "" {
		msg["sessionId"] = b.session
	}
	out, err := json.Marshal(msg)
	if err != nil {
		return nil, err
	}
	if _, err := b.toChrome.Write(append(out, 0)); err != nil {
		return nil, fmt.Errorf("write to chromium: %w", err)
	}
	select {
	case m, ok := <-ch:
		if !ok {
			return nil, errors.New("chromium closed the pipe")
		}
		if m.Error != nil {
			return nil, errors.New(m.Error.Message)
		}
		return m.Result, nil
	case <-b.ctx.Done():
		return nil, b.ctx.Err()
	}
}

func (b *browser) navigate(t *testing.T, url string) {
	t.Helper()
	b.call(t, "Page.navigate", map[string]any{"url": url})
}

// eval runs expr in the page and returns its value as JSON.
func (b *browser) eval(t *testing.T, expr string) json.RawMessage {
	t.Helper()
	res, err := b.evalErr(expr)
	if err != nil {
		t.Fatalf("eval %q: %v", expr, err)
	}
	return res
}

func (b *browser) evalErr(expr string) (json.RawMessage, error) {
	raw, err := b.try("Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true})
	if err != nil {
		return nil, err
	}
	var r struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, err
	}
	if r.ExceptionDetails != nil {
		return nil, errors.New(r.ExceptionDetails.Text)
	}
	return r.Result.Value, nil
}

func (b *browser) evalString(t *testing.T, expr string) string {
	t.Helper()
	var s string
	if err := json.Unmarshal(b.eval(t, expr), &s); err != nil {
		t.Fatalf("eval %q: not a string: %v", expr, err)
	}
	return s
}

// waitFor polls cond (a JavaScript expression) in the page until it is
// true; on timeout it fails with what the page showed.
func (b *browser) waitFor(t *testing.T, cond, what string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		v, err := b.evalErr(cond)
		if err == nil && string(v) == "true" {
			return
		}
		if time.Now().After(deadline) || b.ctx.Err() != nil {
			text, _ := b.evalErr(`location.href + "\n" + document.body.innerText`)
			t.Fatalf("waited 30s for %s (%v); page:\n%s", what, err, text)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
