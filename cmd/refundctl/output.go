package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"

	"github.com/refundq/refundq/internal/durability"
	"github.com/refundq/refundq/internal/rediscfg"
	"github.com/refundq/refundq/internal/store"
)

// output is the -o table|json and --json flags of a command that prints
// records.
type output struct {
	format string
	json   bool
}

func (o *output) register(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&o.format, "output", "o", "table", "output format: table or json")
	cmd.Flags().BoolVar(&o.json, "json", false, "print JSON (same as -o json)")
	cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"table", "json"}, cobra.ShellCompDirectiveNoFileComp))
}

// isJSON reports whether JSON was asked for, or a usage error for an
// unknown format.
func (o *output) isJSON() (bool, error) {
	switch strings.ToLower(o.format) {
	case "table", "":
		return o.json, nil
	case "json":
		return true, nil
	}
	return false, usagef("--output %s: want table or json", quote(o.format))
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// redisURL is REDIS_URL or the local default.
func redisURL() string { return envOr("REDIS_URL", "redis://127.0.0.1:6379/0") }

// openStore connects to REDIS_URL for the commands that read records; close
// releases the connection. A write through it waits as Redis promises,
// asked at the first write.
func (g *globals) openStore() (*store.Store, func(), error) {
	rc, err := rediscfg.Parse(redisURL())
	if err != nil {
		return nil, nil, err
	}
	rdb := rc.NewClient()
	// A settle is a final state: it waits until Redis keeps it, like every
	// write that guards money (reads never ask).
	keeper := durability.NewKeeper(rdb, os.Getenv(durability.AcceptLossEnv) == "1", logrus.StandardLogger())
	return store.New(rdb, g.prefix).WithQueue(g.queue).WithDurability(keeper.Wait), func() { rdb.Close() }, nil
}

// openWritableStore is openStore for the commands that write what guards
// money (settle, retry): the Redis check every refundq process runs comes
// first, with its one message, and each write then waits as Redis promises.
func (g *globals) openWritableStore(ctx context.Context) (*store.Store, func(), error) {
	rc, err := rediscfg.Parse(redisURL())
	if err != nil {
		return nil, nil, err
	}
	rdb := rc.NewClient()
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	p, err := durability.Require(cctx, rdb, os.Getenv, logrus.StandardLogger())
	cancel()
	if err != nil {
		rdb.Close()
		return nil, nil, fmt.Errorf("Redis at %s: %w", rc, err)
	}
	keeper := durability.NewKeeperWith(rdb, p)
	return store.New(rdb, g.prefix).WithQueue(g.queue).WithDurability(keeper.Wait), func() { rdb.Close() }, nil
}

// oneLine folds a message onto one line for a table cell.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
