package cluster

import (
	"context"
	"time"

	"gantry/raftcluster"
)

// manageVoters promotes caught-up non-voters while there are fewer voters
// than wanted, and swaps a dead voter for a healthy non-voter (leader only).
func (c *Cluster) manageVoters(ctx context.Context, now time.Time) {
	servers, err := c.raft.Servers()
	if err != nil {
		return
	}
	leaderApplied := c.st.AppliedIndex()
	c.mu.Lock()
	since := c.leaderSince
	healthy := func(id string, fresh time.Duration) bool {
		l, ok := c.live[id]
		return ok && now.Sub(l.seen) < fresh && l.applied+caughtUpLag >= leaderApplied
	}
	dead := func(id string) bool {
		if id == c.cfg.Name || now.Sub(since) < downAfter {
			return false
		}
		return now.Sub(c.live[id].seen) > downAfter
	}
	voters := 0
	var ready []raftcluster.Server
	var deadVoters []string
	for _, s := range servers {
		if s.Voter {
			voters++
			if dead(s.ID) {
				deadVoters = append(deadVoters, s.ID)
			}
		} else if healthy(s.ID, 2*time.Second) {
			ready = append(ready, s)
		}
	}
	c.mu.Unlock()
	want := c.cfg.Voters
	for _, s := range ready {
		if voters >= want {
			if len(deadVoters) == 0 {
				return
			}
			d := deadVoters[0]
			deadVoters = deadVoters[1:]
			if err := c.raft.DemoteVoter(d); err != nil {
				c.log.Warn("demote dead voter", "node", d, "err", err)
				return
			}
			c.log.Info("dead voter demoted to non-voter", "node", d)
			voters--
		}
		if err := c.raft.AddVoter(s.ID, s.Addr); err != nil {
			c.log.Warn("promote to voter", "node", s.ID, "err", err)
			return
		}
		c.log.Info("node caught up: promoted to voter", "node", s.ID)
		voters++
	}
}
