package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/refundq/refundq/internal/redistest"
	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/tasks"
)

// needsReview records refund id and moves it to needs_review as a worker
// that gave up would; sent: an attempt went out and its outcome is unknown.
func needsReview(t *testing.T, env *redistest.Env, id string, sent bool) tasks.Refund {
	t.Helper()
	ctx := context.Background()
	st := store.New(env.Client, env.Prefix)
	r := tasks.Refund{Version: tasks.PayloadVersion, RefundID: id, Provider: "moyasarpg", OrderID: "mpg-" + id,
		AmountMinor: 1500, Currency: "SAR"}
	if _, _, err := st.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	l, _, err := st.Acquire(ctx, id, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release(ctx)
	if sent {
		if _, err := l.MarkSent(ctx, store.Send{Sent: "15.00 SAR"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Apply(ctx, store.Change{State: store.NeedsReview, LastError: "not sent after 11 runs",
		Entry: store.Entry{Event: "decision", Detail: "not sent after 11 runs"}}); err != nil {
		t.Fatal(err)
	}
	return r
}

// taskOf puts the refund's task in asynq: archived, or live (scheduled).
func taskOf(t *testing.T, env *redistest.Env, insp *asynq.Inspector, r tasks.Refund, archived bool) {
	t.Helper()
	ac := asynq.NewClient(env.Asynq)
	defer ac.Close()
	task, err := tasks.NewRefundTask(r, env.Queue)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ac.Enqueue(task, asynq.ProcessIn(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if archived {
		if err := insp.ArchiveTask(env.Queue, tasks.RefundTaskID(r.RefundID)); err != nil {
			t.Fatal(err)
		}
	}
}

func stateOf(t *testing.T, env *redistest.Env, id string) store.State {
	t.Helper()
	rec, err := store.New(env.Client, env.Prefix).Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return rec.State
}

// A refund never sent gets a new task, in place of its archived one, and
// is queued with the note in its history; one without any task gets one.
func TestRetryReplacesTheArchivedTask(t *testing.T) {
	env := redistest.New(t)
	insp := asynq.NewInspector(env.Asynq)
	defer insp.Close()
	r := needsReview(t, env, "rf_1", false)
	taskOf(t, env, insp, r, true)

	res := cli(t, env, "", "retry", "rf_1", "--note", "provider was down, OPS-118", "--actor", "alice")
	if res.code != 0 || !strings.Contains(res.out, "refund rf_1 reopened: queued, task refund:rf_1 enqueued") ||
		!strings.Contains(res.out, "replacing its archived task") {
		t.Fatalf("retry of a never-sent refund: %s", res)
	}
	info, err := insp.GetTaskInfo(env.Queue, tasks.RefundTaskID("rf_1"))
	if err != nil || info.State != asynq.TaskStatePending {
		t.Fatalf("task after retry: %+v, %v; want a pending task", info, err)
	}
	if got, err := tasks.DecodeRefund(info.Payload); err != nil || got.RefundID != "rf_1" || got.AmountMinor != 1500 {
		t.Fatalf("new task's payload: %+v, %v", got, err)
	}
	if s := stateOf(t, env, "rf_1"); s != store.Queued {
		t.Fatalf("refund after retry is %s, want queued", s)
	}
	h, _ := store.New(env.Client, env.Prefix).History(context.Background(), "rf_1")
	if last := h[len(h)-1]; last.Event != "reopened" || last.Detail != "provider was down, OPS-118" || !strings.HasPrefix(last.Actor, "alice (refundctl") {
		t.Fatalf("last history entry = %+v", last)
	}

	needsReview(t, env, "rf_2", false) // its task long gone from asynq
	if res := cli(t, env, "", "retry", "rf_2", "--note", "ops", "--actor", "bob"); res.code != 0 || strings.Contains(res.out, "replacing") {
		t.Fatalf("retry of a refund without a task: %s", res)
	}
	if info, err := insp.GetTaskInfo(env.Queue, tasks.RefundTaskID("rf_2")); err != nil || info.State != asynq.TaskStatePending {
		t.Fatalf("task of rf_2 after retry: %+v, %v; want a pending task", info, err)
	}
}

// A live task of the refund is never deleted, and the refund stays as it
// was.
func TestRetryLeavesALiveTaskAlone(t *testing.T) {
	env := redistest.New(t)
	insp := asynq.NewInspector(env.Asynq)
	defer insp.Close()
	r := needsReview(t, env, "rf_1", false)
	taskOf(t, env, insp, r, false)

	res := cli(t, env, "", "retry", "rf_1", "--note", "ops", "--actor", "alice")
	if res.code != exitFailed || !strings.Contains(res.err, "task refund:rf_1 is still scheduled") ||
		!strings.Contains(res.err, "nothing was changed") {
		t.Fatalf("retry with a live task: %s", res)
	}
	if info, err := insp.GetTaskInfo(env.Queue, tasks.RefundTaskID("rf_1")); err != nil || info.State != asynq.TaskStateScheduled {
		t.Fatalf("live task after a refused retry: %+v, %v; want it still scheduled", info, err)
	}
	if s := stateOf(t, env, "rf_1"); s != store.NeedsReview {
		t.Fatalf("refund after a refused retry is %s, want needs_review", s)
	}
}

// What may be at the provider is refused with what to do instead, and its
// archived task is kept; so are a refund not in needs_review and a retry
// without a note.
func TestRetryRefusals(t *testing.T) {
	env := redistest.New(t)
	insp := asynq.NewInspector(env.Asynq)
	defer insp.Close()
	r := needsReview(t, env, "rf_sent", true)
	taskOf(t, env, insp, r, true)
	res := cli(t, env, "", "retry", "rf_sent", "--note", "ops", "--actor", "alice")
	if res.code != exitFailed || !strings.Contains(res.err, "attempt 1 was sent and what became of it is unknown") ||
		!strings.Contains(res.err, "ask the provider what became of it, then close it with `refundctl settle`") {
		t.Fatalf("retry of a refund in flight: %s", res)
	}
	if info, err := insp.GetTaskInfo(env.Queue, tasks.RefundTaskID("rf_sent")); err != nil || info.State != asynq.TaskStateArchived {
		t.Fatalf("archived task after a refused retry: %+v, %v; want it kept", info, err)
	}
	if s := stateOf(t, env, "rf_sent"); s != store.NeedsReview {
		t.Fatalf("refund after a refused retry is %s, want needs_review", s)
	}

	file := writeFile(t, "r.csv", header+"rf_q,moyasarpg,ord-1,,1.00,SAR,\n")
	if res := cli(t, env, "", "bulk", file); res.code != 0 {
		t.Fatalf("bulk: %s", res)
	}
	res = cli(t, env, "", "retry", "rf_q", "--note", "ops", "--actor", "alice")
	if res.code != exitFailed || !strings.Contains(res.err, `refund "rf_q" is queued, not needs_review`) {
		t.Fatalf("retry of a queued refund: %s", res)
	}
	if res := cli(t, env, "", "retry", "rf_sent"); res.code != exitUsage || !strings.Contains(res.err, "missing --note") {
		t.Fatalf("retry without a note: %s", res)
	}
	if res := cli(t, env, "", "retry", "nope", "--note", "x", "--actor", "alice"); res.code != exitFailed || !strings.Contains(res.err, `no refund "nope"`) {
		t.Fatalf("retry of an unknown refund: %s", res)
	}
}
