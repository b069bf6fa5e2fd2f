package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/refundq/refundq/enqueue"
	"github.com/refundq/refundq/tasks"
)

// metaFlag collects repeated --meta key=value flags.
type metaFlag map[string]string

func (m metaFlag) String() string { return "" }
func (m metaFlag) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok {
		return fmt.Errorf("want key=value, got %q", v)
	}
	m[k] = val
	return nil
}

func runEnqueue(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("enqueue", flag.ContinueOnError)
	var c commonFlags
	c.register(fs)
	var r enqueue.Request
	meta := metaFlag{}
	fs.StringVar(&r.RefundID, "id", "", "refund id (yours; the idempotency key)")
	fs.StringVar(&r.Provider, "provider", "", "ecartpay, ecomcharge, fatora, bbmsl or moyasarpg")
	fs.StringVar(&r.OrderID, "order", "", "the provider's order or payment id")
	fs.StringVar(&r.TransactionID, "transaction", "", "the provider's payment transaction id, where it needs one")
	fs.StringVar(&r.Amount, "amount", "", "amount in major units, e.g. 403.33")
	fs.StringVar(&r.Currency, "currency", "", "ISO 4217 code, e.g. MXN")
	fs.StringVar(&r.Reason, "reason", "", "reason for the refund")
	fs.Var(meta, "meta", "metadata key=value (repeatable)")
	if err := fs.Parse(args); err != nil {
		return flagError(err)
	}
	if len(meta) > 0 {
		r.Metadata = meta
	}
	cl, closeFn, err := c.client()
	if err != nil {
		return err
	}
	defer closeFn()
	res, err := cl.Enqueue(ctx, r)
	if err != nil {
		return invalidOr(err)
	}
	verb := "created"
	if !res.Created {
		verb = "already exists"
	}
	fmt.Fprintf(out, "refund %s %s: %s %s on %s order %s\n", r.RefundID, verb, res.Record.State, res.Record.Amount, res.Record.Provider, res.Record.OrderID)
	return nil
}

// invalidOr turns an invalid-input error into exit status 2 with one line
// per bad field.
func invalidOr(err error) error {
	var verr tasks.ValidationError
	if errors.As(err, &verr) {
		lines := make([]string, len(verr))
		for i, f := range verr {
			lines[i] = "  " + f.Field + ": " + f.Message
		}
		return &exitError{2, fmt.Errorf("invalid refund:\n%s", strings.Join(lines, "\n"))}
	}
	if enqueue.IsInvalid(err) {
		return &exitError{2, err}
	}
	return err
}
