package store

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/refundq/refundq/tasks"
)

// History returns every entry of refund id's history, oldest first.
func (s *Store) History(ctx context.Context, id string) ([]Entry, error) {
	var head *redis.SliceCmd
	var list *redis.StringSliceCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		head = p.HMGet(ctx, s.recordKey(id), "created_at", "provider", "amount_minor", "currency", "order_id")
		list = p.LRange(ctx, s.historyKey(id), 0, -1)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: history of %s: %w", id, err)
	}
	out := make([]Entry, 0, len(list.Val())+1)
	// The creation is not stored as an entry (the record and the events
	// stream have it); the history starts with it all the same.
	if v := head.Val(); len(v) == 5 && v[0] != nil {
		str := func(i int) string { x, _ := v[i].(string); return x }
		minor, _ := strconv.ParseInt(str(2), 10, 64)
		m := tasks.Money{Minor: minor, Currency: str(3)}
		out = append(out, Entry{At: parseTime(str(0)), Event: "created", State: Queued,
			Detail: fmt.Sprintf("%s refund of %s on order %s", str(1), m, str(4))})
	}
	for _, line := range list.Val() {
		var e Entry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			return nil, fmt.Errorf("store: history of %s: %w", id, err)
		}
		out = append(out, e)
	}
	return out, nil
}

// OtherRefs returns the provider references of the other refunds refundq
// knows on the same order. A provider without a refund key matches a lost
// answer by amount; these keep it from taking another refund for this one.
func (s *Store) OtherRefs(ctx context.Context, rec Record) ([]string, error) {
	ids, err := s.rdb.ZRange(ctx, s.orderKey(rec.Provider, rec.OrderID), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("store: refunds of order %s: %w", rec.OrderID, err)
	}
	others := ids[:0]
	for _, id := range ids {
		if id != rec.RefundID {
			others = append(others, id)
		}
	}
	recs, err := s.getMany(ctx, others)
	if err != nil {
		return nil, err
	}
	var refs []string
	for _, r := range recs {
		if r.ProviderRef != "" {
			refs = append(refs, r.ProviderRef)
		}
	}
	return refs, nil
}

// ListState returns up to limit refunds in state st, oldest in that state
// first, after skipping offset, and how many there are in all.
func (s *Store) ListState(ctx context.Context, st State, offset, limit int) ([]Record, int, error) {
	ids, err := s.rdb.ZRange(ctx, s.stateKey(st), int64(offset), int64(offset+limit)-1).Result()
	if err != nil {
		return nil, 0, fmt.Errorf("store: list %s: %w", st, err)
	}
	total, err := s.rdb.ZCard(ctx, s.stateKey(st)).Result()
	if err != nil {
		return nil, 0, fmt.Errorf("store: count %s: %w", st, err)
	}
	recs, err := s.getMany(ctx, ids)
	return recs, int(total), err
}

// OldestIn returns when the refund longest in state st entered it (zero when
// none is), and how many refunds are in it.
func (s *Store) OldestIn(ctx context.Context, st State) (time.Time, int, error) {
	z, err := s.rdb.ZRangeWithScores(ctx, s.stateKey(st), 0, 0).Result()
	if err != nil {
		return time.Time{}, 0, fmt.Errorf("store: oldest %s: %w", st, err)
	}
	n, err := s.rdb.ZCard(ctx, s.stateKey(st)).Result()
	if err != nil || len(z) == 0 {
		return time.Time{}, int(n), err
	}
	return time.UnixMilli(int64(z[0].Score)), int(n), nil
}

// States lists every state, open ones first.
var States = []State{Queued, Processing, Pending, NeedsReview, Succeeded, Failed}

// List returns up to limit records (limit <= 0: all), state by state, each
// state oldest first. For paging through one state, see ListState.
func (s *Store) List(ctx context.Context, limit int) ([]Record, error) {
	var out []Record
	for _, st := range States {
		n := -1
		if limit > 0 {
			n = limit - len(out)
			if n <= 0 {
				break
			}
		}
		ids, err := s.rdb.ZRange(ctx, s.stateKey(st), 0, int64(n)).Result()
		if err != nil {
			return nil, fmt.Errorf("store: list %s: %w", st, err)
		}
		if limit > 0 && len(ids) > n {
			ids = ids[:n]
		}
		recs, err := s.getMany(ctx, ids)
		if err != nil {
			return nil, err
		}
		out = append(out, recs...)
	}
	return out, nil
}
