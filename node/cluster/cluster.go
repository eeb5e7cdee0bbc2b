// Package cluster is a node's side of the cluster protocol. It commits
// commands through Raft, forwarding them to the leader from a follower
// (Propose, a store.Proposer), and serves linearizable reads (Linearize);
// it serves node-to-node calls on the mutual-TLS internal listener
// (forwarded writes, read index, heartbeats, membership changes, the CA key,
// task logs, usage, registry blobs); on the leader it tracks which nodes are
// alive, marks silent ones down, moves tasks off drained nodes and manages
// voters; it runs both sides of the join protocol. It does not know what a
// command means (package store) or how Raft is wired (package raftcluster).
// See DESIGN.md.
package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"gantry/node/registry"
	"gantry/raftcluster"
	"gantry/store"
)

// Config wires the cluster protocol to the rest of the node.
type Config struct {
	Name      string // this node's name (its Raft id)
	Advertise string // the host other nodes and clients use for this node
	HTTPPort  string // this node's HTTP port (join commands name it)
	TLSDir    string // the node's certificates (DATA/tls)
	Raft      *raftcluster.Cluster
	Store     *store.Store
	Logger    *slog.Logger
	// LogRetention is how long task logs are kept after their job ended
	// (0: forever); a peer asking for a removed log is told so (410).
	LogRetention time.Duration
	// Capacity reads what this node can run (CPU millicores, memory bytes).
	Capacity func(ctx context.Context) (cpu, memory int64, err error)
	// Labels describe this node for constraints.
	Labels map[string]string
	// Devices are the GPUs this node declares.
	Devices []store.Device
	// Voters is how many voting members the leader keeps (default 3, or
	// GANTRY_VOTERS).
	Voters int
	// OnCommit observes how long each proposal took to commit and apply.
	OnCommit func(time.Duration)
	// Space, when set, refuses this node's proposals while its disk is
	// down to its reserve of free space (node/diskspace).
	Space interface{ Check() error }
}

// LogFiles is what the cluster needs from the runner to serve task logs.
type LogFiles interface {
	LogPath(job string, task, attempt int) string
}

// Cluster is a node's membership in the cluster. Create it with New once
// Raft is open, Start it, run its loop with Run, and Close it.
type Cluster struct {
	cfg  Config
	raft *raftcluster.Cluster
	rl   raftLog // the same Raft, as proposing sees it
	st   *store.Store
	log  *slog.Logger

	hc  *http.Client // internal calls, mutual TLS, no timeout (log follow)
	srv *http.Server
	use usage

	mu          sync.Mutex
	live        map[string]liveness // the leader's view of who heartbeats
	leaderSince time.Time
	removed     bool               // this node was removed from the cluster
	registered  bool               // Register succeeded once: re-registering is the loop's to do
	voting      bool               // this node's vote, as last logged
	poke        chan struct{}      // a heartbeat from a caught-up non-voter: manage voters now
	reg         *registry.Registry // set by Attach
	logs        LogFiles           // set by Attach

	prop proposer // the queue of proposals (batch.go)

	// Rolling upgrades (versions.go): what each member said it applies
	// (the leader's, under mu) and the limits this node writes within.
	said   map[string]map[string]int
	limits atomic.Pointer[versionLimits]
}

// New returns the cluster protocol for a node whose Raft is open.
func New(cfg Config) *Cluster {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Voters <= 0 {
		cfg.Voters = votersFromEnv()
	}
	return &Cluster{cfg: cfg, raft: cfg.Raft, rl: cfg.Raft, st: cfg.Store, log: cfg.Logger.With("component", "cluster"),
		live: map[string]liveness{}, said: map[string]map[string]int{}, hc: &http.Client{Transport: cfg.Raft.InternalTransport()}, poke: make(chan struct{}, 1)}
}

// votersFromEnv is how many voting members the leader keeps: 3, or
// GANTRY_VOTERS (5 tolerates two failures at the cost of slower commits).
func votersFromEnv() int {
	if v, err := strconv.Atoi(os.Getenv("GANTRY_VOTERS")); err == nil && v >= 1 && v <= 7 {
		return v
	}
	return 3
}

// route is one node-to-node call the internal listener serves.
type route struct {
	pattern string // method and path, as http.ServeMux takes them
	handler http.HandlerFunc
}

func (c *Cluster) routes() []route {
	return []route{
		{"POST /internal/v1/apply", c.handleApply},
		{"POST /internal/v1/apply-batch", c.handleApplyBatch},
		{"GET /internal/v1/read-index", c.handleReadIndex},
		{"POST /internal/v1/heartbeat", c.handleHeartbeat},
		{"GET /internal/v1/roles", c.handleRoles},
		{"POST /internal/v1/members", c.handleAddMember},
		{"DELETE /internal/v1/members/{id}", c.handleRemoveMember},
		{"GET /internal/v1/ca-key", c.handleCAKey},
		{"GET /internal/v1/logs", c.handleLogs},
		{"GET /internal/v1/usage", c.handleUsage},
		{"GET /internal/v1/registry/blobs/{digest}", c.handlePeerBlob},
		{"POST /internal/v1/registry/replicate", c.handleReplicate},
		{"POST /internal/v1/registry/gc", c.handlePeerGC},
	}
}

