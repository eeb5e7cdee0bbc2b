package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
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

// clusterState is the node's side of cluster membership: the leader's view
// of liveness, the internal (mutual-TLS) HTTP server and client.
type clusterState struct {
	mu          sync.Mutex
	live        map[string]liveness
	leaderSince time.Time

	hc      *http.Client // internal calls, mutual TLS, no timeout (log follow)
	srv     *http.Server
	adv     string // advertise host
	removed bool   // this node was removed from the cluster
	started bool   // start-up finished: the loops may re-register
}

type liveness struct {
	seen    time.Time
	applied uint64
}

type heartbeat struct {
	Name    string `json:"name"`
	Applied uint64 `json:"applied"`
}

// maxVoters is how many voting members the leader keeps (3, or
// GANTRY_VOTERS: 5 tolerates two failures at the cost of slower commits).
func maxVoters() int {
	if v, err := strconv.Atoi(os.Getenv("GANTRY_VOTERS")); err == nil && v >= 1 && v <= 7 {
		return v
	}
	return 3
}

// startInternal serves node-to-node calls on the cluster port's internal
// listener (mutual TLS: only nodes with a certificate from the cluster CA).
func (n *Node) startInternal(adv string) {
	n.cl = &clusterState{live: map[string]liveness{}, adv: adv,
		hc: &http.Client{Transport: n.cluster.InternalTransport()}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /internal/v1/apply", n.handleApply)
	mux.HandleFunc("GET /internal/v1/read-index", n.handleReadIndex)
	mux.HandleFunc("POST /internal/v1/heartbeat", n.handleHeartbeat)
	mux.HandleFunc("POST /internal/v1/members", n.handleAddMember)
	mux.HandleFunc("DELETE /internal/v1/members/{id}", n.handleRemoveMember)
	mux.HandleFunc("GET /internal/v1/ca-key", n.handleCAKey)
	mux.HandleFunc("GET /internal/v1/logs", n.handleLogs)
	mux.HandleFunc("GET /internal/v1/usage", n.handleUsage)
	n.peerRoutes(mux) // peers.go
	n.cl.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	ln := n.cluster.InternalListener()
	go func() {
		if err := n.cl.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Debug("internal server stopped", "err", err)
		}
	}()
}

func (n *Node) closeInternal() {
	if n.cl != nil && n.cl.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = n.cl.srv.Shutdown(ctx)
		cancel()
	}
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

func (n *Node) handleHeartbeat(w http.ResponseWriter, r *http.Request) {
	var hb heartbeat
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&hb); err != nil {
		writeWireError(w, http.StatusBadRequest, store.EInvalid, "bad heartbeat")
		return
	}
	if !n.cluster.IsLeader() {
		writeWireError(w, statusNotLeader, store.EUnavailable, "not the leader")
		return
	}
	servers, err := n.cluster.Servers()
	if err == nil && !memberOf(servers, hb.Name) {
		writeWireError(w, http.StatusGone, store.ENotFound, "node "+hb.Name+" is not a member of the cluster")
		return
	}
	n.cl.mu.Lock()
	n.cl.live[hb.Name] = liveness{seen: time.Now(), applied: hb.Applied}
	n.cl.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func memberOf(servers []raftcluster.Server, id string) bool {
	for _, s := range servers {
		if s.ID == id {
			return true
		}
	}
	return false
}

// clusterLoop heartbeats to the leader, re-registers this node when the
// cluster marked it down, and, on the leader, marks silent nodes down and
// manages voters.
func (n *Node) clusterLoop(ctx context.Context) {
	tick := time.NewTicker(heartbeatEvery)
	defer tick.Stop()
	var lastRegister time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := time.Now()
		if n.cluster.IsLeader() {
			n.cl.mu.Lock()
			if n.cl.leaderSince.IsZero() {
				// A new leader knows nothing of liveness yet: everyone gets a
				// full timeout from now.
				n.cl.leaderSince = now
				n.cl.live = map[string]liveness{}
			}
			n.cl.live[n.cfg.Name] = liveness{seen: now, applied: n.store.AppliedIndex()}
			n.cl.mu.Unlock()
			n.checkLiveness(ctx, now)
			n.checkDrains(ctx, now)
			n.manageVoters(ctx, now)
		} else {
			n.cl.mu.Lock()
			n.cl.leaderSince = time.Time{}
			n.cl.mu.Unlock()
			n.sendHeartbeat(ctx)
		}
		if now.Sub(lastRegister) > 2*time.Second && n.shouldReRegister() {
			lastRegister = now
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if err := n.register(rctx, n.cl.adv); err != nil {
				n.log.Warn("re-register after being marked down", "err", err)
			} else {
				n.log.Info("re-registered as ready after being marked down")
			}
			cancel()
		}
	}
}

