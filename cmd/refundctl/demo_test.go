package main

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/refundq/refundq/internal/redistest"
	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/tasks"
)

// The main job: the whole pipeline in one process on an embedded Redis,
// saying what it waits for while refunds are pending (finding 10).
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo takes seconds")
	}
	t.Setenv("REDIS_URL", "")
	var out, progress bytes.Buffer
	if err := runDemo(context.Background(), demoOptions{timeout: 2 * time.Minute}, &out, &progress); err != nil {
		t.Fatalf("demo failed: %v\n%s\n%s", err, out.String(), progress.String())
	}
	for _, want := range []string{"(embedded)", "ledger check: every succeeded refund paid exactly once", "succeeded", "failed",
		"(refused at enqueue)", "Fatora refunds whole payments only: the payment is 100.00 QAR, the refund asks 40.00 QAR",
		// The production settle delay as catalog.SettleDelays has it.
		"settle delay 3s (production: 40s; ecomcharge 35s)",
		// A provider's limit in minor units, quoted, with its amount in major units beside it.
		"is more than the 1000 left to refund", "ecomCharge counts in minor units: 1000 is 10.00 EUR",
		"less than or equal to 1000.", "MPG counts in minor units: 1000 is 10.00 SAR"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
	if !regexp.MustCompile(`\d+/\d+ final; .*pending at \w+`).MatchString(progress.String()) {
		t.Errorf("the demo's progress never says what it waits for:\n%s", progress.String())
	}
}

// On a real Redis the demo uses a prefix and queue of its own and removes
// every key of its run at the end (finding 10).
func TestDemoOnRealRedisRemovesItsKeys(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo takes seconds")
	}
	env := redistest.New(t) // for its client; the demo picks its own prefix
	t.Setenv("REDIS_URL", fmt.Sprintf("redis://%s/%d", redistest.Addr(), redistest.DB()))
	var out, progress bytes.Buffer
	err := runDemo(context.Background(), demoOptions{timeout: 2 * time.Minute}, &out, &progress)
	if err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out.String())
	}
	m := regexp.MustCompile(`this run's keys: prefix "(demo-\d+:)", asynq queue "(demo-\d+)"`).FindStringSubmatch(out.String())
	if m == nil || !strings.Contains(out.String(), "removed this run's") {
		t.Fatalf("the demo does not say which keys are its own, or that it removed them:\n%s", out.String())
	}
	ctx := context.Background()
	for _, pattern := range []string{m[1] + "*", "asynq:{" + m[2] + "}*"} {
		if keys, _ := env.Client.Keys(ctx, pattern).Result(); len(keys) != 0 {
			t.Errorf("%d keys %s left behind, e.g. %v", len(keys), pattern, keys[:min(5, len(keys))])
		}
	}
	if ok, _ := env.Client.SIsMember(ctx, "asynq:queues", m[2]).Result(); ok {
		t.Errorf("queue %s still listed in asynq:queues", m[2])
	}
}

// waitingFor names, per provider, the refunds still open and when their
// task next runs.
func TestWaitingForSaysWhatAndWhen(t *testing.T) {
	env := redistest.New(t)
	client := asynq.NewClient(env.Asynq)
	defer client.Close()
	insp := asynq.NewInspector(env.Asynq)
	defer insp.Close()
	now := time.Now()
	for _, id := range []string{"w1", "w2"} {
		task := asynq.NewTask(tasks.TypeRefund, []byte(`{}`), asynq.TaskID("poll-"+id), asynq.Queue(env.Queue),
			asynq.ProcessAt(now.Add(2*time.Second)))
		if _, err := client.Enqueue(task); err != nil {
			t.Fatal(err)
		}
	}
	open := []store.Record{
		{RefundID: "w1", Provider: "moyasarpg", State: store.Pending, Task: "poll-w1"},
		{RefundID: "w2", Provider: "moyasarpg", State: store.Pending, Task: "poll-w2"},
		{RefundID: "w3", Provider: "fatora", State: store.Queued, Task: "refund:w3"},
	}
	got := waitingFor(insp, env.Queue, open, now)
	want := "1 refund queued for a worker at fatora · 2 refunds pending at moyasarpg; next poll in 2 s"
	if got != want {
		t.Fatalf("waitingFor = %q\nwant       %q", got, want)
	}
}
