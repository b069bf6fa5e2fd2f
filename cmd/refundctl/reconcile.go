package main

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/refundq/refundq/enqueue"
	"github.com/refundq/refundq/internal/store"
)

// Exit statuses of reconcile, beyond 0 (every refund checked agrees), so a
// cron job can alert on them.
const (
	exitDisagree  = 3 // the provider disagrees with at least one refund
	exitUnchecked = 4 // none disagrees, but some could not be checked
)

// reconcilePoll is how often a followed run's progress is read.
var reconcilePoll = 500 * time.Millisecond

func reconcileCmd(g *globals) *cobra.Command {
	var (
		since, until, provider, runID string
		asJSON, asCSV                 bool
		p                             producerFlags
	)
	cmd := &cobra.Command{
		Use:   "reconcile --since 24h [--provider P] [--json|--csv]",
		Short: "Check every refund that became final in a window against its provider",
		Long: `reconcile asks a worker (only workers hold provider credentials) to look up, at its provider, every
refund that became succeeded or failed in the window, with the same look-ups the worker uses and under the same
rate limits and circuit breakers; it sends nothing and changes no refund. It follows the run (a progress bar
on stderr when stderr is a terminal), then prints every disagreement and every refund that could not be
checked: a table, --json, or --csv (one row per finding, amounts in decimals).

A disagreement: succeeded here but the provider shows nothing, another amount or currency, a failure, a
refund still pending, or another reference; failed here but the provider shows it applied or pending.
Unchecked: the provider's answer could not show the refund either way; a later run may.

The run is kept for 7 days. Interrupted, it goes on in the worker: --run ID follows it again.

Exit status: 0 every refund checked agrees; 3 at least one disagrees; 4 none disagrees but some could not be
checked; 1 the run could not start (no worker running, Redis down) or ended early; 2 the command line is wrong.`,
		Example: joinExamples(
			"refundctl reconcile --since 24h",
			"refundctl reconcile --since 2026-03-01T00:00:00Z --until 2026-03-02T00:00:00Z --provider moyasarpg --csv > march-1.csv",
			"refundctl reconcile --run rc-0193a1b2c3d4e5f6a7b8c9d0e1f2a3b4 --json",
		),
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			if asJSON && asCSV {
				return usagef("--json and --csv: choose one")
			}
			if (runID == "") == (since == "") {
				return usagef("give --since (start a run) or --run (follow one), not both or neither")
			}
			ctx := cmd.Context()
			cl, done, err := p.client(ctx, g)
			if err != nil {
				return err
			}
			defer done()
			stderr := cmd.ErrOrStderr()
			if runID == "" {
				req := enqueue.ReconcileRequest{Provider: provider, StartedBy: startedBy()}
				now := time.Now()
				if req.Since, err = enqueue.ParseSince(since, now); err != nil {
					return usagef("--since: %v", err)
				}
				if until != "" {
					if req.Until, err = time.Parse(time.RFC3339, until); err != nil {
						return usagef("--until %s: want an RFC 3339 time", quote(until))
					}
				}
				run, err := cl.StartReconcile(ctx, req)
				if err != nil {
					return err
				}
				runID = run.ID
				fmt.Fprintf(stderr, "reconciliation %s started: %d refunds became final from %s to %s (follow it again with --run %s)\n",
					run.ID, run.Total, run.Since.UTC().Format(time.RFC3339), run.Until.UTC().Format(time.RFC3339), run.ID)
			}
			run, err := follow(ctx, cl, runID, stderr)
			if err != nil {
				return err
			}
			_, fs, _, err := cl.Reconciliation(ctx, runID, 0, 0)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			switch {
			case asJSON:
				err = writeJSON(out, reconcileJSON(run, fs))
			case asCSV:
				err = writeFindingsCSV(out, fs)
			default:
				err = writeFindingsTable(out, run, fs)
			}
			if err != nil {
				return err
			}
			switch {
			case run.Error != "":
				return fmt.Errorf("reconciliation %s ended early: %s", run.ID, run.Error)
			case run.Disagree > 0:
				return &exitError{code: exitDisagree}
			case run.Unchecked > 0:
				return &exitError{code: exitUnchecked}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&since, "since", "", "start of the window: a duration back from now (24h, 7d) or an RFC 3339 time")
	f.StringVar(&until, "until", "", "end of the window, RFC 3339 (default now)")
	f.StringVar(&provider, "provider", "", "only this provider's refunds")
	f.StringVar(&runID, "run", "", "follow run ID (started earlier) instead of starting one")
	f.BoolVar(&asJSON, "json", false, "print the run and its findings as JSON")
	f.BoolVar(&asCSV, "csv", false, "print the findings as CSV, one row each")
	return cmd
}

// startedBy names who asked for a run, for its record.
func startedBy() string {
	if a := osAccount(); a != "" {
		return "os user " + a + " (refundctl)"
	}
	return "refundctl"
}

// follow waits until run id is done, drawing its progress on stderr when
// stderr is a terminal. An interrupt stops the following, not the run.
func follow(ctx context.Context, cl *enqueue.Client, id string, stderr io.Writer) (store.ReconcileRun, error) {
	f, isFile := stderr.(*os.File)
	tty := isFile && term.IsTerminal(int(f.Fd()))
	for {
		run, _, _, err := cl.Reconciliation(ctx, id, 0, 1)
		if err != nil {
			return run, err
		}
		if tty {
			fmt.Fprint(stderr, "\r"+runProgress(run, 30))
		}
		if run.State == store.RunDone {
			if tty {
				fmt.Fprintln(stderr)
			}
			return run, nil
		}
		select {
		case <-ctx.Done():
			if tty {
				fmt.Fprintln(stderr)
			}
			return run, fmt.Errorf("stopped following reconciliation %s; it goes on in the worker: refundctl reconcile --run %s", id, id)
		case <-time.After(reconcilePoll):
		}
	}
}

// runProgress is one line: a bar of the refunds walked out of the window's,
// and the counts so far.
func runProgress(run store.ReconcileRun, width int) string {
	// A refund that became final after the run started is not in Total.
	return fmt.Sprintf("%s%d/%d  %d disagree, %d unchecked", bar(min(run.Walked, run.Total), run.Total, width),
		run.Walked, run.Total, run.Disagree, run.Unchecked)
}

type reconcileRunJSON struct {
	ID        string          `json:"id"`
	State     string          `json:"state"`
	Since     time.Time       `json:"since"`
	Until     time.Time       `json:"until"`
	Provider  string          `json:"provider,omitempty"`
	StartedBy string          `json:"started_by,omitempty"`
	Error     string          `json:"error,omitempty"`
	Total     int             `json:"total"`
	Walked    int             `json:"walked"`
	Checked   int             `json:"checked"`
	Agree     int             `json:"agree"`
	Disagree  int             `json:"disagree"`
	Unchecked int             `json:"unchecked"`
	Findings  []findingOutput `json:"findings"`
}

// findingOutput is a finding as refundctl prints it: amounts in decimals.
type findingOutput struct {
	RefundID    string `json:"refund_id"`
	Provider    string `json:"provider"`
	OrderID     string `json:"order_id"`
	State       string `json:"state"`
	Shows       string `json:"provider_shows"`
	Status      string `json:"provider_status,omitempty"`
	Amount      string `json:"amount"`
	Currency    string `json:"currency"`
	Reference   string `json:"reference,omitempty"`
	ProviderRef string `json:"provider_reference,omitempty"`
	Verdict     string `json:"verdict"`
	Reason      string `json:"reason"`
	Detail      string `json:"detail,omitempty"`
}

func toOutput(f store.Finding) findingOutput {
	return findingOutput{RefundID: f.RefundID, Provider: f.Provider, OrderID: f.OrderID, State: string(f.State), Shows: f.Shows,
		Status: f.Status, Amount: f.Amount.Decimal(), Currency: f.Amount.Currency, Reference: f.Reference,
		ProviderRef: f.ProviderRef, Verdict: f.Verdict, Reason: f.Reason, Detail: f.Detail}
}

func reconcileJSON(run store.ReconcileRun, fs []store.Finding) reconcileRunJSON {
	out := reconcileRunJSON{ID: run.ID, State: run.State, Since: run.Since.UTC(), Until: run.Until.UTC(), Provider: run.Provider,
		StartedBy: run.StartedBy, Error: run.Error, Total: run.Total, Walked: run.Walked, Checked: run.Checked,
		Agree: run.Agree, Disagree: run.Disagree, Unchecked: run.Unchecked, Findings: []findingOutput{}}
	for _, f := range fs {
		out.Findings = append(out.Findings, toOutput(f))
	}
	return out
}

var findingsCSVHeader = []string{"refund_id", "provider", "order_id", "state", "provider_shows", "provider_status", "amount",
	"currency", "reference", "provider_reference", "verdict", "reason", "detail"}

func writeFindingsCSV(w io.Writer, fs []store.Finding) error {
	cw := csv.NewWriter(w)
	cw.Write(findingsCSVHeader)
	for _, f := range fs {
		o := toOutput(f)
		cw.Write([]string{o.RefundID, o.Provider, o.OrderID, o.State, o.Shows, o.Status, o.Amount, o.Currency,
			o.Reference, o.ProviderRef, o.Verdict, o.Reason, oneLine(o.Detail)})
	}
	cw.Flush()
	return cw.Error()
}

func writeFindingsTable(w io.Writer, run store.ReconcileRun, fs []store.Finding) error {
	prov := run.Provider
	if prov == "" {
		prov = "every provider"
	}
	fmt.Fprintf(w, "reconciliation %s (%s, %s to %s): %d checked: %d agree, %d disagree, %d unchecked\n", run.ID, prov,
		run.Since.UTC().Format(time.RFC3339), run.Until.UTC().Format(time.RFC3339), run.Checked, run.Agree, run.Disagree, run.Unchecked)
	if len(fs) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\nVERDICT\tREFUND\tPROVIDER\tORDER\tHERE\tPROVIDER SHOWS\tAMOUNT\tREFERENCE\tREASON\tDETAIL")
	for _, f := range fs {
		o := toOutput(f)
		shows := o.Shows
		if o.Status != "" {
			shows += " (" + o.Status + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s %s\t%s\t%s\t%s\n", o.Verdict, o.RefundID, o.Provider, o.OrderID, o.State, shows,
			o.Amount, o.Currency, orDash(o.Reference), oneLine(o.Reason), orDash(oneLine(o.Detail)))
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
