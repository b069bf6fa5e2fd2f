package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// suggestDistance is how far (edit distance) a mistyped command or flag
// may be from the one suggested: cobra's default, which it sets only on the
// path where it suggests by itself.
const suggestDistance = 2

// unknownCommand is the argument check of a command that takes no
// arguments of its own, only subcommands (refundctl, refundctl
// completion): an argument there is a mistyped command. cobra suggests the
// command meant only where a command has no argument check at all; with
// one (NoArgs, for exit status 2) the suggestion is made here, from cobra's
// own SuggestionsFor (edit distance 2, or a prefix).
func unknownCommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = suggestDistance
	}
	msg := fmt.Sprintf("unknown command %s for %q", quote(args[0]), cmd.CommandPath())
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += "; did you mean " + orList(s) + "?"
	}
	return &usageError{errors.New(msg)}
}

// flagError makes a flag the command line gets wrong a usage error (exit
// status 2), and for an unknown long flag names the flag meant, as cobra
// does for commands and pflag does not for flags.
func flagError(cmd *cobra.Command, err error) error {
	const prefix = "unknown flag: --"
	msg := err.Error()
	if !strings.HasPrefix(msg, prefix) {
		return &usageError{err}
	}
	typed, _, _ := strings.Cut(strings.TrimPrefix(msg, prefix), "=")
	var near []string
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if !f.Hidden && (editDistance(typed, f.Name) <= suggestDistance || typed != "" && strings.HasPrefix(f.Name, typed)) {
			near = append(near, "--"+f.Name)
		}
	})
	if len(near) == 0 {
		return &usageError{err}
	}
	return &usageError{fmt.Errorf("%w; did you mean %s?", err, orList(near))}
}

// orList quotes names and joins them: "a", "a" or "b", "a", "b" or "c".
func orList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	if len(q) == 1 {
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}

// editDistance is the Levenshtein distance between a and b, by bytes
// (flag names are ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
