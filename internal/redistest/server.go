package redistest

import (
	"testing"

	"github.com/refundq/refundq/internal/redisproc"
)

// Server starts a redis-server of the test's own with o, stopped when the
// test ends: for a test about how Redis is configured (persistence, a port,
// a replica), since the shared test Redis keeps nothing on disk and its
// configuration is not the test's to change. A machine without redis-server
// fails the test, saying how to get it, rather than skipping what it checks.
func Server(t testing.TB, o redisproc.Options) *redisproc.Server {
	t.Helper()
	if _, err := redisproc.Binary(); err != nil {
		t.Fatalf("%v: make test installs it (bash .ci/redis-up --install-only)", err)
	}
	s, err := redisproc.Start(t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}
