package store

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// One owner at a time: asynq may hand a task to a second worker while the
// first is still in a slow call (a run that overran its timeout, a handler
// pushed back at shutdown). Each run takes a lease on the refund; taking it
// bumps the refund's fence, and every write carries the token it got, so an
// owner that lost its lease cannot overwrite a newer owner's outcome.

//go:embed lease.lua
var leaseLua string

//go:embed renew.lua
var renewLua string

//go:embed release.lua
var releaseLua string

var (
	leaseScript   = newScript(leaseLua)
	renewScript   = newScript(renewLua)
	releaseScript = newScript(releaseLua)
)

// ErrBusy: another worker holds the refund's lease.
var ErrBusy = errors.New("refund is being handled by another worker")

// ErrFenced: a newer owner took the refund; this owner must stop writing.
var ErrFenced = errors.New("lease lost to a newer owner")

// BusyError says how long the current owner's lease still runs.
type BusyError struct{ Remaining time.Duration }

func (e *BusyError) Error() string {
	return fmt.Sprintf("%v (lease ends in %s)", ErrBusy, e.Remaining.Round(time.Millisecond))
}
func (e *BusyError) Is(target error) bool { return target == ErrBusy }

// Lease is one worker's hold on one refund. Its writes go through the Store
// methods that take it.
type Lease struct {
	s        *Store
	id       string
	token    int64
	owner    string // random per lease: see update.lua
	provider string
	order    string
	ttl      time.Duration
	// base is Redis's clock when the lease was taken, and at this process's
	// clock then (with its monotonic reading): see Now.
	base, at time.Time
	released bool // Finish gave it up
	claims   bool // see ClaimReferences
}

// ClaimReferences makes every provider reference this lease records held
// by this refund alone among the refunds of its order (ErrRefTaken for a
// second holder). For providers whose lost answers are matched by what the
// order shows, not by a key of ours: two equal refunds could otherwise both
// claim the one refund that was applied.
func (l *Lease) ClaimReferences() { l.claims = true }

// Token is the fencing token of the lease.
func (l *Lease) Token() int64 { return l.token }

func (l *Lease) value() string { return strconv.FormatInt(l.token, 10) + ":" + l.owner }

// Acquire takes refund id for this worker for ttl and returns the record as
// it stands under the lease. It returns a *BusyError (errors.Is ErrBusy)
// while another worker holds it.
func (s *Store) Acquire(ctx context.Context, id string, ttl time.Duration) (*Lease, Record, error) {
	owner := strings.ReplaceAll(uuid.NewString(), "-", "")[:16] // 64 random bits: enough to tell owners apart
	sent := s.now()
	res, err := leaseScript.Run(ctx, s.rdb, []string{s.recordKey(id), s.leaseKey(id)}, ttl.Milliseconds(), owner).Slice()
	back := s.now()
	if err != nil {
		if isErr(err, "NOTFOUND") {
			return nil, Record{}, fmt.Errorf("refund %s: %w", id, ErrNotFound)
		}
		return nil, Record{}, fmt.Errorf("store: lease refund %s: %w", id, err)
	}
	token, _ := res[0].(int64)
	if token == 0 {
		pttl, _ := res[1].(int64)
		return nil, Record{}, &BusyError{Remaining: time.Duration(pttl) * time.Millisecond}
	}
	flat, _ := res[1].([]any)
	h := make(map[string]string, len(flat)/2)
	for i := 0; i+1 < len(flat); i += 2 {
		k, _ := flat[i].(string)
		v, _ := flat[i+1].(string)
		h[k] = v
	}
	rec, err := parseRecord(h)
	if err != nil {
		return nil, Record{}, err
	}
	l := &Lease{s: s, id: id, token: token, owner: owner, provider: rec.Provider, order: rec.OrderID, ttl: ttl,
		base: sent, at: sent}
	if t, _ := res[2].([]any); len(t) == 2 {
		sec, _ := strconv.ParseInt(fmt.Sprint(t[0]), 10, 64)
		usec, _ := strconv.ParseInt(fmt.Sprint(t[1]), 10, 64)
		// Redis read its clock somewhere in the round trip: taken as its
		// middle, off by at most half of it (milliseconds, against settle
		// delays of seconds).
		l.base, l.at = time.Unix(sec, usec*1000), sent.Add(back.Sub(sent)/2)
	}
	return l, rec, nil
}

