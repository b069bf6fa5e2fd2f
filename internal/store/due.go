package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// The due index orders every open refund by when the recoverer should next
// make sure a task drives it. Its times are on Redis's clock (a lease's Now,
// or TIME inside a script): workers whose clocks disagree still agree on what
// is overdue.

// claimDueScript: KEYS due index; ARGV limit, hold ms. Takes up to limit
// refunds whose due time has passed and pushes each back by hold in the same
// step: recoverers on several workers share a backlog instead of each
// checking all of it, and a recoverer that dies mid-pass leaves each refund
// it took due again after hold. Returns {now ms, ids}.
var claimDueScript = newScript(`
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local later = string.format('%d', now + tonumber(ARGV[2]))
for _, id in ipairs(ids) do
  redis.call('ZADD', KEYS[1], 'XX', later, id)
end
return {string.format('%d', now), ids}
`)

// postponeScript: KEYS due index; ARGV id, ms from now. Only a refund still
// in the index (still open) is pushed back.
var postponeScript = newScript(`
local t = redis.call('TIME')
return redis.call('ZADD', KEYS[1], 'XX', string.format('%d', t[1] * 1000 + math.floor(t[2] / 1000) + tonumber(ARGV[2])), ARGV[1])
`)

// Overdue is what ClaimOverdue took.
type Overdue struct {
	Records []Record
	// Bad names the refunds whose record cannot be read (an amount or
	// metadata that does not parse), with why: skipped, not fatal to the
	// rest.
	Bad map[string]error
}

// ClaimOverdue takes up to limit open refunds whose due time has passed and
// pushes each back by hold: the caller makes sure each has a task, and
// postpones or closes it for what it found; a refund it does not get to is
// due again after hold.
func (s *Store) ClaimOverdue(ctx context.Context, limit int, hold time.Duration) (Overdue, error) {
	res, err := claimDueScript.Run(ctx, s.rdb, []string{s.dueKey()}, limit, hold.Milliseconds()).Slice()
	if err != nil {
		return Overdue{}, fmt.Errorf("store: overdue refunds: %w", err)
	}
	var ids []string
	if list, ok := res[1].([]any); ok {
		for _, v := range list {
			if id, ok := v.(string); ok {
				ids = append(ids, id)
			}
		}
	}
	recs, bad, err := s.getEach(ctx, ids)
	if err != nil {
		return Overdue{}, err
	}
	// A record gone (expired, deleted by hand) has nothing left to recover.
	if len(recs)+len(bad) < len(ids) {
		have := make(map[string]bool, len(recs))
		for _, r := range recs {
			have[r.RefundID] = true
		}
		for _, id := range ids {
			if _, isBad := bad[id]; !have[id] && !isBad {
				s.rdb.ZRem(ctx, s.dueKey(), id)
			}
		}
	}
	return Overdue{Records: recs, Bad: bad}, nil
}

// Postpone sets when the recoverer next looks at an open refund: after
// from now on Redis's clock. A refund no longer in the index (final) is left
// out of it.
func (s *Store) Postpone(ctx context.Context, id string, after time.Duration) error {
	return postponeScript.Run(ctx, s.rdb, []string{s.dueKey()}, id, after.Milliseconds()).Err()
}

// Due returns when the recoverer next looks at refund id (zero when it is
// not open).
func (s *Store) Due(ctx context.Context, id string) (time.Time, error) {
	ms, err := s.rdb.ZScore(ctx, s.dueKey(), id).Result()
	if errors.Is(err, redis.Nil) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("store: due time of %s: %w", id, err)
	}
	return time.UnixMilli(int64(ms)), nil
}

// Resumed counts one more task re-created after asynq archived the
// refund's task with its retries spent, and returns the count.
func (s *Store) Resumed(ctx context.Context, id string) (int, error) {
	n, err := s.rdb.HIncrBy(ctx, s.recordKey(id), "resumes", 1).Result()
	if err != nil {
		return 0, fmt.Errorf("store: count resumes of %s: %w", id, err)
	}
	return int(n), nil
}
