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

// ReviewKind says why a refund is in needs_review, and so whether a later
// look-up may still settle it without a person.
type ReviewKind string

// The kinds of review. Only an outcome that nothing has shown yet is looked
// up again (Rechecked): evidence that contradicts the request is a person's
// to weigh, and a refund nothing of which was sent is a person's to send.
const (
	// ReviewUnknown: an attempt was sent and the provider's answers cannot
	// show whether it was applied.
	ReviewUnknown ReviewKind = "outcome_unknown"
	// ReviewPending: the provider has had the refund in progress for longer
	// than its horizon.
	ReviewPending ReviewKind = "pending_too_long"
	// ReviewContradiction: an answer contradicts the request (another
	// amount or currency, a refund in progress that vanished).
	ReviewContradiction ReviewKind = "contradiction"
	// ReviewNotApplied: a look-up proved that nothing of the attempt in
	// flight was applied; a person sends it again (refundctl retry) or
	// fails it, unless the worker resumes such refunds itself
	// (REFUNDQ_RESUME_AFTER_REVIEW).
	ReviewNotApplied ReviewKind = "not_applied"
	// ReviewNotSent: automation gave up before anything was sent.
	ReviewNotSent ReviewKind = "not_sent"
	// ReviewStuck: a case no rule settles (too many attempts, an unreadable
	// task).
	ReviewStuck ReviewKind = "stuck"
	// ReviewUnclassified: a refund that entered needs_review before kinds
	// were recorded.
	ReviewUnclassified ReviewKind = "unclassified"
)

// ReviewKinds lists every kind, the ones a look-up may still settle first.
var ReviewKinds = []ReviewKind{ReviewUnknown, ReviewPending, ReviewContradiction, ReviewNotApplied, ReviewNotSent,
	ReviewStuck, ReviewUnclassified}

// ReviewReason is why the refund is in needs_review, or was when it was
// settled out of it; "" otherwise (a refund sent on from review keeps its
// old kind in the record, which says nothing of it now).
func (r Record) ReviewReason() string {
	if r.State == NeedsReview || r.SettledBy != "" {
		return string(r.Review)
	}
	return ""
}

// NextLookup is when a worker looks a refund in needs_review up again (nil:
// it will not).
func (r Record) NextLookup() *time.Time {
	if r.State != NeedsReview || r.RecheckAt.IsZero() {
		return nil
	}
	t := r.RecheckAt
	return &t
}

// Rechecked reports whether refunds of this kind are looked up again on a
// schedule.
func (k ReviewKind) Rechecked() bool { return k == ReviewUnknown || k == ReviewPending }

// Describe says the kind in words for a person.
func (k ReviewKind) Describe() string {
	switch k {
	case ReviewUnknown:
		return "sent; the provider's answers cannot show whether it was applied"
	case ReviewPending:
		return "in progress at the provider for longer than its horizon"
	case ReviewContradiction:
		return "the provider's answer contradicts the request"
	case ReviewNotApplied:
		return "a look-up proved nothing was applied; send it again or fail it"
	case ReviewNotSent:
		return "never sent; nothing was applied"
	case ReviewStuck:
		return "no rule settles it"
	}
	return "entered review before reasons were recorded"
}

// recheckKey orders the refunds in needs_review that a look-up may still
// settle by when the next look-up is due (kept by update.lua, which builds
// the same name from the prefix).
func (s *Store) recheckKey() string { return s.prefix + "recheck" }

// byRefKey maps a provider's references to our refund ids (kept by
// update.lua), for a person who has only the provider's reference.
func (s *Store) byRefKey(provider string) string { return s.prefix + "byref:" + provider }

// reviewStatsKey counts the refunds settled out of needs_review, by whom
// ("lookup" or "person"), provider and state (kept by update.lua).
func (s *Store) reviewStatsKey() string { return s.prefix + "review:settled" }

