package main

import (
	"context"
	"strings"
	"testing"

	"github.com/refundq/refundq/internal/redistest"
	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/tasks"
)

// status exits 0 whatever the refund's state, as it always did; with
// --exit-status the state decides (0 succeeded, 5 failed, 6 needs_review,
// 7 not final), and 1 and 2 keep their meaning.
func TestStatusExitStatus(t *testing.T) {
	env := redistest.New(t)
	needsReview(t, env, "rf_ok", true)
	needsReview(t, env, "rf_no", true)
	needsReview(t, env, "rf_rv", true)
	for _, args := range [][]string{{"rf_ok", "--as", "succeeded", "--ref", "mpg-1"}, {"rf_no", "--as", "failed"}} {
		if r := cli(t, env, "", append([]string{"settle", "--note", "checked", "--actor", "alice"}, args...)...); r.code != 0 {
			t.Fatalf("settle %s: %s", args[0], r)
		}
	}
	st := store.New(env.Client, env.Prefix)
	if _, _, err := st.Create(context.Background(), tasks.Refund{Version: tasks.PayloadVersion, RefundID: "rf_q",
		Provider: "moyasarpg", OrderID: "mpg-q", AmountMinor: 1500, Currency: "SAR"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
		says string // on stderr
	}{
		{[]string{"status", "rf_ok"}, 0, ""},
		{[]string{"status", "rf_no"}, 0, ""},
		{[]string{"status", "rf_rv"}, 0, ""},
		{[]string{"status", "rf_q"}, 0, ""},
		{[]string{"status", "rf_ok", "--exit-status"}, 0, ""},
		{[]string{"status", "rf_no", "--exit-status"}, exitStateFailed, ""},
		{[]string{"status", "rf_rv", "--exit-status", "--json"}, exitStateReview, ""},
		{[]string{"status", "rf_q", "--exit-status"}, exitStateOpen, ""},
		{[]string{"status", "rf_q", "--wait", "300ms"}, exitFailed, `refund "rf_q" is still queued after 300ms`},
		{[]string{"status", "rf_q", "--wait", "300ms", "--exit-status"}, exitStateOpen, `refund "rf_q" is still queued after 300ms`},
		{[]string{"status", "nope", "--exit-status"}, exitFailed, `no refund "nope"`},
		{[]string{"status", "--exit-status"}, exitUsage, "want a refund id"},
	} {
		r := cli(t, env, "", tc.args...)
		if r.code != tc.code || !strings.Contains(r.err, tc.says) || tc.says == "" && r.err != "" {
			t.Errorf("refundctl %s: want exit %d saying %q on stderr; got %s", strings.Join(tc.args, " "), tc.code, tc.says, r)
		}
		if tc.code != exitUsage && tc.code != exitFailed && !strings.Contains(r.out, "rf_") {
			t.Errorf("refundctl %s: the refund is not shown: %s", strings.Join(tc.args, " "), r)
		}
	}
	// The contract is in the help, and the codes are refundctl's own.
	if r := cli(t, nil, "", "status", "--help"); !strings.Contains(r.out, "0 succeeded, 5 failed, 6 needs_review, 7 not final yet") {
		t.Errorf("status --help does not give --exit-status's codes: %s", r)
	}
	for _, c := range []int{exitStateFailed, exitStateReview, exitStateOpen} {
		if c == exitFailed || c == exitUsage || c == exitDisagree || c == exitUnchecked {
			t.Errorf("--exit-status code %d means something else in refundctl", c)
		}
	}
}

// Every final state has an exit status of its own: a final state added
// later must not read as "not final yet" (7) to a script.
func TestStateExitKnowsEveryFinalState(t *testing.T) {
	for _, s := range store.States {
		if s.Final() && stateExit(s) == exitStateOpen {
			t.Errorf("final state %s exits %d, the code of a refund not final yet", s, exitStateOpen)
		}
	}
}
