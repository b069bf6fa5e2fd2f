package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/refundq/refundq/enqueue"
	"github.com/refundq/refundq/internal/durability"
	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/tasks"
)

// usageError is a wrong command line: exit status 2, with a pointer to
// --help.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return &usageError{fmt.Errorf(format, args...)} }

// exitError ends refundctl with code after the command printed its report
// (reconcile's findings, status --exit-status's state); err, when set, is
// said on stderr as any other error is.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err != nil {
		return e.err.Error()
	}
	return fmt.Sprintf("exit status %d", e.code)
}

func (e *exitError) Unwrap() error { return e.err }

// errReported: the command has already said what went wrong (a bulk file's
// row errors); exit status 1 without another line.
var errReported = errors.New("reported")

// refundErr carries the refund id and key prefix an error is about, so the
// sentence can name them.
type refundErr struct {
	id, prefix string
	err        error
}

func (e *refundErr) Error() string { return e.err.Error() }
func (e *refundErr) Unwrap() error { return e.err }

func aboutRefund(id, prefix string, err error) error {
	if err == nil {
		return nil
	}
	return &refundErr{id: id, prefix: prefix, err: err}
}

// human turns an error into a sentence a person can act on: every store and
// provider sentinel has its own, Redis connection failures say which Redis,
// and user input is quoted at most 64 characters long.
func human(err error) string {
	id := `""`
	prefix := ""
	var re *refundErr
	if errors.As(err, &re) {
		id, prefix = quote(re.id), re.prefix
	}
	var (
		taken *store.OrderTakenError
		busy  *store.BusyError
		verr  tasks.ValidationError
		oe    *net.OpError
		ref   *durability.Refusal
	)
	switch {
	case errors.As(err, &ref):
		// The Redis check's one message, as every process gives it: it
		// quotes no user input, and clipping would cut its quoted settings.
		return err.Error()
	case errors.As(err, &verr):
		return invalidText(verr)
	case errors.Is(err, store.ErrNotFound) || strings.Contains(err.Error(), "NOTFOUND"):
		return fmt.Sprintf("no refund %s under key prefix %q: check the id, REDIS_URL and --prefix", id, prefix)
	case errors.Is(err, store.ErrConflict):
		_, diff, _ := strings.Cut(err.Error(), store.ErrConflict.Error()+": ")
		return fmt.Sprintf("refund id %s is already used for a different refund (%s): send the same fields again, or use a new id",
			id, clipText(enqueue.ClipQuoted(diff)))
	case errors.As(err, &taken):
		return fmt.Sprintf("%s refunds an order once, and order %s already has refund %s (%s); another refund is possible only once that one has failed",
			taken.Provider, quote(taken.Order), quote(taken.Owner), taken.State)
	case errors.Is(err, store.ErrClosed):
		return fmt.Sprintf("refund %s is final (succeeded or failed) and never changes again", id)
	case errors.Is(err, store.ErrNotReview):
		return fmt.Sprintf("refund %s is not in needs_review: only a refund automation stopped on is settled or sent again by hand", id)
	case errors.As(err, &busy):
		return fmt.Sprintf("refund %s is being handled by a worker right now; try again in %s", id, busy.Remaining.Round(1e9)+1e9)
	case errors.Is(err, store.ErrBusy):
		return fmt.Sprintf("refund %s is being handled by a worker right now; try again in a few seconds", id)
	case errors.Is(err, store.ErrFenced):
		return fmt.Sprintf("a worker took refund %s over while this command held it; nothing was written: try again", id)
	case errors.Is(err, store.ErrRefTaken):
		return "the provider's refund reference is already recorded for another refund of the same order; nothing was written"
	case errors.Is(err, store.ErrOrderBusy):
		return "another refund of the same order is in flight at the provider, and refunds of one order go one at a time there: try again later"
	case errors.Is(err, providers.ErrUnknownProvider):
		return clipText(enqueue.ClipQuoted(err.Error()))
	case errors.Is(err, providers.ErrDisabled):
		return clipText(enqueue.ClipQuoted(err.Error()))
	case errors.Is(err, tasks.ErrUnknownCurrency):
		return "unknown currency: want an ISO 4217 code such as SAR, EUR, HKD, QAR, MXN or USD (" + clipText(enqueue.ClipQuoted(err.Error())) + ")"
	case errors.Is(err, context.Canceled):
		return "interrupted"
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out"
	case errors.As(err, &oe):
		return fmt.Sprintf("cannot reach Redis at %s (REDIS_URL): %v", oe.Addr, oe.Err)
	case strings.Contains(err.Error(), "WRONGPASS") || strings.Contains(err.Error(), "NOAUTH"):
		return "Redis refused the user name or password in REDIS_URL"
	}
	var ce *providers.CheckError
	if errors.As(err, &ce) {
		return clipText(enqueue.ClipQuoted(ce.Error()))
	}
	return clipText(enqueue.ClipQuoted(err.Error()))
}

// invalidText lists each bad field on its own line.
func invalidText(verr tasks.ValidationError) string {
	lines := make([]string, len(verr))
	for i, f := range verr {
		lines[i] = "  " + flagFor(f.Field) + ": " + clipText(enqueue.ClipQuoted(f.Message))
	}
	return "invalid refund:\n" + strings.Join(lines, "\n")
}

// flagFor names the enqueue flag of a payload field, for messages.
func flagFor(field string) string {
	switch field {
	case "refund_id":
		return "--id (refund_id)"
	case "order_id":
		return "--order (order_id)"
	case "transaction_id":
		return "--transaction (transaction_id)"
	case "provider", "amount", "currency", "reason":
		return "--" + field
	}
	return field
}

// quoteMax is how many characters of user input a message quotes.
const quoteMax = 64

// quote quotes user input for a message, at most 64 characters of it.
func quote(s string) string {
	if utf8.RuneCountInString(s) <= quoteMax {
		return strconv.Quote(s)
	}
	return strconv.Quote(string([]rune(s)[:quoteMax])) + "…"
}

// clipText cuts any unbroken run of more than 100 characters in a message
// to 64, then "…": a message may carry user input unquoted (a 10 KB id in a
// wrapped error), and one line of it must stay readable.
func clipText(s string) string {
	fields := strings.Fields(s)
	long := false
	for _, f := range fields {
		if utf8.RuneCountInString(f) > 100 {
			long = true
			break
		}
	}
	if !long {
		return s
	}
	var b strings.Builder
	start := 0
	for i, r := range s {
		if r == ' ' || r == '\n' || r == '\t' {
			b.WriteString(clipWord(s[start:i]))
			b.WriteRune(r)
			start = i + utf8.RuneLen(r)
		}
	}
	b.WriteString(clipWord(s[start:]))
	return b.String()
}

func clipWord(w string) string {
	if utf8.RuneCountInString(w) <= 100 {
		return w
	}
	return string([]rune(w)[:quoteMax]) + "…"
}
