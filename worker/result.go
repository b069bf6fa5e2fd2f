package worker

import (
	"context"
	"encoding/json"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/tasks"
)

// A run leaves the state it reached (and the provider's reference) as its
// task's result, which asynqmon shows. The record stays the truth: the
// result is written with the refund's outcome when the store and asynq
// share a Redis database (one round trip less a refund), else after it,
// best effort.

func (h *run) resultValue(state store.State, providerRef string) []byte {
	if providerRef == "" {
		providerRef = h.rec.ProviderRef // kept by the record when the answer named none
	}
	b, _ := json.Marshal(struct {
		State       store.State `json:"state"`
		ProviderRef string      `json:"provider_ref,omitempty"`
	}{state, providerRef})
	return b
}

// taskResult is the result to write with the outcome; zero when it is
// written on its own (writeResult), or not at all.
func (h *run) taskResult(ctx context.Context, state store.State, providerRef string) store.TaskResult {
	if h.result == nil || !h.resultsInStore {
		return store.TaskResult{}
	}
	// The task's own queue: the handler may be mounted on a server of
	// other queues (Worker.Handler).
	queue, ok := asynq.GetQueueName(ctx)
	if !ok {
		return store.TaskResult{}
	}
	return store.TaskResult{Key: tasks.ResultKey(queue, h.result.TaskID()), Value: h.resultValue(state, providerRef)}
}

// writeResult writes the task's result through asynq.
func (h *run) writeResult(state store.State, providerRef string) {
	if h.result == nil {
		return
	}
	if _, err := h.result.Write(h.resultValue(state, providerRef)); err != nil {
		h.log.WithError(err).Warn("could not write the task's result")
	}
}

// sameRedis reports whether rdb (the store's) and the client asynq makes
// of opt reach the same Redis database: a value one writes, the other reads.
func sameRedis(ctx context.Context, rdb redis.UniversalClient, opt asynq.RedisConnOpt, prefix string) bool {
	c, ok := opt.MakeRedisClient().(redis.UniversalClient)
	if !ok {
		return false
	}
	defer c.Close()
	nonce := uuid.NewString()
	key := prefix + "probe:" + nonce
	if rdb.Set(ctx, key, nonce, time.Minute).Err() != nil {
		return false
	}
	defer rdb.Del(ctx, key)
	got, err := c.Get(ctx, key).Result()
	return err == nil && got == nonce
}
