package worker

import (
	"context"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/refundq/refundq/internal/store"
	"github.com/refundq/refundq/providers"
)

// knowledge is this process's copy of what refundq has learned about each
// provider's guesses (providers.Guess), read from Redis and refreshed every
// knowledgeTTL, so every worker sees what any worker learned.
type knowledge struct {
	store *store.Store
	log   *logrus.Logger

	mu     sync.Mutex
	known  map[string]providers.Knowledge
	readAt map[string]time.Time
	// refuted holds what this process saw refuted, so a refutation counts
	// here at once even if it could not be written to Redis.
	refuted map[string]map[providers.Guess]bool
}

// knowledgeTTL bounds how stale a worker's copy may be. A refutation found
// by another worker reaches this one within it; meanwhile this worker can
// only be more cautious than it should (it refutes on its own answers too).
const knowledgeTTL = 30 * time.Second

func newKnowledge(s *store.Store, log *logrus.Logger) *knowledge {
	return &knowledge{store: s, log: log, known: map[string]providers.Knowledge{}, readAt: map[string]time.Time{},
		refuted: map[string]map[providers.Guess]bool{}}
}

// of returns what is known of provider's guesses, from a copy up to
// knowledgeTTL old. A read that fails keeps the last copy; with none,
// nothing is known, which only makes adapters fail closed.
func (k *knowledge) of(provider string) providers.Knowledge {
	k.mu.Lock()
	fresh := time.Since(k.readAt[provider]) < knowledgeTTL
	cur := k.known[provider]
	k.mu.Unlock()
	if fresh {
		return cur
	}
	return k.read(provider, cur)
}

// fresh returns what is known now, read from Redis: for a look-up, whose
// "not applied" may rest on a guess another worker has just refuted. A read
// that fails knows nothing (never the cached copy), which only makes the
// adapter fail closed.
func (k *knowledge) fresh(provider string) providers.Knowledge {
	k.mu.Lock()
	refuted := k.refuted[provider]
	k.mu.Unlock()
	none := providers.Knowledge{}
	for g := range refuted {
		none[g] = providers.Refuted
	}
	return k.read(provider, none)
}

// read reads the provider's verdicts from Redis into the copy; on failure
// it returns fallback.
func (k *knowledge) read(provider string, fallback providers.Knowledge) providers.Knowledge {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	states, err := k.store.Guesses(ctx, provider)
	if err != nil {
		k.log.WithError(err).WithField("provider", provider).Warn("cannot read what is known of the provider's guesses")
		return fallback
	}
	next := providers.Knowledge{}
	for _, g := range states {
		switch g.Verdict() {
		case "confirmed":
			next[providers.Guess(g.Guess)] = providers.Confirmed
		case "refuted":
			next[providers.Guess(g.Guess)] = providers.Refuted
		}
	}
	k.mu.Lock()
	for g := range k.refuted[provider] {
		next[g] = providers.Refuted
	}
	k.known[provider], k.readAt[provider] = next, time.Now()
	k.mu.Unlock()
	return next
}

// observe records what an answer showed about a guess. Only a change of
// verdict is written, and the process that makes it logs it once.
func (k *knowledge) observe(ctx context.Context, provider string, o providers.Observation) {
	cur := k.of(provider)
	v := cur[o.Guess]
	if v == providers.Refuted || (o.Holds && v == providers.Confirmed) {
		return
	}
	if !o.Holds {
		k.mu.Lock()
		if k.refuted[provider] == nil {
			k.refuted[provider] = map[providers.Guess]bool{}
		}
		k.refuted[provider][o.Guess] = true
		k.mu.Unlock()
	}
	first, err := k.store.Observe(recordCtx(ctx), provider, string(o.Guess), o.Holds, o.Detail)
	if err != nil {
		k.log.WithError(err).WithField("provider", provider).Warn("cannot record what an answer showed of a guess")
	}
	// Read the verdict back rather than assume it: another worker may have
	// refuted the guess meanwhile, and a refutation wins.
	k.mu.Lock()
	delete(k.readAt, provider)
	if err == nil && !o.Holds {
		// Redis keeps the refutation now: from here on it is read there,
		// so an operator who clears it (refundctl guesses clear) is heard
		// by this worker too, within knowledgeTTL, without a restart.
		delete(k.refuted[provider], o.Guess)
	}
	k.mu.Unlock()
	if !first {
		return
	}
	f := k.log.WithFields(logrus.Fields{"provider": provider, "guess": o.Guess, "evidence": o.Detail})
	if o.Holds {
		f.Info("guess confirmed by the provider's answer")
	} else {
		f.Warn("guess refuted by the provider's answer; look-ups that rest on it now stay unknown (needs_review, never a resend)")
	}
}
