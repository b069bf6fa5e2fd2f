package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/providers/catalog"
)

// guessJSON is the stable --json shape of one guess.
type guessJSON struct {
	Provider    string     `json:"provider"`
	Guess       string     `json:"guess"`
	Verdict     string     `json:"verdict"`
	Means       string     `json:"means,omitempty"`
	ConfirmedAt *time.Time `json:"confirmed_at,omitempty"`
	Confirmed   string     `json:"confirmed,omitempty"`
	RefutedAt   *time.Time `json:"refuted_at,omitempty"`
	Refuted     string     `json:"refuted,omitempty"`
}

func guessesCmd(g *globals) *cobra.Command {
	var out output
	cmd := &cobra.Command{
		Use:   "guesses [PROVIDER]",
		Short: "Show what refundq has learned of each provider's undocumented behaviour",
		Long: `Some of what an adapter relies on is not in its provider's documents (a field in a look-up answer, the
shape of a list). Each such fact is a guess: until the provider's own answers have confirmed it, refundq never
lets its absence prove a refund was not applied (the refund goes to needs_review instead of being resent).
This lists every guess of every provider (or of one), what it means, and what answers confirmed or refuted it.
'refundctl guesses clear PROVIDER GUESS' forgets what was learned, after the provider fixed what refuted it.`,
		Example: joinExamples(
			"refundctl guesses",
			"refundctl guesses fatora",
			"refundctl guesses --json",
			"refundctl guesses clear fatora fatora.verify_refund_status"),
		Args:              usageArgs(cobra.MaximumNArgs(1)),
		ValidArgsFunction: completeProviderArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			asJSON, err := out.isJSON()
			if err != nil {
				return err
			}
			reg := catalog.Rules()
			names := reg.Names()
			if len(args) == 1 {
				if _, err := reg.Get(args[0]); err != nil && !isDisabled(err) {
					return &usageError{fmt.Errorf("%s", human(err))}
				}
				names = args
			}
			st, closeFn, err := g.openStore()
			if err != nil {
				return err
			}
			defer closeFn()
			var rows []guessJSON
			for _, name := range names {
				e, _ := reg.Get(name)
				learned, err := st.Guesses(cmd.Context(), name)
				if err != nil {
					return err
				}
				rows = append(rows, guessRows(name, e.Guesses, learned)...)
			}
			if asJSON {
				if rows == nil {
					rows = []guessJSON{}
				}
				return writeJSON(cmd.OutOrStdout(), rows)
			}
			printGuesses(cmd.OutOrStdout(), names, rows)
			return nil
		},
	}
	out.register(cmd)
	cmd.AddCommand(guessesClearCmd(g))
	return cmd
}

// guessRows joins the adapter's guesses with what the store learned; a
// guess learned of that the adapter no longer makes is listed too.
func guessRows(provider string, infos []providers.GuessInfo, learned []store.GuessState) []guessJSON {
	byName := map[string]store.GuessState{}
	for _, l := range learned {
		byName[l.Guess] = l
	}
	var out []guessJSON
	row := func(name, means string) {
		gs, ok := byName[name]
		r := guessJSON{Provider: provider, Guess: name, Means: means, Verdict: "unconfirmed"}
		if ok {
			r.Verdict = gs.Verdict()
			if !gs.ConfirmedAt.IsZero() {
				t := gs.ConfirmedAt
				r.ConfirmedAt, r.Confirmed = &t, gs.Confirmed
			}
			if !gs.RefutedAt.IsZero() {
				t := gs.RefutedAt
				r.RefutedAt, r.Refuted = &t, gs.Refuted
			}
		}
		delete(byName, name)
		out = append(out, r)
	}
	for _, gi := range infos {
		row(string(gi.Guess), gi.Means)
	}
	for _, l := range learned {
		if _, ok := byName[l.Guess]; ok {
			row(l.Guess, "(the adapter no longer relies on this guess)")
		}
	}
	return out
}

