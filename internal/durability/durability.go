// Package durability holds refundq to the Redis it needs: one that keeps
// what it acknowledges. Require is the one check every process that writes
// refunds runs at start, and Refusal its one message; Ready repeats the
// settings part for a readiness probe; WaitDurable and Promise.Wait wait
// until the writes made so far have reached disk or a replica, as far as
// the server can tell.
package durability

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"
)

// SkipEnv names the variable that, set to "1", skips the check of the
// server's settings (appendonly, maxmemory-policy): for a managed Redis that
// hides CONFIG, whose settings are then the operator's word, confirmed with
// the provider. Every start logs it as a warning. What the server can
// promise about each write (WAITAOF, a replica) is still found.
const SkipEnv = "REFUNDQ_SKIP_REDIS_CHECK"

// Settings are what the server says about how it keeps data.
type Settings struct {
	Version         string // redis_version
	Role            string // "master" or "slave"
	Replicas        int    // connected_slaves
	AppendOnly      string // appendonly: "yes" or "no"
	AppendFsync     string // appendfsync: "always", "everysec", "no"
	MaxMemoryPolicy string // maxmemory-policy
	MaxMemory       int64  // maxmemory in bytes; 0 is no limit
	MinReplicas     int    // min-replicas-to-write
}

// ErrConfigHidden is returned, wrapped, when the server will not show its
// configuration (CONFIG renamed or denied, as managed Redis services do).
var ErrConfigHidden = errors.New("Redis does not show its configuration (CONFIG GET is renamed or denied)")

// Inspect reads the settings through rdb. With a Sentinel failover client
// they are the primary's: the server refundq writes to.
func Inspect(ctx context.Context, rdb redis.UniversalClient) (Settings, error) {
	var s Settings
	repl, err := info(ctx, rdb, "replication")
	if err != nil {
		return s, fmt.Errorf("redis: INFO replication: %w", err)
	}
	server, err := info(ctx, rdb, "server")
	if err != nil {
		return s, fmt.Errorf("redis: INFO server: %w", err)
	}
	s.Version, s.Role = server["redis_version"], repl["role"]
	s.Replicas, _ = strconv.Atoi(repl["connected_slaves"])

	params := []string{"appendonly", "appendfsync", "maxmemory-policy", "maxmemory", "min-replicas-to-write"}
	got := map[string]string{}
	for _, p := range params {
		m, err := rdb.ConfigGet(ctx, p).Result()
		if err != nil {
			var rerr redis.Error
			if errors.As(err, &rerr) {
				return s, fmt.Errorf("%w: %v", ErrConfigHidden, err)
			}
			return s, fmt.Errorf("redis: CONFIG GET %s: %w", p, err)
		}
		v, ok := m[p]
		if !ok {
			return s, fmt.Errorf("%w: no value for %s", ErrConfigHidden, p)
		}
		got[p] = v
	}
	s.AppendOnly, s.AppendFsync, s.MaxMemoryPolicy = got["appendonly"], got["appendfsync"], got["maxmemory-policy"]
	s.MaxMemory, _ = strconv.ParseInt(got["maxmemory"], 10, 64)
	s.MinReplicas, _ = strconv.Atoi(got["min-replicas-to-write"])
	return s, nil
}

// Refusal is the one error every refundq process gives for a Redis that
// does not keep what it acknowledges: what is wrong with it, then the same
// choices whichever process refuses.
type Refusal struct {
	// Problems say what is wrong, each with what it costs.
	Problems []string
	causes   []error // ErrConfigHidden, ErrNoPromise: for errors.Is
}

// Choices end every Refusal. A shared server's configuration is not the
// first thing to change: a Redis of one's own (dev-redis) is.
const Choices = "Use a Redis configured as deploy/redis.conf ships it (appendonly yes, appendfsync always, " +
	"maxmemory-policy noeviction); to try refundq out, `refundctl dev-redis` starts one. On a managed Redis that " +
	"hides CONFIG, confirm those settings with the provider and set " + SkipEnv + "=1 (refundq then confirms each " +
	"write with WAITAOF, Redis 7.2 or later, or a replica). Where Redis has those settings but cannot confirm a " +
	"write (before 7.2, without appendfsync always or a replica), " + AcceptLossEnv + "=1 runs anyway, knowing " +
	"that a Redis crash can make refundq pay a refund twice; it does not lift the settings"

func (r *Refusal) Error() string {
	return "Redis does not keep what refundq writes: " + strings.Join(r.Problems, "; ") + ". " + Choices
}

// Unwrap lets errors.Is find ErrConfigHidden and ErrNoPromise.
func (r *Refusal) Unwrap() []error { return r.causes }

// add records a problem once (the settings and the promise can name the
// same one).
func (r *Refusal) add(problem string, cause error) {
	if cause != nil && !errors.Is(r, cause) {
		r.causes = append(r.causes, cause)
	}
	if problem != "" && !slices.Contains(r.Problems, problem) {
		r.Problems = append(r.Problems, problem)
	}
}

func (r *Refusal) empty() bool { return len(r.Problems) == 0 }

