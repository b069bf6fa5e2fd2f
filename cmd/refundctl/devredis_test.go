package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"

	"github.com/refundq/refundq/internal/durability"
	"github.com/refundq/refundq/internal/redisproc"
)

// lockedBuffer is a bytes.Buffer a command writes while the test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// devRedis runs refundctl dev-redis until stop is called; it returns the
// REDIS_URL its env file holds.
func devRedis(t *testing.T, dir string) (url string, out *lockedBuffer, stop func() int) {
	t.Helper()
	if _, err := redisproc.Binary(); err != nil {
		t.Skip(err)
	}
	envFile := filepath.Join(dir, "redis.env")
	os.Remove(envFile)
	ctx, cancel := context.WithCancel(context.Background())
	out, errOut := &lockedBuffer{}, &lockedBuffer{}
	code := make(chan int, 1)
	go func() {
		code <- execute(ctx, []string{"dev-redis", "--listen", "127.0.0.1:0", "--dir", filepath.Join(dir, "data"),
			"--env-file", envFile}, strings.NewReader(""), out, errOut)
	}()
	var once sync.Once
	exit := -1
	stop = func() int {
		once.Do(func() { cancel(); exit = <-code })
		return exit
	}
	t.Cleanup(func() { stop() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := os.ReadFile(envFile)
		if _, u, ok := strings.Cut(string(b), "export REDIS_URL="); err == nil && ok {
			return strings.TrimSpace(u), out, stop
		}
		select {
		case c := <-code:
			t.Fatalf("dev-redis exited %d before writing %s:\n%s%s", c, envFile, out, errOut)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("dev-redis wrote no REDIS_URL in 30 s:\n%s%s", out, errOut)
		}
	}
}

func redisClient(t *testing.T, url string) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	return c
}

// dev-redis's server passes the check every refundq process runs, with
// nothing in the environment lifting it; SIGTERM (here: the command's
// context) stops it cleanly, and what it acknowledged is there at the next
// start on the same directory.
func TestDevRedisPassesTheCheckAndKeepsItsData(t *testing.T) {
	dir := t.TempDir()
	url, out, stop := devRedis(t, dir)
	rdb := redisClient(t, url)
	ctx := context.Background()
	log := logrus.New()
	log.SetOutput(io.Discard)
	p, err := durability.Require(ctx, rdb, func(string) string { return "" }, log)
	if err != nil || !p.Always || p.Accepted {
		t.Fatalf("dev-redis's server: %+v, %v; want it to pass with appendfsync always", p, err)
	}
	for _, says := range []string{"export REDIS_URL=" + url, "passes refundq's Redis check", "Ctrl-C"} {
		if !strings.Contains(out.String(), says) {
			t.Errorf("dev-redis does not say %q:\n%s", says, out)
		}
	}
	if err := rdb.Set(ctx, "refundq:dev-redis-test", "kept", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if code := stop(); code != 0 {
		t.Fatalf("dev-redis exited %d when stopped:\n%s", code, out)
	}
	if !strings.Contains(out.String(), "dev Redis stopped") {
		t.Errorf("no word of the stop:\n%s", out)
	}
	addr := strings.TrimSuffix(strings.TrimPrefix(url, "redis://"), "/0")
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatalf("%s still answers after dev-redis stopped", addr)
	}

	url, _, _ = devRedis(t, dir)
	if v, err := redisClient(t, url).Get(ctx, "refundq:dev-redis-test").Result(); err != nil || v != "kept" {
		t.Fatalf("after a restart on the same directory: %q, %v", v, err)
	}
}

// A port in use is said so, with what to do; an address beyond loopback is
// a usage error.
func TestDevRedisListen(t *testing.T) {
	if _, err := redisproc.Binary(); err != nil {
		t.Skip(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	r := cli(t, nil, "", "dev-redis", "--listen", ln.Addr().String(), "--dir", t.TempDir())
	if r.code != exitFailed || !strings.Contains(r.err, ln.Addr().String()+" is in use") || !strings.Contains(r.err, "--listen") {
		t.Errorf("port in use: %s", r)
	}
	r = cli(t, nil, "", "dev-redis", "--listen", "0.0.0.0:6380", "--dir", t.TempDir())
	if r.code != exitUsage || !strings.Contains(r.err, "loopback") {
		t.Errorf("--listen 0.0.0.0:6380: %s", r)
	}
}
