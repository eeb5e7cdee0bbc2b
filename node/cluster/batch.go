package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"gantry/raftcluster"
	"gantry/store"
)

// Batched proposing. Every Propose on a node joins one queue, and one
// dispatcher (started when the queue fills from empty, gone when it
// drains) takes what is queued, up to maxBatchCommands and maxBatchBytes,
// as one batch:
//
//   - On the leader it appends the batch to the Raft log as one entry (a
//     store batch; a lone command as itself) without waiting for it to
//     commit, and goes on with the next: Raft's pipeline (its disk write,
//     replication and apply) stays as full as when every caller appended
//     its own entry, and the batch is simply whatever queued while the
//     dispatcher was busy. Entries are appended in queue order.
//   - On a follower it starts a forward round: one call to the leader,
//     which commits the batch as one entry. At most maxForwards rounds are
//     on their way; while they all are, proposals queue and the next batch
//     is bigger. A lone proposal goes at once.
//
// So batches grow with the load, never with a timer. A batch that could
// not be committed (no leader, or the leader changed) goes back to the head
// of the queue, in proposing order, after a pause while there is no
// leader.
//
// Order: the commands of one batch commit in the order they were
// proposed, and the leader appends batches in queue order. Commands of
// concurrent forward rounds, like concurrent proposals before batching,
// may commit in either order; a caller whose command was answered before
// it proposes the next (every caller: Propose waits) sees them commit in
// its order.

// Limits of one batch. A command bigger than maxBatchBytes goes alone.
const (
	maxBatchCommands = 256
	maxBatchBytes    = 1 << 20
	// maxForwards is how many forward rounds a follower has on their way.
	maxForwards = 4
	// retryEvery is the pause before a batch is tried again while there
	// is no leader.
	retryEvery = 50 * time.Millisecond
	// batchTimeout bounds one round (a forward call, a commit).
	batchTimeout = 30 * time.Second
)

// raftLog is what proposing needs of Raft: the Raft cluster on a real
// node, a fake in tests of batching.
type raftLog interface {
	applier
	// ApplyAsync appends an entry without waiting for it to commit; wait
	// returns what ApplyIndex would have.
	ApplyAsync(ctx context.Context, cmd []byte) (wait func() (any, uint64, error))
	IsLeader() bool
	Leader() (addr, id string)
	Addr() string
}

// proposal is one Propose call waiting for its outcome.
type proposal struct {
	ctx     context.Context
	typ     string
	cmd     []byte
	seq     uint64    // its place in the order of proposing on this node
	expires time.Time // forwardWindow after it was proposed
	done    chan struct{}
	res     any   // what Apply returned: a value or Apply's error
	err     error // why it was not committed
	// uncertain is set once the command may have reached the log without
	// this node learning its outcome (a forward call that got no answer, an
	// entry whose leader stepped down before it committed): if it is not
	// committed after all, its caller hears "unknown", not "refused".
	uncertain atomic.Bool
}

func (p *proposal) finish(res any, err error) {
	p.res, p.err = res, err
	close(p.done)
}

// proposer is the queue of a node's proposals and what they cost.
type proposer struct {
	mu       sync.Mutex
	queue    []*proposal // in proposing order (seq)
	seq      uint64
	running  bool          // the dispatcher runs
	rounds   int           // forward rounds on their way
	limit    int           // forward rounds at once (0: maxForwards)
	roundEnd chan struct{} // a forward round ended
	noBatch  string        // a leader that answered 404 to apply-batch (an older binary)
	counters ProposalCounts
	// window and timeout, when set (tests), replace forwardWindow and
	// batchTimeout.
	window, timeout time.Duration
}

func (q *proposer) windowLen() time.Duration {
	if q.window > 0 {
		return q.window
	}
	return forwardWindow
}

func (q *proposer) roundTimeout() time.Duration {
	if q.timeout > 0 {
		return q.timeout
	}
	return batchTimeout
}

// ProposalCounts say how this node's proposals travelled: commands
// committed while it led and the Raft entries they took, commands it
// forwarded to the leader and the forward calls they took.
type ProposalCounts struct {
	LeaderCommands, LeaderEntries atomic.Uint64
	ForwardedCommands, Forwards   atomic.Uint64
}

// Proposals returns this node's proposal counters (live values).
func (c *Cluster) Proposals() *ProposalCounts { return &c.prop.counters }

