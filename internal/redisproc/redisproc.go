// Package redisproc starts real redis-server processes on spare loopback
// ports for tests and the chaos harness: a server configured as refundq
// requires (AOF, noeviction), a replica of it, and Sentinels
// (`redis-server --sentinel`) that monitor it. Each process writes its data
// and log into a directory the caller owns; nothing listens beyond 127.0.0.1.
package redisproc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// Options configure a data server.
type Options struct {
	// AppendOnly turns AOF on; Fsync is its appendfsync ("everysec" when
	// empty).
	AppendOnly bool
	Fsync      string
	// Policy is maxmemory-policy ("noeviction" when empty); MaxMemory is
	// maxmemory ("0", no limit, when empty).
	Policy    string
	MaxMemory string
	// ReplicaOf is the host:port of the primary this server replicates.
	ReplicaOf string
	// MinReplicasToWrite makes a primary refuse writes (NOREPLICAS) unless
	// that many replicas are connected and acknowledged within 10 s.
	MinReplicasToWrite int
	// Extra arguments for redis-server, after the others.
	Extra []string
	// DieWithParent has the kernel send redis-server SIGTERM when the
	// process that started it dies, however it dies, and keeps the server
	// out of that process's group, so Ctrl-C reaches the process alone
	// (Linux; elsewhere it does nothing): a foreground server such as
	// refundctl dev-redis must not outlive its command and hold its port.
	DieWithParent bool
}

// Durable are the settings refundq requires: AOF fsynced every second and
// no eviction.
var Durable = Options{AppendOnly: true, Fsync: "everysec", Policy: "noeviction"}

// Shipped are deploy/redis.conf's settings (a test holds them to the file):
// AOF fsynced before every reply, no eviction, a 256 MB limit. A server
// started with them passes every refundq process's Redis check on any
// Redis version, without a replica.
var Shipped = Options{AppendOnly: true, Fsync: "always", Policy: "noeviction", MaxMemory: "256mb"}

// ErrPortInUse is returned, wrapped, by StartOnPort when something already
// listens on the port asked for.
var ErrPortInUse = errors.New("the port is in use")

// Server is one redis-server process (a data server or a Sentinel).
type Server struct {
	Addr string // 127.0.0.1:port
	Dir  string // its working directory: AOF, sentinel.conf, log
	args []string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited

	dieWithParent bool // see Options.DieWithParent
}

// Binary is the redis-server executable, found on PATH.
func Binary() (string, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", errors.New("redis-server not found (apt-get install -y redis-server)")
	}
	return bin, nil
}

// Start runs a data server in dir (created if missing) on a spare port.
func Start(dir string, o Options) (*Server, error) { return StartOnPort(dir, 0, o) }

// StartOnPort runs a data server in dir (created if missing) on
// 127.0.0.1:port, or on a spare port when port is 0. A port something
// already listens on is ErrPortInUse (wrapped), rather than a server that
// exits at start.
func StartOnPort(dir string, port int, o Options) (*Server, error) {
	// redis-server runs in dir and reads --dir from there: a relative dir
	// would name a directory inside itself.
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	args, err := dataArgs(dir, o)
	if err != nil {
		return nil, err
	}
	argsFor := func(port string) []string { return append([]string{"--port", port}, args...) }
	if port == 0 {
		return startOnSparePort(dir, o.DieWithParent, argsFor)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	ln, err := net.Listen("tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("redisproc: %s: %w", addr, ErrPortInUse)
	}
	if err != nil {
		return nil, fmt.Errorf("redisproc: %w", err)
	}
	ln.Close()
	s := &Server{Addr: addr, Dir: dir, args: argsFor(strconv.Itoa(port)), dieWithParent: o.DieWithParent}
	if err := s.start(); err != nil {
		return nil, err
	}
	return s, nil
}

// dataArgs are redis-server's arguments for a data server with o, but its
// port.
func dataArgs(dir string, o Options) ([]string, error) {
	if o.Fsync == "" {
		o.Fsync = "everysec"
	}
	if o.Policy == "" {
		o.Policy = "noeviction"
	}
	if o.MaxMemory == "" {
		o.MaxMemory = "0"
	}
	appendonly := "no"
	if o.AppendOnly {
		appendonly = "yes"
	}
	// No delay before a diskless sync (5 s by default): a replica, or an old
	// primary turned replica, is in sync as soon as it can be.
	args := []string{"--bind", "127.0.0.1", "--dir", dir, "--save", "", "--repl-diskless-sync-delay", "0",
		"--appendonly", appendonly, "--appendfsync", o.Fsync,
		"--maxmemory-policy", o.Policy, "--maxmemory", o.MaxMemory}
	if o.MinReplicasToWrite > 0 {
		args = append(args, "--min-replicas-to-write", fmt.Sprint(o.MinReplicasToWrite), "--min-replicas-max-lag", "10")
	}
	if o.ReplicaOf != "" {
		host, port, err := net.SplitHostPort(o.ReplicaOf)
		if err != nil {
			return nil, fmt.Errorf("redisproc: replica of %q: %w", o.ReplicaOf, err)
		}
		args = append(args, "--replicaof", host, port)
	}
	return append(args, o.Extra...), nil
}

// StartSentinel runs a Sentinel in dir that monitors master at primary with
// the given quorum. Failure detection is quick (2 s down-after), fitting
// tests on loopback; production Sentinels use their own configuration.
func StartSentinel(dir, master, primary string, quorum int) (*Server, error) {
	host, port, err := net.SplitHostPort(primary)
	if err != nil {
		return nil, fmt.Errorf("redisproc: primary %q: %w", primary, err)
	}
	return startOnSparePort(dir, false, func(sport string) []string {
		// A Sentinel rewrites its configuration file, so each has its own.
		conf := filepath.Join(dir, "sentinel.conf")
		text := strings.Join([]string{
			"bind 127.0.0.1",
			"port " + sport,
			"dir " + dir,
			fmt.Sprintf("sentinel monitor %s %s %s %d", master, host, port, quorum),
			"sentinel down-after-milliseconds " + master + " 2000",
			"sentinel failover-timeout " + master + " 10000",
			"sentinel parallel-syncs " + master + " 1",
		}, "\n") + "\n"
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			return nil
		}
		return []string{conf, "--sentinel"}
	})
}

