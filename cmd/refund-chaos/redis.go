package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

func waitExit(cmd *exec.Cmd, d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cmd.ProcessState != nil || cmd.Process.Signal(syscall.Signal(0)) != nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Kill()
}

// redisProc is the harness's own redis-server.
type redisProc struct {
	addr, dir, fsync string
	cmd              *exec.Cmd
}

func startRedis(dir, fsync string) (*redisProc, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	r := &redisProc{addr: addr, dir: dir, fsync: fsync}
	return r, r.start()
}

func (r *redisProc) start() error {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return errors.New("redis-server not found (apt-get install -y redis-server)")
	}
	_, port, _ := net.SplitHostPort(r.addr)
	logf, err := os.OpenFile(filepath.Join(r.dir, "redis.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	r.cmd = exec.Command(bin, "--bind", "127.0.0.1", "--port", port, "--dir", r.dir,
		"--appendonly", "yes", "--appendfsync", r.fsync, "--save", "", "--maxmemory-policy", "noeviction",
		"--auto-aof-rewrite-percentage", "0")
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	if err := r.cmd.Start(); err != nil {
		return err
	}
	go func() { r.cmd.Wait(); logf.Close() }()
	c := redis.NewClient(&redis.Options{Addr: r.addr})
	defer c.Close()
	for range 100 {
		if c.Ping(context.Background()).Err() == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("redis-server on %s did not answer", r.addr)
}

// restart stops Redis, as an operator would (SIGTERM: it flushes the AOF)
// or as a crash of the process would (SIGKILL: what it acknowledged is in
// the AOF file, written but perhaps not yet fsynced, which survives a
// process crash though not a machine's), and starts it again on the same
// port and data.
func (r *redisProc) restart(kill bool) error {
	sig := syscall.SIGTERM
	if kill {
		sig = syscall.SIGKILL
	}
	r.cmd.Process.Signal(sig)
	waitExit(r.cmd, 10*time.Second)
	return r.start()
}

func (r *redisProc) stop() {
	r.cmd.Process.Signal(syscall.SIGTERM)
	waitExit(r.cmd, 10*time.Second)
}

// The AOF as it was a moment ago, for a staged power cut: a crash of the
// whole machine keeps of the AOF only what was fsynced. With appendfsync
// always that is every write Redis acknowledged; with everysec, up to about
// a second less. The harness stages it by killing Redis and restarting it on
// a copy of its AOF directory taken `window` earlier (0: the files as they
// are, which is all a cut leaves under appendfsync always).
type snapshots struct {
	src, dst string
	stop     chan struct{}
	done     chan struct{}
	taken    []snapshot
}

type snapshot struct {
	at  time.Time
	dir string
}

// aofDir is redis-server 7's appenddirname default.
const aofDir = "appendonlydir"

// snapshotAOF copies r's AOF directory every 50 ms until stopped, keeping
// the last few seconds of copies. The harness's Redis runs with AOF
// rewrites off, so the files only grow and a copy is a consistent prefix (a
// command cut in half at the end is dropped on load: aof-load-truncated).
func (r *redisProc) snapshotAOF() *snapshots {
	s := &snapshots{src: filepath.Join(r.dir, aofDir), dst: filepath.Join(r.dir, "aof-snapshots"),
		stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for n := 0; ; n++ {
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
			dir := filepath.Join(s.dst, fmt.Sprint(n))
			at := time.Now()
			if copyDir(s.src, dir) != nil {
				continue
			}
			s.taken = append(s.taken, snapshot{at, dir})
			for len(s.taken) > 100 { // 5 s of copies
				os.RemoveAll(s.taken[0].dir)
				s.taken = s.taken[1:]
			}
		}
	}()
	return s
}

// powerCut kills Redis, puts back its AOF as it was window ago, and starts
// it again. It returns how old the files it restarted on were.
func (r *redisProc) powerCut(s *snapshots, window time.Duration) (time.Duration, error) {
	cut := time.Now()
	close(s.stop)
	<-s.done
	r.cmd.Process.Signal(syscall.SIGKILL)
	waitExit(r.cmd, 10*time.Second)
	if window <= 0 {
		return 0, r.start()
	}
	var pick *snapshot
	for i := range s.taken {
		if !s.taken[i].at.After(cut.Add(-window)) {
			pick = &s.taken[i]
		}
	}
	if pick == nil {
		return 0, errors.New("power cut: no copy of the AOF old enough; start it later in the run")
	}
	if err := os.RemoveAll(s.src); err != nil {
		return 0, err
	}
	if err := copyDir(pick.dir, s.src); err != nil {
		return 0, err
	}
	os.RemoveAll(s.dst)
	return cut.Sub(pick.at), r.start()
}

func copyDir(src, dst string) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}
