// Package catalog lists every provider refundq has an adapter for and builds
// the registry from the environment. Adding a provider means adding one line
// here.
package catalog

import (
	"fmt"
	"net"
	"net/url"
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
// use them so that Fatora's hourly polls take seconds. REFUNDQ_POLL_HORIZON
// replaces how long a refund may stay pending before a person looks (a
// shorter one only hands refunds to people sooner). REFUNDQ_SETTLE_DELAY
// replaces every provider's settle delay (SettleDelays): longer is always
// allowed; shorter only with REFUNDQ_SANDBOX=1, which in turn refuses (as
// the provider's Entry.Err, so a worker will not start) any provider whose
// base URL is not on loopback. Production leaves all of them unset.
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
	horizon, errH := time.ParseDuration(getenv("REFUNDQ_POLL_HORIZON"))
	settleText := strings.TrimSpace(getenv("REFUNDQ_SETTLE_DELAY"))
	settle, errS := time.ParseDuration(settleText)
	sandbox := getenv(SandboxEnv) == "1"
	for i := range entries {
		e := &entries[i]
		// <PROVIDER>_RATE_LIMIT: calls per second per worker process.
		if v, err := strconv.ParseFloat(getenv(strings.ToUpper(e.Name)+"_RATE_LIMIT"), 64); err == nil && v > 0 {
			e.RateLimit, e.RateBurst = v, max(1, int(v))
		}
		e.SettleDelay = SettleDelays[e.Name].Delay
		switch {
		case settleText == "":
		case errS != nil || settle <= 0:
			e.Err = fmt.Errorf("REFUNDQ_SETTLE_DELAY=%q: want a positive duration like 60s", settleText)
		case settle < e.SettleDelay && !sandbox:
			// A shorter settle delay believes "not applied" before a late
			// apply can show: a refund paid twice. Only simulators, whose
			// late applies land sooner, may have one.
			e.Err = fmt.Errorf("REFUNDQ_SETTLE_DELAY=%s is below %s's settle delay of %s (%s); only a sandbox "+
				"(%s=1, providers on loopback) may shorten it", settle, e.Name, e.SettleDelay, SettleDelays[e.Name].RestsOn, SandboxEnv)
		default:
			e.SettleDelay = settle
		}
		if sandbox && e.Enabled() && e.Err == nil {
			if err := loopbackOnly(getenv(BaseURLEnv[e.Name])); err != nil {
				e.Err = fmt.Errorf("%s=1 talks to simulators only: %s %w", SandboxEnv, BaseURLEnv[e.Name], err)
			}
		}
		if errF == nil && first > 0 {
			e.Schedule.First = first
		}
		if errM == nil && maxD > 0 {
			e.Schedule.Max = maxD
		}
		if errH == nil && horizon > 0 {
			e.Schedule.Horizon = horizon
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

// FastSettle is the environment that shortens every provider's settle
// delay: for simulators whose late applies land sooner, never production. It
// marks the process a sandbox (SandboxEnv), which refuses providers off
// loopback.
func FastSettle(d time.Duration) []string {
	return []string{fmt.Sprintf("REFUNDQ_SETTLE_DELAY=%s", d), SandboxEnv + "=1"}
}

// SandboxEnv names the variable that, set to "1", marks a process as a
// sandbox: it may shorten settle delays, and every configured provider must
// be a simulator on loopback. A sandbox's settings sourced into a production
// shell therefore stop the worker rather than void its protection.
const SandboxEnv = "REFUNDQ_SANDBOX"

// BaseURLEnv names each provider's base URL variable.
var BaseURLEnv = map[string]string{
	providers.BBMSL: "BBMSL_BASE_URL", providers.EcartPay: "ECARTPAY_BASE_URL", providers.EcomCharge: "ECOMCHARGE_BASE_URL",
	providers.Fatora: "FATORA_BASE_URL", providers.MoyasarPG: "MOYASAR_PG_BASE_URL",
}

// Settle is one provider's settle delay and what it rests on.
type Settle struct {
	Delay   time.Duration
	RestsOn string
}

// SettleDelays is, in one place, how long after a send each provider's
// look-up is believed when it shows nothing of the attempt ("not applied"),
// or a refusal of a resend (see worker/decide.go). No provider documents how
// long after a client gives up it may still apply a request; every delay
// assumes that a request a provider has not applied within a whole provider
// operation (providers.OperationTimeout, 30 s, the longest our client waits)
// plus a margin is never applied. Keyless providers believe "not applied"
// only from two look-ups a settle delay apart, so a resend comes at least
// twice the delay after the send.
var SettleDelays = map[string]Settle{
	providers.EcartPay: {providers.DefaultSettleDelay, "OperationTimeout + 10 s; keyless: two look-ups 40 s apart, " +
		"a resend at least 80 s after the send"},
	providers.EcomCharge: {ecomcharge.SettleDelay, "its 30 s duplicate_check window (a resend inside it is " +
		"refused, not applied) and OperationTimeout, + 5 s"},
	providers.Fatora: {providers.DefaultSettleDelay, "OperationTimeout + 10 s; keyless: two look-ups 40 s apart, " +
		"a resend at least 80 s after the send; a refund under_proccession is never resent"},
	providers.BBMSL: {providers.DefaultSettleDelay, "OperationTimeout + 10 s; keyless: two look-ups 40 s apart, " +
		"a resend at least 80 s after the send (one refund per order)"},
	providers.MoyasarPG: {providers.DefaultSettleDelay, "OperationTimeout + 10 s, before a refusal of a resend is " +
		"believed; a resend itself carries the same transaction_id, which MPG answers from the first request"},
}

// loopbackOnly returns an error unless raw is an http(s) URL whose host is
// a loopback address or localhost.
func loopbackOnly(raw string) error {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Host == "" {
		return fmt.Errorf("is %q: not a URL of a simulator on loopback", raw)
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); host == "localhost" || ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("is %s, not on loopback", u.Redacted())
}
