// Package raftcluster wires hashicorp/raft for Gantry: the durable log and
// stable store on Badger, a file snapshot store, a mutual-TLS transport on
// the cluster port, bootstrap of a new cluster and restart from an existing
// data directory. It does not know what the commands mean (see store/).
package raftcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// ErrNotLeader is returned by Apply on a node that is not the leader.
var ErrNotLeader = errors.New("not the leader")

// ErrLeadershipLost is returned for an entry this node appended as leader
// but stopped leading before it committed: it may still commit under the
// next leader. It is an ErrNotLeader (errors.Is), so it is retried like
// one, but a caller that gives up must not say the write was refused.
var ErrLeadershipLost = fmt.Errorf("%w: leadership lost before the entry committed", ErrNotLeader)

// applyErr maps Raft's refusals to ours.
func applyErr(err error) error {
	switch {
	case errors.Is(err, raft.ErrLeadershipLost):
		return ErrLeadershipLost
	case errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return ErrNotLeader
	}
	return fmt.Errorf("raft apply: %w", err)
}

// Config says how to run this node's Raft.
type Config struct {
	Dir    string // raft/ under the node's data dir
	NodeID string
	Bind   string // cluster listen address, e.g. ":7071"
	// Listener, when set, is the cluster port already bound (start-up takes
	// its ports before anything else); Open then does not listen on Bind.
	Listener  net.Listener
	Advertise string // host:port other nodes dial
	FSM       raft.FSM
	PKI       *PKI
	Logger    *slog.Logger
	// Bootstrap makes this node the only voter of a new cluster when it has
	// no Raft state yet.
	Bootstrap bool
	// Seed, on a node with no Raft state yet, makes it the only voter of a
	// new cluster whose state starts as a snapshot (a restored backup)
	// rather than empty: nodes that join later receive that snapshot.
	Seed *Seed
	// HeartbeatTimeout is how long a follower hears nothing from the
	// leader before it starts an election (0: DefaultHeartbeatTimeout);
	// the election timeout is the same and the leader lease half of it.
	HeartbeatTimeout time.Duration
}

// Seed is the first state of a cluster made from a backup: Write writes
// the FSM's snapshot stream, whose state has applied the log up to Index.
type Seed struct {
	Index uint64
	Write func(io.Writer) error
}

// seed writes the first snapshot of a new cluster, this node its only
// voter, so Raft starts from it (the log begins after Index) and sends it
// to every node that joins.
func seed(s *Seed, snaps raft.SnapshotStore, logs *LogStore, trans raft.Transport, id raft.ServerID, addr string) error {
	if s.Index == 0 {
		return errors.New("seed: the state has applied no entry")
	}
	conf := raft.Configuration{Servers: []raft.Server{{ID: id, Address: raft.ServerAddress(addr), Suffrage: raft.Voter}}}
	sink, err := snaps.Create(raft.SnapshotVersionMax, s.Index, 1, conf, s.Index, trans)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	if err := s.Write(sink); err != nil {
		sink.Cancel()
		return fmt.Errorf("seed: %w", err)
	}
	if err := sink.Close(); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	// The snapshot's term: a vote in an earlier term would be stale.
	return logs.SetUint64([]byte("CurrentTerm"), 1)
}

// DefaultHeartbeatTimeout suits a LAN: a dead leader is replaced in well
// under a second (a follower notices within one to two timeouts, the
// election takes one more round), while the leader's heartbeats, every
// tenth of it, keep a busy but healthy cluster from electing needlessly.
// hashicorp/raft's own default (1 s) is meant for wide-area networks; set
// GANTRY_RAFT_TIMEOUT higher for links with long pauses (see
// node/cluster/DESIGN.md, "Failover").
const DefaultHeartbeatTimeout = 250 * time.Millisecond

// Cluster is a running Raft node.
type Cluster struct {
	cfg   Config
	raft  *raft.Raft
	logs  *LogStore
	trans *raft.NetworkTransport
	mux   *mux
	log   *slog.Logger

	// readyMu serializes the barrier of readyTerm; readyTerm is the term
	// in which this node, leading, has committed an entry of its own, so
	// that its commit index is current (ReadIndex).
	readyMu   sync.Mutex
	readyTerm atomic.Uint64
}

