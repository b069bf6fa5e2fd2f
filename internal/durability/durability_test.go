package durability_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"

	"github.com/refundq/refundq/internal/durability"
	"github.com/refundq/refundq/internal/redisproc"
	"github.com/refundq/refundq/internal/redistest"
)

// server starts a redis-server of the test's own (the shared test Redis
// keeps nothing on disk, and its configuration is not ours to change).
func server(t *testing.T, o redisproc.Options) *redisproc.Server { return redistest.Server(t, o) }

func client(t *testing.T, addr string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { c.Close() })
	return c
}

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func is70(t *testing.T, addr string) bool {
	ver := version(t, client(t, addr))
	return strings.HasPrefix(ver, "7.0.") || strings.HasPrefix(ver, "6.")
}

// deploy/redis.conf's settings pass on any version, without a replica, and
// nothing is warned about.
func TestRequireAcceptsTheShippedSettings(t *testing.T) {
	s := server(t, redisproc.Shipped)
	log, hook := test.NewNullLogger()
	p, err := durability.Require(context.Background(), client(t, s.Addr), env(), log)
	if err != nil || !p.Always || p.Accepted {
		t.Fatalf("deploy/redis.conf's settings: %+v, %v", p, err)
	}
	for _, e := range hook.AllEntries() {
		if e.Level <= logrus.WarnLevel {
			t.Errorf("logged at %s: %s", e.Level, e.Message)
		}
	}
}

// A refusal says what is wrong, then the same choices whatever is wrong; it
// never sends the reader to rewrite a server's configuration.
func TestRequireSaysWhatIsWrongAndTheChoices(t *testing.T) {
	always := func(o redisproc.Options) redisproc.Options { o.Fsync = "always"; return o }
	for _, tc := range []struct {
		name string
		o    redisproc.Options
		want []string
		not  string
		only string // skip unless the server's version starts so
	}{
		{"no AOF", redisproc.Options{AppendOnly: false, Policy: "noeviction"},
			[]string{`appendonly is "no": a restart loses`}, "maxmemory-policy is", ""},
		{"eviction", always(redisproc.Options{AppendOnly: true, Policy: "allkeys-lru"}),
			[]string{`maxmemory-policy is "allkeys-lru": a full Redis evicts`}, "appendonly is", ""},
		{"both", redisproc.Options{AppendOnly: false, Policy: "volatile-lru"},
			[]string{`appendonly is "no"`, `maxmemory-policy is "volatile-lru"`}, "appendfsync is", ""},
		{"everysec on 7.0", redisproc.Durable,
			[]string{`appendfsync is "everysec", and Redis 7.0.`, "neither WAITAOF (7.2 and later) nor a replica"}, "appendonly is", "7.0."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := server(t, tc.o)
			if tc.only != "" && !strings.HasPrefix(version(t, client(t, s.Addr)), tc.only) {
				t.Skipf("about Redis %s", tc.only)
			}
			_, err := durability.Require(context.Background(), client(t, s.Addr), env(), logrus.New())
			var ref *durability.Refusal
			if !errors.As(err, &ref) {
				t.Fatalf("Require: %v; want a *Refusal", err)
			}
			msg := err.Error()
			for _, w := range append(tc.want, "Redis does not keep what refundq writes: ", durability.Choices) {
				if !strings.Contains(msg, w) {
					t.Errorf("message lacks %q:\n%v", w, msg)
				}
			}
			if strings.Contains(msg, tc.not) {
				t.Errorf("message mentions %q, which is fine:\n%v", tc.not, msg)
			}
			for _, advice := range []string{"CONFIG SET", "CONFIG REWRITE"} {
				if strings.Contains(msg, advice) {
					t.Errorf("message advises %s:\n%v", advice, msg)
				}
			}
		})
	}
}

