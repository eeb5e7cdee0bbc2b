package cluster

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"time"

	"gantry/raftcluster"
	"gantry/store"
)

// Cluster timing. Heartbeats go to the leader's memory, never through Raft;
// only the transition to down is a command.
const (
	heartbeatEvery = 500 * time.Millisecond
	downAfter      = 5 * time.Second
	// caughtUpLag is how many log entries a non-voter may trail the leader's
	// applied index and still be promoted.
	caughtUpLag = 512
)

type liveness struct {
	seen    time.Time
	applied uint64
}

type heartbeat struct {
	Name    string `json:"name"`
	Applied uint64 `json:"applied"`
	// Commands are the command versions the member applies (versions.go;
	// none from Gantry 0.9.0).
	Commands map[string]int `json:"commands,omitempty"`
}

// wireError carries a store.Error between nodes.
type wireError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeWireError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": wireError{Code: code, Message: msg}})
}

// statusNotLeader tells a forwarding node to find the leader again.
const statusNotLeader = http.StatusMisdirectedRequest

func (c *Cluster) handleHeartbeat(w http.ResponseWriter, r *http.Request) {
	var hb heartbeat
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&hb); err != nil {
		writeWireError(w, http.StatusBadRequest, store.EInvalid, "bad heartbeat")
		return
	}
	if !c.raft.IsLeader() {
		writeWireError(w, statusNotLeader, store.EUnavailable, "not the leader")
		return
	}
	servers, err := c.raft.Servers()
	if err == nil && !memberOf(servers, hb.Name) {
		writeWireError(w, http.StatusGone, store.ENotFound, "node "+hb.Name+" is not a member of the cluster")
		return
	}
	now := time.Now()
	c.mu.Lock()
	c.live[hb.Name] = liveness{seen: now, applied: hb.Applied}
	if c.said == nil {
		c.said = map[string]map[string]int{}
	}
	promotable := !isVoter(servers, hb.Name) && c.caughtUp(hb.Name, now, c.st.AppliedIndex())
	c.mu.Unlock()
	if promotable {
		// A non-voter that has caught up is promoted now, not at the
		// leader's next tick.
		select {
		case c.poke <- struct{}{}:
		default:
		}
	}
	c.heardVersions(hb.Name, hb.Commands)
	w.Header().Set("Content-Type", "application/json")
	c.writeHeartbeatReply(w)
}

func isVoter(servers []raftcluster.Server, id string) bool {
	for _, s := range servers {
		if s.ID == id {
			return s.Voter
		}
	}
	return false
}

func memberOf(servers []raftcluster.Server, id string) bool {
	for _, s := range servers {
		if s.ID == id {
			return true
		}
	}
	return false
}

func (c *Cluster) shouldReRegister() bool {
	c.mu.Lock()
	removed, registered := c.removed, c.registered
	c.mu.Unlock()
	if removed || !registered {
		return false
	}
	me, err := c.st.Node(c.cfg.Name)
	return err == nil && me.State == store.NodeDown
}

func (c *Cluster) sendHeartbeat(ctx context.Context) {
	addr, _ := c.raft.Leader()
	if addr == "" {
		return
	}
	b, _ := json.Marshal(heartbeat{Name: c.cfg.Name, Applied: c.st.AppliedIndex(), Commands: ownVersions})
	hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	resp, err := c.internalDo(hctx, http.MethodPost, addr, "/internal/v1/heartbeat", b)
	if err != nil {
		c.log.Debug("heartbeat", "leader", addr, "err", err)
		return
	}
	if resp.StatusCode/100 == 2 {
		c.readHeartbeatReply(resp.Body)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusGone {
		c.mu.Lock()
		if !c.removed {
			c.log.Warn("this node was removed from the cluster; it no longer takes part")
		}
		c.removed = true
		c.mu.Unlock()
	}
}

// checkLiveness marks nodes that have been silent past downAfter as down,
// which ends their running attempts with node_lost (leader only).
func (c *Cluster) checkLiveness(ctx context.Context, now time.Time) {
	nodes, err := c.st.Nodes()
	if err != nil {
		return
	}
	c.mu.Lock()
	since := c.leaderSince
	var lost []string
	for _, nd := range nodes {
		if nd.Name == c.cfg.Name || nd.State == store.NodeDown {
			continue
		}
		seen := c.live[nd.Name].seen
		if seen.Before(since) {
			seen = since
		}
		if now.Sub(seen) > downAfter {
			lost = append(lost, nd.Name)
		}
	}
	c.mu.Unlock()
	for _, name := range lost {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if _, err := store.CmdNodeLost.Propose(pctx, c, store.NodeLost{Name: name}); err != nil {
			c.log.Warn("mark node down", "node", name, "err", err)
		} else {
			c.log.Info("node stopped heartbeating: marked down, its tasks rescheduled", "node", name, "timeout", downAfter)
		}
		cancel()
	}
}

// checkDrains moves the remaining tasks off draining nodes whose drain
// deadline has passed (leader only): their attempts end as node_lost and are
// placed elsewhere; the node's runner then stops the containers.
func (c *Cluster) checkDrains(ctx context.Context, now time.Time) {
	nodes, err := c.st.Nodes()
	if err != nil {
		return
	}
	for _, nd := range nodes {
		if nd.State != store.NodeDraining || nd.DrainDeadline.IsZero() || now.Before(nd.DrainDeadline) || nd.Running == 0 {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if _, err := store.CmdEvictNode.Propose(pctx, c, store.EvictNode{Name: nd.Name}); err != nil {
			c.log.Warn("move tasks off a drained node", "node", nd.Name, "err", err)
		} else {
			c.log.Info("drain deadline passed: tasks moved off the node", "node", nd.Name, "tasks", nd.Running)
		}
		cancel()
	}
}
