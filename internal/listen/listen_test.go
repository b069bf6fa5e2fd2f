package listen_test

import (
	"errors"
	"net"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/refundq/refundq/internal/listen"
)

// A taken port: the error names the variable and its value, says what to
// do, and suggests a port that is free.
func TestTakenPortSaysWhatToDo(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	addr := held.Addr().String()
	_, err = listen.TCP("HEALTH_LISTEN", addr, "worker")
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("err = %v; want EADDRINUSE", err)
	}
	want := "HEALTH_LISTEN=" + addr + ": address already in use: another worker on this host? give each worker its own HEALTH_LISTEN, e.g. HEALTH_LISTEN=127.0.0.1:"
	if !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("err = %q\nwant it to start %q", err, want)
	}
	s := regexp.MustCompile(`e\.g\. HEALTH_LISTEN=(\S+)$`).FindStringSubmatch(err.Error())
	if s == nil || s[1] == addr {
		t.Fatalf("no other port suggested: %v", err)
	}
	ln, err := listen.TCP("HEALTH_LISTEN", s[1], "worker")
	if err != nil {
		t.Fatalf("the suggested %s: %v", s[1], err)
	}
	ln.Close()
}

// An address that is not one names the variable too.
func TestBadAddressNamesTheVariable(t *testing.T) {
	if _, err := listen.TCP("API_LISTEN", "127.0.0.1:99999", "refund-api"); err == nil || !strings.HasPrefix(err.Error(), "API_LISTEN=127.0.0.1:99999: ") {
		t.Fatalf("err = %v", err)
	}
}
