package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/refundq/refundq/store"
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
	ProviderRef    string            `json:"provider_ref,omitempty"`
	ProviderStatus string            `json:"provider_status,omitempty"`
	Attempts       int               `json:"attempts"`
	LastError      string            `json:"last_error,omitempty"`
	CreatedAt      time.Time         `json:"created_at"`
	UpdatedAt      time.Time         `json:"updated_at"`
	History        []store.Entry     `json:"history"`
}

func runStatus(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	var c commonFlags
	c.register(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return flagError(err)
	}
	if fs.NArg() != 1 {
		return &exitError{2, errors.New("status: want exactly one refund id")}
	}
	cl, closeFn, err := c.client()
	if err != nil {
		return err
	}
	defer closeFn()
	rec, hist, err := cl.Status(ctx, fs.Arg(0))
	if errors.Is(err, store.ErrNotFound) {
		return &exitError{1, err}
	}
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(statusJSON{
			RefundID: rec.RefundID, Provider: rec.Provider, OrderID: rec.OrderID, TransactionID: rec.TransactionID,
			AmountMinor: rec.Amount.Minor, Amount: rec.Amount.Decimal(), Currency: rec.Amount.Currency,
			Reason: rec.Reason, Metadata: rec.Metadata, State: rec.State, ProviderRef: rec.ProviderRef,
			ProviderStatus: rec.ProviderStatus, Attempts: rec.Attempts, LastError: rec.LastError,
			CreatedAt: rec.CreatedAt, UpdatedAt: rec.UpdatedAt, History: hist,
		})
	}
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
	row("last error", rec.LastError)
	row("created", rec.CreatedAt.Format(time.RFC3339))
	row("updated", rec.UpdatedAt.Format(time.RFC3339))
	tw.Flush()
	fmt.Fprintln(out, "\nhistory:")
	tw = tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tEVENT\tATTEMPT\tOUTCOME\tSTATUS\tHTTP\tMS\tSTATE\tDETAIL")
	for _, e := range hist {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.At.Format("15:04:05.000"), e.Event, nz(e.Attempt),
			e.Outcome, e.Status, nz(e.HTTPStatus), nz(int(e.DurationMS)), e.State, oneLine(e.Detail+" "+e.Sent))
	}
	return tw.Flush()
}

func nz(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprint(n)
}
