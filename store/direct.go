package store

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Direct applies commands straight to a store's state machine, each as the
// next entry of the log: what a single-node cluster does once an entry is
// committed, without Raft's log in between. Tests and tools use it to drive
// a real Store; a running node proposes through Raft (node/cluster).
type Direct struct {
	st *Store
	// Now, when set, stamps every command with Now() instead of the time
	// its proposer gave it: a test clock for what Apply does with time.
	Now func() time.Time

	mu    sync.Mutex
	index uint64
}

var _ Proposer = (*Direct)(nil)

// NewDirect returns a proposer that applies to st, continuing after the
// index st has already applied.
func NewDirect(st *Store) *Direct { return &Direct{st: st} }

// Propose applies one encoded command and returns Apply's result, or the
// error Apply returned.
func (d *Direct) Propose(_ context.Context, _ string, cmd []byte) (any, error) {
	res := d.ApplyBatch([][]byte{cmd})[0]
	if err, ok := res.(error); ok {
		return nil, err
	}
	return res, nil
}

// ApplyBatch applies encoded commands as one batch of consecutive entries,
// as Raft hands a follower's FSM what arrived together, and returns each
// one's result (a value or an error).
func (d *Direct) ApplyBatch(cmds [][]byte) []any {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.index == 0 {
		d.index = d.st.AppliedIndex()
	}
	logs := make([]*raft.Log, len(cmds))
	for i, c := range cmds {
		if d.Now != nil {
			c = restamp(c, d.Now())
		}
		d.index++
		logs[i] = &raft.Log{Index: d.index, Type: raft.LogCommand, Data: c}
	}
	return d.st.ApplyBatch(logs)
}

// restamp replaces an encoded command's time; a command that does not
// decode is left as it is, for Apply to refuse.
func restamp(cmd []byte, at time.Time) []byte {
	var env envelope
	if json.Unmarshal(cmd, &env) != nil {
		return cmd
	}
	env.Time = at.UTC()
	b, err := json.Marshal(env)
	if err != nil {
		return cmd
	}
	return b
}