// Routes lists the node-to-node calls ("METHOD /path"), for the test that
// checks who may make each one.
func Routes() []string {
	var out []string
	for _, r := range (&Cluster{}).routes() {
		out = append(out, r.pattern)
	}
	return out
}

// Start serves node-to-node calls on the cluster port's internal listener
// (mutual TLS: only nodes with a certificate from the cluster CA get in).
func (c *Cluster) Start() {
	mux := http.NewServeMux()
	for _, r := range c.routes() {
		mux.HandleFunc(r.pattern, r.handler)
	}
	c.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	ln := c.raft.InternalListener()
	go func() {
		if err := c.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			c.log.Debug("internal server stopped", "err", err)
		}
	}()
}

// Close stops serving node-to-node calls.
func (c *Cluster) Close() {
	if c.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = c.srv.Shutdown(ctx)
		cancel()
	}
}

// Attach gives the cluster what it serves to peers once the node has it:
// the registry's blobs and the runner's task logs. Until then peers asking
// for them are answered 503.
func (c *Cluster) Attach(reg *registry.Registry, logs LogFiles) {
	c.mu.Lock()
	c.reg, c.logs = reg, logs
	c.mu.Unlock()
}

func (c *Cluster) registry() *registry.Registry {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reg
}

func (c *Cluster) logFiles() LogFiles {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.logs
}

// Run heartbeats to the leader (the first time at once, so a node that has
// just caught up is promoted without waiting), re-registers this node when
// the cluster marked it down, samples this machine's usage, logs changes of
// this node's vote, and, on the leader, marks silent nodes down, moves
// tasks off drained nodes and manages voters. It returns when ctx ends.
func (c *Cluster) Run(ctx context.Context) {
	go c.use.run(ctx)
	tick := time.NewTicker(heartbeatEvery)
	defer tick.Stop()
	var lastRegister time.Time
	if !c.raft.IsLeader() {
		c.sendHeartbeat(ctx)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-c.poke:
			if c.raft.IsLeader() {
				c.manageVoters(ctx, time.Now())
			}
			continue
		}
		now := time.Now()
		c.logVote()
		if c.raft.IsLeader() {
			c.mu.Lock()
			if c.leaderSince.IsZero() {
				// A new leader knows nothing of liveness yet: everyone gets a
				// full timeout from now.
				c.leaderSince = now
				c.live = map[string]liveness{}
				c.said = map[string]map[string]int{} // each member says again
			}
			c.live[c.cfg.Name] = liveness{seen: now, applied: c.st.AppliedIndex()}
			c.mu.Unlock()
			c.refreshLimits()
			c.checkLiveness(ctx, now)
			c.checkDrains(ctx, now)
			c.manageVoters(ctx, now)
		} else {
			c.mu.Lock()
			c.leaderSince = time.Time{}
			c.mu.Unlock()
			c.sendHeartbeat(ctx)
		}
		if now.Sub(lastRegister) > 2*time.Second && c.shouldReRegister() {
			lastRegister = now
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if err := c.Register(rctx); err != nil {
				c.log.Warn("re-register after being marked down", "err", err)
			} else {
				c.log.Info("re-registered as ready after being marked down")
			}
			cancel()
		}
	}
}

// Register records this node, its addresses, capacity and labels in the
// cluster state.
func (c *Cluster) Register(ctx context.Context) error {
	cpu, mem, err := c.cfg.Capacity(ctx)
	if err != nil {
		return fmt.Errorf("read Docker capacity: %w", err)
	}
	_, err = store.CmdUpsertNode.Propose(ctx, c, store.UpsertNode{Node: store.Node{
		Name: c.cfg.Name, Addr: c.raft.Addr(), APIAddr: joinHostPort(c.cfg.Advertise, c.cfg.HTTPPort),
		Capacity: store.Resources{CPU: cpu, Memory: mem, GPUs: len(c.cfg.Devices)}, Labels: c.cfg.Labels, Devices: c.cfg.Devices,
	}})
	if err == nil {
		c.mu.Lock()
		c.registered = true
		c.mu.Unlock()
	}
	return err
}

// logVote logs when this node gains or loses its vote.
func (c *Cluster) logVote() {
	servers, err := c.raft.Servers()
	if err != nil {
		return
	}
	voting := false
	for _, s := range servers {
		if s.ID == c.cfg.Name {
			voting = s.Voter
		}
	}
	c.mu.Lock()
	changed := voting != c.voting
	c.voting = voting
	c.mu.Unlock()
	switch {
	case changed && voting:
		c.log.Info("this node now votes", "voters", countVoters(servers))
	case changed:
		c.log.Info("this node no longer votes", "voters", countVoters(servers))
	}
}

func countVoters(servers []raftcluster.Server) int {
	n := 0
	for _, s := range servers {
		if s.Voter {
			n++
		}
	}
	return n
}

// internalDo sends one request to a peer's internal listener.
func (c *Cluster) internalDo(ctx context.Context, method, addr, path string, body []byte) (*http.Response, error) {
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
	return c.hc.Do(req)
}

// ValidNodeName reports whether s can name a node: 1 to 63 letters, digits,
// '.', '-' or '_'.
func ValidNodeName(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}
