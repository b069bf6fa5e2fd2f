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
// it, to one Redis stream (<prefix>events, trimmed to about 100,000 entries).
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
