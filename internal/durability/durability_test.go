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
)

// server starts a redis-server of the test's own (the shared test Redis
// keeps nothing on disk, and its configuration is not ours to change).
func server(t *testing.T, o redisproc.Options) *redisproc.Server {
	t.Helper()
	if _, err := redisproc.Binary(); err != nil {
		t.Skip(err)
	}
	s, err := redisproc.Start(t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

func client(t *testing.T, addr string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { c.Close() })
	return c
}

func TestCheckAcceptsAOFAndNoeviction(t *testing.T) {
	s := server(t, redisproc.Durable)
	if err := durability.Check(context.Background(), client(t, s.Addr)); err != nil {
		t.Fatalf("a server with appendonly yes and noeviction refused: %v", err)
	}
}

func TestCheckSaysWhatToSet(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    redisproc.Options
		want []string
		not  string
	}{
		{"no AOF", redisproc.Options{AppendOnly: false, Policy: "noeviction"},
			[]string{`appendonly is "no", want yes`, "CONFIG SET appendonly yes", "every replica the same", durability.SkipEnv},
			"maxmemory-policy is"},
		{"eviction", redisproc.Options{AppendOnly: true, Policy: "allkeys-lru"},
			[]string{`maxmemory-policy is "allkeys-lru", want noeviction`, "CONFIG SET maxmemory-policy noeviction"},
			"appendonly is"},
		{"both", redisproc.Options{AppendOnly: false, Policy: "volatile-lru"},
			[]string{`appendonly is "no"`, `maxmemory-policy is "volatile-lru"`}, "\x00"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := server(t, tc.o)
			err := durability.Check(context.Background(), client(t, s.Addr))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("message lacks %q:\n%v", w, err)
				}
			}
			if strings.Contains(err.Error(), tc.not) {
				t.Errorf("message mentions %q, which is fine:\n%v", tc.not, err)
			}
		})
	}
}

func TestCheckRefusesAReplica(t *testing.T) {
	p := server(t, redisproc.Durable)
	o := redisproc.Durable
	o.ReplicaOf = p.Addr
	r := server(t, o)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := redisproc.WaitReplicaSynced(ctx, r); err != nil {
		t.Fatal(err)
	}
	err := durability.Check(ctx, client(t, r.Addr))
	if err == nil || !strings.Contains(err.Error(), "replica") || !strings.Contains(err.Error(), "redis-sentinel://") {
		t.Fatalf("Check on a replica: %v", err)
	}
}

// Managed Redis often renames CONFIG away: the check cannot tell, says so,
// and names the override; with the override, Require starts with a warning.
func TestHiddenConfigNeedsTheOverride(t *testing.T) {
	o := redisproc.Durable
	o.Extra = []string{"--rename-command", "CONFIG", ""}
	s := server(t, o)
	rdb := client(t, s.Addr)
	ctx := context.Background()

	err := durability.Check(ctx, rdb)
	if !errors.Is(err, durability.ErrConfigHidden) || !strings.Contains(err.Error(), durability.SkipEnv+"=1") {
		t.Fatalf("Check with CONFIG hidden: %v", err)
	}
	log, hook := test.NewNullLogger()
	env := map[string]string{}
	if err := durability.Require(ctx, rdb, func(k string) string { return env[k] }, log); err == nil {
		t.Fatal("Require started without the override")
	}
	env[durability.SkipEnv] = "1"
	if err := durability.Require(ctx, rdb, func(k string) string { return env[k] }, log); err != nil {
		t.Fatalf("Require with %s=1: %v", durability.SkipEnv, err)
	}
	last := hook.LastEntry()
	if last == nil || last.Level != logrus.WarnLevel || !strings.Contains(last.Message, "check skipped") {
		t.Fatalf("no warning logged for the skipped check: %+v", last)
	}
}

func TestRequireWarnsWithoutMaxmemory(t *testing.T) {
	s := server(t, redisproc.Durable) // maxmemory 0
	log, hook := test.NewNullLogger()
	if err := durability.Require(context.Background(), client(t, s.Addr), func(string) string { return "" }, log); err != nil {
		t.Fatal(err)
	}
	warned := false
	for _, e := range hook.AllEntries() {
		warned = warned || (e.Level == logrus.WarnLevel && strings.Contains(e.Message, "no maxmemory"))
	}
	if !warned {
		t.Error("no warning for maxmemory 0")
	}

	o := redisproc.Durable
	o.MaxMemory = "256mb"
	s2 := server(t, o)
	hook.Reset()
	if err := durability.Require(context.Background(), client(t, s2.Addr), func(string) string { return "" }, log); err != nil {
		t.Fatal(err)
	}
	for _, e := range hook.AllEntries() {
		if e.Level == logrus.WarnLevel {
			t.Errorf("warning with maxmemory set: %s", e.Message)
		}
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
