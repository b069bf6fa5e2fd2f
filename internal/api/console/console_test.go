package console

import (
	"testing"
	"time"

	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/providers"
)

// Every provider has its ids to search for, and an id a refund does not
// have is left out rather than shown empty.
func TestWhereToCheck(t *testing.T) {
	for _, p := range []string{providers.EcartPay, providers.EcomCharge, providers.Fatora, providers.BBMSL, providers.MoyasarPG} {
		intro, lines := whereToCheck(store.Record{Provider: p, OrderID: "o1", TransactionID: "t1", Key: "k1", ProviderRef: "r1"})
		if intro == "" || len(lines) < 2 {
			t.Errorf("%s: %q %v", p, intro, lines)
		}
		_, bare := whereToCheck(store.Record{Provider: p, OrderID: "o1"})
		for _, l := range bare {
			if l.Value == "" {
				t.Errorf("%s: shows %s with no value", p, l.Name)
			}
		}
	}
	if _, lines := whereToCheck(store.Record{Provider: "other", OrderID: "o1"}); len(lines) != 1 || lines[0].Value != "o1" {
		t.Errorf("unknown provider: %v", lines)
	}
}

func TestDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		300 * time.Millisecond:        "under a second",
		42 * time.Second:              "42s",
		3*time.Minute + 5*time.Second: "3m 5s",
		26*time.Hour + 3*time.Minute:  "26h 3m",
		9*24*time.Hour + 5*time.Hour:  "9d 5h",
	} {
		if got := duration(d); got != want {
			t.Errorf("duration(%s) = %q, want %q", d, got, want)
		}
	}
	if got := durationMS(250); got != "250 ms" {
		t.Errorf("durationMS(250) = %q", got)
	}
}
