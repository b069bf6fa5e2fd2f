package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/refundq/refundq/internal/store"
)

func settleCmd(g *globals) *cobra.Command {
	var as, note, ref, actor string
	cmd := &cobra.Command{
		Use:   "settle ID --as succeeded|failed --note TEXT [--ref REF] [--actor NAME]",
		Short: "Close a needs_review refund by hand, once the provider has said what happened",
		Long: `Close a refund in needs_review by hand: automation stopped on it without knowing whether the provider
paid it, and a person has asked the provider. --as succeeded when the provider shows the refund (give its
reference with --ref), --as failed when it shows none; --note says what the provider said, for the history.
The history also records who settled it: --actor, and the account refundctl runs as (--actor is required
when that is root or an account the system cannot name). Only a needs_review refund can be settled, and
never while a worker holds it.`,
		Example: joinExamples(
			`refundctl settle rf_3 --as succeeded --ref 3758 --note "BBMSL support: refunded 79.99 HKD on 2026-11-25" --actor alice`,
			`refundctl settle rf_4 --as failed --note "Fatora dashboard shows no refund of txn-fat-1004"`),
		Args:              exactID,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, args []string) error {
			state := store.State(strings.ToLower(as))
			switch {
			case as == "":
				return usagef("missing --as succeeded|failed")
			case state != store.Succeeded && state != store.Failed:
				return usagef("--as %s: want succeeded (the provider shows the refund) or failed (it shows none)", quote(as))
			case strings.TrimSpace(note) == "":
				return usagef("missing --note: say what the provider said, for the refund's history")
			case ref != "" && state == store.Failed:
				return usagef("--ref names the provider's refund; a refund settled as failed has none")
			}
			who, err := resolveActor(actor)
			if err != nil {
				return err
			}
			st, closeFn, err := g.openWritableStore(cmd.Context())
			if err != nil {
				return err
			}
			defer closeFn()
			id := args[0]
			rec, err := st.Get(cmd.Context(), id)
			if err != nil {
				return aboutRefund(id, g.prefix, err)
			}
			if rec.State != store.NeedsReview {
				return fmt.Errorf("refund %s is %s, not needs_review: only a refund automation stopped on is settled by hand%s",
					quote(id), rec.State, notReviewHint(rec.State))
			}
			if err := st.Settle(cmd.Context(), id, store.Settlement{State: state, ProviderRef: ref, Note: note, Actor: who}); err != nil {
				return aboutRefund(id, g.prefix, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "refund %s settled as %s by %s\n", id, state, who)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&as, "as", "", "succeeded (the provider shows the refund) or failed (it shows none)")
	f.StringVar(&note, "note", "", "what the provider said, for the history (required)")
	f.StringVar(&ref, "ref", "", "the provider's reference of the refund, when succeeded")
	actorFlag(cmd, &actor)
	cmd.RegisterFlagCompletionFunc("as", cobra.FixedCompletions([]string{"succeeded", "failed"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func notReviewHint(s store.State) string {
	switch s {
	case store.Succeeded, store.Failed:
		return " (it is final and never changes again)"
	}
	return " (automation is still working on it: refundctl status ID --wait 1m)"
}
