package store

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// The webhook outbox: the events whose notification is queued and neither
// delivered nor given up on, scored by when the event happened, so that a
// scrape can say how old the oldest undelivered notification is. The
// delivery tasks are the truth of what is sent; this set only measures.

func (s *Store) outboxKey() string { return s.prefix + "webhooks:undelivered" }

// OutboxAdd records that event eventID, of time at, has a delivery queued,
// and reports whether this call entered it. Adding it again keeps its first
// time.
func (s *Store) OutboxAdd(ctx context.Context, eventID string, at time.Time) (bool, error) {
	n, err := s.rdb.ZAddNX(ctx, s.outboxKey(), redis.Z{Score: float64(at.UnixMilli()), Member: eventID}).Result()
	if err != nil {
		return false, fmt.Errorf("store: outbox add %s: %w", eventID, err)
	}
	return n == 1, nil
}

// OutboxDone records that event eventID's notification was delivered, or
// given up on.
func (s *Store) OutboxDone(ctx context.Context, eventID string) error {
	if err := s.rdb.ZRem(ctx, s.outboxKey(), eventID).Err(); err != nil {
		return fmt.Errorf("store: outbox done %s: %w", eventID, err)
	}
	return nil
}

// OutboxOldest returns the time of the oldest undelivered event (zero when
// there is none) and how many there are.
func (s *Store) OutboxOldest(ctx context.Context) (time.Time, int, error) {
	var first *redis.ZSliceCmd
	var n *redis.IntCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		first = p.ZRangeWithScores(ctx, s.outboxKey(), 0, 0)
		n = p.ZCard(ctx, s.outboxKey())
		return nil
	})
	if err != nil {
		return time.Time{}, 0, fmt.Errorf("store: outbox: %w", err)
	}
	if len(first.Val()) == 0 {
		return time.Time{}, int(n.Val()), nil
	}
	return time.UnixMilli(int64(first.Val()[0].Score)), int(n.Val()), nil
}

// OutboxTrim forgets events older than before: their delivery tasks are
// long gone (given up after about a day, or deleted by an operator), and
// would otherwise hold the oldest age up for ever.
func (s *Store) OutboxTrim(ctx context.Context, before time.Time) (int64, error) {
	n, err := s.rdb.ZRemRangeByScore(ctx, s.outboxKey(), "-inf", "("+strconv.FormatInt(before.UnixMilli(), 10)).Result()
	if err != nil {
		return 0, fmt.Errorf("store: outbox trim: %w", err)
	}
	return n, nil
}
