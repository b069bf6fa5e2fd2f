package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/refundq/refundq/providers/catalog"
	"github.com/refundq/refundq/providers/sandbox"
	"github.com/refundq/refundq/tasks"
)

// sandboxMux serves every simulator under /<provider>/ and returns the
// environment lines that point a worker at them. Producers invent order ids
// in a sandbox, so every unknown order is a paid one of 10,000.00.
func sandboxMux(base, keyDir string) (http.Handler, []string, error) {
	sims, err := sandbox.New(keyDir)
	if err != nil {
		return nil, nil, err
	}
	mux := http.NewServeMux()
	var env []string
	for _, s := range sims {
		s.AutoCreate(tasks.Money{Minor: 1_000_000, Currency: s.Currency})
		mux.Handle("/"+s.Name+"/", http.StripPrefix("/"+s.Name, s.Handler))
		env = append(env, s.Env(base+"/"+s.Name)...)
	}
	return mux, append(env, catalog.FastPolls(2*time.Second, 10*time.Second)...), nil
}

// runSandbox serves the provider simulators until interrupted.
func runSandbox(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("sandbox", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8080", "address to serve the simulators on")
	public := fs.String("url", "", "base URL workers reach the sandbox at (default http://<listen address>)")
	keyDir := fs.String("key-dir", os.TempDir(), "where to write the generated BBMSL merchant key for workers to read")
	if err := fs.Parse(args); err != nil {
		return flagError(err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	base := *public
	if base == "" {
		base = "http://" + ln.Addr().String()
	}
	h, env, err := sandboxMux(base, *keyDir)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "# provider simulators; point a worker at them with:")
	for _, line := range env {
		fmt.Fprintln(out, "export "+line)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shut)
	}()
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	return nil
}
