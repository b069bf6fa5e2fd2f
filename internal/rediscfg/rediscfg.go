// Package rediscfg turns REDIS_URL into the two client configurations refundq
// needs: asynq's and go-redis's, pointing at the same server and database.
package rediscfg

import (
	"fmt"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// Parse reads a redis:// or rediss:// URL (user, password, host, port, /db).
// The error never repeats the URL, which may hold a password.
func Parse(url string) (asynq.RedisClientOpt, *redis.Options, error) {
	o, err := redis.ParseURL(url)
	if err != nil {
		return asynq.RedisClientOpt{}, nil, fmt.Errorf("REDIS_URL is not a valid redis:// URL")
	}
	return FromOptions(o), o, nil
}

// FromOptions returns asynq's view of go-redis options.
func FromOptions(o *redis.Options) asynq.RedisClientOpt {
	return asynq.RedisClientOpt{
		Network: o.Network, Addr: o.Addr, Username: o.Username, Password: o.Password,
		DB: o.DB, TLSConfig: o.TLSConfig,
	}
}
