package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/refundq/refundq/enqueue"
	"github.com/refundq/refundq/internal/store"
)

// bulkRow is one row of bulk --json.
type bulkRow struct {
	Line     int             `json:"line"`
	RefundID string          `json:"refund_id,omitempty"`
	Outcome  enqueue.Outcome `json:"outcome"`
	State    store.State     `json:"state,omitempty"`
	Error    string          `json:"error,omitempty"`
}

// bulkReport is the stable shape of bulk --json.
type bulkReport struct {
	File      string    `json:"file"`
	DryRun    bool      `json:"dry_run"`
	Total     int       `json:"total"`
	Enqueued  int       `json:"enqueued"`
	Valid     int       `json:"valid"`
	Existing  int       `json:"existing"`
	Invalid   int       `json:"invalid"`
	Failed    int       `json:"failed"`
	ElapsedMS int64     `json:"elapsed_ms"`
	Rows      []bulkRow `json:"rows"`
}

func bulkCmd(g *globals) *cobra.Command {
	var (
		dry    bool
		format string
		conc   int
		out    output
		p      producerFlags
	)
	cmd := &cobra.Command{
		Use:   "bulk FILE",
		Short: "Enqueue every refund of a CSV or JSON Lines file (FILE - is stdin)",
		Long: `Enqueue every refund of a CSV or JSON Lines file; FILE "-" reads stdin.

CSV: a header naming the columns (any order; transaction_id and reason may be empty):
  refund_id,provider,order_id,transaction_id,amount,currency,reason
JSON Lines: one object per line with the same keys (amount a string "403.33" or a number) and an optional
"metadata" object of strings; anything after the object on its line is an error. Lines may be up to 16 MiB.

Every bad row is reported on stderr as 'line N: "<refund id>": reason' while the good rows are enqueued, and a
summary is printed at the end; --json prints a report of every row instead. Re-running a file is safe: rows
already enqueued are counted as existing, not enqueued again. --dry-run checks every row as the real run would
and writes nothing. Exit status 1 when any row is bad or could not be written.`,
		Example: joinExamples(
			"refundctl bulk refunds.csv",
			"refundctl bulk refunds.jsonl --dry-run",
			"refundctl bulk refunds.csv --json > report.json",
			"generate-refunds | refundctl bulk - --format jsonl"),
		Args: usageArgs(func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return fmt.Errorf("want one FILE (or - for stdin), got %d arguments", len(args))
			}
			return nil
		}),
		RunE: func(cmd *cobra.Command, args []string) error {
			asJSON, err := out.isJSON()
			if err != nil {
				return err
			}
			if conc < 1 {
				return usagef("--concurrency %d: want at least 1", conc)
			}
			name := args[0]
			in := cmd.InOrStdin()
			if name != "-" {
				f, err := os.Open(name)
				if err != nil {
					return usagef("cannot open %s: %v", quote(name), unwrapPath(err))
				}
				defer f.Close()
				in = f
			}
			br := bufio.NewReader(in)
			head, _ := br.Peek(512)
			var fmtv enqueue.Format
			switch format {
			case "auto":
				fmtv = enqueue.FormatFor(name, head)
			case "csv":
				fmtv = enqueue.CSV
			case "jsonl":
				fmtv = enqueue.JSONL
			default:
				return usagef("--format %s: want auto, csv or jsonl", quote(format))
			}
			rows, err := enqueue.ReadBulk(br, fmtv)
			if err != nil {
				return &usageError{fmt.Errorf("%s: %s", quote(name), human(err))}
			}
			cl, done, err := p.client(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer done()

			errOut := cmd.ErrOrStderr()
			start := time.Now()
			opt := enqueue.BulkOptions{Concurrency: conc, DryRun: dry}
			if f, ok := errOut.(*os.File); ok && !asJSON && term.IsTerminal(int(f.Fd())) {
				opt.Progress = progressBar(f)
			}
			sum := cl.EnqueueBulk(cmd.Context(), rows, opt)
			elapsed := time.Since(start)

			if asJSON {
				rep := bulkReport{File: name, DryRun: dry, Total: sum.Total, Existing: sum.Existing, Invalid: sum.Invalid,
					Failed: sum.Failed, ElapsedMS: elapsed.Milliseconds(), Rows: make([]bulkRow, 0, len(sum.Results))}
				if dry {
					rep.Valid = sum.Enqueued
				} else {
					rep.Enqueued = sum.Enqueued
				}
				for _, r := range sum.Results {
					row := bulkRow{Line: r.Line, RefundID: r.RefundID, Outcome: r.Outcome, State: r.State}
					if r.Err != nil {
						row.Error = rowReason(r.Err)
					}
					rep.Rows = append(rep.Rows, row)
				}
				if err := writeJSON(cmd.OutOrStdout(), rep); err != nil {
					return err
				}
			} else {
				for _, e := range sum.Errors {
					fmt.Fprintln(errOut, oneLine(e.Error()))
				}
				if dry {
					fmt.Fprintf(cmd.OutOrStdout(), "%d rows checked in %s (dry run, nothing written): %d valid, %d already existing, %d invalid, %d could not be checked\n",
						sum.Total, elapsed.Round(time.Millisecond), sum.Enqueued, sum.Existing, sum.Invalid, sum.Failed)
				} else {
					fmt.Fprintf(cmd.OutOrStdout(), "%d rows in %s: %d enqueued, %d already existing, %d invalid, %d failed\n",
						sum.Total, elapsed.Round(time.Millisecond), sum.Enqueued, sum.Existing, sum.Invalid, sum.Failed)
				}
			}
			bad := sum.Invalid + sum.Failed
			if bad == 0 {
				return nil
			}
			if !asJSON {
				fmt.Fprintln(errOut, bulkVerdict(sum, dry))
			}
			return errReported
		},
	}
	f := cmd.Flags()
	f.BoolVar(&dry, "dry-run", false, "check every row as the real run would; write nothing")
	f.StringVar(&format, "format", "auto", "auto (from the file name, else the content), csv or jsonl")
	f.IntVar(&conc, "concurrency", 16, "enqueues in flight")
	out.register(cmd)
	p.register(cmd)
	cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions([]string{"auto", "csv", "jsonl"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// bulkVerdict is the last line of a run with bad rows: what happened to the
// others, and what to do.
func bulkVerdict(sum enqueue.BulkSummary, dry bool) string {
	var parts []string
	if sum.Invalid > 0 {
		parts = append(parts, plural(sum.Invalid, "invalid row"))
	}
	if sum.Failed > 0 {
		parts = append(parts, plural(sum.Failed, "row")+" not written (Redis)")
	}
	what := strings.Join(parts, " and ") + " (listed above); "
	good := sum.Enqueued + sum.Existing
	if dry {
		return what + fmt.Sprintf("dry run: nothing was written; the other %s would be enqueued (or already are)", plural(good, "row"))
	}
	return what + fmt.Sprintf("the other %s enqueued (or already were). Fix the bad rows and run the file again: rows already enqueued are skipped",
		pluralVerb(good, "row was", "rows were"))
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func pluralVerb(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// rowReason is a row's error for the JSON report, without the line and id
// the row already carries.
func rowReason(err error) string {
	return oneLine(clipText(enqueue.ClipQuoted(err.Error())))
}

// unwrapPath drops the path os.Open repeats in its error.
func unwrapPath(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// progressBar redraws one line on a terminal, at most ten times a second.
func progressBar(f io.Writer) func(done, total int) {
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
