package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/refundq/refundq/store"
)

// runList prints refunds, oldest first, optionally only those in one state:
// `refundctl list --state needs_review` is the operator's work list.
func runList(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("list", flag.ContinueOnError)
	var c commonFlags
	c.register(fs)
	state := fs.String("state", "", "only refunds in this state (queued, processing, pending, succeeded, failed, needs_review)")
	limit := fs.Int("limit", 100, "print at most this many")
	if err := fs.Parse(args); err != nil {
		return flagError(err)
	}
	cl, closeFn, err := c.client()
	if err != nil {
		return err
	}
	defer closeFn()
	// The store lists every refund; filtering here is fine for the
	// thousands an operator looks at, not for millions.
	recs, err := cl.List(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REFUND\tPROVIDER\tORDER\tAMOUNT\tSTATE\tATTEMPTS\tUPDATED\tLAST ERROR")
	n := 0
	for _, r := range recs {
		if *state != "" && r.State != store.State(*state) {
			continue
		}
		if n++; n > *limit {
			break
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", r.RefundID, r.Provider, r.OrderID, r.Amount, r.State,
			r.Attempts, r.UpdatedAt.Format(time.RFC3339), oneLine(r.LastError))
	}
	return tw.Flush()
}
