package store

import "time"

// WithClock returns a Store that reads the time from now: a worker whose
// clock is off.
func (s *Store) WithClock(now func() time.Time) *Store {
	c := *s
	c.now = now
	return &c
}
