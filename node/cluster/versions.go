package cluster

import (
	"encoding/json"
	"io"
	"time"

	"gantry/store"
)

// Rolling upgrades (store/versions.go): every member says in its
// heartbeats which command versions it applies; the leader keeps what each
// said, works out the cluster's limits (for each command, the newest
// version every member applies, where that is older than this binary's)
// and sends them back in its answer. Each node writes its proposals within
// the limits it knows (Propose), so no member ever skips an entry it
// cannot read. A member that says nothing (Gantry 0.9.0), or has not been
// heard from since this node became leader, applies the previous
// release's versions; a follower that has not heard from the leader for a
// while assumes the same.

// ownVersions is what this binary applies.
var ownVersions = store.CommandVersions()

// limit is one command's newest version every member applies, and a
// member that applies no newer.
type limit struct {
	V      int    `json:"v"`
	Member string `json:"member"`
}

// heartbeatReply is the leader's answer to a heartbeat.
type heartbeatReply struct {
	// Limits are the commands some member applies only at an older
	// version than the leader's binary, by type.
	Limits map[string]limit `json:"limits"`
	// Leader is what the leader's own binary applies: a follower of a
	// newer release writes no newer than that either.
	Leader map[string]int `json:"leader,omitempty"`
}

// limitsStale is how old a follower's word from the leader may be.
const limitsStale = 3 * time.Second

type versionLimits struct {
	limits map[string]limit // empty: every member applies this binary's versions
	at     time.Time        // when a follower heard them (zero on the leader)
}

// computeLimits is the leader's view: over the voters and non-voters of
// the Raft configuration, each command's newest version all of them
// apply, for the commands where that is older than this binary's.
func (c *Cluster) computeLimits() map[string]limit {
	if c.raft == nil {
		return nil
	}
	servers, err := c.raft.Servers()
	if err != nil {
		return c.limitsFor(nil)
	}
	c.mu.Lock()
	said := make(map[string]map[string]int, len(servers))
	for _, s := range servers {
		if s.ID == c.cfg.Name {
			continue
		}
		v, ok := c.said[s.ID]
		switch {
		case !ok: // not heard from since this node became leader: assume the oldest
			said[s.ID+" (not heard from yet)"] = previousRelease
		case v == nil: // a member of 0.9.0, which does not say
			said[s.ID] = previousRelease
		default:
			said[s.ID] = v
		}
	}
	c.mu.Unlock()
	return c.limitsFor(said)
}

var previousRelease = store.PreviousReleaseVersions()

// limitsFor is the limits that members saying these versions impose.
func (c *Cluster) limitsFor(said map[string]map[string]int) map[string]limit {
	if said == nil {
		said = map[string]map[string]int{"(not heard from the leader lately)": previousRelease}
	}
	out := map[string]limit{}
	for typ, mine := range ownVersions {
		for member, vs := range said {
			v := vs[typ] // 0: the member does not know the command at all
			if v < mine && (out[typ].Member == "" || v < out[typ].V) {
				out[typ] = limit{V: v, Member: member}
			}
		}
	}
	return out
}

// Gate writes cmd within the cluster's limits as this node knows them.
func (c *Cluster) gate(typ string, cmd []byte) ([]byte, error) {
	if c.raft == nil {
		return cmd, nil // a test of the forwarding protocol, without Raft
	}
	vl := c.limits.Load()
	var lims map[string]limit
	switch {
	case c.raft.IsLeader():
		if vl == nil || !vl.at.IsZero() {
			c.refreshLimits()
			vl = c.limits.Load()
		}
		lims = vl.limits
	case vl == nil || vl.at.IsZero() || time.Since(vl.at) > limitsStale:
		lims = c.limitsFor(nil) // no recent word from a leader: assume the oldest
	default:
		lims = vl.limits
	}
	if _, ok := lims[typ]; !ok {
		return cmd, nil
	}
	return store.Gate(cmd, func(t string) (int, string) {
		l, ok := lims[t]
		if !ok {
			return ownVersions[t], ""
		}
		return l.V, l.Member
	})
}

// refreshLimits recomputes the leader's limits.
func (c *Cluster) refreshLimits() {
	c.limits.Store(&versionLimits{limits: c.computeLimits()})
}

// heardVersions records, on the leader, what a member said it applies;
// a change recomputes the limits.
func (c *Cluster) heardVersions(name string, vs map[string]int) {
	c.mu.Lock()
	old, known := c.said[name]
	changed := !known || len(old) != len(vs)
	if !changed {
		for k, v := range vs {
			if old[k] != v {
				changed = true
				break
			}
		}
	}
	c.said[name] = vs
	c.mu.Unlock()
	if changed {
		c.refreshLimits()
	}
}

// writeHeartbeatReply answers a heartbeat with the leader's limits.
func (c *Cluster) writeHeartbeatReply(w interface {
	Write([]byte) (int, error)
}) {
	vl := c.limits.Load()
	if vl == nil || !vl.at.IsZero() {
		c.refreshLimits()
		vl = c.limits.Load()
	}
	b, _ := json.Marshal(heartbeatReply{Limits: vl.limits, Leader: ownVersions})
	_, _ = w.Write(b)
}

// readHeartbeatReply keeps, on a follower, the limits the leader sent (a
// leader of 0.9.0 sends none: it applies the previous release's).
func (c *Cluster) readHeartbeatReply(body io.Reader) {
	var r heartbeatReply
	b, _ := io.ReadAll(io.LimitReader(body, 1<<20))
	if len(b) == 0 || json.Unmarshal(b, &r) != nil || r.Limits == nil {
		_, leader := c.raft.Leader()
		c.limits.Store(&versionLimits{limits: c.limitsFor(map[string]map[string]int{leader + " (the leader)": previousRelease}), at: time.Now()})
		return
	}
	_, leader := c.raft.Leader()
	c.limits.Store(&versionLimits{limits: followerLimits(r, leader), at: time.Now()})
}

// followerLimits are a follower's limits from the leader's reply: what
// some member applies only at an older version, and what the leader's
// own binary applies, where either is older than this binary's.
func followerLimits(r heartbeatReply, leader string) map[string]limit {
	out := map[string]limit{}
	for typ, mine := range ownVersions {
		best := limit{V: mine}
		if l, ok := r.Limits[typ]; ok && l.V < best.V {
			best = l
		}
		if r.Leader != nil {
			if v := r.Leader[typ]; v < best.V { // 0: the leader does not know the command
				best = limit{V: v, Member: leader + " (the leader)"}
			}
		}
		if best.V < mine {
			out[typ] = best
		}
	}
	return out
}
