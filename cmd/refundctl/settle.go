package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/refundq/refundq/store"
)

// runSettle closes a needs_review refund by hand once a human has asked the
// provider what happened: the last step of the operator's work list.
func runSettle(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("settle", flag.ContinueOnError)
	var c commonFlags
	c.register(fs)
	as := fs.String("as", "", "succeeded (the provider shows the refund) or failed (it shows none)")
	ref := fs.String("ref", "", "the provider's refund reference, when succeeded")
	note := fs.String("note", "", "what the provider said, for the history (required)")
	if err := fs.Parse(args); err != nil {
		return flagError(err)
	}
	if fs.NArg() != 1 || *note == "" || (*as != string(store.Succeeded) && *as != string(store.Failed)) {
		return &exitError{2, errors.New("settle: want ID --as succeeded|failed --note TEXT [--ref REF]")}
	}
	cl, closeFn, err := c.client()
	if err != nil {
		return err
	}
	defer closeFn()
	if err := cl.Settle(ctx, fs.Arg(0), store.State(*as), *ref, *note); err != nil {
		if errors.Is(err, store.ErrNotReview) || errors.Is(err, store.ErrNotFound) {
			return &exitError{1, err}
		}
		return err
	}
	fmt.Fprintf(out, "refund %s settled as %s\n", fs.Arg(0), *as)
	return nil
}
