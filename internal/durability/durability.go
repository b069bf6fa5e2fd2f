// Package durability holds refundq to the Redis it needs: one that keeps
// what it acknowledges. Check (and Require, its start-up form) refuses a
// server without AOF or with eviction; WaitDurable waits until the writes
// made so far have reached disk or a replica, as far as the server can tell.
package durability

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"
)

// SkipEnv names the variable that, set to "1", turns Require's check into a
// warning: for managed Redis that hides CONFIG (its settings are then the
// operator's word, confirmed with the provider).
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

// Check returns nil when the server refundq writes to runs with
// `appendonly yes` and `maxmemory-policy noeviction` and is a primary, and
// otherwise an error that says what to set. Through a Sentinel URL it checks
// the primary the Sentinels name now; its replicas need the same settings,
// since one of them becomes the primary on failover, and the check runs
// again at every start.
func Check(ctx context.Context, rdb redis.UniversalClient) error {
	s, err := Inspect(ctx, rdb)
	if errors.Is(err, ErrConfigHidden) {
		return fmt.Errorf("%w. refundq needs appendonly yes and maxmemory-policy noeviction; on a managed "+
			"Redis that hides CONFIG, confirm both with the provider, then set %s=1 to start without this check", err, SkipEnv)
	}
	if err != nil {
		return err
	}
	return s.verdict()
}

func (s Settings) verdict() error {
	if s.Role != "" && s.Role != "master" {
		return fmt.Errorf("Redis answers as a replica (role %s, read-only): point REDIS_URL at the primary, "+
			"or name the Sentinels with redis-sentinel://…?master=NAME so the primary is found after a failover", s.Role)
	}
	var wrong []string
	if s.AppendOnly != "yes" {
		wrong = append(wrong, fmt.Sprintf("appendonly is %q, want yes (refunds and leases Redis acknowledged must survive a restart)", s.AppendOnly))
	}
	if s.MaxMemoryPolicy != "noeviction" {
		wrong = append(wrong, fmt.Sprintf("maxmemory-policy is %q, want noeviction (a refund record or an asynq lease must "+
			"never be evicted; a full Redis must refuse writes instead)", s.MaxMemoryPolicy))
	}
	if len(wrong) == 0 {
		return nil
	}
	return fmt.Errorf("Redis is not configured to keep refunds: %s. Set them in redis.conf (as deploy/redis.conf "+
		"does) or at run time with CONFIG SET appendonly yes, CONFIG SET maxmemory-policy noeviction and CONFIG REWRITE. "+
		"With Sentinel this is the primary's configuration: give every replica the same, since one becomes the primary "+
		"on failover. On a managed Redis, set them with the provider (and %s=1 if it hides CONFIG)", strings.Join(wrong, "; "), SkipEnv)
}

// Require is Check for a process about to start: it returns Check's error,
// unless getenv(SkipEnv) is "1", in which case it logs a warning and returns
// nil. A passing check is logged at info level with the settings found, and
// settings that are allowed but weaken the guarantees are logged as
// warnings.
func Require(ctx context.Context, rdb redis.UniversalClient, getenv func(string) string, log logrus.FieldLogger) error {
	if getenv(SkipEnv) == "1" {
		log.WithField("env", SkipEnv).Warn("Redis persistence check skipped: refundq's guarantees rest on " +
			"appendonly yes and maxmemory-policy noeviction, which nobody has checked on this server")
		return nil
	}
	s, err := Inspect(ctx, rdb)
	if err != nil {
		if errors.Is(err, ErrConfigHidden) {
			return Check(ctx, rdb) // the message that says what to do
		}
		return err
	}
	if err := s.verdict(); err != nil {
		return err
	}
	fields := logrus.Fields{"redis_version": s.Version, "appendfsync": s.AppendFsync, "maxmemory": s.MaxMemory,
		"replicas": s.Replicas, "min_replicas_to_write": s.MinReplicas}
	log.WithFields(fields).Info("Redis keeps what it acknowledges (appendonly yes, noeviction)")
	if s.MaxMemory == 0 {
		log.WithFields(fields).Warn("Redis has no maxmemory: noeviction only takes effect at a limit; without one, " +
			"a full machine ends Redis (out of memory) instead of refusing writes")
	}
	if s.AppendFsync == "no" {
		log.WithFields(fields).Warn("appendfsync no: the operating system decides when the AOF reaches disk, " +
			"and a machine crash can lose many seconds of refunds; use everysec or always")
	}
	return nil
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
