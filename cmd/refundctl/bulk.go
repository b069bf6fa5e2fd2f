package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/refundq/refundq/enqueue"
)

func runBulk(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := flag.NewFlagSet("bulk", flag.ContinueOnError)
	var c commonFlags
	c.register(fs)
	dry := fs.Bool("dry-run", false, "validate every row; write nothing")
	format := fs.String("format", "auto", "auto, csv or jsonl")
	conc := fs.Int("concurrency", 16, "enqueues in flight")
	if err := fs.Parse(args); err != nil {
		return flagError(err)
	}
	if fs.NArg() != 1 {
		return &exitError{2, errors.New("bulk: want exactly one FILE (or - for stdin)")}
	}
	name := fs.Arg(0)
	var in io.Reader = os.Stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return &exitError{2, fmt.Errorf("bulk: %w", err)}
		}
		defer f.Close()
		in = f
	}
	br := bufio.NewReader(in)
	head, _ := br.Peek(512)
	var fmtv enqueue.Format
	switch *format {
	case "auto":
		fmtv = enqueue.FormatFor(name, head)
	case "csv":
		fmtv = enqueue.CSV
	case "jsonl":
		fmtv = enqueue.JSONL
	default:
		return &exitError{2, fmt.Errorf("bulk: --format %q: want auto, csv or jsonl", *format)}
	}
	rows, err := enqueue.ReadBulk(br, fmtv)
	if err != nil {
		return &exitError{2, err}
	}
	cl, closeFn, err := c.client()
	if err != nil {
		return err
	}
	defer closeFn()

	start := time.Now()
	opt := enqueue.BulkOptions{Concurrency: *conc, DryRun: *dry}
	if f, ok := errOut.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		opt.Progress = progressBar(f)
	}
	sum := cl.EnqueueBulk(ctx, rows, opt)
	elapsed := time.Since(start)

	verb := "enqueued"
	if *dry {
		verb = "valid (dry run, nothing written)"
	}
	fmt.Fprintf(out, "%d rows in %s: %d %s, %d already existing, %d invalid, %d failed\n",
		sum.Total, elapsed.Round(time.Millisecond), sum.Enqueued, verb, sum.Existing, sum.Invalid, sum.Failed)
	for _, e := range sum.Errors {
		fmt.Fprintln(out, oneLine(e.Error()))
	}
	if sum.Failed > 0 {
		return &exitError{1, fmt.Errorf("%d rows failed to enqueue; re-running the file is safe", sum.Failed)}
	}
	if sum.Invalid > 0 {
		return &exitError{1, fmt.Errorf("%d invalid rows; the other rows went through", sum.Invalid)}
	}
	return nil
}

// progressBar redraws one line on a terminal, at most ten times a second.
func progressBar(f *os.File) func(done, total int) {
	var mu sync.Mutex
	var last time.Time
	return func(done, total int) {
		mu.Lock()
		defer mu.Unlock()
		if done < total && time.Since(last) < 100*time.Millisecond {
			return
		}
		last = time.Now()
		fmt.Fprintf(f, "\r%s%d/%d", bar(done, total, 30), done, total)
		if done == total {
			fmt.Fprintln(f)
		}
	}
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
