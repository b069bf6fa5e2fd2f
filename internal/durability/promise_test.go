package durability_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"

	"github.com/refundq/refundq/internal/durability"
	"github.com/refundq/refundq/internal/redisproc"
)

// What each server promises, as Detect finds it, and what a process is
// told to change when it promises nothing.
func TestDetect(t *testing.T) {
	ctx := context.Background()
	everysec := server(t, redisproc.Durable)
	if ver := version(t, client(t, everysec.Addr)); !strings.HasPrefix(ver, "7.0.") {
		t.Skipf("Redis %s: the refusal below is about what 7.0 (Debian 12's) cannot promise", ver)
	}
	always := redisproc.Durable
	always.Fsync = "always"
	noAOF := redisproc.Options{Policy: "noeviction"}

	_, err := durability.Detect(ctx, client(t, everysec.Addr))
	if !errors.Is(err, durability.ErrNoPromise) {
		t.Fatalf("lone 7.0 with appendfsync everysec: %v; want ErrNoPromise", err)
	}
	for _, says := range []string{`appendfsync is "everysec"`, "7.2", "replica", durability.Choices} {
		if !strings.Contains(err.Error(), says) {
			t.Errorf("the refusal does not say %q: %v", says, err)
		}
	}
	if _, err := durability.Detect(ctx, client(t, server(t, noAOF).Addr)); !errors.Is(err, durability.ErrNoPromise) {
		t.Errorf("no AOF at all: %v; want ErrNoPromise", err)
	}

	p, err := durability.Detect(ctx, client(t, server(t, always).Addr))
	if err != nil || !p.Always || p.Replicas != 0 || !p.Durable() {
		t.Fatalf("appendfsync always: %+v, %v; want Always", p, err)
	}

	// A replica: the wait is WAIT, and it covers a failover.
	o := redisproc.Durable
	o.ReplicaOf = everysec.Addr
	r := server(t, o)
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := redisproc.WaitReplicaSynced(wctx, r); err != nil {
		t.Fatal(err)
	}
	p, err = durability.Detect(ctx, client(t, everysec.Addr))
	if err != nil || p.Replicas != 1 || p.Always {
		t.Fatalf("everysec with a replica: %+v, %v; want one replica to wait for", p, err)
	}
	if err := p.Wait(ctx, client(t, everysec.Addr)); err != nil {
		t.Fatalf("Wait with the replica running: %v", err)
	}
	// The replica stops acknowledging: the wait says so rather than return
	// as if the write were kept.
	if err := r.Pause(); err != nil {
		t.Fatal(err)
	}
	defer r.Resume()
	rdb := client(t, everysec.Addr)
	rdb.Set(ctx, "after-pause", "1", 0)
	if err := p.Wait(ctx, rdb); !errors.Is(err, durability.ErrNotDurable) {
		t.Fatalf("Wait with the replica paused: %v; want ErrNotDurable", err)
	}
}

// The operator's opt-out: a Redis that promises nothing is taken, with an
// error logged at every start, and its Wait waits for nothing. Without it,
// Open refuses; and a Redis that does not answer is refused either way.
func TestOpenAcceptsLossOnlyWhenTold(t *testing.T) {
	ctx := context.Background()
	s := server(t, redisproc.Durable)
	if ver := version(t, client(t, s.Addr)); !strings.HasPrefix(ver, "7.0.") {
		t.Skipf("Redis %s promises WAITAOF", ver)
	}
	log, hook := test.NewNullLogger()
	if _, err := durability.Open(ctx, client(t, s.Addr), false, log); !errors.Is(err, durability.ErrNoPromise) {
		t.Fatalf("Open without the opt-out: %v; want ErrNoPromise", err)
	}
	p, err := durability.Open(ctx, client(t, s.Addr), true, log)
	if err != nil || !p.Accepted || p.Durable() {
		t.Fatalf("Open with the opt-out: %+v, %v", p, err)
	}
	if e := hook.LastEntry(); e == nil || e.Level != logrus.ErrorLevel || e.Data["env"] != durability.AcceptLossEnv {
		t.Fatalf("the opt-out was not logged as an error naming %s: %+v", durability.AcceptLossEnv, e)
	}
	if err := p.Wait(ctx, client(t, s.Addr)); err != nil {
		t.Fatalf("Wait with loss accepted: %v", err)
	}
	s.Stop()
	k := durability.NewKeeper(client(t, s.Addr), true, log)
	if _, err := k.Promise(ctx); err == nil || errors.Is(err, durability.ErrNoPromise) {
		t.Fatalf("Redis stopped: %v; want the connection error, not an accepted loss", err)
	}
}