// Open starts Raft on the cluster port.
func Open(cfg Config) (*Cluster, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "raft")
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("create raft dir: %w", err)
	}
	logs, err := OpenLogStore(filepath.Join(cfg.Dir, "log"))
	if err != nil {
		return nil, err
	}
	c := &Cluster{cfg: cfg, logs: logs, log: log}
	ok := false
	defer func() {
		if !ok {
			c.Close()
		}
	}()
	snaps, err := raft.NewFileSnapshotStoreWithLogger(filepath.Join(cfg.Dir, "snapshots"), 2, hclogger(log))
	if err != nil {
		return nil, fmt.Errorf("open snapshot store: %w", err)
	}
	ln := cfg.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.Bind); err != nil {
			return nil, fmt.Errorf("listen on cluster address %s: %w", cfg.Bind, err)
		}
	}
	c.mux = newMux(ln, cfg.PKI.ServerTLS())
	adv, err := net.ResolveTCPAddr("tcp", cfg.Advertise)
	if err != nil {
		return nil, fmt.Errorf("advertise address %q: %w", cfg.Advertise, err)
	}
	stream := &tlsStream{ln: c.mux.raft, advertise: adv, client: cfg.PKI.ClientTLS(), src: sourceAddr(cfg.Advertise)}
	c.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: stream, MaxPool: 5, Timeout: 10 * time.Second, Logger: hclogger(log),
	})

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.Logger = hclogger(log)
	ht := cfg.HeartbeatTimeout
	if ht <= 0 {
		ht = DefaultHeartbeatTimeout
	}
	rc.HeartbeatTimeout = ht
	rc.ElectionTimeout = ht
	rc.LeaderLeaseTimeout = ht / 2
	rc.CommitTimeout = 5 * time.Millisecond
	rc.MaxAppendEntries = 512
	rc.BatchApplyCh = true
	rc.SnapshotThreshold = 16384
	rc.TrailingLogs = 10240
	// The FSM keeps its own applied index in the state DB, so it need not
	// be rebuilt from the snapshot on every start.
	rc.NoSnapshotRestoreOnStart = true

	has, err := raft.HasExistingState(logs, logs, snaps)
	if err != nil {
		return nil, fmt.Errorf("check raft state: %w", err)
	}
	if !has && cfg.Seed != nil {
		if err := seed(cfg.Seed, snaps, logs, c.trans, rc.LocalID, cfg.Advertise); err != nil {
			return nil, err
		}
		log.Info("started a new cluster from a backup", "node", cfg.NodeID, "index", cfg.Seed.Index)
		has = true
	}
	if !has && cfg.Bootstrap {
		conf := raft.Configuration{Servers: []raft.Server{{ID: rc.LocalID, Address: raft.ServerAddress(cfg.Advertise), Suffrage: raft.Voter}}}
		if err := raft.BootstrapCluster(rc, logs, logs, snaps, c.trans, conf); err != nil {
			return nil, fmt.Errorf("bootstrap cluster: %w", err)
		}
		log.Info("bootstrapped a new cluster", "node", cfg.NodeID)
	}
	r, err := raft.NewRaft(rc, cfg.FSM, logs, logs, snaps, c.trans)
	if err != nil {
		return nil, fmt.Errorf("start raft: %w", err)
	}
	c.raft = r
	ok = true
	return c, nil
}

// Apply commits a command through the log and returns what the FSM's Apply
// returned for it. Only the leader can apply.
func (c *Cluster) Apply(ctx context.Context, cmd []byte) (any, error) {
	timeout := 30 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	f := c.raft.Apply(cmd, timeout)
	if err := f.Error(); err != nil {
		return nil, applyErr(err)
	}
	return f.Response(), nil
}

// IsLeader reports whether this node is the leader now.
func (c *Cluster) IsLeader() bool { return c.raft.State() == raft.Leader }

// LeaderCh delivers leadership changes of this node.
func (c *Cluster) LeaderCh() <-chan bool { return c.raft.LeaderCh() }

// Leader returns the current leader's address and id ("" when unknown).
func (c *Cluster) Leader() (addr, id string) {
	a, i := c.raft.LeaderWithID()
	return string(a), string(i)
}

// WaitLeader blocks until the cluster has a leader or ctx ends.
func (c *Cluster) WaitLeader(ctx context.Context) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if a, _ := c.Leader(); a != "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no raft leader: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// Barrier waits until every entry committed before it is applied locally:
// a read after it sees all acknowledged writes (leader only).
func (c *Cluster) Barrier(ctx context.Context) error {
	timeout := 10 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	return c.raft.Barrier(timeout).Error()
}

// Stats returns raft's statistics.
func (c *Cluster) Stats() map[string]string { return c.raft.Stats() }

// InternalListener yields mutual-TLS connections for node-to-node calls.
func (c *Cluster) InternalListener() net.Listener { return c.mux.internal }

// Close stops Raft and closes the stores.
func (c *Cluster) Close() error {
	var errs []error
	if c.raft != nil {
		if err := c.raft.Shutdown().Error(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.trans != nil {
		c.trans.Close()
	}
	if c.mux != nil {
		c.mux.Close()
	}
	if c.logs != nil {
		errs = append(errs, c.logs.Close())
	}
	return errors.Join(errs...)
}
