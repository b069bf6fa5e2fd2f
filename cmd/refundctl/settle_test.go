package main

import (
	"encoding/json"
	"os/user"
	"strings"
	"testing"

	"github.com/refundq/refundq/internal/redistest"
	"github.com/refundq/refundq/internal/store"
)

// A settle by hand leaves who did it, the note and the provider's reference
// in the history, and status shows them.
func TestSettleRecordsTheActor(t *testing.T) {
	env := redistest.New(t)
	needsReview(t, env, "rf_a", true)
	r := cli(t, env, "", "settle", "rf_a", "--as", "succeeded", "--ref", "mpg-ref-9", "--note", "dashboard shows 15.00 SAR refunded", "--actor", "alice@support")
	if r.code != 0 || !strings.Contains(r.out, "settled as succeeded by alice@support (refundctl") {
		t.Fatalf("settle: %s", r)
	}
	r = cli(t, env, "", "status", "rf_a", "--json")
	var st statusJSON
	if r.code != 0 || json.Unmarshal([]byte(r.out), &st) != nil {
		t.Fatalf("status --json: %s", r)
	}
	last := st.History[len(st.History)-1]
	if last.Event != "settled" || last.State != store.Succeeded || last.ProviderRef != "mpg-ref-9" ||
		last.Detail != "dashboard shows 15.00 SAR refunded" || !strings.HasPrefix(last.Actor, "alice@support (refundctl") {
		t.Fatalf("settled entry = %+v; want the note, ref mpg-ref-9 and actor alice@support", last)
	}
	r = cli(t, env, "", "status", "rf_a")
	if !strings.Contains(r.out, "[provider ref mpg-ref-9] [by alice@support (refundctl") {
		t.Fatalf("status does not show the reference and the actor:\n%s", r.out)
	}
}

// Without --actor the account refundctl runs as is the actor, unless it
// names no one (root, or an account the system cannot name): then the
// settle is refused and nothing changes.
func TestSettleWithoutActor(t *testing.T) {
	env := redistest.New(t)
	needsReview(t, env, "rf_b", true)
	r := cli(t, env, "", "settle", "rf_b", "--as", "failed", "--note", "no refund in the dashboard")
	u, err := user.Current()
	if err != nil || u.Username == "root" {
		if r.code != exitUsage || !strings.Contains(r.err, "missing --actor") {
			t.Fatalf("settle as %v without --actor: %s; want a usage error", u, r)
		}
		if s := stateOf(t, env, "rf_b"); s != store.NeedsReview {
			t.Fatalf("refused settle changed the refund to %s", s)
		}
		return
	}
	if r.code != 0 || !strings.Contains(r.out, "by os user "+u.Username+"@") {
		t.Fatalf("settle as %s without --actor: %s; want the OS user as actor", u.Username, r)
	}
}
