package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/refundq/refundq/store"
)

// janitor keeps Redis from growing without bound: a succeeded or failed
// refund is deleted, with its history, once it has been final for the
// retention (Config.Retention), after it was appended to the day's audit
// file when Config.AuditDir is set. needs_review refunds are kept until a
// human settles them. Several workers may sweep at once: each deletion is
// one script that checks the refund is still what was read.
type janitor struct {
	h         *Handler
	retention time.Duration
	auditDir  string
	every     time.Duration
	ticking
}

func (j *janitor) start() {
	j.ticking.start(j.every, func(ctx context.Context) {
		if _, err := j.sweep(ctx); err != nil && ctx.Err() == nil {
			j.h.log.WithError(err).Warn("janitor: sweep stopped")
		}
	})
}

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
