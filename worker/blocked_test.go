package worker

import (
	"testing"
	"time"
)

// A blocked refund's next try waits as long as it has been blocked, from
// 30 s up to the longest wait: 30 s, 30 s, 1 m, 2 m, 4 m, 5 m, 5 m, ...
func TestBlockedWaitDoubles(t *testing.T) {
	for _, c := range []struct {
		since, longest, want time.Duration
	}{
		{0, 5 * time.Minute, 30 * time.Second},
		{10 * time.Second, 5 * time.Minute, 30 * time.Second},
		{30 * time.Second, 5 * time.Minute, 30 * time.Second},
		{time.Minute, 5 * time.Minute, time.Minute},
		{2 * time.Minute, 5 * time.Minute, 2 * time.Minute},
		{4 * time.Minute, 5 * time.Minute, 4 * time.Minute},
		{8 * time.Minute, 5 * time.Minute, 5 * time.Minute},
		{48 * time.Hour, 5 * time.Minute, 5 * time.Minute},
		// A longest wait under the first (tests, sandboxes) is every wait.
		{0, 500 * time.Millisecond, 500 * time.Millisecond},
		{time.Hour, 500 * time.Millisecond, 500 * time.Millisecond},
	} {
		if got := blockedWait(c.since, c.longest); got != c.want {
			t.Errorf("blockedWait(%s, %s) = %s, want %s", c.since, c.longest, got, c.want)
		}
	}
}