func printGuesses(w io.Writer, names []string, rows []guessJSON) {
	byProvider := map[string][]guessJSON{}
	for _, r := range rows {
		byProvider[r.Provider] = append(byProvider[r.Provider], r)
	}
	for i, name := range names {
		if i > 0 {
			fmt.Fprintln(w)
		}
		rs := byProvider[name]
		if len(rs) == 0 {
			fmt.Fprintf(w, "%s: no guesses: the adapter relies only on what the provider documents\n", name)
			continue
		}
		fmt.Fprintf(w, "%s:\n", name)
		for _, r := range rs {
			fmt.Fprintf(w, "  %s  %s\n", r.Guess, strings.ToUpper(r.Verdict))
			tw := tabwriter.NewWriter(w, 2, 4, 1, ' ', 0)
			if r.Means != "" {
				fmt.Fprintf(tw, "    means:\t%s\n", oneLine(r.Means))
			}
			if r.ConfirmedAt != nil {
				fmt.Fprintf(tw, "    confirmed:\t%s by %s\n", r.ConfirmedAt.Format(time.RFC3339), clipCell(oneLine(r.Confirmed)))
			}
			if r.RefutedAt != nil {
				fmt.Fprintf(tw, "    refuted:\t%s by %s\n", r.RefutedAt.Format(time.RFC3339), clipCell(oneLine(r.Refuted)))
			}
			if r.Verdict == "unconfirmed" {
				fmt.Fprintf(tw, "    so far:\tno answer has shown it either way; refundq fails closed (needs_review, never a resend)\n")
			}
			tw.Flush()
		}
	}
}

func guessesClearCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "clear PROVIDER GUESS",
		Short: "Forget what was learned of one guess, so the next answers decide it again",
		Long: `Forget what was learned of one guess: a refuted guess stays refuted (and refunds that depend on it go to
needs_review) until an operator clears it, typically after the provider fixed what refuted it or the adapter
was changed. The next answers learn it again.`,
		Example:           joinExamples("refundctl guesses clear fatora fatora.verify_refund_status"),
		Args:              usageArgs(cobra.ExactArgs(2)),
		ValidArgsFunction: completeGuessArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			provider, guess := args[0], args[1]
			reg := catalog.Rules()
			e, err := reg.Get(provider)
			if err != nil && !isDisabled(err) {
				return &usageError{fmt.Errorf("%s", human(err))}
			}
			st, closeFn, err := g.openStore()
			if err != nil {
				return err
			}
			defer closeFn()
			known := false
			for _, gi := range e.Guesses {
				known = known || string(gi.Guess) == guess
			}
			learned, err := st.Guesses(cmd.Context(), provider)
			if err != nil {
				return err
			}
			for _, l := range learned {
				known = known || l.Guess == guess
			}
			if !known {
				var names []string
				for _, gi := range e.Guesses {
					names = append(names, string(gi.Guess))
				}
				return usagef("%s has no guess %s (its guesses: %s)", provider, quote(guess), orNone(names))
			}
			if err := st.ClearGuess(cmd.Context(), provider, guess); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "forgot what was learned of %s at %s; the next answers decide it again\n", guess, provider)
			return nil
		},
	}
}

func orNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// isDisabled: the provider is known, only not configured here (producers
// hold no credentials; the guesses are the adapter's all the same).
func isDisabled(err error) bool { return errors.Is(err, providers.ErrDisabled) }

func completeProviderArg(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return catalog.Rules().Names(), cobra.ShellCompDirectiveNoFileComp
}

func completeGuessArgs(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	reg := catalog.Rules()
	switch len(args) {
	case 0:
		return reg.Names(), cobra.ShellCompDirectiveNoFileComp
	case 1:
		e, _ := reg.Get(args[0])
		var out []string
		for _, gi := range e.Guesses {
			out = append(out, string(gi.Guess))
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
	return nil, cobra.ShellCompDirectiveNoFileComp
}
