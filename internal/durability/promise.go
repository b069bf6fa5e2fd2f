package durability

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"
)

// AcceptLossEnv names the variable that, set to "1", lets a process start on
// a Redis that cannot confirm a write reached disk or a replica (neither
// appendfsync always, nor WAITAOF, nor a replica). It is the operator's
// explicit acceptance that a Redis crash can undo a mark that guards money
// (and so pay a refund twice); every start logs it as an error. It does not
// lift the settings check (appendonly yes, noeviction): see Require.
const AcceptLossEnv = "REFUNDQ_ACCEPT_REDIS_LOSS"

// Promise is what the Redis refundq writes to can promise about a write it
// has acknowledged, found once at start (Detect), and so what a process must
// wait for after a write that guards money (Wait).
type Promise struct {
	// Always: appendfsync always. Redis fsyncs the AOF before it answers,
	// so an acknowledged write is on disk: nothing to wait for.
	Always bool
	// AOF: the server has WAITAOF (Redis ≥ 7.2) with the AOF on; Wait
	// blocks until the primary's AOF is fsynced.
	AOF bool
	// Replicas were connected at start: Wait also blocks until one replica
	// has the write, so a failover keeps it.
	Replicas int
	// Accepted: the server promises nothing of the above and the operator
	// accepted that (AcceptLossEnv); Wait returns at once.
	Accepted bool
}

// Durable reports whether an acknowledged write survives a crash of the
// primary (on disk, or on a replica).
func (p Promise) Durable() bool { return p.Always || p.AOF || p.Replicas > 0 }

// waits reports whether Wait has anything to wait for.
func (p Promise) waits() bool { return !p.Always && p.AOF || p.Replicas > 0 }

func (p Promise) String() string {
	var parts []string
	if p.Always {
		parts = append(parts, "appendfsync always")
	}
	if p.AOF && !p.Always {
		parts = append(parts, "WAITAOF")
	}
	if p.Replicas > 0 {
		parts = append(parts, "WAIT for a replica")
	}
	if len(parts) == 0 {
		if p.Accepted {
			return "nothing (loss accepted with " + AcceptLossEnv + "=1)"
		}
		return "nothing"
	}
	return strings.Join(parts, " and ")
}

// Detect finds what the server promises. It returns a *Refusal (wrapping
// ErrNoPromise) when the server promises nothing: a lone Redis before 7.2
// with appendfsync everysec or no keeps the last second or so of
// acknowledged writes only in memory, and a machine crash loses them.
func Detect(ctx context.Context, rdb redis.UniversalClient) (Promise, error) {
	p, seen, err := detect(ctx, rdb)
	if err != nil || p.Durable() {
		return p, err
	}
	ref := &Refusal{}
	ref.add(seen.problem(), ErrNoPromise)
	return p, ref
}

// seen is what detect saw of the server, to say what it lacks.
type seen struct {
	version                 string // redis_version, "" when unknown
	appendOnly, appendFsync string // "" when CONFIG is hidden
}

// problem says why a server that promises nothing cannot keep a write.
func (s seen) problem() string {
	version := "Redis " + s.version
	if s.version == "" {
		version = "Redis (version unknown)"
	}
	switch {
	case s.appendOnly != "" && s.appendOnly != "yes":
		return appendOnlyProblem(s.appendOnly)
	case s.appendFsync != "":
		return fmt.Sprintf("appendfsync is %q, and %s has neither WAITAOF (7.2 and later) nor a replica: a crash of "+
			"its machine can lose the last writes it acknowledged, such as the mark that a refund is in flight",
			s.appendFsync, version)
	}
	return fmt.Sprintf("%s does not show appendfsync and has neither WAITAOF (7.2 and later) nor a replica: "+
		"nothing confirms that a write it acknowledged is on disk", version)
}