func (n *Node) shouldReRegister() bool {
	n.cl.mu.Lock()
	removed := n.cl.removed
	n.cl.mu.Unlock()
	if removed {
		return false
	}
	me, err := n.store.Node(n.cfg.Name)
	return err == nil && me.State == store.NodeDown
}

func (n *Node) sendHeartbeat(ctx context.Context) {
	addr, _ := n.cluster.Leader()
	if addr == "" {
		return
	}
	b, _ := json.Marshal(heartbeat{Name: n.cfg.Name, Applied: n.store.AppliedIndex()})
	hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	resp, err := n.internalDo(hctx, http.MethodPost, addr, "/internal/v1/heartbeat", b)
	if err != nil {
		n.log.Debug("heartbeat", "leader", addr, "err", err)
		return
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusGone {
		n.cl.mu.Lock()
		if !n.cl.removed {
			n.log.Warn("this node was removed from the cluster; it no longer takes part")
		}
		n.cl.removed = true
		n.cl.mu.Unlock()
	}
}

// internalDo sends one request to a peer's internal listener.
func (n *Node) internalDo(ctx context.Context, method, addr, path string, body []byte) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return n.cl.hc.Do(req)
}

// checkLiveness marks nodes that have been silent past downAfter as down,
// which ends their running attempts with node_lost (leader only).
func (n *Node) checkLiveness(ctx context.Context, now time.Time) {
	nodes, err := n.store.Nodes()
	if err != nil {
		return
	}
	n.cl.mu.Lock()
	since := n.cl.leaderSince
	var lost []string
	for _, nd := range nodes {
		if nd.Name == n.cfg.Name || nd.State == store.NodeDown {
			continue
		}
		seen := n.cl.live[nd.Name].seen
		if seen.Before(since) {
			seen = since
		}
		if now.Sub(seen) > downAfter {
			lost = append(lost, nd.Name)
		}
	}
	n.cl.mu.Unlock()
	for _, name := range lost {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if _, err := n.Propose(pctx, store.CmdNodeLost, store.NodeLost{Name: name}); err != nil {
			n.log.Warn("mark node down", "node", name, "err", err)
		} else {
			n.log.Info("node stopped heartbeating: marked down, its tasks rescheduled", "node", name, "timeout", downAfter)
		}
		cancel()
	}
}

// manageVoters promotes caught-up non-voters while there are fewer voters
// than wanted, and swaps a dead voter for a healthy non-voter (leader only).
func (n *Node) manageVoters(ctx context.Context, now time.Time) {
	servers, err := n.cluster.Servers()
	if err != nil {
		return
	}
	leaderApplied := n.store.AppliedIndex()
	n.cl.mu.Lock()
	since := n.cl.leaderSince
	healthy := func(id string, fresh time.Duration) bool {
		l, ok := n.cl.live[id]
		return ok && now.Sub(l.seen) < fresh && l.applied+caughtUpLag >= leaderApplied
	}
	dead := func(id string) bool {
		if id == n.cfg.Name || now.Sub(since) < downAfter {
			return false
		}
		return now.Sub(n.cl.live[id].seen) > downAfter
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
	n.cl.mu.Unlock()
	want := maxVoters()
	for _, s := range ready {
		if voters >= want {
			if len(deadVoters) == 0 {
				return
			}
			d := deadVoters[0]
			deadVoters = deadVoters[1:]
			if err := n.cluster.DemoteVoter(d); err != nil {
				n.log.Warn("demote dead voter", "node", d, "err", err)
				return
			}
			n.log.Info("dead voter demoted to non-voter", "node", d)
			voters--
		}
		if err := n.cluster.AddVoter(s.ID, s.Addr); err != nil {
			n.log.Warn("promote to voter", "node", s.ID, "err", err)
			return
		}
		n.log.Info("node caught up: promoted to voter", "node", s.ID)
		voters++
	}
}
