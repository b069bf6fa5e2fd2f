package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"

	"github.com/refundq/refundq/enqueue"
	"github.com/refundq/refundq/internal/tracing"
	"github.com/refundq/refundq/providers/catalog"
)

// producerFlags are the flags of the commands that enqueue.
type producerFlags struct {
	checkConfig bool
}

func (p *producerFlags) register(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&p.checkConfig, "check-config", false,
		"also require the provider's credentials in this environment, as a worker would")
}

// client opens an enqueue client on REDIS_URL, and turns tracing on where
// an OTLP endpoint is set (docs/TRACING.md); done closes the client and
// flushes the spans. Producers check each provider's own rules without
// credentials (workers hold those); a provider whose credentials are set
// here anyway is asked what it can tell before a refund is accepted
// (Fatora: a partial amount is refused at once).
func (p *producerFlags) client(ctx context.Context, g *globals) (cl *enqueue.Client, done func(), err error) {
	reg := catalog.FromEnv(os.Getenv)
	if !p.checkConfig {
		reg = reg.RulesOnly()
	}
	stopTracing, err := tracing.Setup(ctx, "refundctl", os.Getenv, logrus.StandardLogger())
	if err != nil {
		return nil, nil, err
	}
	flush := func() {
		// A collector that is down must not hold the exit up.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		stopTracing(ctx)
	}
	cl, err = enqueue.Open(redisURL(), enqueue.WithQueue(g.queue), enqueue.WithPrefix(g.prefix), enqueue.WithRegistry(reg))
	if err != nil {
		flush()
		return nil, nil, err
	}
	return cl, func() { cl.Close(); flush() }, nil
}

func enqueueCmd(g *globals) *cobra.Command {
	var (
		r    enqueue.Request
		meta []string
		p    producerFlags
	)
	cmd := &cobra.Command{
		Use:   "enqueue --id ID --provider P --order O --amount A --currency C [flags]",
		Short: "Enqueue one refund",
		Long: `Enqueue one refund. The refund id is yours and is the idempotency key: the same id again returns the
existing refund (and says so), never a second refund; the same id with another provider, order, transaction,
amount or currency is refused. The amount is a decimal in major units (403.33), converted once to the
currency's minor units.

Required: --id, --provider, --order, --amount, --currency; --transaction where the provider needs the payment's
transaction id (ecomCharge, Fatora).`,
		Example: joinExamples(
			"refundctl enqueue --id rf_1 --provider moyasarpg --order mpg-1001 --amount 100.00 --currency SAR",
			"refundctl enqueue --id rf_2 --provider fatora --order fat-1001 --transaction txn-fat-1001 --amount 500.00 --currency QAR",
			"refundctl enqueue --id rf_3 --provider ecartpay --order ep-1001 --amount 40.00 --currency MXN --reason requested --meta shop=north"),
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var missing []string
			for _, f := range []struct{ flag, v string }{
				{"--id", r.RefundID}, {"--provider", r.Provider}, {"--order", r.OrderID}, {"--amount", r.Amount}, {"--currency", r.Currency},
			} {
				if strings.TrimSpace(f.v) == "" {
					missing = append(missing, f.flag)
				}
			}
			if len(missing) > 0 {
				return usagef("missing %s", strings.Join(missing, ", "))
			}
			if len(meta) > 0 {
				r.Metadata = map[string]string{}
				for _, kv := range meta {
					k, v, ok := strings.Cut(kv, "=")
					if !ok {
						return usagef("--meta %s: want key=value", quote(kv))
					}
					r.Metadata[k] = v
				}
			}
			// A wrong command line is found before Redis is asked anything:
			// bad fields, an unknown provider, a refund the provider's own
			// rules never take (exit 2). What the store or the provider
			// refuses after that is a failed operation (exit 1).
			t, err := r.Refund()
			if err == nil {
				err = catalog.Rules().Check(t)
			}
			if err != nil {
				return &usageError{errors.New(human(err))}
			}
			cl, done, err := p.client(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer done()
			res, err := cl.Enqueue(cmd.Context(), r)
			if err != nil {
				return aboutRefund(r.RefundID, g.prefix, err)
			}
			verb := "created"
			if !res.Created {
				verb = "already exists"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "refund %s %s: %s, %s on %s order %s\n", r.RefundID, verb, res.Record.State,
				res.Record.Amount, res.Record.Provider, res.Record.OrderID)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&r.RefundID, "id", "", "refund id: yours, the idempotency key (letters, digits, . _ : -; at most 64)")
	f.StringVar(&r.Provider, "provider", "", "ecartpay, ecomcharge, fatora, bbmsl or moyasarpg")
	f.StringVar(&r.OrderID, "order", "", "the order (or payment) id at the provider")
	f.StringVar(&r.TransactionID, "transaction", "", "the payment's transaction id, where the provider needs one (ecomCharge, Fatora)")
	f.StringVar(&r.Amount, "amount", "", "amount in major units, e.g. 403.33")
	f.StringVar(&r.Currency, "currency", "", "ISO 4217 code, e.g. SAR")
	f.StringVar(&r.Reason, "reason", "", "reason for the refund (Ecart Pay: requested, duplicate or fraudulent)")
	f.StringArrayVar(&meta, "meta", nil, "metadata key=value (repeatable)")
	p.register(cmd)
	cmd.RegisterFlagCompletionFunc("provider", completeProviders)
	cmd.RegisterFlagCompletionFunc("currency", cobra.FixedCompletions([]string{"SAR", "EUR", "QAR", "HKD", "MXN", "USD"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func completeProviders(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return catalog.Rules().Names(), cobra.ShellCompDirectiveNoFileComp
}