// reviewTimesKey keeps how long the last 1000 refunds settled out of
// needs_review spent there, in ms, newest first (kept, and trimmed, by
// update.lua).
func (s *Store) reviewTimesKey() string { return s.prefix + "review:durations" }

// Settled-by values (Change.SettledBy).
const (
	ByLookup = "lookup"
	ByPerson = "person"
)

// DueRechecks returns up to limit refunds whose next look-up is due at now.
func (s *Store) DueRechecks(ctx context.Context, now time.Time, limit int) ([]string, error) {
	ids, err := s.rdb.ZRangeByScore(ctx, s.recheckKey(), &redis.ZRangeBy{Min: "-inf",
		Max: strconv.FormatInt(now.UnixMilli(), 10), Count: int64(limit)}).Result()
	if err != nil {
		return nil, fmt.Errorf("store: due re-checks: %w", err)
	}
	return ids, nil
}

// Rechecks returns how many refunds wait for a look-up, and when the
// earliest is due (zero when none).
func (s *Store) Rechecks(ctx context.Context) (int, time.Time, error) {
	var n *redis.IntCmd
	var first *redis.ZSliceCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		n = p.ZCard(ctx, s.recheckKey())
		first = p.ZRangeWithScores(ctx, s.recheckKey(), 0, 0)
		return nil
	})
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("store: re-checks: %w", err)
	}
	var at time.Time
	if z := first.Val(); len(z) > 0 {
		at = time.UnixMilli(int64(z[0].Score)).UTC()
	}
	return int(n.Val()), at, nil
}

// ByProviderRef returns the id of our refund the provider knows as ref
// ("" when none is known).
func (s *Store) ByProviderRef(ctx context.Context, provider, ref string) (string, error) {
	id, err := s.rdb.HGet(ctx, s.byRefKey(provider), ref).Result()
	if err == redis.Nil {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("store: refund with %s reference %s: %w", provider, ref, err)
	}
	return id, nil
}

// OrderRefunds returns the ids of our refunds on provider's order.
func (s *Store) OrderRefunds(ctx context.Context, provider, order string) ([]string, error) {
	ids, err := s.rdb.ZRange(ctx, s.orderKey(provider, order), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("store: refunds of %s order %s: %w", provider, order, err)
	}
	return ids, nil
}

// ReviewSettled counts refunds settled out of needs_review.
type ReviewSettled struct {
	By       string // ByLookup or ByPerson
	Provider string
	State    State
	Count    int64
}

// ReviewStats is what the review list has come to.
type ReviewStats struct {
	Settled []ReviewSettled
	// MedianTime is the median time the last refunds settled (up to 1000)
	// spent in needs_review; Timed how many that is.
	MedianTime time.Duration
	Timed      int
}

// ReviewStats reads the counts of refunds settled out of needs_review and
// the median time they spent there.
func (s *Store) ReviewStats(ctx context.Context) (ReviewStats, error) {
	var h *redis.MapStringStringCmd
	var times *redis.StringSliceCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		h = p.HGetAll(ctx, s.reviewStatsKey())
		times = p.LRange(ctx, s.reviewTimesKey(), 0, -1)
		return nil
	})
	if err != nil {
		return ReviewStats{}, fmt.Errorf("store: review stats: %w", err)
	}
	var out ReviewStats
	for field, v := range h.Val() {
		parts := strings.SplitN(field, "|", 3)
		n, err := strconv.ParseInt(v, 10, 64)
		if len(parts) != 3 || err != nil {
			continue
		}
		out.Settled = append(out.Settled, ReviewSettled{By: parts[0], Provider: parts[1], State: State(parts[2]), Count: n})
	}
	sort.Slice(out.Settled, func(i, j int) bool {
		a, b := out.Settled[i], out.Settled[j]
		return a.By+a.Provider+string(a.State) < b.By+b.Provider+string(b.State)
	})
	ms := make([]int64, 0, len(times.Val()))
	for _, v := range times.Val() {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			ms = append(ms, n)
		}
	}
	if len(ms) > 0 {
		sort.Slice(ms, func(i, j int) bool { return ms[i] < ms[j] })
		out.MedianTime, out.Timed = time.Duration(ms[len(ms)/2])*time.Millisecond, len(ms)
	}
	return out, nil
}