// Require is the one Redis check of every refundq process that writes
// refunds or guards money (refund-worker, refund-api, refundctl's writing
// commands, enqueue.Open), run at start: the server's settings (unless
// getenv(SkipEnv) is "1", logged as a warning) and what it promises about a
// write it acknowledged (Detect). A server that fails either is refused
// with a *Refusal. getenv(AcceptLossEnv) == "1" lifts only the second: a
// server with the right settings that cannot confirm a write (a lone Redis
// before 7.2 with appendfsync everysec) runs, the risk logged as an error.
// It never lifts the settings: an operator who accepted losing the last
// second of writes in a machine crash has not accepted losing every refund
// at a restart (no AOF) or under memory pressure (eviction). A replica, or
// a server that does not answer, is refused whatever the environment says.
// The Promise returned is what writes that guard money wait for
// (NewKeeperWith). A pass is logged at debug level, with warnings for
// settings that are allowed but weaken the guarantees.
func Require(ctx context.Context, rdb redis.UniversalClient, getenv func(string) string, log logrus.FieldLogger) (Promise, error) {
	skip, accept := getenv(SkipEnv) == "1", getenv(AcceptLossEnv) == "1"
	ref := &Refusal{}
	var s Settings
	known, settingsFailed := false, false
	if skip {
		log.WithField("env", SkipEnv).Warn("Redis settings not checked (" + SkipEnv + "=1): refundq's guarantees " +
			"rest on appendonly yes and maxmemory-policy noeviction, taken on the operator's word")
	} else {
		var err error
		if s, known, err = settings(ctx, rdb, ref); err != nil {
			return Promise{}, err
		}
		settingsFailed = !ref.empty()
	}
	p, seen, err := detect(ctx, rdb)
	if err != nil {
		return p, err
	}
	if !p.Durable() {
		ref.add(seen.problem(), ErrNoPromise)
	}
	if ref.empty() {
		fields := logrus.Fields{"durability": p.String(), "redis_version": seen.version, "replicas": p.Replicas}
		if known {
			fields["appendfsync"], fields["maxmemory"], fields["min_replicas_to_write"] = s.AppendFsync, s.MaxMemory, s.MinReplicas
		}
		// Debug: a daemon says what Redis promises in its start line, and
		// a command's answer is its own output.
		log.WithFields(fields).Debug("Redis keeps what it acknowledges")
		if known && s.MaxMemory == 0 {
			log.WithFields(fields).Warn("Redis has no maxmemory: noeviction only takes effect at a limit; without one, " +
				"a full machine ends Redis (out of memory) instead of refusing writes")
		}
		if known && s.AppendFsync == "no" {
			log.WithFields(fields).Warn("appendfsync no: the operating system decides when the AOF reaches disk, " +
				"and a machine crash can lose many seconds of refunds; use everysec or always")
		}
		return p, nil
	}
	if !accept || settingsFailed {
		return p, ref
	}
	logAccepted(log, strings.Join(ref.Problems, "; "))
	p.Accepted = true
	return p, nil
}

// Ready is Require's check of the settings for a readiness probe, repeated
// while the process runs (a Redis switched to appendonly no or to eviction
// takes the process out of service): the same environment, nothing logged,
// nothing written. AcceptLossEnv does not lift it, as in Require.
func Ready(ctx context.Context, rdb redis.UniversalClient, getenv func(string) string) error {
	if getenv(SkipEnv) == "1" {
		return nil
	}
	ref := &Refusal{}
	if _, _, err := settings(ctx, rdb, ref); err != nil {
		return err
	}
	if ref.empty() {
		return nil
	}
	return ref
}

// settings reads the server's settings into ref's problems; known is false
// when the server hides them. A replica is an error of its own: none of the
// Refusal's choices makes one writable.
func settings(ctx context.Context, rdb redis.UniversalClient, ref *Refusal) (s Settings, known bool, err error) {
	s, err = Inspect(ctx, rdb)
	if errors.Is(err, ErrConfigHidden) {
		ref.add("it does not show its configuration (CONFIG GET is renamed or denied), so appendonly and "+
			"maxmemory-policy cannot be checked", ErrConfigHidden)
		return s, false, nil
	}
	if err != nil {
		return s, false, err
	}
	if s.Role != "" && s.Role != "master" {
		return s, true, fmt.Errorf("Redis answers as a replica (role %s, read-only): point REDIS_URL at the primary, "+
			"or name the Sentinels with redis-sentinel://…?master=NAME so the primary is found after a failover", s.Role)
	}
	if s.AppendOnly != "yes" {
		ref.add(appendOnlyProblem(s.AppendOnly), nil)
	}
	if s.MaxMemoryPolicy != "noeviction" {
		ref.add(fmt.Sprintf("maxmemory-policy is %q: a full Redis evicts refund records and asynq leases instead "+
			"of refusing writes", s.MaxMemoryPolicy), nil)
	}
	return s, true, nil
}

func appendOnlyProblem(v string) string {
	return fmt.Sprintf("appendonly is %q: a restart loses every refund and lease it acknowledged", v)
}

func info(ctx context.Context, rdb redis.UniversalClient, section string) (map[string]string, error) {
	text, err := rdb.Info(ctx, section).Result()
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			m[k] = v
		}
	}
	return m, nil
}
