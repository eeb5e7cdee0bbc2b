package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"gantry/raftcluster"
	"gantry/store"
)

var _ store.Proposer = (*Cluster)(nil)

// applyResult is the leader's answer to a forwarded command.
type applyResult struct {
	Index  uint64          `json:"index"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  *wireError      `json:"error,omitempty"`
	// Retry (in a batch's answer) says the command was not committed.
	Retry bool `json:"retry,omitempty"`
	// Uncertain (with Retry) says it was appended to the log and may
	// still commit under the next leader.
	Uncertain bool `json:"uncertain,omitempty"`
}

// applier commits an encoded command and returns Apply's result with the
// entry's log index: the Raft cluster on a real node, something simpler in
// tests of the forwarding protocol.
type applier interface {
	ApplyIndex(ctx context.Context, cmd []byte) (any, uint64, error)
}

// forwardWindow is how long a write keeps trying while there is no leader
// (an election) before it gives up with ErrUnavailable.
const forwardWindow = 15 * time.Second

// Propose commits an encoded command through Raft: locally on the leader,
// otherwise by forwarding it to the leader over the mutual-TLS internal
// listener. Concurrent proposals on one node travel together (batch.go):
// one Raft entry on the leader, one forward call from a follower, each
// caller getting its own result. A forwarded write returns once this node
// has applied it too, so a read on this node right after sees it. While
// there is no leader it retries until ctx ends or forwardWindow passes.
// Apply's error comes back as the error, as an *store.Error with its code
// on either path; a write that could not be committed is EUnavailable.
func (c *Cluster) Propose(ctx context.Context, typ string, cmd []byte) (any, error) {
	if c.cfg.Space != nil {
		if err := c.cfg.Space.Check(); err != nil {
			return nil, err
		}
	}
	// Within what every member applies (a rolling upgrade: versions.go).
	cmd, err := c.gate(typ, cmd)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	p := &proposal{ctx: ctx, typ: typ, cmd: cmd, expires: start.Add(c.prop.windowLen()), done: make(chan struct{})}
	c.enqueue(p)
	var res any
	select {
	case <-p.done:
		res, err = p.res, p.err
	case <-ctx.Done():
		// The command may still commit; the caller has stopped waiting.
		err = ctx.Err()
	}
	if c.cfg.OnCommit != nil {
		c.cfg.OnCommit(time.Since(start))
	}
	if errors.Is(err, raftcluster.ErrNotLeader) {
		if p.uncertain.Load() {
			return nil, store.Errorf(store.EUnavailable, "the leader did not answer in time, and this write may still take effect: check before you try it again")
		}
		return nil, store.Errorf(store.EUnavailable, "this node is not the leader; try again")
	}
	if err != nil {
		var se *store.Error
		if errors.As(err, &se) {
			return nil, err
		}
		return nil, fmt.Errorf("propose %s: %w", typ, err)
	}
	if e, ok := res.(error); ok {
		return nil, e
	}
	return res, nil
}

// forward sends a command to the leader. retry is true when the leader could
// not take it (gone, or no longer leading); every command is safe to resend
// (ids are stamped by the proposer and the state machine re-checks).
func (c *Cluster) forward(ctx context.Context, addr, typ string, cmd []byte) (res any, err error, retry bool) {
	fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := c.internalDo(fctx, http.MethodPost, addr, "/internal/v1/apply", cmd)
	if err != nil {
		return nil, err, ctx.Err() == nil
	}
	defer resp.Body.Close()
	if resp.StatusCode == statusNotLeader {
		return nil, fmt.Errorf("leader %s: %s: %w", addr, resp.Status, errNotTaken), true
	}
	if resp.StatusCode == http.StatusServiceUnavailable {
		return nil, fmt.Errorf("leader %s: %s", addr, resp.Status), true
	}
	ar, err := decodeApplyResult(resp.Body)
	if err != nil {
		return nil, err, true
	}
	if ar.Error != nil {
		return nil, ar.Error.err(), false
	}
	c.waitApplied(ctx, ar.Index)
	res, err = store.DecodeResult(typ, ar.Result)
	return res, err, false
}

func decodeApplyResult(r io.Reader) (*applyResult, error) {
	var ar applyResult
	if err := json.NewDecoder(io.LimitReader(r, 64<<20)).Decode(&ar); err != nil {
		return nil, fmt.Errorf("decode forwarded result: %w", err)
	}
	return &ar, nil
}

// err rebuilds the leader's error from its code and message: errors.Is
// with a store sentinel matches by code (store.Error.Is).
func (e *wireError) err() error {
	if e.Code == store.EInternal {
		return fmt.Errorf("leader: %s", e.Message)
	}
	return &store.Error{Code: e.Code, Message: e.Message}
}

// resultOf encodes what Apply returned for the follower that forwarded the
// command; an error other than *store.Error is logged and sent as internal.
func (c *Cluster) resultOf(res any, idx uint64) (applyResult, error) {
	out := applyResult{Index: idx}
	if e, ok := res.(error); ok {
		var se *store.Error
		if errors.As(e, &se) {
			out.Error = &wireError{Code: se.Code, Message: se.Message}
		} else {
			c.log.Error("forwarded command failed", "err", e)
			out.Error = &wireError{Code: store.EInternal, Message: "internal error"}
		}
		return out, nil
	}
	if res != nil {
		b, err := json.Marshal(res)
		if err != nil {
			return out, fmt.Errorf("encode result: %w", err)
		}
		out.Result = b
	}
	return out, nil
}

// handleApply is the leader's end of forwarding.
func (c *Cluster) handleApply(w http.ResponseWriter, r *http.Request) {
	c.serveApply(w, r, c.rl)
}

func (c *Cluster) serveApply(w http.ResponseWriter, r *http.Request, local applier) {
	cmd, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		writeWireError(w, http.StatusBadRequest, store.EInvalid, "read command")
		return
	}
	res, idx, err := local.ApplyIndex(r.Context(), cmd)
	if errors.Is(err, raftcluster.ErrLeadershipLost) {
		// Appended, and may still commit: the follower must not take it
		// for refused.
		writeWireError(w, http.StatusServiceUnavailable, store.EUnavailable, "leadership lost before the command committed")
		return
	}
	if errors.Is(err, raftcluster.ErrNotLeader) {
		writeWireError(w, statusNotLeader, store.EUnavailable, "not the leader")
		return
	}
	if err != nil {
		c.log.Error("apply forwarded command", "err", err)
		writeWireError(w, http.StatusInternalServerError, store.EInternal, "apply failed")
		return
	}
	out, err := c.resultOf(res, idx)
	if err != nil {
		c.log.Error("forwarded command", "err", err)
		writeWireError(w, http.StatusInternalServerError, store.EInternal, "encode result")
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// waitApplied waits (at most 5 s) until this node's store has applied index.
func (c *Cluster) waitApplied(ctx context.Context, index uint64) {
	if index == 0 {
		return
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c.st.WaitApplied(wctx, index)
}

// Linearize makes the next local read see every write acknowledged before
// it was called: it learns the leader's commit index (after the leader
// confirms it still leads) and waits until this node has applied it.
func (c *Cluster) Linearize(ctx context.Context) error {
	var idx uint64
	if c.raft.IsLeader() {
		i, err := c.raft.ReadIndex(ctx)
		if err != nil {
			return store.Errorf(store.EUnavailable, "cannot confirm leadership for a consistent read; try again")
		}
		idx = i
	} else {
		addr, _ := c.raft.Leader()
		if addr == "" {
			return store.Errorf(store.EUnavailable, "no leader for a consistent read; try again")
		}
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		resp, err := c.internalDo(rctx, http.MethodGet, addr, "/internal/v1/read-index", nil)
		if err != nil {
			return store.Errorf(store.EUnavailable, "leader unreachable for a consistent read; try again")
		}
		defer resp.Body.Close()
		var out struct {
			Index uint64 `json:"index"`
		}
		if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&out) != nil {
			return store.Errorf(store.EUnavailable, "leader could not serve a consistent read; try again")
		}
		idx = out.Index
	}
	c.waitApplied(ctx, idx)
	if c.st.AppliedIndex() < idx {
		return store.Errorf(store.EUnavailable, "this node is behind the leader; try again")
	}
	return nil
}

func (c *Cluster) handleReadIndex(w http.ResponseWriter, r *http.Request) {
	idx, err := c.raft.ReadIndex(r.Context())
	if err != nil {
		writeWireError(w, statusNotLeader, store.EUnavailable, "not the leader")
		return
	}
	writeJSON(w, http.StatusOK, map[string]uint64{"index": idx})
}
