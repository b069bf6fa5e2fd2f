package enqueue

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/providers"
	"github.com/refundq/refundq/tasks"
)

// ErrNoWorker: no worker serving the queue is running, so nobody would
// carry out the run (only workers hold provider credentials).
var ErrNoWorker = errors.New("no worker is running on the queue")

// ReconcileRequest asks for a reconciliation run.
type ReconcileRequest struct {
	Since, Until time.Time // the window refunds became final in; Until zero: now
	Provider     string    // "" every provider
	StartedBy    string    // who asks, for the record (a token's name, a person)
}

// StartReconcile records a reconciliation run and enqueues the task a
// worker drives it with. It refuses when no worker is running on the queue
// (ErrNoWorker), or when one is and none has the provider configured: a run
// nobody can carry out would only wait.
func (c *Client) StartReconcile(ctx context.Context, r ReconcileRequest) (store.ReconcileRun, error) {
	if r.Until.IsZero() {
		r.Until = time.Now()
	}
	if r.Since.After(r.Until) {
		return store.ReconcileRun{}, tasks.ValidationError{{Field: "since", Message: "is after until"}}
	}
	check := r.Provider
	if check == "" {
		check = providers.MoyasarPG // any name: only "is a worker running" is asked
	} else if _, err := c.registry.Get(r.Provider); errors.Is(err, providers.ErrUnknownProvider) {
		return store.ReconcileRun{}, err
	}
	enabled, anyWorker, err := c.store.Serving(ctx, c.queue, check)
	switch {
	case err != nil:
		return store.ReconcileRun{}, err
	case !anyWorker:
		return store.ReconcileRun{}, fmt.Errorf("reconcile: %w %q: start one (refund-worker), then ask again", ErrNoWorker, c.queue)
	case r.Provider != "" && !enabled:
		return store.ReconcileRun{}, fmt.Errorf("reconcile %s: %w: no running worker on queue %q has it", r.Provider, providers.ErrDisabled, c.queue)
	}
	// The id sorts by time (UUIDv7) and carries no colon of its own.
	id := "rc-" + strings.ReplaceAll(uuid.Must(uuid.NewV7()).String(), "-", "")
	run, err := c.store.CreateReconcile(ctx, store.ReconcileRun{ID: id, Since: r.Since, Until: r.Until,
		Provider: r.Provider, StartedBy: r.StartedBy})
	if err != nil {
		return run, err
	}
	task, err := tasks.NewReconcileTask(id, c.queue)
	if err != nil {
		return run, err
	}
	if _, err := c.ac.EnqueueContext(ctx, task); err != nil {
		_ = c.store.FinishReconcile(context.WithoutCancel(ctx), id, "its task could not be enqueued: "+err.Error())
		return run, fmt.Errorf("reconcile: enqueue its task: %w", err)
	}
	return run, nil
}

// Reconciliation returns run id with up to limit of its findings (limit <=
// 0: all) after offset, and how many findings it has.
func (c *Client) Reconciliation(ctx context.Context, id string, offset, limit int) (store.ReconcileRun, []store.Finding, int, error) {
	run, err := c.store.Reconcile(ctx, id)
	if err != nil {
		return run, nil, 0, err
	}
	fs, n, err := c.store.ReconcileFindings(ctx, id, offset, limit)
	return run, fs, n, err
}

// ParseSince reads the start of a reconciliation window: a duration back
// from now ("24h", "90m", "7d") or an RFC 3339 time.
func ParseSince(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if d, err := time.ParseDuration(days + "h"); err == nil && d > 0 {
			return now.Add(-24 * d), nil
		}
	} else if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("since %q: want a duration back from now (24h, 7d) or an RFC 3339 time", s)
}
