package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/refundq/refundq/internal/store"
)

// statusJSON is the stable --json shape of a refund.
type statusJSON struct {
	RefundID       string            `json:"refund_id"`
	Provider       string            `json:"provider"`
	OrderID        string            `json:"order_id"`
	TransactionID  string            `json:"transaction_id,omitempty"`
	AmountMinor    int64             `json:"amount_minor"`
	Amount         string            `json:"amount"`
	Currency       string            `json:"currency"`
	Reason         string            `json:"reason,omitempty"`
	Metadata       map[string]string `json:"metadata,omitempty"`
	State          store.State       `json:"state"`
	Final          bool              `json:"final"`
	ProviderRef    string            `json:"provider_ref,omitempty"`
	ProviderStatus string            `json:"provider_status,omitempty"`
	Attempts       int               `json:"attempts"`
	LastError      string            `json:"last_error,omitempty"`
	Blocked        string            `json:"blocked,omitempty"`
	BlockedSince   *time.Time        `json:"blocked_since,omitempty"`
	// ReviewReason says why a refund is (or was) in needs_review;
	// NextLookupAt is when a worker looks it up again, if it will;
	// SettledBy is who settled it out of review (lookup, person).
	ReviewReason string        `json:"review_reason,omitempty"`
	NextLookupAt *time.Time    `json:"next_lookup_at,omitempty"`
	SettledBy    string        `json:"settled_by,omitempty"`
	CreatedAt    time.Time     `json:"created_at"`
	UpdatedAt    time.Time     `json:"updated_at"`
	History      []store.Entry `json:"history,omitempty"`
}

func toJSON(rec store.Record, hist []store.Entry) statusJSON {
	var since *time.Time
	if !rec.BlockedAt.IsZero() {
		since = &rec.BlockedAt
	}
	return statusJSON{
		RefundID: rec.RefundID, Provider: rec.Provider, OrderID: rec.OrderID, TransactionID: rec.TransactionID,
		AmountMinor: rec.Amount.Minor, Amount: rec.Amount.Decimal(), Currency: rec.Amount.Currency,
		Reason: rec.Reason, Metadata: rec.Metadata, State: rec.State, Final: rec.State.Final(), ProviderRef: rec.ProviderRef,
		ProviderStatus: rec.ProviderStatus, Attempts: rec.Attempts, LastError: rec.LastError, Blocked: rec.Blocked,
		BlockedSince: since, CreatedAt: rec.CreatedAt, UpdatedAt: rec.UpdatedAt, History: hist,
		ReviewReason: rec.ReviewReason(), NextLookupAt: rec.NextLookup(), SettledBy: rec.SettledBy,
	}
}

// Exit statuses of status --exit-status, by the refund's state: 0 when it
// succeeded, and numbers of their own for the others, apart from 1 and 2
// (which keep their meaning: no such refund, Redis down; a wrong command
// line) and from reconcile's 3 and 4, so that no number means two things in
// refundctl.
const (
	exitStateFailed = 5 // failed: no money moved, and none will
	exitStateReview = 6 // needs_review: automation stopped, a human must look
	exitStateOpen   = 7 // not final (yet): queued, processing or pending
)

// stateExit is the --exit-status of a refund in state s.
func stateExit(s store.State) int {
	switch s {
	case store.Succeeded:
		return exitOK
	case store.Failed:
		return exitStateFailed
	case store.NeedsReview:
		return exitStateReview
	}
	return exitStateOpen
}