// REFUNDQ_ACCEPT_REDIS_LOSS=1 lifts what the server cannot promise, and
// nothing else: on the settings deploy/redis.conf asks for, with
// appendfsync everysec on a lone Redis 7.0 (nothing confirms a write), the
// process runs with an error logged naming it and what is wrong, and its
// writes wait for nothing; on a Redis without AOF or with eviction, it is
// refused as without the variable, since accepting the last second of
// writes lost in a crash is not accepting every refund lost at a restart.
func TestRequireAcceptsLossOnlyWhenTold(t *testing.T) {
	ctx := context.Background()
	log, hook := test.NewNullLogger()
	for _, o := range []redisproc.Options{{AppendOnly: false, Policy: "noeviction"}, {AppendOnly: true, Fsync: "always", Policy: "allkeys-lru"}} {
		s := server(t, o)
		p, err := durability.Require(ctx, client(t, s.Addr), env(durability.AcceptLossEnv, "1"), log)
		var ref *durability.Refusal
		if !errors.As(err, &ref) || p.Accepted {
			t.Errorf("appendonly %v, %s, with %s=1: %+v, %v; want refused", o.AppendOnly, o.Policy, durability.AcceptLossEnv, p, err)
		}
	}

	s := server(t, redisproc.Durable)
	if ver := version(t, client(t, s.Addr)); !strings.HasPrefix(ver, "7.0.") {
		t.Skipf("Redis %s confirms writes with WAITAOF: nothing to accept", ver)
	}
	if _, err := durability.Require(ctx, client(t, s.Addr), env(), log); !errors.Is(err, durability.ErrNoPromise) {
		t.Fatalf("a lone 7.0 with appendfsync everysec, without %s: %v; want refused", durability.AcceptLossEnv, err)
	}
	p, err := durability.Require(ctx, client(t, s.Addr), env(durability.AcceptLossEnv, "1"), log)
	if err != nil || !p.Accepted || p.Durable() {
		t.Fatalf("with %s=1: %+v, %v", durability.AcceptLossEnv, p, err)
	}
	e := hook.LastEntry()
	if e == nil || e.Level != logrus.ErrorLevel || e.Data["env"] != durability.AcceptLossEnv ||
		!strings.Contains(fmt.Sprint(e.Data["problems"]), `appendfsync is "everysec"`) {
		t.Fatalf("the accepted loss was not logged as an error naming %s and the problem: %+v", durability.AcceptLossEnv, e)
	}
	if err := p.Wait(ctx, client(t, s.Addr)); err != nil {
		t.Fatalf("Wait with loss accepted: %v", err)
	}
}

func TestRequireRefusesAReplica(t *testing.T) {
	p := server(t, redisproc.Shipped)
	o := redisproc.Shipped
	o.ReplicaOf = p.Addr
	r := server(t, o)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := redisproc.WaitReplicaSynced(ctx, r); err != nil {
		t.Fatal(err)
	}
	// No choice of the refusal makes a replica writable: the opt-outs do not
	// lift this one.
	_, err := durability.Require(ctx, client(t, r.Addr), env(durability.AcceptLossEnv, "1"), logrus.New())
	if err == nil || !strings.Contains(err.Error(), "replica") || !strings.Contains(err.Error(), "redis-sentinel://") {
		t.Fatalf("Require on a replica: %v", err)
	}
}

// Managed Redis often renames CONFIG away: the check cannot tell, says so,
// and names the override. With it, the skip is logged as a structured
// warning, and what the server promises is still asked: Redis 7.0 alone
// promises nothing it can show, so the loss must be accepted too.
func TestHiddenConfigNeedsTheOverride(t *testing.T) {
	o := redisproc.Shipped
	o.Extra = []string{"--rename-command", "CONFIG", ""}
	s := server(t, o)
	rdb := client(t, s.Addr)
	ctx := context.Background()
	log, hook := test.NewNullLogger()

	_, err := durability.Require(ctx, rdb, env(), log)
	if !errors.Is(err, durability.ErrConfigHidden) || !strings.Contains(err.Error(), durability.SkipEnv+"=1") {
		t.Fatalf("Require with CONFIG hidden: %v", err)
	}
	_, err = durability.Require(ctx, rdb, env(durability.SkipEnv, "1"), log)
	if w := hook.Entries[len(hook.Entries)-1]; w.Level != logrus.WarnLevel || w.Data["env"] != durability.SkipEnv {
		t.Fatalf("the skipped check was not logged as a warning naming %s: %+v", durability.SkipEnv, w)
	}
	if is70(t, s.Addr) {
		if !errors.Is(err, durability.ErrNoPromise) || errors.Is(err, durability.ErrConfigHidden) {
			t.Fatalf("Require with %s=1 on a lone 7.0: %v; want only the promise refused", durability.SkipEnv, err)
		}
		_, err = durability.Require(ctx, rdb, env(durability.SkipEnv, "1", durability.AcceptLossEnv, "1"), log)
	}
	if err != nil {
		t.Fatalf("Require with the overrides: %v", err)
	}
}

