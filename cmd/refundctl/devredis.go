package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"

	"github.com/refundq/refundq/internal/durability"
	"github.com/refundq/refundq/internal/redisproc"
)

// devRedisListen is dev-redis's default address: a fixed port, so the
// walk-through's REDIS_URL is the same every time, beside (not on) the
// machine's own Redis at 6379.
const devRedisListen = "127.0.0.1:6380"

func devRedisCmd() *cobra.Command {
	var listen, dir, envFile string
	cmd := &cobra.Command{
		Use:   "dev-redis",
		Short: "Run a Redis configured as deploy/redis.conf ships it, for trying refundq out",
		Long: `Run redis-server in the foreground, configured as deploy/redis.conf ships it (appendonly yes,
appendfsync always, maxmemory-policy noeviction, maxmemory 256mb), on a loopback port: a Redis that passes
the check every refundq process runs at start, with nothing to skip and no shared server's configuration
to change. The walk-through in README.md ("The first hour") starts here; so does make redis.

It prints the REDIS_URL to use (also written to --env-file, for a shell to source). Its data and log stay
in --dir, kept across restarts (remove the directory to start empty). Ctrl-C or SIGTERM stops it cleanly;
if refundctl is killed outright, redis-server stops with it. Where redis-server is missing and apt-get is
there (running as root), it installs Debian's redis-server package first.`,
		Example: joinExamples(
			"refundctl dev-redis --env-file redis.env &   # then: . ./redis.env",
			"refundctl dev-redis --listen 127.0.0.1:0 --dir /tmp/refundq-redis"),
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			port, err := loopbackPort(listen)
			if err != nil {
				return err
			}
			if err := ensureRedisServer(cmd.Context(), cmd.ErrOrStderr()); err != nil {
				return err
			}
			abs, err := filepath.Abs(dir)
			if err != nil {
				return err
			}
			// One server per data directory: two redis-servers appending to
			// the same AOF interleave their writes, and the next rewrite by
			// either drops the other's.
			unlock, err := lockDir(abs)
			if err != nil {
				return err
			}
			defer unlock()
			o := redisproc.Shipped
			o.DieWithParent = true
			srv, err := redisproc.StartOnPort(abs, port, o)
			if errors.Is(err, redisproc.ErrPortInUse) {
				return fmt.Errorf("%s is in use: another dev-redis (then use it: . ./redis.env), or another "+
					"Redis or program. Stop it, or pick another port and a directory of its own: "+
					"--listen 127.0.0.1:6381 --dir .dev-redis-2 (port 0: any free port)", listen)
			}
			if err != nil {
				return err
			}
			defer srv.Stop()
			url := "redis://" + srv.Addr + "/0"
			// The check every refundq process runs, with nothing lifted
			// whatever this shell's environment says: what dev-redis is for.
			if err := passes(cmd.Context(), srv); err != nil {
				return fmt.Errorf("the server started in %s fails refundq's Redis check: %w", abs, err)
			}
			if envFile != "" {
				header := "# refundq dev Redis (refundctl dev-redis): source this file to use it"
				if err := writeEnvFile(envFile, header, []string{"REDIS_URL=" + url}); err != nil {
					return err
				}
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "refundq dev Redis at %s: configured as deploy/redis.conf ships it (appendonly yes, "+
				"appendfsync always, maxmemory-policy noeviction, maxmemory 256mb); it passes refundq's Redis check\n", url)
			fmt.Fprintf(out, "data and log in %s (kept across restarts; remove the directory to start empty)\n", abs)
			fmt.Fprintln(out, "export REDIS_URL="+url)
			if envFile != "" {
				fmt.Fprintf(out, "# the same line is in %s: . %s\n", envFile, sourceable(envFile))
			}
			fmt.Fprintln(out, "dev Redis ready; Ctrl-C (or SIGTERM) stops it")
			select {
			case <-cmd.Context().Done():
				srv.Stop()
				fmt.Fprintf(out, "dev Redis stopped; its data stays in %s\n", abs)
				return nil
			case <-srv.Exited():
				return fmt.Errorf("redis-server exited on its own (see %s)", filepath.Join(abs, "redis.log"))
			}
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", envOr("REFUNDQ_DEV_REDIS_LISTEN", devRedisListen), "loopback address to serve Redis on (env REFUNDQ_DEV_REDIS_LISTEN; port 0: any free port)")
	f.StringVar(&dir, "dir", ".dev-redis", "directory of the server's data (AOF) and log, created if missing")
	f.StringVar(&envFile, "env-file", "", "also write the REDIS_URL line to this file, for a shell to source")
	return cmd
}

// loopbackPort reads --listen: redis-server is started on 127.0.0.1 only.
func loopbackPort(listen string) (int, error) {
	host, p, err := net.SplitHostPort(listen)
	if err != nil {
		return 0, usagef("--listen %s: want 127.0.0.1:PORT", quote(listen))
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return 0, usagef("--listen %s: dev-redis serves on loopback only (127.0.0.1:PORT)", quote(listen))
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return 0, usagef("--listen %s: want 127.0.0.1:PORT", quote(listen))
	}
	return port, nil
}

// passes runs durability.Require on srv with an empty environment.
func passes(ctx context.Context, srv *redisproc.Server) error {
	c := srv.Client()
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	quiet := logrus.New()
	quiet.SetOutput(io.Discard)
	_, err := durability.Require(ctx, c, func(string) string { return "" }, quiet)
	return err
}

// ensureRedisServer finds redis-server, installing Debian's package with
// apt-get where it is missing and this runs as root (as .ci/redis-up
// does); elsewhere it says how to install it.
func ensureRedisServer(ctx context.Context, w io.Writer) error {
	if _, err := redisproc.Binary(); err == nil {
		return nil
	}
	if _, err := exec.LookPath("apt-get"); err != nil || os.Geteuid() != 0 {
		return errors.New("redis-server not found: install it (Debian and Ubuntu: sudo apt-get install " +
			"redis-server; macOS: brew install redis) and run dev-redis again")
	}
	fmt.Fprintln(w, "dev-redis: redis-server not found; installing Debian's redis-server package with apt-get")
	for _, args := range [][]string{{"update", "-qq"}, {"install", "-y", "-qq", "redis-server"}} {
		c := exec.CommandContext(ctx, "apt-get", args...)
		c.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		c.Stdout, c.Stderr = w, w
		if err := c.Run(); err != nil {
			return fmt.Errorf("apt-get %s: %w", args[0], err)
		}
	}
	_, err := redisproc.Binary()
	return err
}

// sourceable is path as a shell's . command takes it: a bare name would be
// looked up on PATH.
func sourceable(path string) string {
	if filepath.IsAbs(path) || filepath.Dir(path) != "." {
		return path
	}
	return "./" + path
}
