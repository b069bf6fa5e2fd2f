package main

import (
	"os/exec"
	"strings"
	"testing"
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
