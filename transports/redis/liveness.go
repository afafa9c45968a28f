package redis

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Liveness. Every transport that runs a subscription keeps the key
// "<key_prefix>live:<consumer>" (Config.Consumer, the base of its consumer
// names) set to its ConsumerTTL in milliseconds, refreshed every
// ConsumerTTL/3 with a TTL of livenessKeep. A consumer of a group whose
// key was not refreshed for longer than the TTL it names (measured on the
// Redis server, as livenessKeep - PTTL) is dead: the group's live consumers
// claim its pending entries at once and remove it from the group (XGROUP
// DELCONSUMER) once it holds nothing. A consumer without such a key (another
// client, an older busline) is left to XAUTOCLAIM after ClaimIdle.

// livenessKeep is the TTL a liveness key is set with. Once it expires the
// consumer counts as one without a key; until then, livenessKeep - PTTL is
// the time since its last refresh.
const livenessKeep = time.Hour

// liveness is what a group's live consumer knows of another consumer.
type liveness int

const (
	unknown liveness = iota // no liveness key: not a busline consumer, or gone an hour
	alive                   // key refreshed within its TTL
	dead                    // key not refreshed for longer than its TTL
)

// peer is another consumer of a pump's group.
type peer struct {
	name    string
	pending int64
	idle    time.Duration
	state   liveness
}

// delConsumerScript removes consumer ARGV[2] from group ARGV[1] of stream
// KEYS[1] if it holds no pending entry, checked and done in one step so
// that no entry is ever dropped with it. It returns 1 when it removed it.
var delConsumerScript = goredis.NewScript(`
local p = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if #p > 0 then return 0 end
redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
return 1
`)

// livenessKey is the liveness key of the consumers named "<base>-<n>".
func (t *Transport) livenessKey(base string) string { return t.cfg.KeyPrefix + "live:" + base }

// consumerBase returns the base of a consumer name "<base>-<n>", or name
// when it does not end in "-<n>".
func consumerBase(name string) string {
	i := strings.LastIndexByte(name, '-')
	if i <= 0 || i == len(name)-1 {
		return name
	}
	if _, err := strconv.ParseUint(name[i+1:], 10, 32); err != nil {
		return name
	}
	return name[:i]
}

// startLiveness sets this transport's liveness key, and starts refreshing
// it, once. Every subscription calls it before it reads: a consumer that
// read entries without a key would look like one without liveness, whose
// entries wait ClaimIdle.
func (t *Transport) startLiveness() {
	t.liveOnce.Do(func() {
		t.refreshLiveness()
		t.liveWG.Add(1)
		go t.keepAlive()
	})
}

// keepAlive refreshes the liveness key every ConsumerTTL/3 until Close.
func (t *Transport) keepAlive() {
	defer t.liveWG.Done()
	tick := time.NewTicker(t.cfg.ConsumerTTL / 3)
	defer tick.Stop()
	for {
		select {
		case <-t.ctx.Done():
			return
		case <-tick.C:
		}
		t.refreshLiveness()
	}
}

// refreshLiveness sets the liveness key. Redis at maxmemory refuses SET
// (OOM) but not PEXPIRE, which refreshes a key that exists as well, so that
// a consumer draining a full Redis does not look dead.
func (t *Transport) refreshLiveness() {
	key := t.livenessKey(t.cfg.Consumer)
	err := t.client.Set(t.ctx, key, t.cfg.ConsumerTTL.Milliseconds(), livenessKeep).Err()
	if isOOM(err) {
		if ok, perr := t.client.PExpire(t.ctx, key, livenessKeep).Result(); perr == nil && ok {
			err = nil
		}
	}
	if err != nil && t.ctx.Err() == nil {
		t.cfg.Logger.Warn("redis transport: refreshing the consumer liveness key failed; other consumers may claim this one's entries", "key", key, "err", t.redact(err))
	}
}

