// Package rediscfg turns REDIS_URL into the two client configurations refundq
// needs, asynq's and go-redis's, so that both always reach the same server
// and database: a single server (redis://, rediss://) or the primary that a
// set of Redis Sentinels names (redis-sentinel://).
package rediscfg

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// Forms of REDIS_URL that Parse accepts, for error messages and docs.
const Forms = "redis://[user:password@]host:port/db, rediss://… (TLS), or " +
	"redis-sentinel://[user:password@]host1:port1,host2:port2,host3:port3/db?master=NAME"

// DefaultSentinelPort is the port of a Sentinel address given without one.
const DefaultSentinelPort = "26379"

// Config is one parsed REDIS_URL: asynq's connection option and go-redis's,
// from the same parse.
type Config struct {
	// Asynq is asynq's connection option: asynq.RedisFailoverClientOpt for a
	// redis-sentinel:// URL, asynq.RedisClientOpt otherwise.
	Asynq asynq.RedisConnOpt

	single   *redis.Options         // redis://, rediss://
	failover *redis.FailoverOptions // redis-sentinel://
}

// NewClient returns a go-redis client for refundq's own keys: a failover
// client (it asks the Sentinels for the primary, and follows a failover) for
// redis-sentinel://, a plain client otherwise. The caller closes it.
func (c Config) NewClient() redis.UniversalClient {
	if c.failover != nil {
		o := *c.failover
		o.SentinelAddrs = append([]string(nil), o.SentinelAddrs...)
		return redis.NewFailoverClient(&o)
	}
	o := *c.single
	return redis.NewClient(&o)
}

// Sentinel reports whether the URL named Sentinels rather than one server.
func (c Config) Sentinel() bool { return c.failover != nil }

// String describes where the configuration points, for logs; it never holds
// a user name or a password.
func (c Config) String() string {
	if c.failover != nil {
		return fmt.Sprintf("sentinel master %q via %s, db %d",
			c.failover.MasterName, strings.Join(c.failover.SentinelAddrs, ","), c.failover.DB)
	}
	return fmt.Sprintf("%s, db %d", c.single.Addr, c.single.DB)
}

// Parse reads REDIS_URL in one of three forms:
//
//	redis://[user:password@]host:port/db         one server
//	rediss://[user:password@]host:port/db        one server over TLS
//	redis-sentinel://[user:password@]host1:port1,host2:port2,host3:port3/db?master=mymaster
//
// For redis:// and rediss://, go-redis's query parameters (dial_timeout,
// read_timeout, pool_size, …) are accepted as redis.ParseURL documents them.
//
// For redis-sentinel://, the hosts are the Sentinels (port 26379 when
// omitted), master (required) is the name they monitor, and the user and
// password are those of the primary and its replicas: the server that holds
// the data. Sentinels that require a password of their own take it from the
// query parameters sentinel_username and sentinel_password. Nothing else is
// accepted in the query, so a misspelt parameter is an error, not ignored.
// TLS to Sentinels is not supported by this form.
//
// An error never repeats the URL or any part of the user information, which
// may hold a password.
func Parse(rawURL string) (Config, error) {
	scheme, _, ok := strings.Cut(rawURL, "://")
	if !ok {
		return Config{}, fmt.Errorf("REDIS_URL has no scheme: want %s", Forms)
	}
	switch strings.ToLower(scheme) {
	case "redis", "rediss", "unix":
		o, err := redis.ParseURL(rawURL)
		if err != nil {
			return Config{}, fmt.Errorf("REDIS_URL is not a valid %s:// URL (%s)", scheme, redactedReason(err))
		}
		return FromOptions(o), nil
	case "redis-sentinel":
		return parseSentinel(rawURL)
	default:
		return Config{}, fmt.Errorf("REDIS_URL scheme %q is not supported: want %s", scheme, Forms)
	}
}

// FromOptions is the Config for a go-redis client configuration of one server
// (the demo's embedded Redis, a test's server).
func FromOptions(o *redis.Options) Config {
	cp := *o
	return Config{
		Asynq: asynq.RedisClientOpt{
			Network: o.Network, Addr: o.Addr, Username: o.Username, Password: o.Password,
			DB: o.DB, TLSConfig: o.TLSConfig, DialTimeout: o.DialTimeout,
			ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout, PoolSize: o.PoolSize,
		},
		single: &cp,
	}
}

