// Command refundctl enqueues refunds (one, or a bulk file), shows their
// status, lists them by state, settles the ones a human must decide (or
// sends one again that never left), shows
// what refundq has learned of each provider's undocumented behaviour, runs
// the provider sandbox and a development Redis, and runs the demo.
//
// Exit status: 0 when the command did what it was asked; 1 when the
// operation failed (a refund not found, Redis down, a refund refused, some
// rows of a bulk file bad); 2 when the command line is wrong (unknown command
// or flag, a missing or invalid value, the wrong number of arguments);
// reconcile adds 3 (a provider disagrees) and 4 (some could not be checked);
// status --exit-status exits by the refund's state: 0 succeeded, 5 failed,
// 6 needs_review, 7 not final yet.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/refundq/refundq/internal/logs"
)

// Exit statuses.
const (
	exitOK     = 0
	exitFailed = 1 // the operation failed, or some rows did
	exitUsage  = 2 // the command line is wrong
)

func main() {
	// What libraries print on their own (go-redis, the log package, the
	// durability check) goes to stderr as JSON lines at LOG_LEVEL, as from
	// every refundq binary; refundctl's own output stays text.
	if _, err := logs.New(os.Stderr, os.Getenv("LOG_LEVEL")); err != nil {
		fmt.Fprintln(os.Stderr, "refundctl:", err)
		os.Exit(exitFailed)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := execute(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// execute runs refundctl with args and returns its exit status; tests call
// it as main does.
func execute(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRoot(stdin, stdout, stderr)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintf(stderr, "%s: %s\n", cmd.CommandPath(), human(ee.err))
		}
		return ee.code
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "%s: %s\nRun '%s --help' for usage.\n", cmd.CommandPath(), clipText(ue.Error()), cmd.CommandPath())
		return exitUsage
	}
	if !errors.Is(err, errReported) {
		fmt.Fprintf(stderr, "%s: %s\n", cmd.CommandPath(), human(err))
	}
	return exitFailed
}

// newRoot builds the command tree, writing to the given streams.
func newRoot(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "refundctl",
		Short: "Enqueue refunds and follow them to a final state",
		Long: `refundctl enqueues refunds (one, or a CSV or JSON Lines file), shows where each one stands, lists
them by state, settles the ones a human must decide (or sends one again that never reached the provider), and
runs the provider sandbox, a development Redis (dev-redis) and the demo.

Redis is REDIS_URL (redis://[user:password@]host:port/db; default redis://127.0.0.1:6379/0). The queue and
key prefix are REFUNDQ_QUEUE and REFUNDQ_PREFIX (or --queue, --prefix); they must match the workers'.

Exit status: 0 done; 1 the operation failed (or some rows of a bulk file did); 2 the command line is wrong;
reconcile also exits 3 when a provider disagrees with a refund, 4 when some refunds could not be checked;
status --exit-status exits by the refund's state: 0 succeeded, 5 failed, 6 needs_review, 7 not final yet.`,
		Example: `  refundctl demo                      # everything in one process, on an embedded Redis
  refundctl enqueue --id rf_1 --provider moyasarpg --order mpg-1001 --amount 100.00 --currency SAR
  refundctl status rf_1
  refundctl list --state needs_review
  refundctl completion bash > /etc/bash_completion.d/refundctl`,
		Version:       version(),
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          unknownCommand,
		RunE: func(cmd *cobra.Command, args []string) error {
			cmd.SetOut(stderr)
			cmd.Usage()
			return &usageError{errors.New("no command given")}
		},
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetVersionTemplate("refundctl {{.Version}}\n")
	root.SetFlagErrorFunc(flagError)

	g := &globals{}
	pf := root.PersistentFlags()
	pf.StringVar(&g.queue, "queue", envOr("REFUNDQ_QUEUE", "default"), "asynq queue of the refund tasks (env REFUNDQ_QUEUE)")
	pf.StringVar(&g.prefix, "prefix", envOr("REFUNDQ_PREFIX", "refundq:"), "prefix of refundq's Redis keys (env REFUNDQ_PREFIX)")

	root.AddCommand(
		enqueueCmd(g), bulkCmd(g), statusCmd(g), listCmd(g), settleCmd(g), retryCmd(g), guessesCmd(g),
		reconcileCmd(g), sandboxCmd(), devRedisCmd(), demoCmd(),
	)
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		switch c.Name() {
		case "help":
			c.Example = "  refundctl help bulk\n  refundctl bulk --help"
			c.Args = usageArgs(cobra.ArbitraryArgs)
		case "completion":
			completionExamples(c)
		}
	}
	return root
}

// completionExamples gives cobra's completion commands examples, as every
// command has.
func completionExamples(c *cobra.Command) {
	c.Example = "  refundctl completion bash > /etc/bash_completion.d/refundctl\n  source <(refundctl completion zsh)"
	c.Args = unknownCommand
	c.RunE = func(cmd *cobra.Command, args []string) error {
		return &usageError{errors.New("name a shell: bash, zsh, fish or powershell")}
	}
	for _, sh := range c.Commands() {
		switch sh.Name() {
		case "bash":
			sh.Example = "  source <(refundctl completion bash)\n  refundctl completion bash > /etc/bash_completion.d/refundctl"
		case "zsh":
			sh.Example = "  source <(refundctl completion zsh)\n  refundctl completion zsh > \"${fpath[1]}/_refundctl\""
		case "fish":
			sh.Example = "  refundctl completion fish | source\n  refundctl completion fish > ~/.config/fish/completions/refundctl.fish"
		case "powershell":
			sh.Example = "  refundctl completion powershell | Out-String | Invoke-Expression"
		}
		sh.Args = usageArgs(sh.Args)
	}
}

// version is the module version and VCS revision the binary was built
// from, as the Go toolchain recorded them.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown: built without module support)"
	}
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, at, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = ", modified"
			}
		}
	}
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		v += fmt.Sprintf(" (commit %s, %s%s)", rev, at, dirty)
	}
	return v + " " + bi.GoVersion
}

// globals are the flags every Redis-using command shares.
type globals struct {
	queue, prefix string
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// usageArgs makes an argument-count error a usage error (exit 2).
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	if check == nil {
		return nil
	}
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return &usageError{err}
		}
		return nil
	}
}

// exactID is the argument check of the commands that take one refund id.
func exactID(cmd *cobra.Command, args []string) error {
	switch len(args) {
	case 1:
		return nil
	case 0:
		return &usageError{errors.New("want a refund id")}
	}
	return &usageError{fmt.Errorf("want one refund id, got %d arguments", len(args))}
}

// joinExamples indents example lines for cobra's help.
func joinExamples(lines ...string) string {
	return "  " + strings.Join(lines, "\n  ")
}
