package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/refundq/refundq/tasks"
)

// A reconciliation run re-reads, at their providers, the refunds that
// became succeeded or failed in a window, and keeps what disagrees. Its
// state lives here and not in its task, so a worker that dies mid-run, or a
// task handed back for a rate limit, goes on from the last saved cursor.

// Run states.
const (
	RunRunning = "running"
	RunDone    = "done"
)

// ReconcileRetention is how long a run and its findings are kept after it
// was started (and again after it finished): long enough for the
// finance team to read last week's report.
const ReconcileRetention = 7 * 24 * time.Hour

// ErrRunNotFound: no reconciliation run with that id (never made, or
// expired).
var ErrRunNotFound = errors.New("reconciliation run not found")

// ReconcileRun is one reconciliation run.
type ReconcileRun struct {
	ID        string
	Since     time.Time // refunds that became final at or after this…
	Until     time.Time // …and at or before this
	Provider  string    // only this provider's refunds; "" all
	StartedBy string    // who asked for it (an API token's name, a person)
	State     string    // RunRunning or RunDone
	Error     string    // why a run ended early ("" if it did not)
	// Total is how many refunds of any provider became final in the window
	// when the run started: the progress bar's end.
	Total int
	// Walked is how many of them the cursor has passed (of any provider).
	Walked int
	// The cursor: the state being walked (Succeeded, then Failed), and the
	// last refund done in it, by its score (ms it entered the state) and id
	// (Redis orders equal scores by member).
	Phase    State
	AfterMS  int64
	AfterID  string
	Checked  int // refunds of the run's provider(s) looked at
	Agree    int
	Disagree int
	// Unchecked are refunds whose provider could not say (no answer, an
	// outcome it cannot show, provider not configured): not disagreements.
	Unchecked  int
	CreatedAt  time.Time
	UpdatedAt  time.Time
	FinishedAt time.Time
}

// Finding is one refund a run could not confirm.
type Finding struct {
	RefundID    string      `json:"refund_id"`
	Provider    string      `json:"provider"`
	OrderID     string      `json:"order_id"`
	State       State       `json:"state"` // here
	Amount      tasks.Money `json:"amount"`
	Reference   string      `json:"reference,omitempty"` // ours
	Verdict     string      `json:"verdict"`             // "disagree" or "unchecked"
	Reason      string      `json:"reason"`              // in words, the kind of disagreement
	Shows       string      `json:"shows"`               // the look-up's outcome kind
	Status      string      `json:"status,omitempty"`    // the provider's status word
	ProviderRef string      `json:"provider_ref,omitempty"`
	Detail      string      `json:"detail,omitempty"` // the adapter's words (another amount is named here)
	At          time.Time   `json:"at"`
}

// Progress is what one batch of a run adds; see SaveReconcile.
type Progress struct {
	Walked, Checked, Agree, Disagree, Unchecked int
	Phase                                       State
	AfterMS                                     int64
	AfterID                                     string
	Findings                                    []Finding
}

func (s *Store) runKey(id string) string      { return s.prefix + "reconcile:" + id }
func (s *Store) findingsKey(id string) string { return s.prefix + "reconcile-findings:" + id }

// CreateReconcile records a new run (ID, Since, Until, Provider, StartedBy
// set by the caller), counting the refunds in its window, and returns it.
func (s *Store) CreateReconcile(ctx context.Context, r ReconcileRun) (ReconcileRun, error) {
	total := 0
	for _, st := range []State{Succeeded, Failed} {
		n, err := s.rdb.ZCount(ctx, s.stateKey(st), msTime(r.Since), msTime(r.Until)).Result()
		if err != nil {
			return r, fmt.Errorf("store: count %s refunds: %w", st, err)
		}
		total += int(n)
	}
	now := s.now()
	r.State, r.Total, r.Phase, r.AfterMS, r.CreatedAt, r.UpdatedAt = RunRunning, total, Succeeded, r.Since.UnixMilli(), now, now
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, s.runKey(r.ID), map[string]any{
			"since": msTime(r.Since), "until": msTime(r.Until), "provider": r.Provider, "by": r.StartedBy,
			"state": r.State, "total": r.Total, "phase": string(r.Phase), "after_ms": r.AfterMS, "after_id": "",
			"walked": 0, "checked": 0, "agree": 0, "disagree": 0, "unchecked": 0,
			"created_at": msTime(now), "updated_at": msTime(now),
		})
		p.PExpire(ctx, s.runKey(r.ID), ReconcileRetention)
		return nil
	})
	if err != nil {
		return r, fmt.Errorf("store: create reconciliation %s: %w", r.ID, err)
	}
	return r, nil
}

// Reconcile returns run id, or ErrRunNotFound.
func (s *Store) Reconcile(ctx context.Context, id string) (ReconcileRun, error) {
	h, err := s.rdb.HGetAll(ctx, s.runKey(id)).Result()
	if err != nil {
		return ReconcileRun{}, fmt.Errorf("store: reconciliation %s: %w", id, err)
	}
	if len(h) == 0 {
		return ReconcileRun{}, fmt.Errorf("reconciliation %s: %w", id, ErrRunNotFound)
	}
	after, _ := strconv.ParseInt(h["after_ms"], 10, 64)
	return ReconcileRun{
		ID: id, Since: parseTime(h["since"]), Until: parseTime(h["until"]), Provider: h["provider"], StartedBy: h["by"],
		State: h["state"], Error: h["error"], Total: atoi(h["total"]), Walked: atoi(h["walked"]),
		Phase: State(h["phase"]), AfterMS: after, AfterID: h["after_id"],
		Checked: atoi(h["checked"]), Agree: atoi(h["agree"]), Disagree: atoi(h["disagree"]), Unchecked: atoi(h["unchecked"]),
		CreatedAt: parseTime(h["created_at"]), UpdatedAt: parseTime(h["updated_at"]), FinishedAt: parseTime(h["finished_at"]),
	}, nil
}