// enqueue adds a proposal to the queue. On a node that is not busy (no
// dispatcher running: the queue held nothing) the caller commits it
// itself, without handing it to another goroutine: it appends it and
// waits for it on the leader, or forwards it on a follower. Either way
// its outcome is set when enqueue returns or later.
func (c *Cluster) enqueue(p *proposal) {
	c.prop.mu.Lock()
	c.prop.seq++
	p.seq = c.prop.seq
	c.prop.queue = append(c.prop.queue, p)
	if c.prop.running {
		c.prop.mu.Unlock()
		return
	}
	limit := c.prop.limit
	if limit <= 0 {
		limit = maxForwards
	}
	switch {
	case c.rl.IsLeader():
		// Appending is the dispatcher's to do, one at a time, so the
		// caller holds its place while it appends.
		c.prop.running = true
		batch := c.take()
		c.prop.mu.Unlock()
		ps, cmds, wait := c.appendHere(batch)
		c.prop.mu.Lock()
		c.prop.running = false
		if len(c.prop.queue) > 0 {
			c.startDispatcher()
		}
		c.prop.mu.Unlock()
		if ps != nil {
			c.finishHere(ps, cmds, wait)
		}
	case c.prop.rounds < limit:
		batch := c.take()
		c.prop.rounds++
		c.prop.mu.Unlock()
		c.forwardRound(batch, true)
	default:
		c.startDispatcher()
		c.prop.mu.Unlock()
	}
}

// requeue puts proposals that must be tried again back in the queue, in
// proposing order among those waiting.
func (c *Cluster) requeue(ps []*proposal) {
	if len(ps) == 0 {
		return
	}
	c.prop.mu.Lock()
	q := make([]*proposal, 0, len(ps)+len(c.prop.queue))
	i, j := 0, 0
	for i < len(ps) || j < len(c.prop.queue) {
		if j == len(c.prop.queue) || (i < len(ps) && ps[i].seq < c.prop.queue[j].seq) {
			q = append(q, ps[i])
			i++
		} else {
			q = append(q, c.prop.queue[j])
			j++
		}
	}
	c.prop.queue = q
	c.startDispatcher()
	c.prop.mu.Unlock()
}

// startDispatcher starts the dispatcher unless it runs; the caller holds
// prop.mu.
func (c *Cluster) startDispatcher() {
	if !c.prop.running {
		c.prop.running = true
		if c.prop.roundEnd == nil {
			c.prop.roundEnd = make(chan struct{}, 1)
		}
		go c.dispatch()
	}
}

// dispatch takes batches off the queue until it is empty: appends them
// here while this node leads, or hands them to forward rounds.
func (c *Cluster) dispatch() {
	limit := c.prop.limit
	if limit <= 0 {
		limit = maxForwards
	}
	for {
		leading := c.rl.IsLeader()
		c.prop.mu.Lock()
		if len(c.prop.queue) == 0 {
			c.prop.running = false
			c.prop.mu.Unlock()
			return
		}
		if !leading && c.prop.rounds >= limit {
			roundEnd := c.prop.roundEnd
			c.prop.mu.Unlock()
			<-roundEnd
			continue
		}
		batch := c.take()
		if !leading {
			c.prop.rounds++
		}
		c.prop.mu.Unlock()
		if !leading {
			go c.forwardRound(batch, false)
		} else if ps, cmds, wait := c.appendHere(batch); ps != nil {
			go c.finishHere(ps, cmds, wait)
		}
	}
}

// take moves the next batch off the queue, within the limits, and
// answers the proposals whose callers gave up or whose window passed;
// the caller holds prop.mu.
func (c *Cluster) take() []*proposal {
	now := time.Now()
	var batch []*proposal
	size, n := 0, 0
	for _, p := range c.prop.queue {
		if len(batch) >= maxBatchCommands || (len(batch) > 0 && size+len(p.cmd) > maxBatchBytes) {
			break
		}
		n++
		switch {
		case p.ctx.Err() != nil:
			p.finish(nil, p.ctx.Err())
		case now.After(p.expires):
			p.finish(nil, raftcluster.ErrNotLeader)
		default:
			batch = append(batch, p)
			size += len(p.cmd)
		}
	}
	rest := copy(c.prop.queue, c.prop.queue[n:])
	clear(c.prop.queue[rest:])
	c.prop.queue = c.prop.queue[:rest]
	return batch
}

