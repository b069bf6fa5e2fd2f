package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/refundq/refundq/internal/redistest"
)

// cli runs refundctl against the test's own slice of a real Redis.
func cli(t *testing.T, env *redistest.Env, args ...string) (string, int) {
	t.Helper()
	t.Setenv("REDIS_URL", fmt.Sprintf("redis://%s/%d", redistest.Addr(), redistest.DB()))
	full := append([]string{args[0], "--queue", env.Queue, "--prefix", env.Prefix}, args[1:]...)
	var out, errOut bytes.Buffer
	err := run(context.Background(), full, &out, &errOut)
	code := 0
	if err != nil {
		code = 1
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		}
		out.WriteString("error: " + err.Error() + "\n")
	}
	return out.String(), code
}

func TestBulkReportsBadRowsAndEnqueuesGoodOnes(t *testing.T) {
	env := redistest.New(t)
	file := filepath.Join(t.TempDir(), "refunds.csv")
	content := "refund_id,provider,order_id,transaction_id,amount,currency,reason\n" +
		"rf-1,moyasarpg,ord-1,,403.33,SAR,requested\n" +
		"rf-2,moyasarpg,ord-2,,1e3,SAR,requested\n" +
		"rf-3,moyasarpg,ord-3,,10.00,SAR,requested\n" +
		"rf-4,nobody,ord-4,,10.00,SAR,requested\n"
	if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	out, code := cli(t, env, "bulk", "--dry-run", file)
	if code != 1 || !strings.Contains(out, "2 valid (dry run") {
		t.Fatalf("dry run: exit %d\n%s", code, out)
	}
	out, code = cli(t, env, "bulk", file)
	if code != 1 {
		t.Fatalf("bulk with bad rows exited %d, want 1\n%s", code, out)
	}
	for _, want := range []string{"4 rows", "2 enqueued", "2 invalid", "line 3: rf-2:", "line 5: rf-4:", "unknown provider"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	out, code = cli(t, env, "status", "--json", "rf-1")
	if code != 0 {
		t.Fatalf("status exit %d\n%s", code, out)
	}
	var st struct {
		State       string `json:"state"`
		AmountMinor int64  `json:"amount_minor"`
		Amount      string `json:"amount"`
		History     []any  `json:"history"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json is not JSON: %v\n%s", err, out)
	}
	if st.State != "queued" || st.AmountMinor != 40333 || st.Amount != "403.33" || len(st.History) != 1 {
		t.Fatalf("status = %+v", st)
	}
	if out, code := cli(t, env, "status", "rf-3"); code != 0 || !strings.Contains(out, "10.00 SAR") {
		t.Fatalf("status (human): exit %d\n%s", code, out)
	}
	if out, code := cli(t, env, "list", "--state", "queued"); code != 0 || !strings.Contains(out, "rf-1") || !strings.Contains(out, "rf-3") || strings.Contains(out, "rf-2") {
		t.Fatalf("list --state queued: exit %d\n%s", code, out)
	}
	if out, _ := cli(t, env, "list", "--state", "needs_review"); strings.Contains(out, "rf-1") {
		t.Fatalf("list --state needs_review shows a queued refund:\n%s", out)
	}
	if _, code := cli(t, env, "status", "rf-404"); code != 1 {
		t.Fatalf("status of an unknown refund exited %d, want 1", code)
	}
}

func TestEnqueueCommand(t *testing.T) {
	env := redistest.New(t)
	args := []string{"enqueue", "--id", "rf-9", "--provider", "moyasarpg", "--order", "o-9", "--amount", "1.50", "--currency", "SAR", "--meta", "shop=north"}
	if out, code := cli(t, env, args...); code != 0 || !strings.Contains(out, "created") {
		t.Fatalf("enqueue: exit %d\n%s", code, out)
	}
	if out, code := cli(t, env, args...); code != 0 || !strings.Contains(out, "already exists") {
		t.Fatalf("enqueue again: exit %d\n%s", code, out)
	}
	if out, code := cli(t, env, "settle", "--as", "failed", "--note", "checked", "rf-9"); code != 1 || !strings.Contains(out, "needs_review") {
		t.Fatalf("settling a queued refund: exit %d, want 1 saying it is not in needs_review\n%s", code, out)
	}
	if _, code := cli(t, env, "settle", "--as", "maybe", "--note", "x", "rf-9"); code != 2 {
		t.Fatalf("settle --as maybe exited %d, want 2", code)
	}
	bad := []string{"enqueue", "--id", "rf-10", "--provider", "moyasarpg", "--order", "", "--amount", "1.505", "--currency", "SAR"}
	out, code := cli(t, env, bad...)
	if code != 2 || !strings.Contains(out, "amount:") || !strings.Contains(out, "order_id:") {
		t.Fatalf("invalid enqueue: exit %d, want 2 naming amount and order_id\n%s", code, out)
	}
}

// The main job: the whole pipeline in one process on an embedded Redis.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("demo takes a few seconds")
	}
	t.Setenv("REDIS_URL", "")
	var b, progress bytes.Buffer
	if err := runDemo(context.Background(), nil, &b, &progress); err != nil {
		t.Fatalf("demo failed: %v\n%s\n%s", err, b.String(), progress.String())
	}
	out := b.String()
	for _, want := range []string{"(embedded)", "ledger check: every succeeded refund paid exactly once", "succeeded", "failed",
		"(refused at enqueue)", "Fatora refunds whole payments only: the payment is 100.00 QAR, the refund asks 40.00 QAR"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
}
