package node

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

// applyResult is the leader's answer to a forwarded command.
type applyResult struct {
	Index  uint64          `json:"index"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  *wireError      `json:"error,omitempty"`
}

// apply commits cmd through Raft: locally on the leader, otherwise by
// forwarding it to the leader over the mutual-TLS internal listener. A
// forwarded write returns once this node has applied it too, so a read on
// this node right after sees it. While there is no leader (an election) it
// retries until ctx ends or 15 s pass, then returns raftcluster.ErrNotLeader.
func (n *Node) apply(ctx context.Context, typ string, cmd []byte) (any, error) {
	deadline := time.Now().Add(15 * time.Second)
	for {
		res, _, err := n.cluster.ApplyIndex(ctx, cmd)
		if !errors.Is(err, raftcluster.ErrNotLeader) {
			return res, err
		}
		if addr, _ := n.cluster.Leader(); addr != "" && addr != n.cluster.Addr() && n.cl != nil {
			res, err, retry := n.forward(ctx, addr, typ, cmd)
			if !retry {
				return res, err
			}
			n.log.Debug("forward to leader", "leader", addr, "err", err)
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return nil, raftcluster.ErrNotLeader
		}
		select {
		case <-ctx.Done():
			return nil, raftcluster.ErrNotLeader
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// forward sends a command to the leader. retry is true when the leader could
// not take it (gone, or no longer leading); every command is safe to resend
// (ids are stamped by the proposer and the state machine re-checks).
func (n *Node) forward(ctx context.Context, addr, typ string, cmd []byte) (res any, err error, retry bool) {
	fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := n.internalDo(fctx, http.MethodPost, addr, "/internal/v1/apply", cmd)
	if err != nil {
		return nil, err, ctx.Err() == nil
	}
	defer resp.Body.Close()
	if resp.StatusCode == statusNotLeader || resp.StatusCode == http.StatusServiceUnavailable {
		return nil, fmt.Errorf("leader %s: %s", addr, resp.Status), true
	}
	var ar applyResult
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&ar); err != nil {
		return nil, fmt.Errorf("decode forwarded result: %w", err), true
	}
	if ar.Error != nil {
		return nil, wireToError(ar.Error), false
	}
	n.waitApplied(ctx, ar.Index)
	return decodeResult(typ, ar.Result)
}

func wireToError(e *wireError) error {
	if e.Code == store.ENotFound && e.Message == store.ErrNotFound.Message {
		return store.ErrNotFound
	}
	if e.Code == store.EInternal {
		return fmt.Errorf("leader: %s", e.Message)
	}
	return store.Errorf(e.Code, "%s", e.Message)
}

// decodeResult turns a forwarded result back into the type Apply returns
// for that command, so callers cannot tell a forwarded write from a local one.
func decodeResult(typ string, raw json.RawMessage) (any, error, bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil, false
	}
	var v any
	switch typ {
	case store.CmdSubmitJob, store.CmdCancelJob:
		v = &store.Job{}
	case store.CmdCreateUser, store.CmdUpdateUser:
		v = &store.User{}
	case store.CmdCreateToken:
		v = &store.Token{}
	case store.CmdUpsertNode, store.CmdSetNodeState, store.CmdNodeLost, store.CmdRemoveNode, store.CmdEvictNode:
		v = &store.Node{}
	case store.CmdPlace:
		v = &store.PlaceResult{}
	case store.CmdSetJoinSecret:
		v = &store.JoinSecret{}
	case store.CmdCreateSchedule, store.CmdUpdateSchedule:
		v = &store.Schedule{}
	case store.CmdFireSchedule:
		v = &store.FireResult{}
	case store.CmdPurgeJobs:
		v = &store.PurgeResult{}
	default:
		return raw, nil, false
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return nil, fmt.Errorf("decode forwarded %s result: %w", typ, err), false
	}
	return v, nil, false
}

// handleApply is the leader's end of forwarding.
func (n *Node) handleApply(w http.ResponseWriter, r *http.Request) {
	cmd, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		writeWireError(w, http.StatusBadRequest, store.EInvalid, "read command")
		return
	}
	res, idx, err := n.cluster.ApplyIndex(r.Context(), cmd)
	if errors.Is(err, raftcluster.ErrNotLeader) {
		writeWireError(w, statusNotLeader, store.EUnavailable, "not the leader")
		return
	}
	if err != nil {
		n.log.Error("apply forwarded command", "err", err)
		writeWireError(w, http.StatusInternalServerError, store.EInternal, "apply failed")
		return
	}
	out := applyResult{Index: idx}
	if e, ok := res.(error); ok {
		var se *store.Error
		if errors.As(e, &se) {
			out.Error = &wireError{Code: se.Code, Message: se.Message}
		} else {
			n.log.Error("forwarded command failed", "err", e)
			out.Error = &wireError{Code: store.EInternal, Message: "internal error"}
		}
	} else if res != nil {
		b, err := json.Marshal(res)
		if err != nil {
			writeWireError(w, http.StatusInternalServerError, store.EInternal, "encode result")
			return
		}
		out.Result = b
	}
	writeJSON(w, http.StatusOK, out)
}

// waitApplied waits (at most 5 s) until this node's store has applied index.
func (n *Node) waitApplied(ctx context.Context, index uint64) {
	if index == 0 {
		return
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	n.store.WaitApplied(wctx, index)
}

// Linearize makes the next local read see every write acknowledged before
// it was called: it learns the leader's commit index (after the leader
// confirms it still leads) and waits until this node has applied it.
func (n *Node) Linearize(ctx context.Context) error {
	var idx uint64
	if n.cluster.IsLeader() {
		i, err := n.cluster.ReadIndex(ctx)
		if err != nil {
			return store.Errorf(store.EUnavailable, "cannot confirm leadership for a consistent read; try again")
		}
		idx = i
	} else {
		addr, _ := n.cluster.Leader()
		if addr == "" {
			return store.Errorf(store.EUnavailable, "no leader for a consistent read; try again")
		}
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		resp, err := n.internalDo(rctx, http.MethodGet, addr, "/internal/v1/read-index", nil)
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
	n.waitApplied(ctx, idx)
	if n.store.AppliedIndex() < idx {
		return store.Errorf(store.EUnavailable, "this node is behind the leader; try again")
	}
	return nil
}

func (n *Node) handleReadIndex(w http.ResponseWriter, r *http.Request) {
	idx, err := n.cluster.ReadIndex(r.Context())
	if err != nil {
		writeWireError(w, statusNotLeader, store.EUnavailable, "not the leader")
		return
	}
	writeJSON(w, http.StatusOK, map[string]uint64{"index": idx})
}
