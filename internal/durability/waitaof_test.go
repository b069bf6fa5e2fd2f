package durability_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/refundq/refundq/internal/durability"
)

// No Redis ≥ 7.2 is installed here (Debian 12 ships 7.0), so the WAITAOF
// branch is checked against a stand-in that speaks RESP and answers as 7.2
// documents: WAITAOF numlocal numreplicas timeout → [fsynced locally,
// replicas fsynced]. It records each connection's commands, so the test can
// check that the mark and the waits share one connection, in that order.
type fake72 struct {
	replicas int
	waitaof  string // RESP reply to WAITAOF
	wait     string // RESP reply to WAIT

	mu    sync.Mutex
	conns [][]string // commands per connection
}

func (f *fake72) serve(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			f.conns = append(f.conns, nil)
			n := len(f.conns) - 1
			f.mu.Unlock()
			go f.handle(c, n)
		}
	}()
	return ln.Addr().String()
}

func (f *fake72) handle(c net.Conn, n int) {
	defer c.Close()
	r := bufio.NewReader(c)
	for {
		args, err := readCommand(r)
		if err != nil {
			return
		}
		cmd := strings.ToUpper(args[0])
		f.mu.Lock()
		f.conns[n] = append(f.conns[n], strings.Join(append([]string{cmd}, args[1:]...), " "))
		f.mu.Unlock()
		var reply string
		switch cmd {
		case "INFO":
			body := fmt.Sprintf("# Replication\r\nrole:master\r\nconnected_slaves:%d\r\n", f.replicas)
			reply = fmt.Sprintf("$%d\r\n%s\r\n", len(body), body)
		case "INCR":
			reply = ":1\r\n"
		case "WAITAOF":
			reply = f.waitaof
		case "WAIT":
			reply = f.wait
		case "PING":
			reply = "+PONG\r\n"
		default: // HELLO, CLIENT SETINFO: answered as an old server would
			reply = "-ERR unknown command '" + args[0] + "'\r\n"
		}
		if _, err := io.WriteString(c, reply); err != nil {
			return
		}
	}
}

func readCommand(r *bufio.Reader) ([]string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(line, "*") {
		return nil, errors.New("not an array")
	}
	n, _ := strconv.Atoi(strings.TrimSpace(line[1:]))
	args := make([]string, 0, n)
	for range n {
		head, err := r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		size, _ := strconv.Atoi(strings.TrimSpace(head[1:]))
		buf := make([]byte, size+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		args = append(args, string(buf[:size]))
	}
	return args, nil
}

func (f *fake72) connWith(cmd string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, cmds := range f.conns {
		for _, c := range cmds {
			if strings.HasPrefix(c, cmd) {
				return cmds
			}
		}
	}
	return nil
}

func TestWaitDurableUsesWAITAOFOn72(t *testing.T) {
	for _, tc := range []struct {
		name      string
		f         *fake72
		want      durability.Confirmed
		notDurabl bool
		sequence  []string // commands of the waiting connection, after INFO
	}{
		{"fsynced, no replica", &fake72{waitaof: "*2\r\n:1\r\n:0\r\n"},
			durability.Confirmed{Disk: true}, false,
			[]string{"INCR " + durability.MarkKey, "WAITAOF 1 0 2000"}},
		{"not fsynced in time", &fake72{waitaof: "*2\r\n:0\r\n:0\r\n"},
			durability.Confirmed{}, true,
			[]string{"INCR " + durability.MarkKey, "WAITAOF 1 0 2000"}},
		{"fsynced and on a replica", &fake72{replicas: 1, waitaof: "*2\r\n:1\r\n:0\r\n", wait: ":1\r\n"},
			durability.Confirmed{Disk: true, Replicas: 1}, false,
			[]string{"INCR " + durability.MarkKey, "WAITAOF 1 0 2000", "WAIT 1 2000"}},
		{"fsynced, replica silent", &fake72{replicas: 2, waitaof: "*2\r\n:1\r\n:0\r\n", wait: ":0\r\n"},
			durability.Confirmed{Disk: true}, true,
			[]string{"INCR " + durability.MarkKey, "WAITAOF 1 0 2000", "WAIT 1 2000"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.f
			rdb := redis.NewClient(&redis.Options{Addr: f.serve(t), Protocol: 2})
			defer rdb.Close()
			got, err := durability.WaitDurable(context.Background(), rdb)
			if got != tc.want || errors.Is(err, durability.ErrNotDurable) != tc.notDurabl {
				t.Fatalf("WaitDurable = %+v, %v; want %+v, not durable %v", got, err, tc.want, tc.notDurabl)
			}
			cmds := f.connWith("WAITAOF")
			var tail []string
			for _, c := range cmds {
				if !strings.HasPrefix(c, "INFO") && !strings.HasPrefix(c, "HELLO") && !strings.HasPrefix(c, "CLIENT") && !strings.HasPrefix(c, "PING") {
					tail = append(tail, c)
				}
			}
			if strings.Join(tail, "|") != strings.Join(tc.sequence, "|") {
				t.Errorf("waiting connection ran %q, want %q", tail, tc.sequence)
			}
		})
	}
}
