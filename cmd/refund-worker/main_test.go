package main

import (
	"io"
	"net"
	"os/exec"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/refundq/refundq/internal/redisproc"
	"github.com/refundq/refundq/internal/redistest"
)

// The worker binary links no simulator or fault injector: test doubles stay
// out of production (they live in providers/<name>/<name>sim and
// providers/sim). Neither does the producers' library.
func TestNoSimulatorInProductionBinaries(t *testing.T) {
	for _, pkg := range []string{"github.com/refundq/refundq/cmd/refund-worker", "github.com/refundq/refundq/enqueue"} {
		out, err := exec.Command("go", "list", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			if strings.HasSuffix(dep, "sim") || strings.Contains(dep, "/providers/sim") || strings.Contains(dep, "providertest") || strings.Contains(dep, "/sandbox") {
				t.Errorf("%s links %s", pkg, dep)
			}
		}
	}
}

func TestWebhookSecretIsRequired(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	if _, err := webhookConfig(env(map[string]string{"WEBHOOK_URL": "https://m.example/hooks"})); err == nil {
		t.Fatal("a webhook URL without a secret was accepted")
	}
	c, err := webhookConfig(env(map[string]string{"WEBHOOK_URL": "https://m.example/hooks", "WEBHOOK_SECRET": "whsec_0123456789abcdef"}))
	if err != nil || c.URL == "" || len(c.Secrets) != 1 || string(c.Secrets[0]) != "whsec_0123456789abcdef" {
		t.Fatalf("config %+v, %v", c, err)
	}
	c, err = webhookConfig(env(map[string]string{"WEBHOOK_URL": "https://m.example/hooks", "WEBHOOK_SECRET": "whsec_new_0123456789,whsec_old_0123456789"}))
	if err != nil || len(c.Secrets) != 2 || string(c.Secrets[0]) != "whsec_new_0123456789" {
		t.Fatalf("two secrets (a rotation): %+v, %v", c, err)
	}
	if _, err := webhookConfig(env(map[string]string{"WEBHOOK_URL": "https://m.example/hooks", "WEBHOOK_SECRET": "whsec_a_0123456789,whsec_b_0123456789,whsec_c_0123456789"})); err == nil {
		t.Fatal("three secrets accepted")
	}
	if _, err := webhookConfig(env(map[string]string{"WEBHOOK_URL": "https://m.example/hooks", "WEBHOOK_SECRET": "whsec_0123456789abcdef", "WEBHOOK_SECRET_FILE": "/run/secrets/x"})); err == nil || !strings.Contains(err.Error(), "not both") {
		t.Fatalf("both secret variables: %v; want refused", err)
	}
	if c, err := webhookConfig(env(nil)); err != nil || c.URL != "" {
		t.Fatalf("no URL: %+v, %v", c, err)
	}
}

// Several workers on one host: the second one's HEALTH_LISTEN is taken, and
// the error says what to do rather than only that the address is in use.
func TestTakenHealthListenSaysWhatToDo(t *testing.T) {
	rds := redistest.Server(t, redisproc.Shipped)
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	addr := held.Addr().String()
	t.Setenv("REDIS_URL", "redis://"+rds.Addr+"/0")
	t.Setenv("HEALTH_LISTEN", addr)
	log := logrus.New()
	log.SetOutput(io.Discard)
	err = run(log)
	want := "HEALTH_LISTEN=" + addr + ": address already in use: another worker on this host? give each worker its own HEALTH_LISTEN, e.g. HEALTH_LISTEN="
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("err = %v\nwant it to start %q", err, want)
	}
}
