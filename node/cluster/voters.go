package cluster

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"time"
)

// Raft roles, as node ls, the API, the console and /healthz show them.
const (
	RoleLeader = "leader"
	// RoleVoter is a voting member that has the configuration making it one
	// in force: the cluster counts on its vote.
	RoleVoter = "voter"
	// RolePromoting is a member on its way to a vote: a non-voter the
	// leader will promote once it has caught up (and, growing from one
	// voter, once a second one has, so the number of voters stays odd), or
	// a voter whose promotion has not yet reached it.
	RolePromoting = "promoting"
	// RoleNonvoter receives the log but does not vote: the cluster has as
	// many voters as it keeps.
	RoleNonvoter = "nonvoter"
)

// Roles is the cluster's voting membership and what it can survive.
type Roles struct {
	Leader string            `json:"leader"`
	Of     map[string]string `json:"roles"` // server name -> role
	// Voters counts the voting members of the configuration.
	Voters int `json:"voters"`
	// HealthyVoters counts the voters in force that the leader hears from.
	HealthyVoters int `json:"healthy_voters"`
	// FailureTolerance is how many voters may fail with the cluster still
	// writable, as Consul's autopilot reports it: healthy voters minus a
	// quorum of all voters, at least 0.
	FailureTolerance int `json:"failure_tolerance"`
	// Keeps is how many voters the leader aims for with these servers.
	Keeps int `json:"keeps"`
}

// keptVoters is how many voters a cluster of servers members keeps, with at
// most target: never an even number when one fewer is possible, since an
// even number tolerates no more failures than one fewer and makes a lost
// quorum likelier (4 servers keep 3 voters, 2 servers keep 1).
func keptVoters(target, servers int) int {
	d := min(target, servers)
	if d > 1 && d%2 == 0 {
		d--
	}
	return max(d, 1)
}

// caughtUp: a member that heartbeats and trails the leader by little.
func (c *Cluster) caughtUp(id string, now time.Time, leaderApplied uint64) bool {
	l, ok := c.live[id]
	return ok && now.Sub(l.seen) < 2*time.Second && l.applied+caughtUpLag >= leaderApplied
}

// deadVoter: silent past the down timeout (never this node; a new leader
// gives everyone a full timeout first).
func (c *Cluster) deadVoter(id string, now time.Time) bool {
	if id == c.cfg.Name || now.Sub(c.leaderSince) < downAfter {
		return false
	}
	return now.Sub(c.live[id].seen) > downAfter
}

// manageVoters keeps the number of voters at keptVoters: it replaces a
// dead voter with a caught-up non-voter, promotes caught-up non-voters two
// at a time from an odd number (one at a time from an even one), and
// demotes a voter beyond the number kept (leader only). The rules and the
// failure tolerance at each step are in DESIGN.md, "Voters".
func (c *Cluster) manageVoters(ctx context.Context, now time.Time) {
	servers, err := c.raft.Servers()
	if err != nil {
		return
	}
	leaderApplied := c.st.AppliedIndex()
	c.mu.Lock()
	var voters, dead, ready []string
	addr := map[string]string{}
	for _, s := range servers {
		addr[s.ID] = s.Addr
		switch {
		case s.Voter:
			voters = append(voters, s.ID)
			if c.deadVoter(s.ID, now) {
				dead = append(dead, s.ID)
			}
		case c.caughtUp(s.ID, now, leaderApplied):
			ready = append(ready, s.ID)
		}
	}
	c.mu.Unlock()
	sort.Strings(ready)
	keep := keptVoters(c.cfg.Voters, len(servers))
	promote := func(id string) bool {
		if err := c.raft.AddVoter(id, addr[id]); err != nil {
			c.log.Warn("promote to voter", "node", id, "err", err)
			return false
		}
		c.log.Info("node caught up: promoted to voter", "node", id)
		return true
	}
	// A dead voter whose place a healthy non-voter can take is replaced:
	// demoted first, so the number of voters never grows even.
	for len(dead) > 0 && len(ready) > 0 {
		d := dead[0]
		dead = dead[1:]
		if err := c.raft.DemoteVoter(d); err != nil {
			c.log.Warn("demote dead voter", "node", d, "err", err)
			return
		}
		c.log.Info("dead voter demoted to non-voter", "node", d)
		if !promote(ready[0]) {
			return
		}
		ready = ready[1:]
	}
	n := len(voters)
	for n < keep && len(ready) > 0 {
		if n%2 == 1 {
			// From an odd number, two at once or none: an even number of
			// voters tolerates no more failures than one fewer.
			if len(ready) < 2 || n+2 > keep {
				break
			}
			if !promote(ready[0]) || !promote(ready[1]) {
				return
			}
			ready, n = ready[2:], n+2
			continue
		}
		if !promote(ready[0]) {
			return
		}
		ready, n = ready[1:], n+1
	}
	// More voters than kept (servers removed): give up the vote of a
	// voter that is not the leader, a dead one first.
	if n > keep && len(dead) == 0 {
		for _, v := range voters {
			if v != c.cfg.Name && n > keep {
				if err := c.raft.DemoteVoter(v); err != nil {
					c.log.Warn("demote voter beyond the number kept", "node", v, "err", err)
					return
				}
				c.log.Info("voter demoted: the cluster keeps an odd number of voters", "node", v, "voters", n-1)
				n--
			}
		}
	}
}