// appendHere appends a batch to this node's log (it leads) as one entry
// and returns, before the entry commits, what finishHere needs to answer
// its proposals (nothing for an empty batch).
func (c *Cluster) appendHere(ps []*proposal) ([]*proposal, [][]byte, func() (any, uint64, error)) {
	if len(ps) == 0 {
		return nil, nil, nil
	}
	cmds := make([][]byte, len(ps))
	for i, p := range ps {
		cmds[i] = p.cmd
	}
	entry := cmds[0]
	if len(cmds) > 1 {
		var err error
		if entry, err = store.EncodeBatch(cmds); err != nil {
			// A command that is not JSON cannot be part of a batch; one
			// entry each, Apply refuses it and the others still apply.
			return ps, cmds, nil
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.prop.roundTimeout())
	defer cancel()
	return ps, cmds, c.rl.ApplyAsync(ctx, entry)
}

// finishHere answers the proposals of one entry appended here (wait), or
// commits them one entry each (wait nil, or the batch did not fit in one
// transaction). Those not committed because this node stopped leading go
// back to the queue.
func (c *Cluster) finishHere(ps []*proposal, cmds [][]byte, wait func() (any, uint64, error)) {
	outs := make([]outcome, len(ps))
	entries := 1
	single := wait == nil
	if wait != nil {
		res, idx, err := wait()
		if refused, _ := res.(error); len(ps) == 1 || err != nil || !errors.Is(refused, store.ErrBatchTooBig) {
			if len(ps) == 1 {
				outs[0] = outcome{res: res, index: idx, err: err, retry: errors.Is(err, raftcluster.ErrNotLeader),
					uncertain: errors.Is(err, raftcluster.ErrLeadershipLost)}
			} else {
				c.batchOutcomes(outs, res, idx, err)
			}
		} else {
			single = true
		}
	}
	if single {
		ctx, cancel := context.WithTimeout(context.Background(), c.prop.roundTimeout())
		outs, entries = c.commitEach(ctx, c.rl, cmds, outs)
		cancel()
	}
	var retry []*proposal
	for i, o := range outs {
		if o.retry {
			if o.uncertain {
				ps[i].uncertain.Store(true)
			}
			retry = append(retry, ps[i])
			continue
		}
		c.prop.counters.LeaderCommands.Add(1)
		ps[i].finish(o.res, o.err)
	}
	if len(retry) < len(ps) {
		c.prop.counters.LeaderEntries.Add(uint64(entries))
	}
	if len(retry) > 0 {
		time.Sleep(retryEvery) // leadership is moving: not at once again
	}
	c.requeue(retry)
}

// forwardRound forwards one batch to the leader; what could not be
// committed goes back to the queue, after a pause while there is no
// leader. Inline, it answers the batch's callers itself (it runs in the
// goroutine of one of them); otherwise the round ends as soon as the
// leader answered.
func (c *Cluster) forwardRound(batch []*proposal, inline bool) {
	ctx, cancel := batchContext(batch, c.prop.roundTimeout())
	retry := batch
	if addr, _ := c.rl.Leader(); len(batch) > 0 && addr != "" && addr != c.rl.Addr() {
		retry = c.forwardBatch(ctx, addr, batch, inline)
	}
	cancel()
	if len(retry) > 0 && !c.rl.IsLeader() {
		time.Sleep(retryEvery)
	}
	c.requeue(retry)
	c.prop.mu.Lock()
	c.prop.rounds--
	roundEnd := c.prop.roundEnd // nil until a dispatcher ran: nobody waits
	c.prop.mu.Unlock()
	select {
	case roundEnd <- struct{}{}:
	default:
	}
}

// batchContext lives until every proposal's caller has given up, or
// timeout: a round whose callers are all gone is abandoned, as one
// caller's forward was before batching.
func batchContext(ps []*proposal, timeout time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	left := atomic.Int64{}
	left.Store(int64(len(ps)))
	stops := make([]func() bool, len(ps))
	for i, p := range ps {
		stops[i] = context.AfterFunc(p.ctx, func() {
			if left.Add(-1) == 0 {
				cancel()
			}
		})
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancel()
	}
}

// outcome is what became of one command committed on the leader.
type outcome struct {
	res   any    // what Apply returned: a value or Apply's error
	index uint64 // the log entry that holds it
	err   error  // it was not committed
	retry bool   // it was not committed because this node is not the leader
	// uncertain (with retry): it was appended, and may still commit.
	uncertain bool
}

// commitLocal commits commands on this node, in order, and returns each
// one's outcome and how many log entries it took. Several commands go as
// one batch entry; one entry per command when the batch does not fit in
// one transaction (store.ErrBatchTooBig: nothing of it was applied). Once
// this node is found not to lead, the commands not yet committed are
// marked to retry: none of them was appended to the log.
func (c *Cluster) commitLocal(ctx context.Context, local applier, cmds [][]byte) ([]outcome, int) {
	outs := make([]outcome, len(cmds))
	if len(cmds) > 1 {
		if entry, err := store.EncodeBatch(cmds); err == nil {
			res, idx, err := local.ApplyIndex(ctx, entry)
			if refused, _ := res.(error); err != nil || !errors.Is(refused, store.ErrBatchTooBig) {
				c.batchOutcomes(outs, res, idx, err)
				return outs, 1
			}
		}
		// A command that is not valid JSON cannot be part of a batch; on
		// its own, Apply refuses it and the others still apply.
	}
	return c.commitEach(ctx, local, cmds, outs)
}

// commitEach commits commands one entry each, in order, into outs, and
// returns how many entries it wrote. Once this node is found not to lead,
// the rest are marked to retry: none of them was appended.
func (c *Cluster) commitEach(ctx context.Context, local applier, cmds [][]byte, outs []outcome) ([]outcome, int) {
	entries := 0
	for i, cmd := range cmds {
		res, idx, err := local.ApplyIndex(ctx, cmd)
		if errors.Is(err, raftcluster.ErrNotLeader) {
			for j := i; j < len(outs); j++ {
				outs[j] = outcome{retry: true}
			}
			outs[i].uncertain = errors.Is(err, raftcluster.ErrLeadershipLost)
			break
		}
		entries++
		outs[i] = outcome{res: res, index: idx, err: err}
	}
	return outs, entries
}

// batchOutcomes spreads what a batch entry's commit returned over its
// commands.
func (c *Cluster) batchOutcomes(outs []outcome, res any, idx uint64, err error) {
	br, ok := res.(store.BatchResults)
	for i := range outs {
		switch {
		case errors.Is(err, raftcluster.ErrNotLeader):
			outs[i] = outcome{retry: true, uncertain: errors.Is(err, raftcluster.ErrLeadershipLost)}
		case err != nil:
			outs[i] = outcome{err: err}
		case ok && len(br) == len(outs):
			outs[i] = outcome{res: br[i], index: idx}
		case isError(res):
			// The entry as a whole was refused (a batch version newer
			// than a replica): no command of it applied.
			outs[i] = outcome{res: res, index: idx}
		default:
			outs[i] = outcome{err: fmt.Errorf("batch entry answered %T", res), index: idx}
		}
	}
}

func isError(v any) bool {
	_, ok := v.(error)
	return ok
}

// batchRequest is a follower's batch, forwarded to the leader.
type batchRequest struct {
	Cmds []json.RawMessage `json:"cmds"`
}

// batchResponse is the leader's answer: one result per command, in order.
// A result marked retry was not committed (the leader stopped leading
// before it): the follower sends it again, to whoever leads then.
type batchResponse struct {
	Results []applyResult `json:"results"`
}

// handleApplyBatch is the leader's end of batched forwarding.
func (c *Cluster) handleApplyBatch(w http.ResponseWriter, r *http.Request) {
	c.serveApplyBatch(w, r, c.rl)
}

func (c *Cluster) serveApplyBatch(w http.ResponseWriter, r *http.Request, local applier) {
	var req batchRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<20)).Decode(&req); err != nil || len(req.Cmds) == 0 {
		writeWireError(w, http.StatusBadRequest, store.EInvalid, "read batch")
		return
	}
	cmds := make([][]byte, len(req.Cmds))
	for i, cmd := range req.Cmds {
		cmds[i] = cmd
	}
	outs, _ := c.commitLocal(r.Context(), local, cmds)
	if outs[0].retry && !outs[0].uncertain { // and so every one after it: none was committed
		writeWireError(w, statusNotLeader, store.EUnavailable, "not the leader")
		return
	}
	resp := batchResponse{Results: make([]applyResult, len(outs))}
	for i, o := range outs {
		switch {
		case o.retry:
			resp.Results[i] = applyResult{Retry: true, Uncertain: o.uncertain}
		case o.err != nil:
			c.log.Error("apply forwarded command", "err", o.err)
			resp.Results[i] = applyResult{Error: &wireError{Code: store.EInternal, Message: "apply failed"}}
		default:
			ar, err := c.resultOf(o.res, o.index)
			if err != nil {
				c.log.Error("forwarded command", "err", err)
				ar = applyResult{Index: o.index, Error: &wireError{Code: store.EInternal, Message: "encode result"}}
			}
			resp.Results[i] = ar
		}
	}
	writeJSON(w, http.StatusOK, resp)
}

