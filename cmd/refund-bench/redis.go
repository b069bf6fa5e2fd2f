package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/refundq/refundq/internal/redisproc"
)

// redisServer is the bench's own redis-server: without persistence, so the
// figures are about CPU and round trips, or durable as deploy/redis.conf
// ships it (an AOF fsynced before every reply), so they show what
// durability costs.
type redisServer struct {
	addr   string
	dir    string
	cmd    *exec.Cmd
	exited chan struct{}
}

// Persistence settings of the bench's own Redis.
const (
	persistOff     = "off"     // appendonly no
	persistDurable = "durable" // appendonly yes, appendfsync always: deploy/redis.conf's
)

func startRedis(persistence string) (*redisServer, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errors.New("redis-server not found: install it (apt-get install -y redis-server) or pass --redis-addr")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("find a spare port: %w", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	dir, err := os.MkdirTemp("", "refund-bench-redis-")
	if err != nil {
		return nil, err
	}
	// No AOF rewrite in the middle of a measure.
	persist := []string{"--appendonly", "no"}
	if persistence == persistDurable {
		persist = []string{"--appendonly", "yes", "--appendfsync", "always", "--auto-aof-rewrite-percentage", "0"}
	}
	cmd := exec.Command(bin, append([]string{"--bind", "127.0.0.1", "--port", port, "--dir", dir,
		"--save", "", "--logfile", filepath.Join(dir, "redis.log")}, persist...)...)
	// The server goes with the bench, however the bench ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start redis-server: %w", err)
	}
	s := &redisServer{addr: addr, dir: dir, cmd: cmd, exited: make(chan struct{})}
	go func() { cmd.Wait(); close(s.exited) }()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	for range 100 {
		if c.Ping(context.Background()).Err() == nil {
			return s, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.stop()
	return nil, fmt.Errorf("redis-server on %s did not answer (log: %s)", addr, filepath.Join(dir, "redis.log"))
}

func (s *redisServer) stop() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
	}
	os.RemoveAll(s.dir)
}

// callsSince is after − before, without the bench's own INFO calls.
func callsSince(before, after map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for k, v := range after {
		if d := v - before[k]; d > 0 && k != "info" {
			out[k] = d
		}
	}
	return out
}

// redisCPU returns the CPU time the server has used, user and system
// (INFO cpu), of its main thread and the others.
func redisCPU(ctx context.Context, rdb *redis.Client) (time.Duration, error) {
	m, err := redisproc.Info(ctx, rdb, "cpu")
	if err != nil {
		return 0, err
	}
	user, err1 := strconv.ParseFloat(m["used_cpu_user"], 64)
	sys, err2 := strconv.ParseFloat(m["used_cpu_sys"], 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("INFO cpu: %w", err)
	}
	return time.Duration((user + sys) * float64(time.Second)), nil
}

func usedMemory(ctx context.Context, rdb *redis.Client) (int64, error) {
	m, err := redisproc.Info(ctx, rdb, "memory")
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(m["used_memory"], 10, 64)
}

// tripCounter is a go-redis hook that counts client→server round trips: one
// per command sent alone, one per pipeline; and the commands sent alone by
// name.
type tripCounter struct {
	trips atomic.Int64
	mu    sync.Mutex
	names map[string]int64
}

func newTripCounter() *tripCounter { return &tripCounter{names: map[string]int64{}} }

func (t *tripCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (t *tripCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		t.count(cmd.Name())
		return next(ctx, cmd)
	}
}

func (t *tripCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		t.count("pipeline")
		return next(ctx, cmds)
	}
}

func (t *tripCounter) count(name string) {
	t.trips.Add(1)
	t.mu.Lock()
	t.names[name]++
	t.mu.Unlock()
}

// snapshot returns the round trips so far and a copy of the per-name counts.
func (t *tripCounter) snapshot() (int64, map[string]int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := make(map[string]int64, len(t.names))
	for k, v := range t.names {
		m[k] = v
	}
	return t.trips.Load(), m
}

// countedOpt is an asynq.RedisConnOpt whose clients carry a tripCounter:
// asynq makes its clients through MakeRedisClient, so its round trips are
// counted too.
type countedOpt struct {
	opt asynq.RedisClientOpt
	tc  *tripCounter
}

func (o countedOpt) MakeRedisClient() any {
	c := o.opt.MakeRedisClient().(*redis.Client)
	if o.tc != nil {
		c.AddHook(o.tc)
	}
	return c
}
