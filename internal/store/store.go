// Package store keeps refundq's record of every refund in Redis: its state,
// the provider's references, and an append-only history of every attempt. The
// record, not asynq's task, is the lasting truth about a refund: asynq deletes
// completed tasks and silently trims its archive.
//
// Every Redis key refundq owns is built in this file; callers use methods
// named for what they mean.
package store

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// State is where a refund stands.
type State string

// The states of a refund; see docs/GUARANTEES.md for the diagram.
const (
	Queued      State = "queued"       // accepted, waiting for a worker
	Processing  State = "processing"   // a worker is sending it or reconciling
	Pending     State = "pending"      // the provider has it and has not finished
	Succeeded   State = "succeeded"    // money is back on the card (terminal)
	Failed      State = "failed"       // refused or given up without paying (terminal)
	NeedsReview State = "needs_review" // automation stopped; a human must look
)

// Final reports whether automation is done with the refund. Succeeded and
// Failed never change again; NeedsReview may still be settled by a human or a
// later reconcile.
func (s State) Final() bool { return s == Succeeded || s == Failed || s == NeedsReview }

// Errors returned by Store.
var (
	ErrNotFound = errors.New("refund not found")
	// ErrConflict: the refund id exists with a different provider, order,
	// transaction, amount or currency.
	ErrConflict = errors.New("refund id already used for a different refund")
	// ErrClosed: the refund is succeeded or failed and cannot change.
	ErrClosed = errors.New("refund is closed")
)

// Store reads and writes refund records.
type Store struct {
	rdb         redis.UniversalClient
	prefix      string
	now         func() time.Time
	queuedGrace time.Duration
	queue       string // see WithQueue
	// durable waits until the writes made so far are kept (on disk or on a
	// replica); nil waits for nothing. See WithDurability.
	durable func(context.Context) error
}

// WithDurability returns a Store that, after every write that guards money —
// a new refund, an attempt marked in flight, a final state — waits until
// durable says Redis keeps it (durability.Promise.Wait), and reports a write
// it could not confirm as an error wrapping ErrNotKept. An attempt whose mark
// is not confirmed is marked not sent again, and nothing goes out.
func (s *Store) WithDurability(durable func(context.Context) error) *Store {
	c := *s
	c.durable = durable
	return &c
}

// ErrNotKept: Redis acknowledged a write that guards money but did not
// confirm, in time, that it would keep it through a crash.
var ErrNotKept = errors.New("Redis did not confirm the write durable")

// keep waits for the writes made so far to be durable.
func (s *Store) keep(ctx context.Context) error {
	if s.durable == nil {
		return nil
	}
	if err := s.durable(ctx); err != nil {
		return fmt.Errorf("%w: %v", ErrNotKept, err)
	}
	return nil
}

func (s *Store) grace() time.Duration {
	if s.queuedGrace > 0 {
		return s.queuedGrace
	}
	return DueQueued
}

// New returns a Store whose keys start with prefix (e.g. "refundq:"); tests
// use a prefix of their own.
func New(rdb redis.UniversalClient, prefix string) *Store {
	return &Store{rdb: rdb, prefix: prefix, now: time.Now}
}

// A refund's keys differ in their first segment, not in a suffix: a refund
// id may hold colons, and "x:history" must not name refund x's history.
func (s *Store) recordKey(id string) string { return s.prefix + "refund:" + id }

func (s *Store) historyKey(id string) string { return s.prefix + "history:" + id }

func (s *Store) leaseKey(id string) string { return s.prefix + "lease:" + id }

// dueKey orders every open refund by when the recoverer should next make sure
// a task drives it.
func (s *Store) dueKey() string { return s.prefix + "due" }

// blockedKey indexes the open refunds blocked by configuration (kept by
// update.lua, which builds the same name from the prefix).
func (s *Store) blockedKey() string { return s.prefix + "blocked" }

// stateKey indexes the refunds in one state by when they entered it (kept
// by the scripts, which build the same name from the prefix).
func (s *Store) stateKey(st State) string { return s.prefix + "state:" + string(st) }

// orderKey holds the refunds of one order (a sorted set: small ones are
// stored compactly, where a set is a hash table).
func (s *Store) orderKey(provider, order string) string {
	return s.prefix + "order:" + provider + ":" + order
}

// slotKey names the refund of ours in flight on an order, for providers
// where only the order as a whole shows what a lost answer did.
func (s *Store) slotKey(provider, order string) string {
	return s.prefix + "inflight:" + provider + ":" + order
}

func (s *Store) workersKey(queue string) string { return s.prefix + "workers:" + queue }

func (s *Store) workerProviderKey(queue, provider string) string {
	return s.prefix + "workers:" + queue + ":provider:" + provider
}

// AnnounceWorker records, for ttl, that a worker serving queue is running
// with these providers configured. Workers repeat it well within ttl; a
// stopped fleet fades out on its own.
func (s *Store) AnnounceWorker(ctx context.Context, queue string, enabled []string, ttl time.Duration) error {
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, s.workersKey(queue), fmtTime(s.now()), ttl)
		for _, name := range enabled {
			p.Set(ctx, s.workerProviderKey(queue, name), fmtTime(s.now()), ttl)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: announce worker: %w", err)
	}
	return nil
}

// Serving reports whether a running worker serving queue has provider
// configured, and whether any worker serving queue is running at all.
func (s *Store) Serving(ctx context.Context, queue, provider string) (enabled, anyWorker bool, err error) {
	v, err := s.rdb.MGet(ctx, s.workersKey(queue), s.workerProviderKey(queue, provider)).Result()
	if err != nil {
		return false, false, fmt.Errorf("store: workers of queue %s: %w", queue, err)
	}
	return v[1] != nil, v[0] != nil, nil
}

// refOwnersKey maps each provider reference on an order to the refund that
// holds it.
func (s *Store) refOwnersKey(provider, order string) string {
	return s.prefix + "refs:" + provider + ":" + order
}

var (
	createScript = newScript(createLua)
	updateScript = newScript(updateLua)
)

func newScript(src string) *redis.Script { return redis.NewScript(src) }

func isErr(err error, code string) bool { return err != nil && strings.HasPrefix(err.Error(), code) }

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