// peers returns the other consumers of p's group, with their liveness.
func (p *pump) peers(ctx context.Context) ([]peer, error) {
	infos, err := p.t.client.XInfoConsumers(ctx, p.stream, p.group).Result()
	if err != nil {
		return nil, err
	}
	peers := make([]peer, 0, len(infos))
	bases := map[string]liveness{}
	for _, c := range infos {
		if c.Name == p.consumer {
			continue
		}
		peers = append(peers, peer{name: c.Name, pending: c.Pending, idle: c.Idle})
		bases[consumerBase(c.Name)] = unknown
	}
	if len(bases) == 0 {
		return peers, nil
	}
	type probe struct {
		get  *goredis.StringCmd
		pttl *goredis.DurationCmd
	}
	probes := make(map[string]probe, len(bases))
	_, err = p.t.client.Pipelined(ctx, func(pipe goredis.Pipeliner) error {
		for b := range bases {
			key := p.t.livenessKey(b)
			probes[b] = probe{get: pipe.Get(ctx, key), pttl: pipe.PTTL(ctx, key)}
		}
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return nil, err
	}
	for b, pr := range probes {
		ttl, err1 := pr.get.Int64()
		left, err2 := pr.pttl.Result()
		if err1 != nil || err2 != nil || left < 0 {
			continue // no key (or not one of ours): unknown
		}
		if livenessKeep-left > time.Duration(ttl)*time.Millisecond {
			bases[b] = dead
		} else {
			bases[b] = alive
		}
	}
	for i := range peers {
		peers[i].state = bases[consumerBase(peers[i].name)]
	}
	return peers, nil
}

// claimDead claims the pending entries of the group's dead consumers and
// removes from the group the dead ones that hold nothing (and those without
// a liveness key idle for livenessKeep). It returns the claimed entries in
// stream order, and whether older entries may still become this consumer's
// to handle first: a dead consumer's it could not claim yet, or those of a
// live-looking predecessor (see mayPrecede), which may have died less than
// ConsumerTTL ago.
func (p *pump) claimDead(ctx context.Context) (claimed []goredis.XMessage, older bool, err error) {
	peers, err := p.peers(ctx)
	if err != nil {
		return nil, false, err
	}
	minIdle := p.cfg.ConsumerTTL / 3 // a concurrent claimer's fresh claim is younger
	for _, c := range peers {
		switch {
		case c.state == dead && c.pending > 0:
			n := 0
			for {
				pend, err := p.t.client.XPendingExt(ctx, &goredis.XPendingExtArgs{
					Stream: p.stream, Group: p.group, Start: "-", End: "+", Count: int64(p.cfg.BatchSize), Consumer: c.name,
				}).Result()
				if err != nil {
					return claimed, older, err
				}
				if len(pend) == 0 {
					break
				}
				ids := make([]string, len(pend))
				for i, e := range pend {
					ids[i] = e.ID
				}
				msgs, err := p.t.client.XClaim(ctx, &goredis.XClaimArgs{
					Stream: p.stream, Group: p.group, Consumer: p.consumer, MinIdle: minIdle, Messages: ids,
				}).Result()
				if err != nil {
					return claimed, older, err
				}
				claimed = append(claimed, msgs...)
				n += len(msgs)
				if len(msgs) < len(ids) {
					older = true // claimed by another consumer meanwhile, or too fresh: look again
					break
				}
			}
			if n > 0 {
				p.cfg.Logger.Info("redis transport: claimed the pending entries of a dead consumer", "stream", p.stream, "group", p.group, "consumer", p.consumer, "dead", c.name, "count", n)
			}
			p.removeConsumer(ctx, c.name)
		case c.state == dead, c.state == unknown && c.pending == 0 && c.idle > livenessKeep:
			p.removeConsumer(ctx, c.name)
		case c.state == alive && c.pending > 0 && p.mayPrecede(c.name):
			older = true
		}
	}
	slices.SortFunc(claimed, func(a, b goredis.XMessage) int { return compareIDs(a.ID, b.ID) })
	return claimed, older, nil
}

// mayPrecede reports whether consumer name may be this process's
// predecessor: its base differs from this process's only in its last
// number, as "<service>-<hostname>-<pid>" does across a restart on the same
// host. A consumer of this very process is alive, so never a predecessor.
func (p *pump) mayPrecede(name string) bool {
	ours := p.t.cfg.Consumer
	family := consumerBase(ours) // without the pid
	theirs := consumerBase(name)
	return family != ours && theirs != ours && consumerBase(theirs) == family
}

// removeConsumer deletes consumer name from p's group if it holds nothing.
func (p *pump) removeConsumer(ctx context.Context, name string) {
	n, err := delConsumerScript.Run(ctx, p.t.client, []string{p.stream}, p.group, name).Int()
	switch {
	case err != nil && ctx.Err() == nil:
		p.cfg.Logger.Warn("redis transport: removing a dead consumer failed", "stream", p.stream, "group", p.group, "dead", name, "err", p.t.redact(err))
	case n == 1:
		p.cfg.Logger.Info("redis transport: removed a dead consumer from the group", "stream", p.stream, "group", p.group, "dead", name)
	}
}

// compareIDs orders stream entry ids "<ms>-<seq>" numerically.
func compareIDs(a, b string) int {
	am, as, _ := strings.Cut(a, "-")
	bm, bs, _ := strings.Cut(b, "-")
	if c := compareNumbers(am, bm); c != 0 {
		return c
	}
	return compareNumbers(as, bs)
}

// compareNumbers orders decimal strings without leading zeros.
func compareNumbers(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	return strings.Compare(a, b)
}