// Now is the time on Redis's clock: Redis's time when the lease was taken
// plus how long ago that was on this process's monotonic clock (a step of
// the wall clock meanwhile changes nothing). Every time the lease writes
// (sent_at, the look-ups' first answers, the history) is on it, and a run
// compares those times with Now: workers whose clocks disagree then still
// agree on how long ago an attempt left.
func (l *Lease) Now() time.Time { return l.base.Add(l.s.now().Sub(l.at)) }

// Renew extends the lease by its ttl; ErrFenced if it was lost.
func (l *Lease) Renew(ctx context.Context) error {
	ok, err := renewScript.Run(ctx, l.s.rdb, []string{l.s.leaseKey(l.id)}, l.value(), l.ttl.Milliseconds()).Int()
	if err != nil {
		return fmt.Errorf("store: renew lease on %s: %w", l.id, err)
	}
	if ok == 0 {
		return fmt.Errorf("refund %s: %w", l.id, ErrFenced)
	}
	return nil
}

// Release gives the refund up, if this lease still holds it (and Finish has
// not already).
func (l *Lease) Release(ctx context.Context) error {
	if l.released {
		return nil
	}
	return releaseScript.Run(ctx, l.s.rdb, []string{l.s.leaseKey(l.id)}, l.value()).Err()
}

// KeepAlive renews the lease every ttl/3 until ctx ends. It calls lost once
// if the lease cannot be renewed, so the owner stops before a newer one
// starts.
func (l *Lease) KeepAlive(ctx context.Context, lost func(error)) {
	t := time.NewTicker(l.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := l.Renew(ctx); err != nil && ctx.Err() == nil {
				if errors.Is(err, ErrFenced) {
					lost(err)
					return
				}
				// A Redis blip: keep trying while the lease has time left.
			}
		}
	}
}

// Send describes an attempt about to leave the process.
type Send struct {
	Sent string // what is sent, for the history (amount, key); never a secret
	// Before is the adapter's read of the provider's state just before the
	// send (providers.Preparer), kept for the look-up of this attempt.
	Before string
	// OnePerOrder: the send needs the order's in-flight slot, so no other
	// refund of ours is in flight on the order meanwhile (keyless providers).
	// A slot held by another refund is an *OrderBusyError.
	OnePerOrder bool
	Due         time.Time // see Change.Due
	Task, Queue string    // see Change.Task
}

// MarkSent records, before the request leaves the process, that a new
// attempt is in flight: state processing, attempts+1, in_flight=attempt,
// sent_at=now, and what was read before it. A worker that later finds
// in_flight set without an outcome knows the provider may have applied it
// and must reconcile first. It returns the attempt number.
func (l *Lease) MarkSent(ctx context.Context, snd Send) (int, error) {
	flag := "1"
	if snd.OnePerOrder {
		flag = "2"
	}
	// A blocked refund stays blocked, and blocked since when it was, until
	// an outcome shows otherwise: a send refused for our key (401) must not
	// restart the growing wait between two tries.
	fields := []any{"state", string(Processing), "sent_at", msTime(l.Now()), "before", snd.Before, "last_error", ""}
	if snd.Task != "" {
		fields = append(fields, "task", snd.Task)
	}
	if snd.Queue != "" {
		fields = append(fields, "queue", snd.Queue)
	}
	n, err := l.update(ctx, write{entry: Entry{Event: "send", Sent: snd.Sent, State: Processing}, send: flag, due: snd.Due}, fields...)
	if err != nil {
		return 0, fmt.Errorf("store: mark refund %s sent: %w", l.id, err)
	}
	if err := l.s.keep(ctx); err != nil {
		// Nothing has left: say so, so the next run sends instead of
		// reconciling an attempt that never went out. (If Redis loses this
		// write too, the mark it may also have lost says the same, or the
		// mark survived and the next run reconciles: safe either way.)
		detail := fmt.Sprintf("attempt %d not sent: %v", n, err)
		if uerr := l.Apply(ctx, Change{State: Processing, Settled: true, LastError: detail,
			Entry: Entry{Event: "decision", Attempt: n, Detail: detail}}); uerr != nil {
			detail += "; and it could not be marked not sent (" + uerr.Error() + "): the next run looks it up first"
		}
		return 0, fmt.Errorf("store: refund %s: %s: %w", l.id, detail, err)
	}
	return n, nil
}

