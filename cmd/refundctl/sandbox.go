package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/refundq/refundq/internal/listen"
	"github.com/refundq/refundq/providers/catalog"
	"github.com/refundq/refundq/providers/sandbox"
	"github.com/refundq/refundq/tasks"
)

func sandboxCmd() *cobra.Command {
	var (
		addr, public, keyDir, envFile string
		orders                        []string
		auto                          int64
		pendingPolls                  int
		noSeed, guessed               bool
	)
	cmd := &cobra.Command{
		Use:   "sandbox",
		Short: "Serve every provider's simulator, and say which orders it knows and what their refunds do",
		Long: `Serve the simulators of all five providers on one address, each at /<provider>/, until interrupted.

At start it prints, per provider, the paid orders it knows (ids, the transaction id a refund must carry where
the provider needs one, currency, captured amount) and what a refund of each does. The rules, by the id a
refund names (the order; ecomCharge: the payment's transaction id):
  pending-…  the provider keeps the refund pending for --pending-polls look-ups, then completes it
  lost-…     the first refund request is applied and its answer lost (connection reset)
  review-…   (BBMSL) one minor unit less is refunded than asked: the refund stops at needs_review
  more than is left to refund on the payment is rejected; any other id is created paid on first use
             (--auto; 0 turns that off, and unknown orders are "not found").
Then the environment lines that point a worker at the sandbox (also written to --env-file).

The simulators answer with the fields refundq only guesses at, as the demo's do, so their answers confirm
refundq's guesses (refundctl guesses). --guessed=false makes them answer exactly as the providers' pages
document: the first answers that could show a guess then refute it, and a lost answer whose look-up rests on
one goes to needs_review, never resent: what refundq does if a provider does not bear its guesses out.`,
		Example: joinExamples(
			"refundctl sandbox --env-file sandbox.env",
			"refundctl sandbox --listen 127.0.0.1:9090 --order moyasarpg:ord-77:250.00 --order fatora:inv-9:100.00:QAR",
			"refundctl sandbox --auto 0 --no-seed --order ecomcharge:pay-1:10.00",
			"refundctl sandbox --guessed=false --env-file sandbox.env"),
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if auto < 0 {
				return usagef("--auto %d: want 0 (off) or a positive amount", auto)
			}
			// Check the --order values before anything starts.
			var wants [][]string
			for _, o := range orders {
				parts := strings.Split(o, ":")
				if len(parts) < 3 || len(parts) > 4 || parts[0] == "" || parts[1] == "" {
					return usagef("--order %s: want PROVIDER:ORDER_ID:AMOUNT[:CURRENCY]", quote(o))
				}
				wants = append(wants, parts)
			}
			if keyDir == "" {
				keyDir = os.TempDir()
			}
			sb, err := sandbox.Open(sandbox.Config{KeyDir: keyDir, Auto: auto, PendingPolls: pendingPolls, NoSeed: noSeed, Documented: !guessed})
			if err != nil {
				return err
			}
			for _, w := range wants {
				s := sb.Sim(w[0])
				if s == nil {
					return usagef("--order %s: unknown provider %s (known: %s)", quote(strings.Join(w, ":")), quote(w[0]),
						strings.Join(catalog.Rules().Names(), ", "))
				}
				cur := s.Currency
				if len(w) == 4 {
					cur = strings.ToUpper(w[3])
				}
				m, err := tasks.ParseMoney(w[2], cur)
				if err != nil {
					return usagef("--order %s: %s", quote(strings.Join(w, ":")), human(err))
				}
				if _, err := sb.Add(w[0], w[1], m); err != nil {
					return usagef("--order: %s", human(err))
				}
			}
			// The same words as the API's and the worker's: the variable
			// (--listen is its flag), and a free port when this one is taken.
			ln, err := listen.TCP("REFUNDQ_SANDBOX_LISTEN", addr, "sandbox")
			if err != nil {
				return fmt.Errorf("sandbox: %w", err)
			}
			base := public
			if base == "" {
				base = "http://" + ln.Addr().String()
			}
			out := cmd.OutOrStdout()
			env := sb.Env(base)
			// The file first: whoever waits for it may start a worker at once.
			if envFile != "" {
				if err := writeEnvFile(envFile, "# refundq sandbox: source this file to point a worker at the sandbox", env); err != nil {
					ln.Close()
					return err
				}
			}
			shape := "answering with the fields refundq only guesses at (--guessed=false: exactly the documented answers)"
			if !guessed {
				shape = "answering exactly as the providers' pages document, without the fields refundq only guesses at"
			}
			fmt.Fprintf(out, "refundq sandbox: the simulators of %d providers at %s/<provider>/, %s\n", len(sb.Sims), base, shape)
			sb.Describe(out)
			fmt.Fprintln(out, "\n# point a worker (and refundctl, to check Fatora payments at enqueue) at the sandbox:")
			for _, line := range env {
				fmt.Fprintln(out, "export "+line)
			}
			if envFile != "" {
				fmt.Fprintf(out, "# the same lines are in %s: . %s\n", envFile, envFile)
			}
			srv := &http.Server{Handler: sb.Handler(), ReadHeaderTimeout: 10 * time.Second}
			go func() {
				<-cmd.Context().Done()
				shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				srv.Shutdown(shut)
			}()
			fmt.Fprintln(out, "sandbox ready; Ctrl-C stops it")
			if err := srv.Serve(ln); err != http.ErrServerClosed {
				return err
			}
			return nil
		},
	}
	f := cmd.Flags()
	// 8090: off refund-api's 8080 and the worker's 8081, which the
	// walk-through may run beside it.
	f.StringVar(&addr, "listen", envOr("REFUNDQ_SANDBOX_LISTEN", "127.0.0.1:8090"), "address to serve the simulators on (env REFUNDQ_SANDBOX_LISTEN; port 0: any free port)")
	f.StringVar(&public, "url", "", "base URL workers reach the sandbox at (default http://<listen address>)")
	f.StringVar(&keyDir, "key-dir", "", "where to write the generated BBMSL merchant key workers read (default the temp dir)")
	f.StringVar(&envFile, "env-file", "", "also write the worker's environment lines to this file")
	f.StringArrayVar(&orders, "order", nil, "add a paid order PROVIDER:ORDER_ID:AMOUNT[:CURRENCY] (repeatable)")
	f.Int64Var(&auto, "auto", 10000, "amount (major units) of the paid order an unknown id becomes on first use; 0: unknown ids are not found")
	f.IntVar(&pendingPolls, "pending-polls", 2, "look-ups a pending- refund stays pending")
	f.BoolVar(&noSeed, "no-seed", false, "leave out the example orders")
	f.BoolVar(&guessed, "guessed", true, "answer with the fields refundq only guesses at, as the demo does; --guessed=false: exactly the documented answers, which do not bear the guesses out")
	return cmd
}

// writeEnvFile writes the environment lines, after a header comment, as a
// file a shell can source, readable by its owner only (the sandbox's holds
// the simulators' test credentials). It appears whole or not at all: whoever
// waits for it may source it at once.
func writeEnvFile(path, header string, env []string) error {
	var b strings.Builder
	b.WriteString(header + "\n")
	for _, line := range env {
		k, v, _ := strings.Cut(line, "=")
		fmt.Fprintf(&b, "export %s=%s\n", k, shellQuote(v))
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".env-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(b.String()); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return os.Rename(tmp.Name(), path)
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./:@,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
