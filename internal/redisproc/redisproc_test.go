package redisproc_test

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/refundq/refundq/internal/redisproc"
)

func needServer(t *testing.T) {
	t.Helper()
	if _, err := redisproc.Binary(); err != nil {
		t.Skip(err)
	}
}

// Shipped is deploy/redis.conf: a server started with it reports, for every
// directive of the file, the file's value. refundctl dev-redis starts its
// server so; a change to the file that Shipped does not follow fails here.
func TestShippedIsDeployRedisConf(t *testing.T) {
	needServer(t)
	f, err := os.Open("../../deploy/redis.conf")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, _ := strings.Cut(line, " ")
		want[k] = strings.Trim(strings.TrimSpace(v), `"`)
	}
	if len(want) < 4 {
		t.Fatalf("read %d directives from deploy/redis.conf: %v", len(want), want)
	}
	s, err := redisproc.Start(t.TempDir(), redisproc.Shipped)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	c := s.Client()
	defer c.Close()
	for k, v := range want {
		got, err := c.ConfigGet(context.Background(), k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if v == "256mb" { // CONFIG GET answers in bytes
			v = strconv.Itoa(256 << 20)
		}
		if got[k] != v {
			t.Errorf("deploy/redis.conf sets %s %q; a server started with redisproc.Shipped has %q", k, v, got[k])
		}
	}
}

// A port something listens on is said to be in use, not reported as a
// server that exited at start; the server started on a free fixed port is
// there, and Exited closes once it is stopped.
func TestStartOnPort(t *testing.T) {
	needServer(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if _, err := redisproc.StartOnPort(t.TempDir(), port, redisproc.Shipped); !errors.Is(err, redisproc.ErrPortInUse) {
		t.Fatalf("port %d taken: %v; want ErrPortInUse", port, err)
	}
	ln.Close()
	s, err := redisproc.StartOnPort(t.TempDir(), port, redisproc.Shipped)
	if err != nil {
		t.Fatal(err)
	}
	if s.Addr != "127.0.0.1:"+strconv.Itoa(port) {
		t.Errorf("Addr %s, want port %d", s.Addr, port)
	}
	c := s.Client()
	defer c.Close()
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	select {
	case <-s.Exited():
	default:
		t.Fatal("Exited not closed after Stop")
	}
}

// A server started with DieWithParent goes when the process that started
// it is killed (SIGKILL: no Stop runs). The test binary runs itself as that
// process (the arguments after -- say so), which prints the address.
func TestDieWithParent(t *testing.T) {
	needServer(t)
	if args := flag.Args(); len(args) == 2 && args[0] == "die-with-parent-child" {
		o := redisproc.Shipped
		o.DieWithParent = true
		s, err := redisproc.Start(args[1], o)
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println("addr", s.Addr)
		select {} // until killed
	}
	if runtime.GOOS != "linux" {
		t.Skip("the parent-death signal is Linux's")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	child := exec.Command(exe, "-test.run=^TestDieWithParent$", "--", "die-with-parent-child", t.TempDir())
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "addr ")
	if err != nil || !ok {
		child.Process.Kill()
		child.Wait()
		t.Fatalf("the child said %q (%v)", line, err)
	}
	child.Process.Kill()
	child.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			return // gone
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s still answers 10 s after its parent was killed", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
