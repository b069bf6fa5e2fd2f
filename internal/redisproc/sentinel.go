package redisproc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Topology is a primary, its replicas and the Sentinels that watch them, all
// on loopback: what refundq meets behind a redis-sentinel:// URL.
type Topology struct {
	Master    string    // the name the Sentinels monitor
	Servers   []*Server // data servers; Servers[0] started as the primary
	Sentinels []*Server
}

// StartTopology starts a primary and replicas (each with o, and in its own
// directory under dir) and sentinels Sentinels with a majority quorum, then
// waits until every Sentinel knows every replica and every other Sentinel,
// so that a failover can happen at once.
func StartTopology(ctx context.Context, dir string, o Options, replicas, sentinels int) (t *Topology, err error) {
	t = &Topology{Master: "mymaster"}
	defer func() {
		if err != nil {
			t.Stop()
		}
	}()
	primary, err := Start(filepath.Join(dir, "redis-0"), o)
	if err != nil {
		return nil, err
	}
	t.Servers = append(t.Servers, primary)
	for i := 1; i <= replicas; i++ {
		ro := o
		ro.ReplicaOf = primary.Addr
		r, err := Start(filepath.Join(dir, fmt.Sprintf("redis-%d", i)), ro)
		if err != nil {
			return nil, err
		}
		t.Servers = append(t.Servers, r)
		if err := WaitReplicaSynced(ctx, r); err != nil {
			return nil, err
		}
	}
	quorum := sentinels/2 + 1
	for i := range sentinels {
		s, err := StartSentinel(filepath.Join(dir, fmt.Sprintf("sentinel-%d", i)), t.Master, primary.Addr, quorum)
		if err != nil {
			return nil, err
		}
		t.Sentinels = append(t.Sentinels, s)
	}
	return t, t.waitKnown(ctx, replicas, sentinels-1)
}

// waitKnown waits until each Sentinel reports the given numbers of replicas
// and other Sentinels for the master, none of them down.
func (t *Topology) waitKnown(ctx context.Context, replicas, others int) error {
	for _, s := range t.Sentinels {
		c := redis.NewSentinelClient(&redis.Options{Addr: s.Addr})
		for {
			m, err := c.Master(ctx, t.Master).Result()
			if err == nil && m["num-slaves"] == strconv.Itoa(replicas) &&
				m["num-other-sentinels"] == strconv.Itoa(others) && m["flags"] == "master" {
				break
			}
			select {
			case <-ctx.Done():
				c.Close()
				return fmt.Errorf("redisproc: Sentinel %s does not see %d replicas and %d other Sentinels (last: %v %v)",
					s.Addr, replicas, others, m, err)
			case <-time.After(50 * time.Millisecond):
			}
		}
		c.Close()
	}
	return nil
}

// URL is the REDIS_URL that names this topology's Sentinels and master.
func (t *Topology) URL(db int) string {
	addrs := make([]string, len(t.Sentinels))
	for i, s := range t.Sentinels {
		addrs[i] = s.Addr
	}
	return fmt.Sprintf("redis-sentinel://%s/%d?master=%s", strings.Join(addrs, ","), db, t.Master)
}

// Primary asks the Sentinels, in order, which address is the primary now;
// the first that answers decides.
func (t *Topology) Primary(ctx context.Context) (string, error) {
	var last error
	for _, s := range t.Sentinels {
		c := redis.NewSentinelClient(&redis.Options{Addr: s.Addr})
		hp, err := c.GetMasterAddrByName(ctx, t.Master).Result()
		c.Close()
		if err == nil && len(hp) == 2 {
			return net.JoinHostPort(hp[0], hp[1]), nil
		}
		last = err
	}
	return "", fmt.Errorf("redisproc: no Sentinel names the primary: %v", last)
}

// Server returns the data server at addr, or nil.
func (t *Topology) Server(addr string) *Server {
	for _, s := range t.Servers {
		if s.Addr == addr {
			return s
		}
	}
	return nil
}