// Roles reports every member's Raft role and the cluster's failure
// tolerance. The leader knows who heartbeats; a follower asks it, and
// answers from its own copy of the configuration when it cannot.
func (c *Cluster) Roles(ctx context.Context) (Roles, error) {
	if c.raft.IsLeader() {
		return c.leaderRoles(time.Now())
	}
	if addr, _ := c.raft.Leader(); addr != "" {
		rctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		if resp, err := c.internalDo(rctx, http.MethodGet, addr, "/internal/v1/roles", nil); err == nil {
			var r Roles
			ok := resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&r) == nil
			resp.Body.Close()
			if ok {
				return r, nil
			}
		}
	}
	return c.configRoles()
}

func (c *Cluster) handleRoles(w http.ResponseWriter, r *http.Request) {
	if !c.raft.IsLeader() {
		writeWireError(w, statusNotLeader, "unavailable", "not the leader")
		return
	}
	roles, err := c.leaderRoles(time.Now())
	if err != nil {
		writeWireError(w, http.StatusInternalServerError, "internal", "read the configuration")
		return
	}
	writeJSON(w, http.StatusOK, roles)
}

// leaderRoles is the leader's answer: a voter counts as one (RoleVoter)
// once the configuration promoting it is committed and it has applied it;
// healthy voters are those heard from in the last two seconds.
func (c *Cluster) leaderRoles(now time.Time) (Roles, error) {
	servers, idx, err := c.raft.Configuration()
	if err != nil {
		return Roles{}, err
	}
	committed := c.raft.CommitIndex() >= idx
	leaderApplied := c.st.AppliedIndex()
	_, leader := c.raft.Leader()
	r := Roles{Leader: leader, Of: map[string]string{}, Keeps: keptVoters(c.cfg.Voters, len(servers))}
	c.mu.Lock()
	defer c.mu.Unlock()
	var nonvoters []string
	for _, s := range servers {
		if !s.Voter {
			nonvoters = append(nonvoters, s.ID)
			continue
		}
		r.Voters++
		l, heard := c.live[s.ID]
		inForce := committed && (s.ID == c.cfg.Name || (heard && l.applied >= idx))
		switch {
		case s.ID == leader:
			r.Of[s.ID] = RoleLeader
		case inForce:
			r.Of[s.ID] = RoleVoter
		default:
			r.Of[s.ID] = RolePromoting
		}
		if inForce && (s.ID == c.cfg.Name || now.Sub(l.seen) < 2*time.Second) {
			r.HealthyVoters++
		}
	}
	// The non-voters the leader will promote, in the order it would.
	sort.Slice(nonvoters, func(i, j int) bool {
		ci, cj := c.caughtUp(nonvoters[i], now, leaderApplied), c.caughtUp(nonvoters[j], now, leaderApplied)
		if ci != cj {
			return ci
		}
		return nonvoters[i] < nonvoters[j]
	})
	room := r.Keeps - r.Voters
	for _, id := range nonvoters {
		if room > 0 {
			r.Of[id] = RolePromoting
			room--
		} else {
			r.Of[id] = RoleNonvoter
		}
	}
	r.FailureTolerance = max(r.HealthyVoters-(r.Voters/2+1), 0)
	return r, nil
}

// configRoles is what a follower knows without the leader: the
// configuration, every voter taken as healthy.
func (c *Cluster) configRoles() (Roles, error) {
	servers, _, err := c.raft.Configuration()
	if err != nil {
		return Roles{}, err
	}
	_, leader := c.raft.Leader()
	r := Roles{Leader: leader, Of: map[string]string{}, Keeps: keptVoters(c.cfg.Voters, len(servers))}
	for _, s := range servers {
		switch {
		case s.ID == leader && s.Voter:
			r.Of[s.ID] = RoleLeader
		case s.Voter:
			r.Of[s.ID] = RoleVoter
		default:
			r.Of[s.ID] = RoleNonvoter
		}
		if s.Voter {
			r.Voters++
		}
	}
	if leader != "" {
		r.HealthyVoters = r.Voters
	}
	r.FailureTolerance = max(r.HealthyVoters-(r.Voters/2+1), 0)
	return r, nil
}
