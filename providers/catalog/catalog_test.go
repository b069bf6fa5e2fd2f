package catalog_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/providers/catalog"
	"github.com/refundq/refundq/tasks"
)

func TestEveryProviderIsListedAndNamesItsVariables(t *testing.T) {
	reg := catalog.FromEnv(func(string) string { return "" })
	want := []string{"ECARTPAY_PRIVATE_KEY", "ECOMCHARGE_SECRET_KEY", "FATORA_API_KEY", "BBMSL_MERCHANT_ID", "MOYASAR_PG_API_KEY"}
	names := []string{providers.EcartPay, providers.EcomCharge, providers.Fatora, providers.BBMSL, providers.MoyasarPG}
	for i, n := range names {
		_, err := reg.Get(n)
		if !errors.Is(err, providers.ErrDisabled) || !strings.Contains(err.Error(), want[i]) {
			t.Errorf("%s without credentials: %v; want disabled naming %s", n, err, want[i])
		}
	}
	if got := strings.Join(reg.Names(), ","); got != "bbmsl,ecartpay,ecomcharge,fatora,moyasarpg" {
		t.Errorf("names = %s", got)
	}
}

func TestRulesOnlyChecksProviderRulesWithoutCredentials(t *testing.T) {
	reg := catalog.Rules()
	ok := tasks.Refund{Version: 1, RefundID: "r", Provider: providers.MoyasarPG, OrderID: "o", AmountMinor: 1, Currency: "SAR"}
	if err := reg.Check(ok); err != nil {
		t.Fatalf("rules-only check of a good refund: %v", err)
	}
	bad := ok
	bad.Provider, bad.Reason = providers.EcartPay, "changed my mind"
	if err := reg.Check(bad); err == nil || !strings.Contains(err.Error(), "requested, duplicate, fraudulent") {
		t.Fatalf("Ecart Pay reason rule not applied: %v", err)
	}
}

func TestFastPollsOverrideSchedules(t *testing.T) {
	env := map[string]string{"FATORA_API_KEY": "k", "REFUNDQ_POLL_FIRST": "1s", "REFUNDQ_POLL_MAX": "3s"}
	e, err := catalog.FromEnv(func(k string) string { return env[k] }).Get(providers.Fatora)
	if err != nil {
		t.Fatal(err)
	}
	if e.Schedule.First != time.Second || e.Schedule.Max != 3*time.Second || e.Schedule.Horizon < 7*24*time.Hour {
		t.Fatalf("schedule = %+v", e.Schedule)
	}
}

// A settle delay shorter than a provider's own believes "not applied" before
// a late apply can show: refused (the worker will not start), except in a
// sandbox, whose providers must then all be on loopback.
func TestSettleDelayHasAFloorOutsideASandbox(t *testing.T) {
	env := map[string]string{"MOYASAR_PG_API_KEY": "sk_live", "MOYASAR_PG_BASE_URL": "https://pg.moyasar.com"}
	get := func(extra map[string]string) func(string) string {
		return func(k string) string {
			if v, ok := extra[k]; ok {
				return v
			}
			return env[k]
		}
	}
	cases := []struct {
		name    string
		extra   map[string]string
		wantErr string // "" for none
		settle  time.Duration
	}{
		{"default", nil, "", 40 * time.Second},
		{"longer is allowed", map[string]string{"REFUNDQ_SETTLE_DELAY": "2m"}, "", 2 * time.Minute},
		{"shorter is refused", map[string]string{"REFUNDQ_SETTLE_DELAY": "3s"}, "REFUNDQ_SANDBOX=1", 0},
		{"not a duration", map[string]string{"REFUNDQ_SETTLE_DELAY": "soon"}, "want a positive duration", 0},
		{"a sandbox off loopback is refused", map[string]string{"REFUNDQ_SETTLE_DELAY": "3s", "REFUNDQ_SANDBOX": "1"},
			"MOYASAR_PG_BASE_URL is https://pg.moyasar.com, not on loopback", 0},
		{"a sandbox on loopback may shorten it", map[string]string{"REFUNDQ_SETTLE_DELAY": "3s", "REFUNDQ_SANDBOX": "1",
			"MOYASAR_PG_BASE_URL": "http://127.0.0.1:8099"}, "", 3 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, err := catalog.FromEnv(get(c.extra)).Get(providers.MoyasarPG)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case c.wantErr == "" && e.Err != nil:
				t.Fatalf("Err = %v, want none", e.Err)
			case c.wantErr != "" && (e.Err == nil || !strings.Contains(e.Err.Error(), c.wantErr)):
				t.Fatalf("Err = %v, want one saying %q", e.Err, c.wantErr)
			case c.wantErr == "" && e.Settle() != c.settle:
				t.Fatalf("settle delay = %s, want %s", e.Settle(), c.settle)
			}
		})
	}
}

// Every provider has its settle delay, with what it rests on, in the one table.
func TestEverySettleDelayIsStatedWithItsGround(t *testing.T) {
	reg := catalog.FromEnv(func(string) string { return "" })
	for _, n := range reg.Names() {
		s, ok := catalog.SettleDelays[n]
		if !ok || s.Delay < providers.OperationTimeout || s.RestsOn == "" {
			t.Errorf("%s: settle delay %v (%q); want one longer than a provider operation, with its ground", n, s.Delay, s.RestsOn)
		}
	}
}
