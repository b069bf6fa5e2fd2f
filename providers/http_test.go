package providers

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// post sends a refund-sized POST to addr and classifies the failure.
func post(t *testing.T, addr string) Outcome {
	t.Helper()
	body := strings.NewReader(`{"amount": 1000, "reason": "` + strings.Repeat("x", 64<<10) + `"}`)
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/refund", body)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = Do(ctx, &http.Client{}, req)
	if err == nil {
		t.Fatal("want a transport error")
	}
	return TransportOutcome(err)
}

// A server that reads part of the request and hangs up may have acted on it:
// the exchange is Unknown, never "not sent".
func TestRequestCutWhileWrittenIsUnknown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			// Read the request line, headers and a little of the body, then
			// reset the connection.
			r := bufio.NewReader(c)
			for {
				line, err := r.ReadString('\n')
				if err != nil || line == "\r\n" {
					break
				}
			}
			io.CopyN(io.Discard, r, 100)
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetLinger(0)
			}
			c.Close()
		}
	}()
	for range 20 { // the race between writing and the reset varies; every run must be Unknown
		if out := post(t, ln.Addr().String()); out.Kind != Unknown {
			t.Fatalf("request cut mid-write = %v, want unknown", out)
		}
	}
}

// Nothing listening: the dial fails, nothing left the process, a resend is safe.
func TestDialRefusedIsTransient(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if out := post(t, addr); out.Kind != Transient {
		t.Fatalf("connection refused = %v, want transient", out)
	}
}

// A server that accepts and answers nothing: the request was written, so the
// outcome is Unknown when the client gives up.
func TestNoAnswerIsUnknown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go io.Copy(io.Discard, c)
		}
	}()
	req, _ := http.NewRequest(http.MethodPost, "http://"+ln.Addr().String()+"/refund", strings.NewReader("{}"))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err = Do(ctx, &http.Client{}, req)
	if out := TransportOutcome(err); out.Kind != Unknown {
		t.Fatalf("no answer = %v, want unknown", out)
	}
}
