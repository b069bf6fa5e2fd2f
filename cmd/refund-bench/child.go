package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/refundq/refundq/providers/moyasarpg"
	"github.com/refundq/refundq/worker"
)

// childEnv, set in a child's environment, makes the bench binary run one
// worker (refundq's or a bare asynq server) instead of the bench: the
// scenarios with several worker processes, and those that read a worker's
// RSS, which must not include the other arm's or the simulator's memory.
const childEnv = "REFUND_BENCH_CHILD"

// childSpec is what a child runs.
type childSpec struct {
	arm    arm
	addr   string
	db     int
	space  ns
	conc   int
	simURL string
	http   bool // bare: each task makes the refund call to simURL (else a no-op)
}

func (s childSpec) args() []string {
	return []string{"-arm", s.arm.String(), "-addr", s.addr, "-db", strconv.Itoa(s.db), "-prefix", s.space.prefix,
		"-queue", s.space.queue, "-c", strconv.Itoa(s.conc), "-sim", s.simURL, "-http=" + strconv.FormatBool(s.http)}
}

// childMain builds the worker, says "ready" on stdout, starts it when a line
// arrives on stdin, and shuts it down when stdin closes.
func childMain(args []string) int {
	fs := flag.NewFlagSet("child", flag.ContinueOnError)
	armName := fs.String("arm", "", "refundq or bare")
	var s childSpec
	fs.StringVar(&s.addr, "addr", "", "")
	fs.IntVar(&s.db, "db", 0, "")
	fs.StringVar(&s.space.prefix, "prefix", "", "")
	fs.StringVar(&s.space.queue, "queue", "", "")
	fs.IntVar(&s.conc, "c", 10, "")
	fs.StringVar(&s.simURL, "sim", "", "")
	fs.BoolVar(&s.http, "http", false, "")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	opt := asynq.RedisClientOpt{Addr: s.addr, DB: s.db}
	var start func() error
	var shutdown func()
	switch *armName {
	case "refundq":
		rdb := redis.NewClient(&redis.Options{Addr: s.addr, DB: s.db})
		defer rdb.Close()
		reg, err := registry(s.simURL, moyasarpg.Schedule, s.conc)
		if err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			return 1
		}
		w, err := worker.New(worker.Config{AcceptRedisLoss: true, Redis: opt, RDB: rdb, Registry: reg, Prefix: s.space.prefix,
			Queue: s.space.queue, Logger: quietLogger(), Concurrency: s.conc, PollInterval: time.Second})
		if err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			return 1
		}
		start, shutdown = w.Start, w.Shutdown
	case "bare":
		srv := bareServer(opt, s.space.queue, s.conc, time.Second)
		var h asynq.Handler = asynq.HandlerFunc(func(context.Context, *asynq.Task) error { return nil })
		if s.http {
			h = bareRefundCall(s.simURL, s.conc)
		}
		start, shutdown = func() error { return srv.Start(h) }, srv.Shutdown
	default:
		fmt.Fprintf(os.Stderr, "child: -arm %q: want refundq or bare\n", *armName)
		return 2
	}
	fmt.Println("ready")
	in := bufio.NewReader(os.Stdin)
	if _, err := in.ReadString('\n'); err != nil {
		return 0 // the bench went away before starting us
	}
	if err := start(); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	io.Copy(io.Discard, in)
	shutdown()
	return 0
}

// bareRefundCall is the bare arm's handler with a provider: the same refund
// request the adapter makes, on a transport that keeps as many idle
// connections as there are handlers (what a bare asynq service would be
// tuned to), answer read and decoded.
func bareRefundCall(simURL string, conc int) asynq.Handler {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = conc, conc
	hc := &http.Client{Timeout: 20 * time.Second, Transport: tr}
	return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		var p struct {
			RefundID    string `json:"refund_id"`
			OrderID     string `json:"order_id"`
			AmountMinor int64  `json:"amount_minor"`
		}
		if err := json.Unmarshal(t.Payload(), &p); err != nil {
			return fmt.Errorf("payload: %v: %w", err, asynq.SkipRetry)
		}
		body, _ := json.Marshal(map[string]any{"amount": p.AmountMinor, "transaction_id": p.RefundID})
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, simURL+"/v1/orders/"+url.PathEscape(p.OrderID)+"/refund", bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+simKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var order struct {
			ID           string `json:"id"`
			Transactions []struct {
				ID     string `json:"id"`
				Status string `json:"status"`
			} `json:"transactions"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&order); err != nil {
			return fmt.Errorf("answer: %w", err)
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("refund answered HTTP %d", resp.StatusCode)
		}
		return nil
	})
}

// child is a running child process.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan error
}

func startChild(ctx context.Context, s childSpec) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, s.args()...)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start child: %w", err)
	}
	c := &child{cmd: cmd, stdin: stdin, done: make(chan error, 1)}
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err == nil && strings.TrimSpace(line) != "ready" {
			err = fmt.Errorf("child said %q", line)
		}
		ready <- err
		io.Copy(io.Discard, stdout)
		c.done <- cmd.Wait()
	}()
	select {
	case err = <-ready:
	case <-time.After(30 * time.Second):
		err = errors.New("child not ready after 30s")
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		cmd.Process.Kill()
		return nil, err
	}
	return c, nil
}

func (c *child) start() error {
	_, err := io.WriteString(c.stdin, "go\n")
	return err
}

// memory returns the child's resident set now and at its peak, in bytes.
func (c *child) memory() (rss, peak int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			rss = kb << 10
		case "VmHWM":
			peak = kb << 10
		}
	}
	return rss, peak, nil
}

// stop closes the child's stdin, which shuts its worker down, and waits.
func (c *child) stop() error {
	c.stdin.Close()
	select {
	case err := <-c.done:
		return err
	case <-time.After(worker.ShutdownTimeout + 10*time.Second):
		c.cmd.Process.Kill()
		return errors.New("child did not stop; killed")
	}
}