// ReconcileBatch returns up to n refunds of the run's phase after its
// cursor and within its window, in the order they entered the state, with
// each one's score (ms). Fewer than n: the phase is walked to its end.
func (s *Store) ReconcileBatch(ctx context.Context, r ReconcileRun, n int) ([]Record, []int64, error) {
	until := msTime(r.Until)
	var ids []string
	var scores []int64
	// Ties at the cursor's ms are ordered by id: skip the ones done. A page
	// that is all skipped ties moves the offset on, so any number of ties
	// ends.
	for offset := int64(0); len(ids) < n; offset += int64(n) {
		zs, err := s.rdb.ZRangeArgsWithScores(ctx, redis.ZRangeArgs{Key: s.stateKey(r.Phase), ByScore: true,
			Start: strconv.FormatInt(r.AfterMS, 10), Stop: until, Offset: offset, Count: int64(n)}).Result()
		if err != nil {
			return nil, nil, fmt.Errorf("store: reconciliation %s: walk %s: %w", r.ID, r.Phase, err)
		}
		for _, z := range zs {
			id, _ := z.Member.(string)
			ms := int64(z.Score)
			if ms == r.AfterMS && id <= r.AfterID {
				continue
			}
			ids, scores = append(ids, id), append(scores, ms)
		}
		if len(zs) < n {
			break
		}
	}
	if len(ids) > n {
		ids, scores = ids[:n], scores[:n]
	}
	got, _, err := s.getEach(ctx, ids)
	if err != nil {
		return nil, nil, err
	}
	byID := make(map[string]Record, len(got))
	for _, rec := range got {
		byID[rec.RefundID] = rec
	}
	// A record the janitor deleted meanwhile (or one that cannot be read)
	// comes back with its id alone, so the cursor still passes it.
	recs := make([]Record, len(ids))
	for i, id := range ids {
		if rec, ok := byID[id]; ok {
			recs[i] = rec
		} else {
			recs[i] = Record{RefundID: id}
		}
	}
	return recs, scores, nil
}

// SaveReconcile adds a batch's counts and findings to run id and moves its
// cursor, all at once: a crash before it redoes the batch, never half of it.
func (s *Store) SaveReconcile(ctx context.Context, id string, p Progress) error {
	lines := make([]any, 0, len(p.Findings))
	for _, f := range p.Findings {
		b, err := json.Marshal(f)
		if err != nil {
			return fmt.Errorf("store: reconciliation %s: %w", id, err)
		}
		lines = append(lines, string(b))
	}
	_, err := s.rdb.TxPipelined(ctx, func(pp redis.Pipeliner) error {
		k := s.runKey(id)
		for f, n := range map[string]int{"walked": p.Walked, "checked": p.Checked, "agree": p.Agree, "disagree": p.Disagree, "unchecked": p.Unchecked} {
			if n != 0 {
				pp.HIncrBy(ctx, k, f, int64(n))
			}
		}
		pp.HSet(ctx, k, "phase", string(p.Phase), "after_ms", p.AfterMS, "after_id", p.AfterID, "updated_at", msTime(s.now()))
		if len(lines) > 0 {
			pp.RPush(ctx, s.findingsKey(id), lines...)
			pp.PExpire(ctx, s.findingsKey(id), ReconcileRetention)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: save reconciliation %s: %w", id, err)
	}
	return nil
}

// FinishReconcile marks run id done (with why it ended early, if it did)
// and keeps it ReconcileRetention from now.
func (s *Store) FinishReconcile(ctx context.Context, id, why string) error {
	now := msTime(s.now())
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, s.runKey(id), "state", RunDone, "error", why, "finished_at", now, "updated_at", now)
		p.PExpire(ctx, s.runKey(id), ReconcileRetention)
		p.PExpire(ctx, s.findingsKey(id), ReconcileRetention)
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: finish reconciliation %s: %w", id, err)
	}
	return nil
}

// ReconcileFindings returns up to limit findings of run id (limit <= 0:
// all) after skipping offset, in the order they were found, and how many
// there are.
func (s *Store) ReconcileFindings(ctx context.Context, id string, offset, limit int) ([]Finding, int, error) {
	stop := int64(-1)
	if limit > 0 {
		stop = int64(offset + limit - 1)
	}
	var lines *redis.StringSliceCmd
	var total *redis.IntCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		lines = p.LRange(ctx, s.findingsKey(id), int64(offset), stop)
		total = p.LLen(ctx, s.findingsKey(id))
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("store: findings of reconciliation %s: %w", id, err)
	}
	out := make([]Finding, 0, len(lines.Val()))
	for _, l := range lines.Val() {
		var f Finding
		if err := json.Unmarshal([]byte(l), &f); err != nil {
			return nil, 0, fmt.Errorf("store: findings of reconciliation %s: %w", id, err)
		}
		out = append(out, f)
	}
	return out, int(total.Val()), nil
}
