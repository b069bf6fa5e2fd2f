// Package catalog lists every provider refundq has an adapter for and builds
// the registry from the environment. Adding a provider means adding one line
// here.
package catalog

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/providers/bbmsl"
	"github.com/refundq/refundq/providers/ecartpay"
	"github.com/refundq/refundq/providers/ecomcharge"
	"github.com/refundq/refundq/providers/fatora"
	"github.com/refundq/refundq/providers/moyasarpg"
)

// FromEnv returns a registry of every known provider; a provider whose
// credentials are not set is listed but disabled, and a refund for it fails
// with a reason naming the missing variables.
//
// REFUNDQ_POLL_FIRST and REFUNDQ_POLL_MAX (Go durations), when set, replace
// every provider's poll delays; the sandbox, the demo and the chaos harness
// use them so that Fatora's hourly polls take seconds. REFUNDQ_SETTLE_DELAY
// replaces every provider's settle delay (how long after a send a look-up's
// "not applied" is believed): only for simulators whose late applies are
// known to land sooner. Production leaves all three unset.
func FromEnv(getenv func(string) string) *providers.Registry {
	if getenv == nil {
		getenv = os.Getenv
	}
	entries := []providers.Entry{
		bbmsl.Entry(getenv),
		ecartpay.Entry(getenv),
		ecomcharge.Entry(getenv),
		fatora.Entry(getenv),
		moyasarpg.Entry(getenv),
	}
	first, errF := time.ParseDuration(getenv("REFUNDQ_POLL_FIRST"))
	maxD, errM := time.ParseDuration(getenv("REFUNDQ_POLL_MAX"))
	settle, errS := time.ParseDuration(getenv("REFUNDQ_SETTLE_DELAY"))
	for i := range entries {
		// <PROVIDER>_RATE_LIMIT: calls per second per worker process.
		if v, err := strconv.ParseFloat(getenv(strings.ToUpper(entries[i].Name)+"_RATE_LIMIT"), 64); err == nil && v > 0 {
			entries[i].RateLimit, entries[i].RateBurst = v, max(1, int(v))
		}
		if errS == nil && settle > 0 {
			entries[i].SettleDelay = settle
		}
		if errF == nil && first > 0 {
			entries[i].Schedule.First = first
		}
		if errM == nil && maxD > 0 {
			entries[i].Schedule.Max = maxD
		}
	}
	return providers.NewRegistry(entries...)
}

// Rules returns the registry for producers that hold no credentials: it
// knows every provider's name and enqueue-time rules, not whether a worker
// has it configured.
func Rules() *providers.Registry {
	return FromEnv(func(string) string { return "" }).RulesOnly()
}

// FastPolls are the environment lines that make every provider poll within
// seconds: for sandboxes and tests, never production.
func FastPolls(first, maxDelay time.Duration) []string {
	return []string{fmt.Sprintf("REFUNDQ_POLL_FIRST=%s", first), fmt.Sprintf("REFUNDQ_POLL_MAX=%s", maxDelay)}
}

// FastSettle is the environment line that shortens every provider's settle
// delay: for simulators whose late applies land sooner, never production.
func FastSettle(d time.Duration) string { return fmt.Sprintf("REFUNDQ_SETTLE_DELAY=%s", d) }