// forwardBatch sends proposals to the leader in one call and returns those
// to retry: all of them when the leader could not take the call (gone, no
// longer leading, or its answer lost), the ones it marked otherwise. A
// leader too old to take batches gets them one call each.
func (c *Cluster) forwardBatch(ctx context.Context, addr string, ps []*proposal, inline bool) []*proposal {
	c.prop.mu.Lock()
	old := c.prop.noBatch == addr
	c.prop.mu.Unlock()
	if old {
		return c.forwardEach(ctx, addr, ps)
	}
	req := batchRequest{Cmds: make([]json.RawMessage, len(ps))}
	for i, p := range ps {
		req.Cmds[i] = p.cmd
	}
	body, err := json.Marshal(req)
	if err != nil {
		// A command that is not JSON: alone, the leader refuses it.
		return c.forwardEach(ctx, addr, ps)
	}
	resp, err := c.internalDo(ctx, http.MethodPost, addr, "/internal/v1/apply-batch", body)
	if err != nil {
		c.log.Debug("forward to leader", "leader", addr, "err", err)
		if mayHaveArrived(err) {
			markUncertain(ps)
		}
		return ps
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		c.prop.mu.Lock()
		c.prop.noBatch = addr
		c.prop.mu.Unlock()
		return c.forwardEach(ctx, addr, ps)
	case statusNotLeader, http.StatusServiceUnavailable:
		c.log.Debug("forward to leader", "leader", addr, "status", resp.Status)
		return ps
	default:
		ar, err := decodeApplyResult(resp.Body)
		if err != nil || ar.Error == nil {
			return ps
		}
		for _, p := range ps {
			p.finish(ar.Error.err(), nil)
		}
		return nil
	}
	var br batchResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&br); err != nil || len(br.Results) != len(ps) {
		c.log.Debug("forward to leader: undecodable answer", "leader", addr, "err", err)
		markUncertain(ps)
		return ps
	}
	c.prop.counters.Forwards.Add(1)
	var last uint64
	var retry []*proposal
	for i, r := range br.Results {
		if r.Retry {
			if r.Uncertain {
				ps[i].uncertain.Store(true)
			}
			retry = append(retry, ps[i])
			continue
		}
		last = max(last, r.Index)
	}
	c.prop.counters.ForwardedCommands.Add(uint64(len(ps) - len(retry)))
	// The callers are answered once this node has applied their entries
	// (a read right after sees the write); a round of the dispatcher ends
	// now, so the next batch need not wait for that.
	answer := func() {
		c.waitApplied(context.Background(), last)
		for i, r := range br.Results {
			p := ps[i]
			switch {
			case r.Retry:
			case r.Error != nil:
				p.finish(r.Error.err(), nil)
			default:
				p.finish(store.DecodeResult(p.typ, r.Result))
			}
		}
	}
	if inline {
		answer()
	} else {
		go answer()
	}
	return retry
}

