package store

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"
)

// What refundq has learned, per provider, about the undocumented facts its
// adapters rely on (providers.Guess). Each guess keeps the first answer that
// confirmed it and the first that refuted it; a refutation outweighs any
// number of confirmations, until an operator clears it.

func (s *Store) guessKey(provider string) string { return s.prefix + "guesses:" + provider }

// GuessState is what is known of one guess.
type GuessState struct {
	Guess       string
	ConfirmedAt time.Time // zero if never confirmed
	Confirmed   string    // what confirmed it
	RefutedAt   time.Time // zero if never refuted
	Refuted     string    // what refuted it
}

// Verdict is "confirmed", "refuted" or "unconfirmed".
func (g GuessState) Verdict() string {
	switch {
	case !g.RefutedAt.IsZero():
		return "refuted"
	case !g.ConfirmedAt.IsZero():
		return "confirmed"
	}
	return "unconfirmed"
}

// Guesses returns what is known of every guess of provider that an answer
// has ever shown, sorted by name.
func (s *Store) Guesses(ctx context.Context, provider string) ([]GuessState, error) {
	h, err := s.rdb.HGetAll(ctx, s.guessKey(provider)).Result()
	if err != nil {
		return nil, fmt.Errorf("store: guesses of %s: %w", provider, err)
	}
	byName := map[string]*GuessState{}
	for field, v := range h {
		name, kind, ok := strings.Cut(field, "|")
		if !ok {
			continue
		}
		g := byName[name]
		if g == nil {
			g = &GuessState{Guess: name}
			byName[name] = g
		}
		at, detail, _ := strings.Cut(v, "|")
		switch kind {
		case "confirmed":
			g.ConfirmedAt, g.Confirmed = parseTime(at), detail
		case "refuted":
			g.RefutedAt, g.Refuted = parseTime(at), detail
		}
	}
	out := make([]GuessState, 0, len(byName))
	for _, g := range byName {
		out = append(out, *g)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Guess < out[j].Guess })
	return out, nil
}

// Observe records that an answer showed guess to hold (or not). Only the first
// confirmation and the first refutation are kept; it reports whether this one
// was the first of its kind, so the caller logs a change once.
func (s *Store) Observe(ctx context.Context, provider, guess string, holds bool, detail string) (bool, error) {
	kind := "refuted"
	if holds {
		kind = "confirmed"
	}
	if len(detail) > 300 {
		detail = detail[:300] + "…"
	}
	ok, err := s.rdb.HSetNX(ctx, s.guessKey(provider), guess+"|"+kind, fmtTime(s.now())+"|"+detail).Result()
	if err != nil {
		return false, fmt.Errorf("store: observe %s %s: %w", provider, guess, err)
	}
	return ok, nil
}

// ClearGuess forgets what was learned of a guess (after the provider fixed
// what refuted it, say), so it is learned again from the next answers.
func (s *Store) ClearGuess(ctx context.Context, provider, guess string) error {
	return s.rdb.HDel(ctx, s.guessKey(provider), guess+"|confirmed", guess+"|refuted").Err()
}