// A readiness probe repeats the settings check quietly, with the same
// environment and the same message.
func TestReady(t *testing.T) {
	ctx := context.Background()
	bad := server(t, redisproc.Options{AppendOnly: false, Policy: "noeviction"})
	err := durability.Ready(ctx, client(t, bad.Addr), env())
	_, rerr := durability.Require(ctx, client(t, bad.Addr), env(), logrus.New())
	if err == nil || err.Error() != rerr.Error() {
		t.Fatalf("Ready: %v\nRequire: %v\nwant the same refusal", err, rerr)
	}
	if err := durability.Ready(ctx, client(t, bad.Addr), env(durability.SkipEnv, "1")); err != nil {
		t.Errorf("Ready with %s=1: %v", durability.SkipEnv, err)
	}
	// Accepting the loss of what Redis cannot confirm does not accept a
	// Redis that turned its AOF off.
	if err := durability.Ready(ctx, client(t, bad.Addr), env(durability.AcceptLossEnv, "1")); err == nil || err.Error() != rerr.Error() {
		t.Errorf("Ready with %s=1 on a Redis without AOF: %v; want the refusal", durability.AcceptLossEnv, err)
	}
	good := server(t, redisproc.Shipped)
	if err := durability.Ready(ctx, client(t, good.Addr), env()); err != nil {
		t.Errorf("Ready on deploy/redis.conf's settings: %v", err)
	}
}

func TestRequireWarnsWithoutMaxmemory(t *testing.T) {
	o := redisproc.Shipped
	o.MaxMemory = "0"
	s := server(t, o)
	log, hook := test.NewNullLogger()
	if _, err := durability.Require(context.Background(), client(t, s.Addr), env(), log); err != nil {
		t.Fatal(err)
	}
	warned := false
	for _, e := range hook.AllEntries() {
		warned = warned || (e.Level == logrus.WarnLevel && strings.Contains(e.Message, "no maxmemory"))
	}
	if !warned {
		t.Error("no warning for maxmemory 0")
	}
}

