package durability_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/refundq/refundq/enqueue"
	"github.com/refundq/refundq/internal/durability"
	"github.com/refundq/refundq/internal/redisproc"
)

const apiToken = "tok_durability_0123456789abcdef0123456789"

// cleanEnv is this process's environment without the Redis check's
// overrides (make unit sets both for every test), plus extra.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k != durability.SkipEnv && k != durability.AcceptLossEnv && k != "REDIS_URL" {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

func buildBinaries(t *testing.T) string {
	t.Helper()
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin, "github.com/refundq/refundq/cmd/refund-worker",
		"github.com/refundq/refundq/cmd/refund-api", "github.com/refundq/refundq/cmd/refundctl")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// refusal is the part of a process's last words from the Refusal on: what
// each process puts before it (its name, the Redis address) is its own.
func refusal(t *testing.T, name string, out []byte) string {
	t.Helper()
	const head = "Redis does not keep what refundq writes: "
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		text := line
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil {
			text, _ = m["error"].(string)
		}
		if i := strings.Index(text, head); i >= 0 {
			return text[i:]
		}
	}
	t.Errorf("%s gave no refusal:\n%s", name, out)
	return ""
}

// Every entry point that writes refunds or guards money runs the same check
// and refuses a Redis that keeps nothing with the same message: the worker,
// the API, refundctl's writing commands and enqueue.Open, each with the
// environment clear of the overrides.
func TestEveryProcessRefusesWithTheOneMessage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds three binaries")
	}
	s := server(t, redisproc.Options{AppendOnly: false, Policy: "allkeys-lru"})
	url := "redis://" + s.Addr + "/0"
	_, err := durability.Require(context.Background(), client(t, s.Addr), env(), logrus.New())
	if err == nil {
		t.Fatal("the check took a Redis without AOF")
	}
	want := err.Error()

	bin := buildBinaries(t)
	for _, tc := range []struct {
		name string
		args []string
		env  []string
	}{
		{"refund-worker", nil, []string{"HEALTH_LISTEN=127.0.0.1:0"}},
		{"refund-api", nil, []string{"API_TOKENS=" + apiToken, "API_LISTEN=127.0.0.1:0"}},
		{"refundctl", []string{"enqueue", "--id", "rf_d1", "--provider", "moyasarpg", "--order", "o1", "--amount", "1.00", "--currency", "SAR"}, nil},
		{"refundctl", []string{"bulk", "-"}, nil},
		{"refundctl", []string{"settle", "rf_d1", "--as", "failed", "--note", "n", "--actor", "a"}, nil},
		{"refundctl", []string{"retry", "rf_d1", "--note", "n", "--actor", "a"}, nil},
	} {
		name := strings.Join(append([]string{tc.name}, firstOf(tc.args)...), " ")
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		cmd := exec.CommandContext(ctx, filepath.Join(bin, tc.name), tc.args...)
		cmd.Env = cleanEnv(append(tc.env, "REDIS_URL="+url)...)
		cmd.Stdin = strings.NewReader("refund_id,provider,order_id,amount,currency\nrf_d2,moyasarpg,o2,1.00,SAR\n")
		out, err := cmd.CombinedOutput()
		cancel()
		if err == nil {
			t.Errorf("%s ran on a Redis without AOF:\n%s", name, out)
			continue
		}
		if got := refusal(t, name, out); got != "" && got != want {
			t.Errorf("%s says:\n%s\nwant:\n%s", name, got, want)
		}
	}

	for _, k := range []string{durability.SkipEnv, durability.AcceptLossEnv} {
		t.Setenv(k, "")
	}
	_, err = enqueue.Open(url)
	if err == nil {
		t.Fatal("enqueue.Open took a Redis without AOF")
	}
	if got := refusal(t, "enqueue.Open", []byte(err.Error())); got != "" && got != want {
		t.Errorf("enqueue.Open says:\n%s\nwant:\n%s", got, want)
	}
	// The library's option is the variable, which accepts what Redis cannot
	// confirm and never a Redis without AOF.
	if c, err := enqueue.Open(url, enqueue.AcceptRedisLoss()); err == nil {
		c.Close()
		t.Error("enqueue.Open with AcceptRedisLoss took a Redis without AOF")
	} else if got := refusal(t, "enqueue.Open with AcceptRedisLoss", []byte(err.Error())); got != "" && got != want {
		t.Errorf("enqueue.Open with AcceptRedisLoss says:\n%s\nwant:\n%s", got, want)
	}
}

// With the overrides, a command says so as JSON lines on stderr (its own
// output stays on stdout): the skip a warning, the accepted loss an error.
func TestOverridesAreSaidAsLogLines(t *testing.T) {
	if testing.Short() {
		t.Skip("builds three binaries")
	}
	s := server(t, redisproc.Options{AppendOnly: false, Policy: "noeviction"})
	bin := buildBinaries(t)
	cmd := exec.Command(filepath.Join(bin, "refundctl"), "enqueue", "--id", "rf_o1", "--provider", "moyasarpg",
		"--order", "o1", "--amount", "1.00", "--currency", "SAR")
	cmd.Env = cleanEnv("REDIS_URL=redis://"+s.Addr+"/0", durability.SkipEnv+"=1", durability.AcceptLossEnv+"=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("refundctl enqueue with both overrides: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	said := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("stderr line is not JSON: %q", line)
			continue
		}
		if k, _ := m["env"].(string); k != "" {
			said[k], _ = m["level"].(string)
		}
	}
	if said[durability.SkipEnv] != "warning" || said[durability.AcceptLossEnv] != "error" {
		t.Errorf("logged %v; want %s at warning and %s at error\n%s", said, durability.SkipEnv, durability.AcceptLossEnv, stderr.String())
	}
	if !strings.HasPrefix(stdout.String(), "refund rf_o1 created") {
		t.Errorf("stdout: %q", stdout.String())
	}
}

func firstOf(args []string) []string {
	if len(args) == 0 {
		return nil
	}
	return args[:1]
}
