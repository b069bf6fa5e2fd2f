package enqueue

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/refundq/refundq/internal/durability"
	"github.com/refundq/refundq/internal/rediscfg"
)

// Open connects to the Redis at redisURL (redis://[user:password@]host:port/db
// or rediss:// for TLS) and returns a Client on it: one call for a producer,
// where New needs an asynq option and a go-redis client built separately.
// It pings Redis first, so a wrong address or password is an error here
// rather than on the first enqueue, then runs the Redis check every refundq
// process runs (a Redis that may lose what it acknowledges is refused, with
// what to do; REFUNDQ_SKIP_REDIS_CHECK and REFUNDQ_ACCEPT_REDIS_LOSS from
// the environment, or the AcceptRedisLoss option). Close releases
// everything Open made.
// Errors never repeat the URL, which may hold a password.
func Open(redisURL string, opts ...Option) (*Client, error) {
	rc, err := rediscfg.Parse(redisURL)
	if err != nil {
		// rediscfg's message names REDIS_URL; a library caller may not.
		return nil, errors.New("enqueue: the Redis URL is not a valid redis://, rediss:// or redis-sentinel:// URL")
	}
	rdb := rc.NewClient()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("enqueue: Redis at %s does not answer: %w", rc, err)
	}
	// A producer must not hand refunds to a Redis that may forget them: the
	// check every refundq process runs, with its environment
	// (REFUNDQ_SKIP_REDIS_CHECK for managed Redis hiding CONFIG,
	// REFUNDQ_ACCEPT_REDIS_LOSS to accept the loss).
	// The AcceptRedisLoss option says what the variable does.
	o := resolve(opts)
	getenv := os.Getenv
	if o.acceptLoss {
		getenv = acceptingLoss{}.getenv
	}
	p, err := durability.Require(ctx, rdb, getenv, logrus.StandardLogger())
	if err != nil {
		rdb.Close()
		return nil, fmt.Errorf("enqueue: Redis at %s: %w", rc, err)
	}
	c := newClient(rc.Asynq, rdb, o, durability.NewKeeperWith(rdb, p))
	c.owned = rdb
	return c, nil
}

// acceptingLoss is the environment of a producer that gave Open the
// AcceptRedisLoss option: REFUNDQ_ACCEPT_REDIS_LOSS reads "1".
type acceptingLoss struct{}

func (acceptingLoss) getenv(k string) string {
	if k == durability.AcceptLossEnv {
		return "1"
	}
	return os.Getenv(k)
}