// startOnSparePort picks a free loopback port, starts redis-server with the
// arguments for it, and waits for PING. Another process may take the port
// between the pick and the start; then it tries a new one.
func startOnSparePort(dir string, dieWithParent bool, argsFor func(port string) []string) (*Server, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var last error
	for range 5 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		addr := ln.Addr().String()
		ln.Close()
		_, port, _ := net.SplitHostPort(addr)
		args := argsFor(port)
		if args == nil {
			return nil, fmt.Errorf("redisproc: cannot write configuration in %s", dir)
		}
		s := &Server{Addr: addr, Dir: dir, args: args, dieWithParent: dieWithParent}
		if last = s.start(); last == nil {
			return s, nil
		}
	}
	return nil, last
}

func (s *Server) start() error {
	bin, err := Binary()
	if err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(s.Dir, "redis.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	s.cmd = exec.Command(bin, s.args...)
	s.cmd.Dir = s.Dir
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if s.dieWithParent {
		dieWithParent(s.cmd)
	}
	if err := s.cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	s.done = make(chan struct{})
	go func(done chan struct{}) { s.cmd.Wait(); logf.Close(); close(done) }(s.done)

	c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return fmt.Errorf("redisproc: redis-server on %s exited at start (see %s)", s.Addr, filepath.Join(s.Dir, "redis.log"))
		default:
		}
		if c.Ping(context.Background()).Err() == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.cmd.Process.Kill()
	<-s.done
	return fmt.Errorf("redisproc: redis-server on %s did not answer PING in 10 s", s.Addr)
}

// Stop ends the process as an operator would (SIGTERM: a data server
// flushes its AOF) and waits up to 10 s before killing it.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	// SIGTERM again every second: a replica sent one right after its
	// initial sync (during the AOF rewrite that follows it) was seen to
	// never act on it.
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
			return
		case <-deadline:
			s.Kill()
			return
		case <-tick.C:
		}
	}
}

// Exited is closed when the process has exited, whoever ended it.
func (s *Server) Exited() <-chan struct{} { return s.done }

// Kill ends the process with SIGKILL, as a crash would, and waits for it.
func (s *Server) Kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.resume() // a paused process dies too
	s.cmd.Process.Kill()
	<-s.done
}

// Restart stops the server (SIGTERM) and starts it again on the same port
// and directory. A Sentinel restarts from its rewritten configuration.
func (s *Server) Restart() error {
	s.Stop()
	return s.start()
}

// Client returns a go-redis client of this one process (the caller closes it).
func (s *Server) Client() *redis.Client { return redis.NewClient(&redis.Options{Addr: s.Addr}) }

// Info returns one section of INFO as a map (for example "replication").
func Info(ctx context.Context, c redis.Cmdable, section string) (map[string]string, error) {
	text, err := c.Info(ctx, section).Result()
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":"); ok {
			m[k] = v
		}
	}
	return m, nil
}

// CommandCalls returns INFO commandstats as command → calls. Commands run
// inside a Lua script count too: it is the work Redis does.
func CommandCalls(ctx context.Context, c redis.Cmdable) (map[string]int64, error) {
	m, err := Info(ctx, c, "commandstats")
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for k, v := range m { // cmdstat_hget:calls=3,usec=…
		name, ok := strings.CutPrefix(k, "cmdstat_")
		if !ok {
			continue
		}
		calls, _, _ := strings.Cut(strings.TrimPrefix(v, "calls="), ",")
		if n, err := strconv.ParseInt(calls, 10, 64); err == nil {
			out[name] = n
		}
	}
	return out, nil
}

// WaitReplicaSynced waits until the replica at addr reports its link to the
// primary up and the initial sync done.
func WaitReplicaSynced(ctx context.Context, replica *Server) error {
	c := replica.Client()
	defer c.Close()
	for {
		info, err := Info(ctx, c, "replication")
		if err == nil && info["master_link_status"] == "up" && info["master_sync_in_progress"] == "0" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("redisproc: replica %s not in sync: %w (last INFO: link %q)", replica.Addr, ctx.Err(), info["master_link_status"])
		case <-time.After(20 * time.Millisecond):
		}
	}
}
