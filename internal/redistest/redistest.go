// Package redistest gives each test its own corner of a real Redis server: a
// database (15 unless REFUNDQ_TEST_REDIS_DB says otherwise), a key prefix
// and an asynq queue name nobody else uses, removed again when the test ends.
// It never flushes: the server may be shared.
package redistest

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// Env is one test's slice of Redis.
type Env struct {
	Client *redis.Client
	Asynq  asynq.RedisClientOpt
	Prefix string // refundq key prefix, e.g. "t-1a2b3c:"
	Queue  string // asynq queue name
}

// Addr is the Redis server the tests use: $REFUNDQ_TEST_REDIS_ADDR or 127.0.0.1:6379.
func Addr() string {
	if a := os.Getenv("REFUNDQ_TEST_REDIS_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:6379"
}

// DB is the database number the tests use.
func DB() int {
	if s := os.Getenv("REFUNDQ_TEST_REDIS_DB"); s != "" {
		if n, err := strconv.Atoi(s); err == nil {
			return n
		}
	}
	return 15
}

// New connects to the test Redis and registers clean-up of everything the
// test's prefix and queue created. It fails the test if Redis does not answer.
func New(t testing.TB) *Env {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: Addr(), DB: DB()})
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("redistest: no Redis at %s (start one, or set REFUNDQ_TEST_REDIS_ADDR): %v", Addr(), err)
	}
	id := strings.ReplaceAll(uuid.NewString(), "-", "")[:12]
	e := &Env{
		Client: rdb,
		Asynq:  asynq.RedisClientOpt{Addr: Addr(), DB: DB()},
		Prefix: "t-" + id + ":",
		Queue:  "t-" + id,
	}
	t.Cleanup(func() {
		ctx := context.Background()
		for _, pattern := range []string{e.Prefix + "*", "asynq:{" + e.Queue + "}*"} {
			// A page of keys per round trip: a test may leave 100,000s.
			for cursor := uint64(0); ; {
				keys, next, err := rdb.Scan(ctx, cursor, pattern, 1000).Result()
				if err != nil {
					break
				}
				if len(keys) > 0 {
					rdb.Unlink(ctx, keys...)
				}
				if cursor = next; cursor == 0 {
					break
				}
			}
		}
		rdb.SRem(ctx, "asynq:queues", e.Queue)
		rdb.Close()
	})
	return e
}

// String describes the environment for failure messages.
func (e *Env) String() string { return fmt.Sprintf("redis %s db %d prefix %s", Addr(), DB(), e.Prefix) }