// The installed Redis 7.0 without a replica: nothing can be waited on, and
// WaitDurable says so at once instead of blocking or failing.
func TestWaitDurableOnLoneRedis70ConfirmsNothing(t *testing.T) {
	s := server(t, redisproc.Durable)
	rdb := client(t, s.Addr)
	ctx := context.Background()
	if ver := version(t, rdb); !strings.HasPrefix(ver, "7.0.") && !strings.HasPrefix(ver, "6.") {
		t.Skipf("Redis %s has WAITAOF; this test is about what 7.0 allows", ver)
	}
	rdb.Set(ctx, "k", "v", 0)
	start := time.Now()
	got, err := durability.WaitDurable(ctx, rdb)
	if err != nil || !got.Nothing() {
		t.Fatalf("WaitDurable on a lone 7.0 = %+v, %v; want nothing confirmed, no error", got, err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("took %s with nothing to wait for", d)
	}
}

// With a replica, WaitDurable returns only once the replica holds every
// write acknowledged before the call, including writes made through other
// connections of the pool: read back from the replica at once, each is there.
func TestWaitDurableWaitsForAReplica(t *testing.T) {
	p := server(t, redisproc.Durable)
	o := redisproc.Durable
	o.ReplicaOf = p.Addr
	r := server(t, o)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := redisproc.WaitReplicaSynced(ctx, r); err != nil {
		t.Fatal(err)
	}
	// The write goes through one client, the wait through another: as in
	// a pool, the waiting connection is not the one that wrote.
	writer, rdb := client(t, p.Addr), client(t, p.Addr)
	replica := client(t, r.Addr)
	for i := range 200 {
		key := fmt.Sprintf("w%03d", i)
		// A large value makes the replica take a moment to receive it.
		if err := writer.Set(ctx, key, strings.Repeat("x", 256<<10), 0).Err(); err != nil {
			t.Fatal(err)
		}
		got, err := durability.WaitDurable(ctx, rdb)
		if err != nil || got.Replicas < 1 {
			t.Fatalf("write %d: WaitDurable = %+v, %v", i, got, err)
		}
		if n, err := replica.Exists(ctx, key).Result(); err != nil || n != 1 {
			t.Fatalf("write %d: WaitDurable returned but the replica lacks it (%d, %v)", i, n, err)
		}
	}
}

// WAIT waits for the replication offset of the waiting connection's last
// command (7.0.15, measured: any command; newer servers: its last write).
// Here the write is made by another client while the replica is stopped: a
// WAIT on a connection whose last command came before that write returns 1
// at once, with the write nowhere but the primary's memory. WaitDurable must
// return only after the replica is running again and has acknowledged.
func TestWaitDurableCoversWritesOfOtherConnections(t *testing.T) {
	p := server(t, redisproc.Durable)
	o := redisproc.Durable
	o.ReplicaOf = p.Addr
	r := server(t, o)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := redisproc.WaitReplicaSynced(ctx, r); err != nil {
		t.Fatal(err)
	}
	writer, rdb := client(t, p.Addr), client(t, p.Addr)
	if err := rdb.Ping(ctx).Err(); err != nil { // the waiting connection exists before the write
		t.Fatal(err)
	}
	time.Sleep(1200 * time.Millisecond) // let the replica's once-a-second ack cover everything so far
	if err := r.Pause(); err != nil {
		t.Fatal(err)
	}
	defer r.Resume()
	if err := writer.Set(ctx, "guarded", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	resumed := make(chan time.Time, 1)
	go func() {
		time.Sleep(500 * time.Millisecond)
		resumed <- time.Now()
		r.Resume()
	}()
	got, err := durability.WaitDurable(ctx, rdb)
	returned := time.Now()
	if err != nil || got.Replicas < 1 {
		t.Fatalf("WaitDurable = %+v, %v", got, err)
	}
	if at := <-resumed; returned.Before(at) {
		t.Fatalf("WaitDurable confirmed a replica %s before the stopped replica was resumed", at.Sub(returned))
	}
	if n, err := client(t, r.Addr).Exists(ctx, "guarded").Result(); err != nil || n != 1 {
		t.Fatalf("the replica lacks the write after WaitDurable: %d %v", n, err)
	}
}

// A replica that is connected but answers nothing (stopped with SIGSTOP)
// cannot acknowledge: WaitDurable reports ErrNotDurable after its timeout.
func TestWaitDurableReportsAReplicaThatDoesNotAcknowledge(t *testing.T) {
	p := server(t, redisproc.Durable)
	o := redisproc.Durable
	o.ReplicaOf = p.Addr
	r := server(t, o)
	ctx := context.Background()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := redisproc.WaitReplicaSynced(sctx, r); err != nil {
		t.Fatal(err)
	}
	if err := r.Pause(); err != nil {
		t.Fatal(err)
	}
	defer r.Resume()
	rdb := client(t, p.Addr)
	rdb.Set(ctx, "k", "v", 0)
	start := time.Now()
	got, err := durability.WaitDurable(ctx, rdb)
	if !errors.Is(err, durability.ErrNotDurable) || got.Replicas != 0 {
		t.Fatalf("WaitDurable with a stopped replica = %+v, %v; want ErrNotDurable", got, err)
	}
	if d := time.Since(start); d < durability.WaitTimeout-100*time.Millisecond || d > durability.WaitTimeout+time.Second {
		t.Errorf("gave up after %s, want about %s", d, durability.WaitTimeout)
	}
	// A shorter context deadline shortens the wait.
	cctx, ccancel := context.WithTimeout(ctx, 600*time.Millisecond)
	defer ccancel()
	start = time.Now()
	if _, err := durability.WaitDurable(cctx, rdb); !errors.Is(err, durability.ErrNotDurable) {
		t.Fatalf("with a 600 ms deadline: %v", err)
	}
	if d := time.Since(start); d > 700*time.Millisecond {
		t.Errorf("a 600 ms deadline waited %s", d)
	}
}

func version(t *testing.T, rdb *redis.Client) string {
	t.Helper()
	text, err := rdb.Info(context.Background(), "server").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
			return v
		}
	}
	t.Fatal("no redis_version")
	return ""
}
