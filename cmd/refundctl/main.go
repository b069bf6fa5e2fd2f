// Command refundctl enqueues refunds (one, or a bulk file), shows their
// status, runs the provider sandbox, and runs the demo.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/refundq/refundq/enqueue"
	"github.com/refundq/refundq/internal/rediscfg"
	"github.com/refundq/refundq/providers/catalog"
)

const usage = `refundctl: enqueue refunds and follow them.

Usage:
  refundctl enqueue --id ID --provider P --order O [--transaction T] --amount 403.33 --currency MXN [--reason R] [--meta k=v]...
  refundctl bulk [--dry-run] [--format auto|csv|jsonl] [--concurrency N] FILE   (FILE "-" is stdin)
  refundctl status [--json] ID
  refundctl list [--state needs_review] [--limit N]
  refundctl settle ID --as succeeded|failed --note TEXT [--ref REF]   close a needs_review refund by hand
  refundctl sandbox [--listen 127.0.0.1:8080]     run the provider simulators
  refundctl demo [-v]                             everything in one process, embedded Redis unless REDIS_URL is set

Redis comes from REDIS_URL (default redis://127.0.0.1:6379/0). Exit status: 0 ok, 1 failure, 2 invalid input.
`

// exitError carries an exit status out of a subcommand.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		code := 1
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		}
		if err.Error() != "" {
			fmt.Fprintln(os.Stderr, "refundctl:", err)
		}
		os.Exit(code)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return &exitError{2, errors.New("no command")}
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "enqueue":
		return runEnqueue(ctx, rest, stdout)
	case "bulk":
		return runBulk(ctx, rest, stdout, stderr)
	case "status":
		return runStatus(ctx, rest, stdout)
	case "list":
		return runList(ctx, rest, stdout)
	case "settle":
		return runSettle(ctx, rest, stdout)
	case "sandbox":
		return runSandbox(ctx, rest, stdout)
	case "demo":
		return runDemo(ctx, rest, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return &exitError{2, fmt.Errorf("unknown command %q", cmd)}
	}
}

// commonFlags are the flags every Redis-using subcommand takes.
type commonFlags struct {
	queue, prefix string
	checkConfig   bool
}

func (c *commonFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.queue, "queue", envOr("REFUNDQ_QUEUE", "default"), "asynq queue")
	fs.StringVar(&c.prefix, "prefix", envOr("REFUNDQ_PREFIX", "refundq:"), "refund record key prefix")
	fs.BoolVar(&c.checkConfig, "check-config", false, "also require the provider's credentials in this environment, as a worker would")
}

// client connects to REDIS_URL. Producers check provider names and each
// provider's own rules; they need the provider's credentials only with
// --check-config, since workers, not producers, hold them. A provider whose
// credentials are set here anyway is asked what it can tell before a refund
// is accepted (Fatora: a partial amount is refused at once).
func (c *commonFlags) client() (*enqueue.Client, func(), error) {
	url := envOr("REDIS_URL", "redis://127.0.0.1:6379/0")
	rc, err := rediscfg.Parse(url)
	if err != nil {
		return nil, nil, err
	}
	rdb := rc.NewClient()
	reg := catalog.FromEnv(os.Getenv)
	if !c.checkConfig {
		reg = reg.RulesOnly()
	}
	cl := enqueue.New(rc.Asynq, rdb, enqueue.WithQueue(c.queue), enqueue.WithPrefix(c.prefix), enqueue.WithRegistry(reg))
	return cl, func() { cl.Close(); rdb.Close() }, nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// flagError makes a flag parse error exit with status 2.
func flagError(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return &exitError{0, errors.New("")}
	}
	return &exitError{2, err}
}