// forwardEach forwards proposals one call each, in order, and returns
// those to retry: the first the leader could not take, and every one
// after it.
func (c *Cluster) forwardEach(ctx context.Context, addr string, ps []*proposal) []*proposal {
	for i, p := range ps {
		res, err, retry := c.forward(ctx, addr, p.typ, p.cmd)
		if retry && mayHaveArrived(err) {
			p.uncertain.Store(true)
		}
		if retry {
			c.log.Debug("forward to leader", "leader", addr, "err", err)
			return ps[i:]
		}
		c.prop.counters.Forwards.Add(1)
		c.prop.counters.ForwardedCommands.Add(1)
		p.finish(res, err)
	}
	return nil
}

// errNotTaken is a leader's answer that it committed nothing of a call.
var errNotTaken = errors.New("not taken")

// mayHaveArrived reports whether a forward call that failed with err may
// have delivered its commands to the leader: anything but a failure to
// connect. (A call without an answer can still be applied: its request
// may be on its way, or in the leader's log, when the caller gives up.)
func mayHaveArrived(err error) bool {
	if errors.Is(err, errNotTaken) {
		return false
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return false
	}
	return true
}

func markUncertain(ps []*proposal) {
	for _, p := range ps {
		p.uncertain.Store(true)
	}
}