// ReviewCount is how many refunds of one provider are in needs_review for
// one kind.
type ReviewCount struct {
	Provider string
	Kind     ReviewKind
	Count    int
}

// ReviewCounts counts the refunds in needs_review by provider and kind. It
// reads two fields of each (pipelined); the review list is meant to stay
// short.
func (s *Store) ReviewCounts(ctx context.Context) ([]ReviewCount, error) {
	ids, err := s.rdb.ZRange(ctx, s.stateKey(NeedsReview), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("store: review counts: %w", err)
	}
	by := map[[2]string]int{}
	const batch = 1000
	for len(ids) > 0 {
		n := min(batch, len(ids))
		cmds := make([]*redis.SliceCmd, n)
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, id := range ids[:n] {
				cmds[i] = p.HMGet(ctx, s.recordKey(id), "provider", "review_kind")
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("store: review counts: %w", err)
		}
		for _, c := range cmds {
			v := c.Val()
			prov, _ := v[0].(string)
			if prov == "" {
				continue // deleted meanwhile
			}
			kind, _ := v[1].(string)
			if kind == "" {
				kind = string(ReviewUnclassified)
			}
			by[[2]string{prov, kind}]++
		}
		ids = ids[n:]
	}
	out := make([]ReviewCount, 0, len(by))
	for k, n := range by {
		out = append(out, ReviewCount{Provider: k[0], Kind: ReviewKind(k[1]), Count: n})
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Provider+string(out[i].Kind) < out[j].Provider+string(out[j].Kind)
	})
	return out, nil
}

// InStateSince returns when refund id entered state st (zero when it is
// not in it).
func (s *Store) InStateSince(ctx context.Context, id string, st State) (time.Time, error) {
	ms, err := s.rdb.ZScore(ctx, s.stateKey(st), id).Result()
	if err == redis.Nil {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("store: refund %s in %s since: %w", id, st, err)
	}
	return time.UnixMilli(int64(ms)).UTC(), nil
}

// DropRecheck forgets a due look-up of refund id that no longer stands (the
// refund was deleted by hand, or left needs_review by a path that did not
// say so), so it is not read again at every pass.
// It checks the record in the same step, so a look-up scheduled meanwhile
// (by a worker that re-took the refund) is kept.
func (s *Store) DropRecheck(ctx context.Context, id string) error {
	err := dropRecheckScript.Run(ctx, s.rdb, []string{s.recheckKey(), s.recordKey(id)}, id).Err()
	if err != nil {
		return fmt.Errorf("store: drop the look-up of refund %s: %w", id, err)
	}
	return nil
}

// dropRecheckScript: KEYS recheck index, record; ARGV refund id.
var dropRecheckScript = newScript(`
local f = redis.call('HMGET', KEYS[2], 'state', 'review_kind', 'recheck_at')
if f[1] == 'needs_review' and (f[2] == 'outcome_unknown' or f[2] == 'pending_too_long') and f[3] and f[3] ~= '' then
  return 0
end
return redis.call('ZREM', KEYS[1], ARGV[1])
`)

// DeferRecheck moves refund id's due look-up to at, when it is still in the
// index: a look-up a worker cannot make now must not keep the ones behind
// it from their turn.
func (s *Store) DeferRecheck(ctx context.Context, id string, at time.Time) error {
	err := s.rdb.ZAddXX(ctx, s.recheckKey(), redis.Z{Score: float64(at.UnixMilli()), Member: id}).Err()
	if err != nil {
		return fmt.Errorf("store: defer the look-up of refund %s: %w", id, err)
	}
	return nil
}
