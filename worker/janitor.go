package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/refundq/refundq/internal/store"
)

// janitor keeps Redis from growing without bound: a succeeded or failed
// refund is deleted, with its history, once it has been final for the
// retention (Config.Retention), after it was appended to the day's audit
// file when Config.AuditDir is set. needs_review refunds are kept until a
// human settles them. Several workers may sweep at once: each deletion is
// one script that checks the refund is still what was read.
//
// The events stream is trimmed here too, by age (Config.EventsRetention),
// and only here: a trim by count at each append kept less than a minute of
// history at full speed, and silently took the events a stopped webhook
// dispatcher had not delivered yet.
type janitor struct {
	h               *Handler
	retention       time.Duration
	eventsRetention time.Duration
	auditDir        string
	every           time.Duration
	ticking
}

func (j *janitor) start() {
	j.ticking.start(j.every, func(ctx context.Context) { _, _ = j.pass(ctx) })
}

// pass sweeps refunds, then trims events (either goes on when the other
// fails), logs what failed, and returns how many refunds it deleted.
func (j *janitor) pass(ctx context.Context) (int, error) {
	n, err := j.sweep(ctx)
	if err != nil && ctx.Err() == nil {
		j.h.log.WithError(err).Warn("janitor: sweep stopped")
	}
	terr := j.trimEvents(ctx)
	if terr != nil && ctx.Err() == nil {
		j.h.log.WithError(terr).Warn("janitor: events not trimmed")
	}
	return n, errors.Join(err, terr)
}

// trimLogged is how many events lost to one trim are logged one by one;
// each group's total is logged (and counted) in full.
const trimLogged = 20

// trimEvents deletes the events older than the events retention, first
// logging and counting those a consumer group had not acknowledged: a
// notification or an order update that will now never happen.
func (j *janitor) trimEvents(ctx context.Context) error {
	n, lost, err := j.h.store.TrimEvents(ctx, time.Now().Add(-j.eventsRetention), trimLogged)
	if err != nil {
		return err
	}
	logged := 0
	for _, u := range lost {
		j.h.metrics.trimmedUndelivered.WithLabelValues(u.Group).Add(float64(u.Count))
		for _, ev := range u.Events[:min(len(u.Events), trimLogged-logged)] {
			logged++
			j.h.log.WithFields(logrus.Fields{"refund_id": ev.RefundID, "group": u.Group, "event_id": ev.ID, "state": ev.To}).
				Warn("janitor: event trimmed before its group acknowledged it")
		}
		j.h.log.WithFields(logrus.Fields{"group": u.Group, "lost": u.Count, "retention": j.eventsRetention.String()}).
			Warn("janitor: events trimmed before their group acknowledged them")
	}
	if n > 0 {
		j.h.log.WithField("trimmed", n).Info("janitor: events past their retention trimmed")
	}
	k, err := j.h.store.OutboxTrim(ctx, time.Now().Add(-outboxHorizon))
	if k > 0 {
		j.h.log.WithFields(logrus.Fields{"forgotten": k, "after": outboxHorizon.String()}).
			Warn("janitor: webhook notifications neither delivered nor given up on are no longer measured (their tasks were deleted by hand?)")
	}
	return err
}

// outboxHorizon is how long a notification may stay undelivered in the
// outbox's measure: deliveries give up after about a day, so one older than
// this has lost its task.
const outboxHorizon = 3 * 24 * time.Hour

// sweep deletes up to a batch of expired refunds and returns how many.
func (j *janitor) sweep(ctx context.Context) (int, error) {
	recs, err := j.h.store.Expired(ctx, j.retention, 500)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, rec := range recs {
		if j.auditDir != "" {
			if err := j.export(ctx, rec); err != nil {
				return n, fmt.Errorf("audit export of %s (nothing deleted): %w", rec.RefundID, err)
			}
		}
		ok, err := j.h.store.Expire(ctx, rec, j.retention)
		if err != nil {
			return n, err
		}
		if ok {
			n++
		}
	}
	if n > 0 {
		j.h.log.WithField("deleted", n).Info("janitor: refunds past their retention deleted")
	}
	return n, nil
}

// auditLine is one refund in an audit file: its record and whole history.
type auditLine struct {
	Refund  store.Record  `json:"refund"`
	History []store.Entry `json:"history"`
}

// export appends the refund to <AuditDir>/refunds-<day>.jsonl and syncs it,
// so nothing is deleted that is not on disk first.
func (j *janitor) export(ctx context.Context, rec store.Record) error {
	hist, err := j.h.store.History(ctx, rec.RefundID)
	if err != nil {
		return err
	}
	line, err := json.Marshal(auditLine{Refund: rec, History: hist})
	if err != nil {
		return err
	}
	name := filepath.Join(j.auditDir, "refunds-"+time.Now().UTC().Format("2006-01-02")+".jsonl")
	f, err := os.OpenFile(name, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