// Failover forces a failover (SENTINEL FAILOVER on the first Sentinel) and
// waits until every Sentinel names the new primary and it answers as master.
// It returns the old and new primaries' addresses. The old primary becomes a
// replica of the new one only when a Sentinel next looks at it (up to 10 s
// later): Converge waits for that.
func (t *Topology) Failover(ctx context.Context) (oldAddr, newAddr string, err error) {
	oldAddr, err = t.Primary(ctx)
	if err != nil {
		return "", "", err
	}
	c := redis.NewSentinelClient(&redis.Options{Addr: t.Sentinels[0].Addr})
	err = c.Failover(ctx, t.Master).Err()
	c.Close()
	if err != nil {
		return oldAddr, "", fmt.Errorf("redisproc: SENTINEL FAILOVER: %w", err)
	}
	for {
		newAddr, err = t.agreedPrimary(ctx)
		if err == nil && newAddr != oldAddr {
			if ok, _ := t.roleIs(ctx, newAddr, "master"); ok {
				return oldAddr, newAddr, nil
			}
		}
		select {
		case <-ctx.Done():
			return oldAddr, "", fmt.Errorf("redisproc: Sentinels did not agree on a new primary: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Converge waits until every data server other than the primary the
// Sentinels name is its replica, in sync: the state in which another
// failover loses nothing that had reached a replica.
func (t *Topology) Converge(ctx context.Context) error {
	primary, err := t.agreedPrimary(ctx)
	if err != nil {
		return err
	}
	for _, s := range t.Servers {
		if s.Addr == primary {
			continue
		}
		for {
			c := s.Client()
			info, err := Info(ctx, c, "replication")
			c.Close()
			if err == nil && info["role"] == "slave" &&
				net.JoinHostPort(info["master_host"], info["master_port"]) == primary &&
				info["master_link_status"] == "up" && info["master_sync_in_progress"] == "0" {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("redisproc: %s is not yet a replica of %s in sync: %w", s.Addr, primary, ctx.Err())
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	// Every Sentinel sees each of them as a replica with its link up: a
	// Sentinel promotes only a replica it has seen so (else NOGOODSLAVE).
	for _, sen := range t.Sentinels {
		c := redis.NewSentinelClient(&redis.Options{Addr: sen.Addr})
		for !t.sentinelSeesReplicas(ctx, c, primary) {
			select {
			case <-ctx.Done():
				c.Close()
				return fmt.Errorf("redisproc: Sentinel %s does not yet see every replica of %s as good: %w", sen.Addr, primary, ctx.Err())
			case <-time.After(100 * time.Millisecond):
			}
		}
		c.Close()
	}
	return nil
}

func (t *Topology) sentinelSeesReplicas(ctx context.Context, c *redis.SentinelClient, primary string) bool {
	replicas, err := c.Replicas(ctx, t.Master).Result()
	if err != nil {
		return false
	}
	good := map[string]bool{}
	for _, r := range replicas {
		if r["flags"] == "slave" && r["master-link-status"] == "ok" {
			good[net.JoinHostPort(r["ip"], r["port"])] = true
		}
	}
	for _, s := range t.Servers {
		if s.Addr != primary && !good[s.Addr] {
			return false
		}
	}
	return true
}

// agreedPrimary is the primary every Sentinel names, or an error if they differ.
func (t *Topology) agreedPrimary(ctx context.Context) (string, error) {
	seen := ""
	for _, s := range t.Sentinels {
		c := redis.NewSentinelClient(&redis.Options{Addr: s.Addr})
		hp, err := c.GetMasterAddrByName(ctx, t.Master).Result()
		c.Close()
		if err != nil || len(hp) != 2 {
			return "", fmt.Errorf("sentinel %s: %v", s.Addr, err)
		}
		a := net.JoinHostPort(hp[0], hp[1])
		if seen != "" && a != seen {
			return "", errors.New("sentinels disagree")
		}
		seen = a
	}
	return seen, nil
}

func (t *Topology) roleIs(ctx context.Context, addr, role string) (bool, error) {
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	info, err := Info(ctx, c, "replication")
	if err != nil {
		return false, err
	}
	return info["role"] == role, nil
}

// Stop stops the Sentinels, then the data servers.
func (t *Topology) Stop() {
	for _, s := range t.Sentinels {
		s.Stop()
	}
	for _, s := range t.Servers {
		s.Stop()
	}
}