func statusCmd(g *globals) *cobra.Command {
	var (
		out        output
		wait       time.Duration
		exitStatus bool
	)
	cmd := &cobra.Command{
		Use:   "status ID",
		Short: "Show a refund's state and every attempt",
		Long: `Show a refund's state, the provider's reference and status, and its history: every attempt, look-up
and decision, with what was sent and what the provider answered. --wait waits until the refund is final
(succeeded, failed or needs_review) and fails (exit 1) if it is not by then.

Exit status: 0 when the refund was shown, whatever its state; 1 when it could not be (no such refund, Redis
unreachable) or --wait ran out; 2 when the command line is wrong. With --exit-status, the refund's state
decides instead, for scripts: 0 succeeded, 5 failed, 6 needs_review, 7 not final yet (queued, processing,
pending; also when --wait ran out); 1 and 2 keep their meaning.`,
		Example: joinExamples(
			"refundctl status rf_1",
			"refundctl status rf_1 --json",
			"refundctl status rf_1 --wait 30s",
			"refundctl status rf_1 --wait 5m --exit-status || echo \"rf_1 did not succeed: exit $?\""),
		Args:              exactID,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, args []string) error {
			asJSON, err := out.isJSON()
			if err != nil {
				return err
			}
			if wait < 0 {
				return usagef("--wait %s: want a positive duration such as 30s", wait)
			}
			st, closeFn, err := g.openStore()
			if err != nil {
				return err
			}
			defer closeFn()
			id := args[0]
			rec, err := awaitRecord(cmd.Context(), st, id, wait)
			if err != nil && !errors.Is(err, errNotFinal) {
				return aboutRefund(id, g.prefix, err)
			}
			hist, herr := st.History(cmd.Context(), id)
			if herr != nil {
				return aboutRefund(id, g.prefix, herr)
			}
			if asJSON {
				if jerr := writeJSON(cmd.OutOrStdout(), toJSON(rec, hist)); jerr != nil {
					return jerr
				}
			} else {
				printStatus(cmd.OutOrStdout(), rec, hist)
			}
			if err != nil {
				err = fmt.Errorf("refund %s is still %s after %s", quote(id), rec.State, wait)
			}
			if code := stateExit(rec.State); exitStatus && code != exitOK {
				return &exitError{code: code, err: err}
			}
			return err
		},
	}
	out.register(cmd)
	cmd.Flags().DurationVar(&wait, "wait", 0, "wait up to this long for the refund to be final (e.g. 30s)")
	cmd.Flags().BoolVar(&exitStatus, "exit-status", false, "exit by the refund's state: 0 succeeded, 5 failed, 6 needs_review, 7 not final yet")
	return cmd
}

var errNotFinal = errors.New("not final")

// awaitRecord reads the record, and with wait > 0 reads it again every
// 200 ms until it is final or wait has passed (errNotFinal, with the last
// record read).
func awaitRecord(ctx context.Context, st *store.Store, id string, wait time.Duration) (store.Record, error) {
	deadline := time.Now().Add(wait)
	for {
		rec, err := st.Get(ctx, id)
		if err != nil || wait == 0 || rec.State.Final() {
			return rec, err
		}
		if time.Now().After(deadline) {
			return rec, errNotFinal
		}
		select {
		case <-ctx.Done():
			return rec, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func printStatus(out io.Writer, rec store.Record, hist []store.Entry) {
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s\t%s\n", k, v)
		}
	}
	row("refund", rec.RefundID)
	row("state", string(rec.State))
	row("provider", rec.Provider)
	row("order", rec.OrderID)
	row("transaction", rec.TransactionID)
	row("amount", rec.Amount.String())
	row("reason", rec.Reason)
	row("attempts", fmt.Sprint(rec.Attempts))
	row("provider ref", rec.ProviderRef)
	row("provider status", rec.ProviderStatus)
	row("last error", oneLine(rec.LastError))
	row("blocked", oneLine(rec.Blocked))
	if rec.State == store.NeedsReview && rec.Review != "" {
		row("review", string(rec.Review)+": "+rec.Review.Describe())
		if at := rec.NextLookup(); at != nil {
			row("next look-up", at.Format(time.RFC3339)+fmt.Sprintf(" (%d so far)", rec.RecheckN))
		}
	}
	row("settled by", rec.SettledBy)
	if !rec.BlockedAt.IsZero() {
		row("blocked since", rec.BlockedAt.Format(time.RFC3339))
	}
	row("created", rec.CreatedAt.Format(time.RFC3339))
	row("updated", rec.UpdatedAt.Format(time.RFC3339))
	tw.Flush()
	fmt.Fprintln(out, "\nhistory:")
	tw = tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tEVENT\tATTEMPT\tOUTCOME\tSTATUS\tHTTP\tMS\tSTATE\tDETAIL")
	for _, e := range hist {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.At.Format("15:04:05.000"), e.Event, nz(e.Attempt),
			e.Outcome, e.Status, nz(e.HTTPStatus), nz(int(e.DurationMS)), e.State, oneLine(entryDetail(e)))
	}
	tw.Flush()
}

// entryDetail is an entry's detail with what was sent, and for a change by
// hand the provider's reference and who made it.
func entryDetail(e store.Entry) string {
	d := e.Detail + " " + e.Sent
	if e.ProviderRef != "" {
		d += " [provider ref " + e.ProviderRef + "]"
	}
	if e.Actor != "" {
		d += " [by " + e.Actor + "]"
	}
	return d
}

func nz(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprint(n)
}
