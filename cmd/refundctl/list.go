package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/refundq/refundq/internal/store"
)

// states are every state of a refund, in the order list shows them: the
// ones a human may act on first.
var states = []store.State{store.NeedsReview, store.Queued, store.Processing, store.Pending, store.Succeeded, store.Failed}

func stateNames() []string {
	n := make([]string, len(states))
	for i, s := range states {
		n[i] = string(s)
	}
	return n
}

// listJSON is the stable --json shape of list.
type listJSON struct {
	States     []store.State `json:"states"`
	Offset     int           `json:"offset"`
	Total      int           `json:"total"`
	More       int           `json:"more"`
	NextOffset *int          `json:"next_offset"`
	Refunds    []statusJSON  `json:"refunds"`
}

func listCmd(g *globals) *cobra.Command {
	var (
		out       output
		stateArgs []string
		limit     int
		offset    int
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List refunds by state, a page at a time",
		Long: `List refunds by state, oldest in their state first: needs_review, queued, processing, pending, succeeded,
failed (or only the states given with --state). At most --limit are shown; when there are more, a line says how
many and which --offset shows the next page. 'refundctl list --state needs_review' is the operator's work list:
each of those refunds is settled with 'refundctl settle' once the provider has said what happened.`,
		Example: joinExamples(
			"refundctl list --state needs_review",
			"refundctl list --state pending --state processing --limit 50",
			"refundctl list --limit 100 --offset 100",
			"refundctl list --state failed --json | jq -r '.refunds[].refund_id'"),
		Args:              usageArgs(cobra.NoArgs),
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, _ []string) error {
			asJSON, err := out.isJSON()
			if err != nil {
				return err
			}
			if limit < 1 || limit > 10000 {
				return usagef("--limit %d: want 1 to 10000", limit)
			}
			if offset < 0 {
				return usagef("--offset %d: want 0 or more", offset)
			}
			want, err := parseStates(stateArgs)
			if err != nil {
				return err
			}
			st, closeFn, err := g.openStore()
			if err != nil {
				return err
			}
			defer closeFn()
			page, err := listPage(cmd.Context(), st, want, offset, limit)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), page)
			}
			printList(cmd.OutOrStdout(), page)
			if page.More > 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "%d more (%d in all): refundctl list%s --offset %d\n",
					page.More, page.Total, stateFlags(stateArgs), *page.NextOffset)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&stateArgs, "state", nil, "only refunds in this state (repeatable): "+strings.Join(stateNames(), ", "))
	f.IntVar(&limit, "limit", 100, "show at most this many")
	f.IntVar(&offset, "offset", 0, "skip this many first (the next page)")
	out.register(cmd)
	cmd.RegisterFlagCompletionFunc("state", cobra.FixedCompletions(stateNames(), cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// parseStates checks --state values; none means every state.
func parseStates(args []string) ([]store.State, error) {
	if len(args) == 0 {
		return states, nil
	}
	var out []store.State
	seen := map[store.State]bool{}
	for _, a := range args {
		s := store.State(strings.ToLower(strings.TrimSpace(a)))
		known := false
		for _, k := range states {
			known = known || k == s
		}
		if !known {
			return nil, usagef("--state %s: no such state; want one of %s", quote(a), strings.Join(stateNames(), ", "))
		}
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out, nil
}

func stateFlags(args []string) string {
	var b strings.Builder
	for _, a := range args {
		b.WriteString(" --state " + strings.ToLower(strings.TrimSpace(a)))
	}
	return b.String()
}

// listPage reads one page of the states' indexes, in the order given, as
// if they were one list.
func listPage(ctx context.Context, st *store.Store, want []store.State, offset, limit int) (listJSON, error) {
	page := listJSON{States: want, Offset: offset, Refunds: []statusJSON{}}
	skip, left := offset, limit
	for _, s := range want {
		if left == 0 {
			// The page is full: only count the rest (ListState with no
			// room would read from the start of the index).
			_, total, err := st.OldestIn(ctx, s)
			if err != nil {
				return page, err
			}
			page.Total += total
			continue
		}
		recs, total, err := st.ListState(ctx, s, skip, left)
		if err != nil {
			return page, err
		}
		page.Total += total
		skip = max(0, skip-total)
		for _, r := range recs {
			page.Refunds = append(page.Refunds, toJSON(r, nil))
		}
		left -= len(recs)
	}
	page.More = max(0, page.Total-offset-len(page.Refunds))
	if page.More > 0 {
		next := offset + len(page.Refunds)
		page.NextOffset = &next
	}
	return page, nil
}

func printList(w io.Writer, page listJSON) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REFUND\tPROVIDER\tORDER\tAMOUNT\tSTATE\tATTEMPTS\tUPDATED\tLAST ERROR")
	for _, r := range page.Refunds {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s %s\t%s\t%d\t%s\t%s\n", r.RefundID, r.Provider, r.OrderID, r.Amount, r.Currency, r.State,
			r.Attempts, r.UpdatedAt.Format(time.RFC3339), clipCell(oneLine(r.LastError)))
	}
	tw.Flush()
}

// clipCell keeps a table cell to one screen line.
func clipCell(s string) string {
	if r := []rune(s); len(r) > 100 {
		return string(r[:99]) + "…"
	}
	return s
}