func detect(ctx context.Context, rdb redis.UniversalClient) (Promise, seen, error) {
	var p Promise
	var sn seen
	// A server that does not know these sections (an embedded one) simply
	// has no replica to offer; a server that does not answer is an error.
	repl, err := info(ctx, rdb, "replication")
	if err != nil && !isRedisError(err) {
		return p, sn, fmt.Errorf("redis: INFO replication: %w", err)
	}
	server, err := info(ctx, rdb, "server")
	if err != nil && !isRedisError(err) {
		return p, sn, fmt.Errorf("redis: INFO server: %w", err)
	}
	sn.version = server["redis_version"]
	p.Replicas, _ = strconv.Atoi(repl["connected_slaves"])
	// appendfsync may be hidden (managed Redis): then only WAITAOF or a
	// replica can promise anything.
	if m, err := rdb.ConfigGet(ctx, "appendfsync").Result(); err == nil {
		if a, err := rdb.ConfigGet(ctx, "appendonly").Result(); err == nil {
			sn.appendOnly, sn.appendFsync = a["appendonly"], m["appendfsync"]
			p.Always = sn.appendFsync == "always" && sn.appendOnly == "yes"
		}
	}
	// WAITAOF answers on 7.2 and later with the AOF on; an unknown command
	// (7.0) or "appendonly is disabled" means it cannot promise.
	pipe := rdb.Pipeline()
	pipe.Incr(ctx, MarkKey)
	probe := pipe.Do(ctx, "WAITAOF", 1, 0, WaitTimeout.Milliseconds())
	_, _ = pipe.Exec(ctx)
	switch counts, err := probe.Int64Slice(); {
	case err == nil:
		p.AOF = len(counts) == 2 && counts[0] >= 1
	case !isRedisError(err):
		return p, sn, fmt.Errorf("redis: WAITAOF: %w", err)
	}
	return p, sn, nil
}

func isRedisError(err error) bool {
	var rerr redis.Error
	return errors.As(err, &rerr)
}

// Open is Detect for a process about to start: accept (from AcceptLossEnv,
// or the library's own option) turns a server that promises nothing into a
// Promise that waits for nothing, logged as an error at every start.
func Open(ctx context.Context, rdb redis.UniversalClient, accept bool, log logrus.FieldLogger) (Promise, error) {
	p, err := Detect(ctx, rdb)
	if err == nil {
		log.WithField("durability", p.String()).Debug("Redis keeps every acknowledged write that guards money")
		return p, nil
	}
	if !accept || !errors.Is(err, ErrNoPromise) {
		return p, err
	}
	problems := err.Error()
	if ref := (*Refusal)(nil); errors.As(err, &ref) {
		problems = strings.Join(ref.Problems, "; ")
	}
	logAccepted(log, problems)
	return Promise{Accepted: true}, nil
}

// logAccepted says, at every start, that the operator accepted a Redis that
// may lose what it acknowledged, and what is wrong with it.
func logAccepted(log logrus.FieldLogger, problems string) {
	log.WithFields(logrus.Fields{"env": AcceptLossEnv, "problems": problems}).Error(
		"running on a Redis that may lose what it acknowledged (" + AcceptLossEnv + "=1): a Redis crash can undo " +
			"the mark that an attempt is in flight, and the refund may be paid twice")
}

// Keeper waits, after a write that guards money, until Redis keeps it (see
// Promise.Wait). It finds what the server promises at its first use, so a
// process that only reads never asks, and asks again after a failure.
type Keeper struct {
	rdb    redis.UniversalClient
	accept bool
	log    logrus.FieldLogger

	mu sync.Mutex
	p  *Promise
}

// NewKeeper returns a Keeper for rdb; accept is the operator's acceptance of
// a Redis that promises nothing (see Open).
func NewKeeper(rdb redis.UniversalClient, accept bool, log logrus.FieldLogger) *Keeper {
	return &Keeper{rdb: rdb, accept: accept, log: log}
}