// Apply records a change under the lease; see Change. A refund that is
// succeeded or failed never changes again (ErrClosed), and a lost lease
// writes nothing (ErrFenced).
func (l *Lease) Apply(ctx context.Context, c Change) error {
	return l.change(ctx, c, false)
}

// Finish records the change that ends this run and gives the lease up, in
// one round trip. After it the lease writes nothing more.
func (l *Lease) Finish(ctx context.Context, c Change) error {
	return l.change(ctx, c, true)
}

// change is Apply or Finish. A change to a final state (needs_review
// included) is waited on until durable: the refund's outcome, and the event
// a webhook is sent from, must not be undone by a crash of Redis.
func (l *Lease) change(ctx context.Context, c Change, release bool) error {
	c.Entry.State = c.State
	_, err := l.update(ctx, write{entry: c.Entry, result: c.Result, send: "0", due: c.Due, release: release, fold: c.Fold}, c.fields(l.Now())...)
	if err != nil {
		var taken *RefTakenError
		if errors.As(err, &taken) {
			taken.Ref = c.ProviderRef
		}
		return fmt.Errorf("store: refund %s to %s: %w", l.id, c.State, err)
	}
	if release {
		l.released = true
	}
	if c.State.Final() {
		if err := l.s.keep(ctx); err != nil {
			return fmt.Errorf("store: refund %s to %s: %w", l.id, c.State, err)
		}
	}
	return nil
}

// ErrNotReview: only a refund in needs_review can be settled by hand.
var ErrNotReview = errors.New("refund is not in needs_review")

// takeReview takes the lease of a refund in needs_review, for a person's
// hand on it: no worker drives it meanwhile. The caller releases the lease.
func (s *Store) takeReview(ctx context.Context, id string) (*Lease, Record, error) {
	l, rec, err := s.Acquire(ctx, id, 30*time.Second)
	if err != nil {
		return nil, Record{}, err
	}
	if rec.State != NeedsReview {
		l.Release(ctx)
		return nil, Record{}, fmt.Errorf("refund %s is %s: %w", id, rec.State, ErrNotReview)
	}
	return l, rec, nil
}

// Settlement is a verdict on a needs_review refund: what the provider shows,
// and who found it.
type Settlement struct {
	State       State  // Succeeded (the provider shows the refund) or Failed (it shows none)
	ProviderRef string // the provider's reference, when succeeded
	Note        string // what the provider said; required
	// Actor is who settles it (an API token's name, the person running
	// refundctl); required: a hand on the money leaves a name.
	Actor string
}

// ErrNoActor: a change by hand must say who made it.
var ErrNoActor = errors.New("who made the change is required")

// Settle closes a needs_review refund by hand, as succeeded or failed, after
// a human has asked the provider. It takes the refund's lease so no worker
// is driving it meanwhile. The history entry keeps the note, the provider's
// reference and the actor.
func (s *Store) Settle(ctx context.Context, id string, v Settlement) error {
	if v.State != Succeeded && v.State != Failed {
		return fmt.Errorf("settle refund %s: state must be succeeded or failed, not %q", id, v.State)
	}
	if strings.TrimSpace(v.Note) == "" {
		return fmt.Errorf("settle refund %s: %w: say what the provider said, for its history", id, ErrNoNote)
	}
	if strings.TrimSpace(v.Actor) == "" {
		return fmt.Errorf("settle refund %s: %w", id, ErrNoActor)
	}
	l, _, err := s.takeReview(ctx, id)
	if err != nil {
		return err
	}
	defer l.Release(ctx)
	lastError := ""
	if v.State == Failed {
		lastError = "settled by hand as failed: " + v.Note
	}
	return l.Apply(ctx, Change{State: v.State, ProviderRef: v.ProviderRef, LastError: lastError, Settled: true,
		SettledBy: ByPerson, Entry: Entry{Event: "settled", Detail: v.Note, Actor: v.Actor, ProviderRef: v.ProviderRef}})
}

