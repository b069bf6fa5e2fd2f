package store

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Every state change of a refund is appended, by the same script that makes
// it, to one Redis stream (<prefix>events, trimmed by age: TrimEvents).
// Consumers read it with consumer groups (XREADGROUP), so each group sees
// every change at least once, in order, even across restarts: the worker's
// webhook dispatcher is one such group; an order system can be another.

// EventsKey is the stream every state change is appended to.
func (s *Store) EventsKey() string { return s.prefix + "events" }

// Event is one state change of one refund.
type Event struct {
	ID          string // the stream entry id
	RefundID    string
	Provider    string
	From, To    State // From is "" for the creation
	At          time.Time
	ProviderRef string
	Reason      string
}

func parseEvent(m redis.XMessage) Event {
	str := func(k string) string { v, _ := m.Values[k].(string); return v }
	ms, _ := strconv.ParseInt(str("at"), 10, 64)
	return Event{ID: m.ID, RefundID: str("refund_id"), Provider: str("provider"), From: State(str("from")),
		To: State(str("to")), At: time.UnixMilli(ms), ProviderRef: str("provider_ref"), Reason: str("reason")}
}

// ReadEvents returns up to count events for consumer in group that no
// consumer of the group has been given yet, waiting up to block for one. The
// group is created (reading from the stream's start) if it does not exist.
// Each event must be acknowledged with Ack once handled; ClaimStale hands
// the unacknowledged ones of a dead consumer to another.
func (s *Store) ReadEvents(ctx context.Context, group, consumer string, count int, block time.Duration) ([]Event, error) {
	if err := s.ensureGroup(ctx, group); err != nil {
		return nil, err
	}
	res, err := s.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: group, Consumer: consumer, Streams: []string{s.EventsKey(), ">"}, Count: int64(count), Block: block,
	}).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: read events for %s: %w", group, err)
	}
	var out []Event
	for _, st := range res {
		for _, m := range st.Messages {
			out = append(out, parseEvent(m))
		}
	}
	return out, nil
}

// ClaimStale gives consumer up to count events of group that another
// consumer was given more than minIdle ago and never acknowledged (it died).
func (s *Store) ClaimStale(ctx context.Context, group, consumer string, minIdle time.Duration, count int) ([]Event, error) {
	if err := s.ensureGroup(ctx, group); err != nil {
		return nil, err
	}
	msgs, _, err := s.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
		Stream: s.EventsKey(), Group: group, Consumer: consumer, MinIdle: minIdle, Start: "0-0", Count: int64(count),
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("store: claim stale events for %s: %w", group, err)
	}
	out := make([]Event, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, parseEvent(m))
	}
	return out, nil
}

// Ack marks events as handled by group.
func (s *Store) Ack(ctx context.Context, group string, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	return s.rdb.XAck(ctx, s.EventsKey(), group, ids...).Err()
}

// Undelivered is what one consumer group loses when old events are trimmed:
// the events it was given but never acknowledged, and those it was never
// given at all.
type Undelivered struct {
	Group  string
	Count  int     // how many events the group loses
	Events []Event // the oldest of them, at most TrimEvents' sample
}

// trimPage is how many ids one look at the stream or a pending list reads.
const trimPage = 1000

// TrimEvents deletes every event appended before before (a stream id is the
// millisecond of its append) and returns how many it deleted, with what each
// consumer group had not acknowledged among them (groups that lose nothing
// are left out). It looks before it deletes, so an event a group takes or
// acknowledges in between is reported anyway, and so is one that two
// workers trimming at once both saw: the report errs towards too many, never
// too few.
//
// The trim is exact (MINID without ~): what is reported is what is deleted,
// and an approximate trim's default LIMIT (10,000 entries a call) would fall
// behind a stream that grows faster than that per janitor pass.
func (s *Store) TrimEvents(ctx context.Context, before time.Time, sample int) (int64, []Undelivered, error) {
	cut := strconv.FormatInt(before.UnixMilli(), 10) + "-0"
	lost, err := s.undelivered(ctx, cut, sample)
	if err != nil {
		return 0, nil, err
	}
	n, err := s.rdb.XTrimMinID(ctx, s.EventsKey(), cut).Result()
	if err != nil {
		return 0, nil, fmt.Errorf("store: trim events before %s: %w", cut, err) // nothing lost
	}
	return n, lost, nil
}

// undelivered finds, for every group, the events before cut it has not
// acknowledged: its pending ones, then those after its last-delivered id.
func (s *Store) undelivered(ctx context.Context, cut string, sample int) ([]Undelivered, error) {
	groups, err := s.rdb.XInfoGroups(ctx, s.EventsKey()).Result()
	if isErr(err, "ERR no such key") {
		return nil, nil // no stream yet: nothing to lose
	}
	if err != nil {
		return nil, fmt.Errorf("store: event groups: %w", err)
	}
	first, err := s.rdb.XRangeN(ctx, s.EventsKey(), "-", "+", 1).Result()
	if err != nil || len(first) == 0 {
		return nil, err
	}
	var out []Undelivered
	for _, g := range groups {
		u := Undelivered{Group: g.Name}
		// A pending list keeps the ids of events an earlier trim deleted
		// (and reported) until a consumer claims them: start at the oldest
		// event that still exists, so none is reported twice.
		if err := s.pendingBefore(ctx, &u, first[0].ID, cut, sample); err != nil {
			return nil, err
		}
		if err := s.unreadBefore(ctx, &u, g.LastDeliveredID, cut, sample); err != nil {
			return nil, err
		}
		if u.Count > 0 {
			out = append(out, u)
		}
	}
	return out, nil
}

