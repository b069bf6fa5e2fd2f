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
// rather than on the first enqueue. Close releases everything Open made.
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
	// A producer must not hand refunds to a Redis that may forget them
	// (REFUNDQ_SKIP_REDIS_CHECK=1 for managed Redis hiding CONFIG, and
	// development).
	if err := durability.Require(ctx, rdb, os.Getenv, logrus.StandardLogger()); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("enqueue: Redis at %s: %w", rc, err)
	}
	if os.Getenv(durability.AcceptLossEnv) == "1" {
		opts = append(opts, AcceptRedisLoss())
	}
	c := New(rc.Asynq, rdb, opts...)
	// What Redis promises is found now, so a Redis that promises nothing is
	// refused here rather than at the first enqueue.
	if _, err := c.keeper.Promise(ctx); err != nil {
		c.Close()
		rdb.Close()
		return nil, fmt.Errorf("enqueue: Redis at %s: %w", rc, err)
	}
	c.owned = rdb
	return c, nil
}
