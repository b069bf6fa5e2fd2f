package durability

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// WaitTimeout bounds each wait of WaitDurable (a shorter context deadline
// wins). It stays under go-redis's default 3 s read timeout, which would
// otherwise cut the blocking reply off; with appendfsync everysec an fsync
// comes within about a second, two when the disk is slow.
const WaitTimeout = 2 * time.Second

// MarkKey is the one key WaitDurable writes (an INCR counter), in the
// database the client uses. See WaitDurable for why it writes at all.
const MarkKey = "refundq:durability:mark"

// ErrNotDurable is returned, wrapped, when the server can confirm
// durability but did not within the timeout: a write may still be only in
// the primary's memory.
var ErrNotDurable = errors.New("write not confirmed durable")

// Confirmed says what WaitDurable could confirm for the writes made before
// it was called.
type Confirmed struct {
	// Disk: fsynced to the primary's AOF (WAITAOF, Redis ≥ 7.2).
	Disk bool
	// Replicas that acknowledged them (WAIT): they survive a failover to
	// one of those replicas.
	Replicas int
}

// Nothing reports that the server could confirm nothing: Redis 7.0 with no
// replica.
func (c Confirmed) Nothing() bool { return !c.Disk && c.Replicas == 0 }

// WaitDurable waits until every write that reached Redis before the call —
// through any connection of rdb — is on the primary's disk or on a replica,
// as far as the server lets anyone know:
//
//   - Redis ≥ 7.2 (WAITAOF): the primary's AOF is fsynced (WAITAOF 1 0);
//     where replicas are connected, one of them must also have the writes
//     (WAIT 1), so a failover to it keeps them.
//   - Redis < 7.2 with replicas: one replica has the writes (WAIT 1), in its
//     memory; that covers a failover and a crash of the primary alone, not a
//     power cut of both machines.
//   - Redis < 7.2 (the installed 7.0) without replicas: nothing can be
//     waited on. 7.0 has no command that reports when the AOF was fsynced,
//     so WaitDurable returns at once with Confirmed.Nothing(). What 7.0
//     allows there is configuration: `appendfsync always` (the AOF is
//     written and fsynced before the reply is sent, so an acknowledged write
//     is on disk), or a replica (then this function has something to wait
//     for), with `min-replicas-to-write 1` so the primary refuses writes
//     while no replica is attached.
//
// WAIT and WAITAOF wait for the replication offset recorded on the
// connection they run on: after its last command on 7.0 (measured on
// 7.0.15), after its last write on newer servers. go-redis spreads commands
// over a pool, so the refund's own write may have gone through another
// connection, and a WAIT on an idle one returns at once without covering it.
// WaitDurable therefore first writes MarkKey on the connection it waits on,
// in the same pipeline: the replication stream and the AOF are in order, so
// once that write is on disk or on a replica, every write acknowledged
// before it is too.
//
// It returns ErrNotDurable (wrapped) when the server could confirm but did
// not within WaitTimeout, and Redis or network errors as they come.
func WaitDurable(ctx context.Context, rdb redis.UniversalClient) (Confirmed, error) {
	repl, err := info(ctx, rdb, "replication")
	if err != nil {
		return Confirmed{}, fmt.Errorf("durability: INFO replication: %w", err)
	}
	replicas, _ := strconv.Atoi(repl["connected_slaves"])
	return wait(ctx, rdb, true, replicas > 0)
}

// unavailable reports whether WAITAOF failed because the server cannot do
// it at all: an unknown command (before 7.2), or AOF turned off.
func unavailable(err error) bool {
	var rerr redis.Error
	if !errors.As(err, &rerr) {
		return false
	}
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "unknown command") || strings.Contains(msg, "appendonly is disabled")
}
