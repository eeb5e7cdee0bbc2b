package raftcluster

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/hashicorp/raft"
)

// Server is one member of the Raft configuration.
type Server struct {
	ID    string `json:"id"`
	Addr  string `json:"addr"`
	Voter bool   `json:"voter"`
}

// ApplyIndex is Apply that also returns the log index of the entry, so a
// follower that forwarded it can wait until it has applied it locally.
func (c *Cluster) ApplyIndex(ctx context.Context, cmd []byte) (any, uint64, error) {
	timeout := 30 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	f := c.raft.Apply(cmd, timeout)
	if err := f.Error(); err != nil {
		return nil, 0, applyErr(err)
	}
	return f.Response(), f.Index(), nil
}

// ApplyAsync appends cmd to the log and returns without waiting for it to
// commit (it waits only while Raft's queue of new entries is full, at most
// until ctx's deadline); wait then returns what ApplyIndex returns.
// Entries appended one after another by one goroutine are in the log in
// that order, which is what lets a proposer keep its order while several
// entries are on their way.
func (c *Cluster) ApplyAsync(ctx context.Context, cmd []byte) (wait func() (any, uint64, error)) {
	timeout := 30 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	f := c.raft.Apply(cmd, timeout)
	return func() (any, uint64, error) {
		if err := f.Error(); err != nil {
			return nil, 0, applyErr(err)
		}
		return f.Response(), f.Index(), nil
	}
}

func changeErr(err error) error {
	if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
		return ErrNotLeader
	}
	return err
}

// AddNonvoter adds (or re-addresses) a member that receives the log but does
// not vote. A member that already votes keeps its vote. Leader only.
func (c *Cluster) AddNonvoter(id, addr string) error {
	return changeErr(c.raft.AddNonvoter(raft.ServerID(id), raft.ServerAddress(addr), 0, 10*time.Second).Error())
}

// AddVoter promotes (or adds) a voting member. Leader only.
func (c *Cluster) AddVoter(id, addr string) error {
	return changeErr(c.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, 10*time.Second).Error())
}

// DemoteVoter keeps a member but takes its vote away. Leader only.
func (c *Cluster) DemoteVoter(id string) error {
	return changeErr(c.raft.DemoteVoter(raft.ServerID(id), 0, 10*time.Second).Error())
}

// RemoveServer removes a member from the configuration. Leader only.
func (c *Cluster) RemoveServer(id string) error {
	return changeErr(c.raft.RemoveServer(raft.ServerID(id), 0, 10*time.Second).Error())
}

// Servers lists the current Raft configuration.
func (c *Cluster) Servers() ([]Server, error) {
	s, _, err := c.Configuration()
	return s, err
}

// Configuration lists the latest Raft configuration and the log index it
// was written at: it is in force on a server once that server has applied
// the index, and committed once CommitIndex has passed it.
func (c *Cluster) Configuration() ([]Server, uint64, error) {
	f := c.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, 0, err
	}
	var out []Server
	for _, s := range f.Configuration().Servers {
		out = append(out, Server{ID: string(s.ID), Addr: string(s.Address), Voter: s.Suffrage == raft.Voter})
	}
	return out, f.Index(), nil
}

// CommitIndex is the highest log index this node knows to be committed.
func (c *Cluster) CommitIndex() uint64 { return c.raft.CommitIndex() }

// CommittedFSMIndex is the index of the last committed entry the FSM
// applies: what a replica has caught up to once its applied index reaches
// it. The commit index itself may be a no-op (each new leader appends
// one) or a barrier that never reaches the FSM, and a node waiting for
// its applied index to reach those waits until the next write; on a quiet
// cluster, for ever (a restarted node that won the election with the
// newest log did, and gave up starting after 30 s).
func (c *Cluster) CommittedFSMIndex() uint64 { return c.lastFSMEntry(c.raft.CommitIndex()) }

// ReadIndex confirms this node still leads (a round trip to a quorum) and
// returns the commit index: once a node has applied up to it, its reads are
// linearizable.
//
// A leader's commit index is only current once an entry of its own term
// has committed (Raft, section 8): until then it is what it knew as a
// follower, which can be short of entries the previous leader committed
// and acknowledged. So the first read of a term waits for a barrier entry
// of that term to commit.
//
// The index returned is that of the last entry the FSM sees at or below the
// commit index: barrier and no-op entries (a barrier above, the no-op each
// new leader appends) never reach the FSM, so a reader waiting for its
// applied index to reach one of them would wait until the next write.
func (c *Cluster) ReadIndex(ctx context.Context) (uint64, error) {
	if err := c.termCommitted(ctx); err != nil {
		return 0, err
	}
	idx := c.raft.CommitIndex()
	if err := c.raft.VerifyLeader().Error(); err != nil {
		return 0, changeErr(err)
	}
	return c.lastFSMEntry(idx), nil
}

// lastFSMEntry is the index of the last entry at or below idx that the FSM
// applies (a command or a configuration). Entries already compacted into a
// snapshot are taken as they are: the snapshot's state covers them.
func (c *Cluster) lastFSMEntry(idx uint64) uint64 {
	if c.logs == nil {
		return idx
	}
	// Barriers and no-ops come one at a time, between writes; a short scan
	// finds the entry before them.
	for i, n := idx, 0; i > 0 && n < 64; i, n = i-1, n+1 {
		var l raft.Log
		if err := c.logs.GetLog(i, &l); err != nil {
			return i
		}
		if l.Type != raft.LogBarrier && l.Type != raft.LogNoop {
			return i
		}
	}
	return idx
}

// ID is this node's Raft id.
func (c *Cluster) ID() string { return c.cfg.NodeID }

// Addr is this node's advertised cluster address.
func (c *Cluster) Addr() string { return c.cfg.Advertise }

// PKI is the node's certificate material.
func (c *Cluster) PKI() *PKI { return c.cfg.PKI }

// InternalTransport returns an http.RoundTripper whose connections go to a
// peer's cluster port over mutual TLS as the internal ('H') kind; use it
// with URLs of the form http://<cluster addr>/... .
func (c *Cluster) InternalTransport() *http.Transport {
	return InternalTransport(c.cfg.PKI, c.cfg.Advertise)
}

// InternalTransport is the transport of node-to-node calls made with p's
// certificate from a node advertising advertise ("" lets the kernel pick
// the source address).
func InternalTransport(p *PKI, advertise string) *http.Transport {
	cfg := p.ClientTLS()
	src := sourceAddr(advertise)
	return &http.Transport{
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			// A peer on the LAN answers a dial in milliseconds; one that
			// does not within a second is gone (a dead leader, say), and a
			// forwarding node should look for the new one instead.
			timeout := time.Second
			if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
				timeout = time.Until(dl)
			}
			return dialKind(addr, timeout, cfg, kindInternal, src)
		},
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
}

// termCommitted returns once an entry of this node's current term has
// committed (a barrier, once per term), or why it cannot.
func (c *Cluster) termCommitted(ctx context.Context) error {
	term := c.raft.CurrentTerm()
	if c.readyTerm.Load() == term {
		return nil
	}
	c.readyMu.Lock()
	defer c.readyMu.Unlock()
	if c.readyTerm.Load() == term {
		return nil
	}
	timeout := 10 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	if err := c.raft.Barrier(timeout).Error(); err != nil {
		return changeErr(err)
	}
	if c.raft.CurrentTerm() == term {
		c.readyTerm.Store(term)
	}
	return nil
}
