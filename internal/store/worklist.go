package store

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// WorkItem is a refund a person may have to act on, with when it started
// to wait for one.
type WorkItem struct {
	Record
	// Since is when the refund entered needs_review, or was first blocked
	// in its current row of blocks.
	Since time.Time
}

// WorkList returns up to limit refunds in needs_review and up to limit
// refunds blocked by configuration, each oldest first, with how many each
// index holds in all. The console filters and pages what it returns; the
// review list is meant to stay short.
func (s *Store) WorkList(ctx context.Context, limit int) (review, blocked []WorkItem, nReview, nBlocked int, err error) {
	if review, nReview, err = s.workItems(ctx, s.stateKey(NeedsReview), limit); err != nil {
		return nil, nil, 0, 0, err
	}
	if blocked, nBlocked, err = s.workItems(ctx, s.blockedKey(), limit); err != nil {
		return nil, nil, 0, 0, err
	}
	return review, blocked, nReview, nBlocked, nil
}

// workItems reads the oldest limit refunds of an index scored by unix ms.
func (s *Store) workItems(ctx context.Context, key string, limit int) ([]WorkItem, int, error) {
	var z *redis.ZSliceCmd
	var n *redis.IntCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		z = p.ZRangeWithScores(ctx, key, 0, int64(limit)-1)
		n = p.ZCard(ctx, key)
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("store: work list %s: %w", key, err)
	}
	ids := make([]string, len(z.Val()))
	since := make(map[string]time.Time, len(ids))
	for i, m := range z.Val() {
		id, _ := m.Member.(string)
		ids[i], since[id] = id, time.UnixMilli(int64(m.Score)).UTC()
	}
	// A record that cannot be parsed is left out here: the refund's own
	// page and refundctl name it.
	recs, _, err := s.getEach(ctx, ids)
	if err != nil {
		return nil, 0, err
	}
	out := make([]WorkItem, len(recs))
	for i, r := range recs {
		out[i] = WorkItem{Record: r, Since: since[r.RefundID]}
	}
	return out, int(n.Val()), nil
}
