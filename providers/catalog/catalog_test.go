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
