package store

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// ProviderHealth is what one worker last said of one provider: whether its
// circuit breaker is open there, and when a call last got an answer.
type ProviderHealth struct {
	Provider    string
	Worker      string // the worker's name (host and process)
	BreakerOpen bool
	LastSuccess time.Time // zero: no call answered since the worker started
	At          time.Time // when the worker said it
}

func (s *Store) healthKey(provider string) string { return s.prefix + "health:" + provider }

// PublishHealth records what worker knows of each provider for ttl; a
// worker repeats it well within ttl, and what a stopped one said fades.
func (s *Store) PublishHealth(ctx context.Context, worker string, hs []ProviderHealth, ttl time.Duration) error {
	now := s.now()
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, h := range hs {
			open := "0"
			if h.BreakerOpen {
				open = "1"
			}
			last := ""
			if !h.LastSuccess.IsZero() {
				last = msTime(h.LastSuccess)
			}
			p.HSet(ctx, s.healthKey(h.Provider), worker, open+"|"+last+"|"+msTime(now)+"|"+strconv.FormatInt(ttl.Milliseconds(), 10))
			p.PExpire(ctx, s.healthKey(h.Provider), ttl)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: publish provider health: %w", err)
	}
	return nil
}

// Health returns what the running workers last said of provider, one entry
// per worker, leaving out what a worker said longer ago than it promised to
// repeat it.
func (s *Store) Health(ctx context.Context, provider string) ([]ProviderHealth, error) {
	h, err := s.rdb.HGetAll(ctx, s.healthKey(provider)).Result()
	if err != nil {
		return nil, fmt.Errorf("store: health of %s: %w", provider, err)
	}
	now := s.now()
	var out []ProviderHealth
	var stale []string
	for worker, v := range h {
		parts := strings.Split(v, "|")
		if len(parts) != 4 {
			stale = append(stale, worker)
			continue
		}
		at := parseTime(parts[2])
		ttl, _ := strconv.ParseInt(parts[3], 10, 64)
		if now.Sub(at) > time.Duration(ttl)*time.Millisecond {
			// A stopped worker's word: every process start adds one.
			stale = append(stale, worker)
			continue
		}
		ph := ProviderHealth{Provider: provider, Worker: worker, BreakerOpen: parts[0] == "1", At: at}
		if parts[1] != "" {
			ph.LastSuccess = parseTime(parts[1])
		}
		out = append(out, ph)
	}
	if len(stale) > 0 {
		_ = s.rdb.HDel(ctx, s.healthKey(provider), stale...).Err() // best effort: read again next time
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Worker < out[j].Worker })
	return out, nil
}
