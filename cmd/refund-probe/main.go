// Command refund-probe is a container health check for images without a
// shell or an HTTP client (distroless, scratch): it GETs a URL and exits 0
// when the answer is 2xx (with -any-status: any HTTP answer at all), else 1.
//
//	refund-probe http://127.0.0.1:8081/healthz
//	refund-probe -any-status http://127.0.0.1:8090/
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

func main() {
	anyStatus := flag.Bool("any-status", false, "healthy on any HTTP answer, not only 2xx (the server is up)")
	timeout := flag.Duration("timeout", 3*time.Second, "give up after this")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: refund-probe [-any-status] [-timeout 3s] URL")
		os.Exit(2)
	}
	if err := probe(flag.Arg(0), *anyStatus, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "refund-probe:", err)
		os.Exit(1)
	}
}

func probe(url string, anyStatus bool, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if !anyStatus && (resp.StatusCode < 200 || resp.StatusCode > 299) {
		return fmt.Errorf("%s answered %s", url, resp.Status)
	}
	return nil
}