// Escalate moves an open refund to needs_review with the reason, when
// automation gives up on it outside a handler run (asynq archived its task).
// A refund that is final, held by a worker, or driven by another task than
// taskID ("" for any) is left alone (false). A refund with an attempt in
// flight, or in progress at the provider, is looked up again recheckAfter
// later (0: never); one never sent waits for a person.
func (s *Store) Escalate(ctx context.Context, id, taskID, reason string, recheckAfter time.Duration) (bool, error) {
	l, rec, err := s.Acquire(ctx, id, 30*time.Second)
	if errors.Is(err, ErrBusy) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer l.Release(ctx)
	if rec.State.Final() || taskID != "" && rec.Task != taskID {
		return false, nil
	}
	zero := 0
	c := Change{State: NeedsReview, LastError: reason, Review: ReviewNotSent, RecheckN: &zero, Entry: Entry{Event: "decision", Detail: reason}}
	if rec.InFlight > 0 || rec.State == Pending {
		// A refund the provider had in progress stays marked so: one "not
		// found" in review must not count as proof it was never applied.
		c.Review = ReviewUnknown
		if rec.State == Pending {
			c.Review = ReviewPending
		}
		if recheckAfter > 0 {
			c.RecheckAt = l.Now().Add(recheckAfter)
		}
	}
	err = l.Apply(ctx, c)
	return err == nil, err
}

// ClaimOrder takes this refund's order slot (see Send.OnePerOrder) before
// the worker reads the provider for a send: from then on no other refund of
// ours is sent on the order, so a change the read shows that no recorded
// refund explains is no refund of ours in flight. It returns an
// *OrderBusyError while another open refund holds the slot. MarkSent keeps
// the slot; the refund's next write with nothing in flight frees it (so a
// read that ends the run without a send gives it back).
func (l *Lease) ClaimOrder(ctx context.Context) error {
	res, err := claimScript.Run(ctx, l.s.rdb, []string{l.s.slotKey(l.provider, l.order), l.s.recordKey(l.id)}, l.s.prefix, l.id,
		strconv.FormatInt(l.token, 10), l.owner).Text()
	if isErr(err, "FENCED") {
		return fmt.Errorf("refund %s: %w", l.id, ErrFenced)
	}
	if err != nil {
		return fmt.Errorf("store: order slot of refund %s: %w", l.id, err)
	}
	if res == "" {
		return nil
	}
	state, holder, _ := strings.Cut(res, " ")
	return &OrderBusyError{Order: l.order, Holder: holder, HolderState: State(state)}
}

// claimScript: KEYS slot, record; ARGV prefix, refund id, fencing token,
// owner id. A slot whose holder is closed or gone is free (as in
// update.lua). The record's slot field says it holds the slot, so
// update.lua looks at the slot only for the refunds that may hold one. A
// lease a newer owner took (or a record deleted meanwhile) writes nothing.
var claimScript = newScript(`
local cur = redis.call('HMGET', KEYS[2], 'fence', 'owner')
if cur[1] ~= ARGV[3] or cur[2] ~= ARGV[4] then
  return redis.error_reply('FENCED token ' .. ARGV[3] .. ' but fence is ' .. tostring(cur[1]))
end
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[2] then
  local hs = redis.call('HGET', ARGV[1] .. 'refund:' .. holder, 'state')
  if hs and hs ~= 'succeeded' and hs ~= 'failed' then
    return hs .. ' ' .. holder
  end
end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('HSET', KEYS[2], 'slot', '1')
return ''
`)
