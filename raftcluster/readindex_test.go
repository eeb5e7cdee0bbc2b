package raftcluster

import (
	"context"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// indexFSM records the index of the last entry it applied, as the store
// does; like the store it applies batches, so it sees commands and
// configuration entries, never barriers and no-ops.
type indexFSM struct {
	mu      sync.Mutex
	applied uint64
}

func (f *indexFSM) Apply(l *raft.Log) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied = l.Index
	return nil
}

func (f *indexFSM) ApplyBatch(logs []*raft.Log) []any {
	out := make([]any, len(logs))
	for _, l := range logs {
		f.Apply(l)
	}
	return out
}

func (f *indexFSM) last() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applied
}

func (f *indexFSM) Snapshot() (raft.FSMSnapshot, error) { return nopSnapshot{}, nil }
func (f *indexFSM) Restore(rc io.ReadCloser) error      { return rc.Close() }

type nopSnapshot struct{}

func (nopSnapshot) Persist(s raft.SnapshotSink) error { return s.Close() }
func (nopSnapshot) Release()                          {}

// A consistent read right after a write (the first of its term: ReadIndex
// commits a barrier) and right after an election (the leader's no-op) is
// satisfied by what the FSM has applied: the index ReadIndex returns is
// one the FSM reaches without another write. It used to be the barrier's,
// and a reader on a quiet cluster waited until someone wrote.
func TestReadIndexIsAnEntryTheFSMApplies(t *testing.T) {
	dir := t.TempDir()
	pki, err := LoadOrCreatePKI(dir+"/tls", "n1", []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	fsm := &indexFSM{}
	c, err := Open(Config{Dir: dir + "/raft", NodeID: "n1", Bind: "127.0.0.1:0", Advertise: "127.0.0.1:0",
		FSM: fsm, PKI: pki, Bootstrap: true, HeartbeatTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}

	// Before any write: the leader's no-op is the commit index.
	idx, err := c.ReadIndex(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := fsm.last(); idx > got {
		t.Fatalf("ReadIndex before any write = %d, the FSM has applied %d and sees no more", idx, got)
	}

	if _, err := c.Apply(ctx, []byte("x")); err != nil {
		t.Fatal(err)
	}
	applied := fsm.last()
	if err := c.Barrier(ctx); err != nil { // a barrier after the write, as a reader's first read of a term commits
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		idx, err := c.ReadIndex(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if idx != applied {
			t.Fatalf("ReadIndex after a write and a barrier = %d, want the write's index %d (the FSM applies nothing above it)", idx, applied)
		}
	}
}

// After a restart the new term's no-op is the commit index, and no write
// follows on a quiet cluster: CommittedFSMIndex is the last write's index,
// which the FSM reaches (a restarted node waiting for the commit index
// itself waited 30 s and gave up starting).
func TestCommittedFSMIndexAfterARestartIsTheLastWrite(t *testing.T) {
	dir := t.TempDir()
	pki, err := LoadOrCreatePKI(dir+"/tls", "n1", []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	open := func(bootstrap bool) (*Cluster, *indexFSM) {
		fsm := &indexFSM{}
		c, err := Open(Config{Dir: dir + "/raft", NodeID: "n1", Bind: "127.0.0.1:0", Advertise: "127.0.0.1:0",
			FSM: fsm, PKI: pki, Bootstrap: bootstrap, HeartbeatTimeout: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		return c, fsm
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, fsm := open(true)
	if err := c.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Apply(ctx, []byte("x")); err != nil {
		t.Fatal(err)
	}
	written := fsm.last()
	c.Close()

	c, fsm = open(false)
	defer c.Close()
	if err := c.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	// The no-op of the new term commits.
	for c.CommitIndex() <= written {
		if ctx.Err() != nil {
			t.Fatalf("commit index %d after the restart, want above the write's %d", c.CommitIndex(), written)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := c.CommittedFSMIndex(); got != written {
		t.Fatalf("CommittedFSMIndex = %d after a restart (commit index %d), want the write's %d", got, c.CommitIndex(), written)
	}
	for fsm.last() < c.CommittedFSMIndex() {
		if ctx.Err() != nil {
			t.Fatalf("the FSM applied %d, never reaching %d", fsm.last(), c.CommittedFSMIndex())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