// NewKeeperWith returns a Keeper for rdb that waits as p promises: for a
// process that ran Require at start and must not ask again.
func NewKeeperWith(rdb redis.UniversalClient, p Promise) *Keeper {
	return &Keeper{rdb: rdb, p: &p}
}

// Promise returns what the server promises, finding it on the first call
// (see Open): a process calls it at start to refuse a Redis that promises
// nothing before it takes any work.
func (k *Keeper) Promise(ctx context.Context) (Promise, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.p != nil {
		return *k.p, nil
	}
	p, err := Open(ctx, k.rdb, k.accept, k.log)
	if err != nil {
		return p, err
	}
	k.p = &p
	return p, nil
}

// Wait waits until the writes made so far are kept as the server promises.
func (k *Keeper) Wait(ctx context.Context) error {
	p, err := k.Promise(ctx)
	if err != nil {
		return err
	}
	return p.Wait(ctx, k.rdb)
}

// ErrNoPromise is returned, wrapped, by Detect for a server that answers
// but promises to keep nothing it acknowledged beyond its memory.
var ErrNoPromise = errors.New("Redis cannot promise to keep what it acknowledges")

// Wait returns once every write acknowledged before the call — through any
// connection of rdb — is kept as p promises: on the primary's disk (WAITAOF)
// and on a replica (WAIT). With appendfsync always and no replica, or loss
// accepted, it returns at once without a round trip. It returns
// ErrNotDurable (wrapped) when the server did not confirm in time.
func (p Promise) Wait(ctx context.Context, rdb redis.UniversalClient) error {
	if !p.waits() {
		return nil
	}
	_, err := wait(ctx, rdb, p.AOF && !p.Always, p.Replicas > 0)
	return err
}

// wait writes MarkKey and waits for it on the same connection (see
// WaitDurable for why): WAITAOF when aof, WAIT 1 when replica.
func wait(ctx context.Context, rdb redis.UniversalClient, aof, replica bool) (Confirmed, error) {
	var none Confirmed
	timeout := WaitTimeout
	if dl, ok := ctx.Deadline(); ok {
		// Leave the reply time to arrive before the client's read deadline.
		timeout = min(timeout, time.Until(dl)-100*time.Millisecond)
	}
	if timeout <= 0 {
		return none, context.DeadlineExceeded
	}
	ms := timeout.Milliseconds()
	pipe := rdb.Pipeline()
	mark := pipe.Incr(ctx, MarkKey)
	var waitAOF, waitRepl *redis.Cmd
	if aof {
		waitAOF = pipe.Do(ctx, "WAITAOF", 1, 0, ms)
	}
	if replica {
		waitRepl = pipe.Do(ctx, "WAIT", 1, ms)
	}
	_, _ = pipe.Exec(ctx) // each command's own error is read below
	if err := mark.Err(); err != nil {
		return none, fmt.Errorf("durability: write %s: %w", MarkKey, err)
	}
	var got Confirmed
	var missing []string
	if waitAOF != nil {
		switch counts, err := waitAOF.Int64Slice(); {
		case err == nil:
			if len(counts) == 2 && counts[0] >= 1 {
				got.Disk = true
			} else {
				missing = append(missing, fmt.Sprintf("the AOF was not fsynced within %s", timeout))
			}
		case unavailable(err):
			// Redis < 7.2, or AOF off: nothing to wait on (WaitDurable).
		default:
			return got, fmt.Errorf("durability: WAITAOF: %w", err)
		}
	}
	if waitRepl != nil {
		n, err := waitRepl.Int()
		if err != nil {
			return got, fmt.Errorf("durability: WAIT: %w", err)
		}
		got.Replicas = n
		if n < 1 {
			missing = append(missing, fmt.Sprintf("no replica acknowledged within %s", timeout))
		}
	}
	if len(missing) > 0 {
		return got, fmt.Errorf("%w: %s", ErrNotDurable, strings.Join(missing, "; "))
	}
	return got, nil
}
