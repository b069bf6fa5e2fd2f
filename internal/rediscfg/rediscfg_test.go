package rediscfg_test

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/refundq/refundq/internal/rediscfg"
	"github.com/refundq/refundq/internal/redisproc"
)

func TestParseSingleServer(t *testing.T) {
	c, err := rediscfg.Parse("redis://app:s3cr3t@10.0.0.7:6380/3?read_timeout=5s")
	if err != nil {
		t.Fatal(err)
	}
	want := asynq.RedisClientOpt{Addr: "10.0.0.7:6380", Username: "app", Password: "s3cr3t", DB: 3,
		Network: "tcp", ReadTimeout: 5 * time.Second}
	if got, ok := c.Asynq.(asynq.RedisClientOpt); !ok || !reflect.DeepEqual(got, want) {
		t.Errorf("asynq option = %#v, want %#v", c.Asynq, want)
	}
	if c.Sentinel() {
		t.Error("redis:// reported as Sentinel")
	}
	if s := c.String(); s != "10.0.0.7:6380, db 3" {
		t.Errorf("String() = %q", s)
	}
	tls, err := rediscfg.Parse("rediss://h:6379/0")
	if err != nil {
		t.Fatal(err)
	}
	if o := tls.Asynq.(asynq.RedisClientOpt); o.TLSConfig == nil {
		t.Error("rediss:// without a TLS configuration")
	}
}

func TestParseSentinel(t *testing.T) {
	c, err := rediscfg.Parse("redis-sentinel://app:s3cr3t@s1:26380,s2:26381,s3/4?master=refunds&sentinel_password=sp")
	if err != nil {
		t.Fatal(err)
	}
	want := asynq.RedisFailoverClientOpt{MasterName: "refunds", SentinelAddrs: []string{"s1:26380", "s2:26381", "s3:26379"},
		SentinelPassword: "sp", Username: "app", Password: "s3cr3t", DB: 4}
	if got, ok := c.Asynq.(asynq.RedisFailoverClientOpt); !ok || !reflect.DeepEqual(got, want) {
		t.Errorf("asynq option = %#v, want %#v", c.Asynq, want)
	}
	if !c.Sentinel() {
		t.Error("redis-sentinel:// not reported as Sentinel")
	}
	if s := c.String(); strings.Contains(s, "s3cr3t") || strings.Contains(s, "sp") ||
		s != `sentinel master "refunds" via s1:26380,s2:26381,s3:26379, db 4` {
		t.Errorf("String() = %q", s)
	}
	ipv6, err := rediscfg.Parse("redis-sentinel://[::1]:26379,[::1]/0?master=m")
	if err != nil {
		t.Fatal(err)
	}
	if got := ipv6.Asynq.(asynq.RedisFailoverClientOpt).SentinelAddrs; !reflect.DeepEqual(got, []string{"[::1]:26379", "[::1]:26379"}) {
		t.Errorf("IPv6 Sentinel addresses = %v", got)
	}
}

// A bad REDIS_URL is refused with a reason, and the reason never repeats the
// password, whatever part of the URL the password ended up in.
func TestParseErrorsNameTheProblemNotThePassword(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"127.0.0.1:6379", "no scheme"},
		{"http://u:s3cr3t@h:1/0", "not supported"},
		{"redis-sentinel://u:s3cr3t@a:1,b:2/0", "needs ?master=NAME"},
		{"redis-sentinel://u:s3cr3t@a:1,b:2/0?mater=m", `unknown parameter "mater"`},
		{"redis-sentinel://u:s3cr3t@a:1,,b:2/0?master=m", "empty Sentinel address"},
		{"redis-sentinel://u:s3cr3t@a:99999/0?master=m", "Sentinel address 1 is not host:port"},
		{"redis-sentinel://u:s3cr3t@a:1/x?master=m", "database"},
		{"redis-sentinel://u:s3cr3t@a:1/0#m", "?master=NAME, not after #"},
		{"redis-sentinel://u:s3/cr3t@a:1/0?master=m", "Sentinel address 1 is not host:port"},
		{"redis://u:s3/cr3t@h:6379/0", "malformed URL"},
		{"redis://u:s3cr3t@h:6379/s3cr3t", "invalid"},
		{"redis://u:s3cr3t@h:6379/0?bogus=1", "unexpected option: bogus"},
	} {
		_, err := rediscfg.Parse(tc.url)
		if err == nil {
			t.Errorf("%s: accepted", tc.url)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q does not say %q", tc.url, err, tc.want)
		}
		for _, secret := range []string{"s3cr3t", "cr3t", "s3"} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("%s: error %q repeats the password", tc.url, err)
			}
		}
	}
}

// Both clients built from one redis-sentinel:// URL reach the primary the
// Sentinels name, and still do after a failover: go-redis's failover client
// follows it, and asynq (which builds its own failover client) too.
func TestSentinelURLFollowsFailover(t *testing.T) {
	if _, err := redisproc.Binary(); err != nil {
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
	topo, err := redisproc.StartTopology(ctx, t.TempDir(), redisproc.Durable, 1, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer topo.Stop()
	t.Logf("topology up in %s", time.Since(start))

	c, err := rediscfg.Parse(topo.URL(2))
	if err != nil {
		t.Fatal(err)
	}
	rdb := c.NewClient()
	defer rdb.Close()
	ac := asynq.NewClient(c.Asynq)
	defer ac.Close()
	insp := asynq.NewInspector(c.Asynq)
	defer insp.Close()

	if err := rdb.Set(ctx, "before", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := ac.EnqueueContext(ctx, asynq.NewTask("t", nil), asynq.TaskID("before"), asynq.ProcessIn(time.Hour)); err != nil {
		t.Fatal(err)
	}
	first := redis.NewClient(&redis.Options{Addr: topo.Servers[0].Addr, DB: 2})
	defer first.Close()
	if n, err := first.Exists(ctx, "before").Result(); err != nil || n != 1 {
		t.Fatalf("the write did not reach the first primary directly: %d %v", n, err)
	}

	oldAddr, newAddr, err := topo.Failover(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("failover %s -> %s, done at %s", oldAddr, newAddr, time.Since(start))

	// The clients reach the new primary: a write succeeds (the old primary,
	// now a replica, would refuse it) and shows up on the new primary.
	deadline := time.Now().Add(20 * time.Second)
	for {
		err = rdb.Set(ctx, "after", "1", 0).Err()
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("write after failover: %v", err)
	}
	second := redis.NewClient(&redis.Options{Addr: newAddr, DB: 2})
	defer second.Close()
	for _, k := range []string{"before", "after"} {
		if n, err := second.Exists(ctx, k).Result(); err != nil || n != 1 {
			t.Errorf("key %q on the new primary: %d %v", k, n, err)
		}
	}
	if _, err := ac.EnqueueContext(ctx, asynq.NewTask("t", nil), asynq.TaskID("after"), asynq.ProcessIn(time.Hour)); err != nil {
		t.Fatalf("asynq enqueue after failover: %v", err)
	}
	for _, id := range []string{"before", "after"} {
		if _, err := insp.GetTaskInfo("default", id); err != nil {
			t.Errorf("asynq task %q after failover: %v", id, err)
		}
	}
}