func parseSentinel(rawURL string) (Config, error) {
	// url.Parse rejects a comma-separated host list with ports ("invalid
	// port"), so the host list is cut out by hand and the rest parsed with
	// a placeholder host.
	rest := rawURL[len("redis-sentinel://"):]
	hostsEnd := strings.IndexAny(rest, "/?#")
	if hostsEnd < 0 {
		hostsEnd = len(rest)
	}
	authority, tail := rest[:hostsEnd], rest[hostsEnd:]
	userinfo, hosts := "", authority
	if i := strings.LastIndex(authority, "@"); i >= 0 {
		userinfo, hosts = authority[:i+1], authority[i+1:]
	}
	u, err := url.Parse("redis-sentinel://" + userinfo + "sentinels" + tail)
	if err != nil {
		return Config{}, fmt.Errorf("REDIS_URL is not a valid redis-sentinel:// URL (%s)", redactedReason(err))
	}
	if u.Fragment != "" {
		return Config{}, fmt.Errorf("REDIS_URL: redis-sentinel:// takes the master name as ?master=NAME, not after #")
	}

	var addrs []string
	// Errors name an address by its position, not its text: a password with
	// an unescaped "/" would end up here.
	for i, h := range strings.Split(hosts, ",") {
		if h == "" {
			return Config{}, fmt.Errorf("REDIS_URL: empty Sentinel address in the host list")
		}
		host, port, err := net.SplitHostPort(h)
		if err != nil {
			host, port = h, DefaultSentinelPort // no port given
			if strings.Contains(strings.Trim(h, "[]"), ":") && !strings.HasPrefix(h, "[") {
				return Config{}, fmt.Errorf("REDIS_URL: Sentinel address %d: write IPv6 addresses in brackets", i+1)
			}
			host = strings.Trim(host, "[]")
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || host == "" {
			return Config{}, fmt.Errorf("REDIS_URL: Sentinel address %d is not host:port", i+1)
		}
		addrs = append(addrs, net.JoinHostPort(host, port))
	}

	db := 0
	if p := strings.Trim(u.Path, "/"); p != "" {
		db, err = strconv.Atoi(p)
		if err != nil || db < 0 {
			return Config{}, fmt.Errorf("REDIS_URL: the database (the path) is not a number")
		}
	}

	q := u.Query()
	for k := range q {
		switch k {
		case "master", "sentinel_username", "sentinel_password":
		default:
			return Config{}, fmt.Errorf("REDIS_URL: unknown parameter %q for redis-sentinel:// (known: master, sentinel_username, sentinel_password)", k)
		}
	}
	master := q.Get("master")
	if master == "" {
		return Config{}, fmt.Errorf("REDIS_URL: redis-sentinel:// needs ?master=NAME, the name the Sentinels monitor")
	}

	o := &redis.FailoverOptions{
		MasterName:       master,
		SentinelAddrs:    addrs,
		SentinelUsername: q.Get("sentinel_username"),
		SentinelPassword: q.Get("sentinel_password"),
		DB:               db,
	}
	if u.User != nil {
		o.Username = u.User.Username()
		o.Password, _ = u.User.Password()
	}
	return Config{
		Asynq: asynq.RedisFailoverClientOpt{
			MasterName: o.MasterName, SentinelAddrs: append([]string(nil), addrs...),
			SentinelUsername: o.SentinelUsername, SentinelPassword: o.SentinelPassword,
			Username: o.Username, Password: o.Password, DB: o.DB,
		},
		failover: o,
	}, nil
}

// redactedReason keeps a parse error's kind without the parts of the URL it
// quotes: net/url repeats the input, and a password holding an unescaped "/"
// or "@" ends up in the host or path that go-redis quotes back.
func redactedReason(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return "malformed URL: percent-encode special characters in the user name and password"
	}
	msg := strings.TrimPrefix(err.Error(), "redis: ")
	for _, kind := range []string{"invalid URL path", "invalid database number", "invalid URL scheme"} {
		if strings.HasPrefix(msg, kind) {
			return kind
		}
	}
	return msg
}