// pendingBefore adds the group's unacknowledged events from start to before cut.
func (s *Store) pendingBefore(ctx context.Context, u *Undelivered, start, cut string, sample int) error {
	for {
		ps, err := s.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{
			Stream: s.EventsKey(), Group: u.Group, Start: start, End: "(" + cut, Count: trimPage,
		}).Result()
		if isErr(err, "NOGROUP") {
			return nil // the group was deleted meanwhile
		}
		if err != nil {
			return fmt.Errorf("store: pending events of %s: %w", u.Group, err)
		}
		for _, p := range ps {
			u.Count++
			if len(u.Events) < sample {
				// A pending list has ids only: read the event for its refund.
				msgs, err := s.rdb.XRangeN(ctx, s.EventsKey(), p.ID, p.ID, 1).Result()
				if err != nil {
					return fmt.Errorf("store: read event %s: %w", p.ID, err)
				}
				ev := Event{ID: p.ID}
				if len(msgs) == 1 {
					ev = parseEvent(msgs[0])
				}
				u.Events = append(u.Events, ev)
			}
		}
		if len(ps) < trimPage {
			return nil
		}
		start = "(" + ps[len(ps)-1].ID
	}
}

// unreadBefore adds the events after the group's last-delivered id and before cut.
func (s *Store) unreadBefore(ctx context.Context, u *Undelivered, lastDelivered, cut string, sample int) error {
	start := "(" + lastDelivered
	for {
		msgs, err := s.rdb.XRangeN(ctx, s.EventsKey(), start, "("+cut, trimPage).Result()
		if err != nil {
			return fmt.Errorf("store: events %s never gave: %w", u.Group, err)
		}
		for _, m := range msgs {
			u.Count++
			if len(u.Events) < sample {
				u.Events = append(u.Events, parseEvent(m))
			}
		}
		if len(msgs) < trimPage {
			return nil
		}
		start = "(" + msgs[len(msgs)-1].ID
	}
}

func (s *Store) ensureGroup(ctx context.Context, group string) error {
	err := s.rdb.XGroupCreateMkStream(ctx, s.EventsKey(), group, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("store: create event group %s: %w", group, err)
	}
	return nil
}

// Note appends an entry to a refund's history without changing the refund,
// for what happens after it is final (a webhook delivered). It does nothing
// for a refund that does not exist.
func (s *Store) Note(ctx context.Context, id string, e Entry) error {
	e.At = s.now()
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	n, err := s.rdb.Exists(ctx, s.recordKey(id)).Result()
	if err != nil || n == 0 {
		return err
	}
	return s.rdb.RPush(ctx, s.historyKey(id), b).Err()
}

// Blocked returns how many open refunds are blocked by configuration.
func (s *Store) Blocked(ctx context.Context) (int, error) {
	n, err := s.rdb.ZCard(ctx, s.blockedKey()).Result()
	return int(n), err
}

//go:embed expire.lua
var expireLua string

var expireScript = newScript(expireLua)

// Expired returns up to limit succeeded or failed refunds that reached that
// state more than retention ago. needs_review refunds never expire: a human
// has not settled them yet.
func (s *Store) Expired(ctx context.Context, retention time.Duration, limit int) ([]Record, error) {
	cut := strconv.FormatInt(s.now().Add(-retention).UnixMilli(), 10)
	var ids []string
	for _, st := range []State{Succeeded, Failed} {
		got, err := s.rdb.ZRangeByScore(ctx, s.stateKey(st), &redis.ZRangeBy{Min: "-inf", Max: cut, Count: int64(limit)}).Result()
		if err != nil {
			return nil, fmt.Errorf("store: expired %s refunds: %w", st, err)
		}
		ids = append(ids, got...)
	}
	return s.getMany(ctx, ids)
}

// Expire deletes a final refund found by Expired, with its history and its
// index entries. It reports false when the refund changed meanwhile. After
// it, the refund id is free again: idempotency by refund id lasts as long
// as the retention.
func (s *Store) Expire(ctx context.Context, rec Record, retention time.Duration) (bool, error) {
	cut := s.now().Add(-retention).UnixMilli()
	n, err := expireScript.Run(ctx, s.rdb, []string{s.recordKey(rec.RefundID), s.historyKey(rec.RefundID)},
		s.prefix, rec.RefundID, string(rec.State), cut).Int()
	if err != nil {
		return false, fmt.Errorf("store: expire refund %s: %w", rec.RefundID, err)
	}
	return n == 1, nil
}
