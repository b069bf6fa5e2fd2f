// Package listen opens the TCP listeners refundq's servers serve on (the
// API on API_LISTEN, a worker's health and metrics on HEALTH_LISTEN), with
// an error that names the variable that set the address and, when the port
// is taken, says what to do.
package listen

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"syscall"
)

// taken are refundq's own default ports (the API, a worker's health, the
// sandbox, the machine's Redis, the dev Redis): a suggestion never names
// one, though it may be free at this moment.
var taken = []int{8080, 8081, 8090, 6379, 6380}

// TCP listens on addr, which the variable env set; who names the program
// that usually holds such a port ("worker", "refund-api"). A port in use is
// an error that says another of them may run on this host and suggests a
// port that is free now.
func TCP(env, addr, who string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		return ln, nil
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("%s=%s: %w", env, addr, err)
	}
	msg := fmt.Sprintf("%s=%s: address already in use: another %s on this host? give each %s its own %s",
		env, addr, who, who, env)
	if s := suggest(addr); s != "" {
		msg += ", e.g. " + env + "=" + s
	}
	return nil, inUse(msg)
}

// inUse is a taken port's error: its text says what to do, and errors.Is
// finds syscall.EADDRINUSE in it.
type inUse string

func (e inUse) Error() string { return string(e) }

func (inUse) Unwrap() error { return syscall.EADDRINUSE }

// suggest returns addr with the first port above its own that is free now
// and none of refundq's defaults, or "" when none of the next 100 is.
func suggest(addr string) string {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	port, err := strconv.Atoi(p)
	if err != nil || port == 0 {
		return ""
	}
	for next := port + 1; next <= port+100 && next < 65536; next++ {
		if slices.Contains(taken, next) {
			continue
		}
		cand := net.JoinHostPort(host, strconv.Itoa(next))
		if ln, err := net.Listen("tcp", cand); err == nil {
			ln.Close()
			return cand
		}
	}
	return ""
}
