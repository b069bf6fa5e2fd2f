package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/refundq/refundq/worker"
)

// child is a running child worker process (see childMain).
type child struct {
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	replies  chan string   // its stdout lines after "ready", but "done"
	finished chan struct{} // closed when it says "done"
	exited   chan struct{} // closed when it has exited; then waitErr is set
	waitErr  error
	stopOnce sync.Once
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
	c := &child{cmd: cmd, stdin: stdin, replies: make(chan string, 4), finished: make(chan struct{}), exited: make(chan struct{})}
	ready := make(chan error, 1)
	go func() {
		lines := bufio.NewScanner(stdout)
		lines.Buffer(nil, 1<<20)
		first := true
		for lines.Scan() {
			switch line := lines.Text(); {
			case first:
				first = false
				if line == "ready" {
					ready <- nil
				} else {
					ready <- fmt.Errorf("child said %q", line)
				}
			case line == "done":
				close(c.finished)
			default:
				c.replies <- line
			}
		}
		if first {
			ready <- errors.New("child exited before it was ready")
		}
		close(c.replies)
		c.waitErr = cmd.Wait()
		close(c.exited)
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

// waitFinished waits until the child says "done".
func (c *child) waitFinished(ctx context.Context) error {
	select {
	case <-c.finished:
		return nil
	case <-c.exited:
		return fmt.Errorf("child exited before it was done: %v", c.waitErr)
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(waitLimit):
		return fmt.Errorf("child not done after %s", waitLimit)
	}
}

// stats asks the child for the round trips its clients made so far.
func (c *child) stats() (childStats, error) {
	var s childStats
	if _, err := io.WriteString(c.stdin, "stats\n"); err != nil {
		return s, err
	}
	select {
	case line, ok := <-c.replies:
		if !ok {
			return s, errors.New("child exited before it reported its round trips")
		}
		return s, json.Unmarshal([]byte(line), &s)
	case <-time.After(10 * time.Second):
		return s, errors.New("child did not report its round trips within 10s")
	}
}

// clkTck is the unit of the CPU times in /proc/<pid>/stat (USER_HZ, what
// getconf CLK_TCK prints): 100 on every Linux Go runs on.
const clkTck = 100

// cpu returns the CPU time the child has used so far, user and system, of
// every thread.
func (c *child) cpu() (time.Duration, error) {
	path := fmt.Sprintf("/proc/%d/stat", c.cmd.Process.Pid)
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces;
	// after it come state (field 3) … utime (14) and stime (15).
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("%s: no command name in %q", path, b)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("%s: %d fields after the command name", path, len(f))
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return time.Duration(utime+stime) * time.Second / clkTck, nil
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

// stop closes the child's stdin, which shuts its worker down, and waits;
// only the first call does anything.
func (c *child) stop() error {
	var err error
	c.stopOnce.Do(func() {
		c.stdin.Close()
		select {
		case <-c.exited:
			err = c.waitErr
		case <-time.After(worker.ShutdownTimeout + 10*time.Second):
			c.cmd.Process.Kill()
			<-c.exited
			err = errors.New("child did not stop; killed")
		}
	})
	return err
}
