// Package scheduler places queued tasks on nodes. It runs on the leader
// only, computes placements from the leader's view of the state and proposes
// them in batches; the store re-checks every placement when it applies the
// batch. It does not start containers (node/runner does). See DESIGN.md.
package scheduler

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"gantry/store"
)

// State is the part of the store the scheduler reads.
type State interface {
	Queued(limit int) ([]store.QueuedTask, error)
	Nodes() ([]store.Node, error)
}

// Proposer commits a command through Raft.
type Proposer interface {
	Propose(ctx context.Context, typ string, payload any) (any, error)
}

// Config configures a Scheduler.
type Config struct {
	State    State
	Proposer Proposer
	Logger   *slog.Logger
	// Window is how many queued tasks one pass considers.
	Window int
	// Batch is the most placements proposed in one log entry.
	Batch int
	// Registerer receives the scheduler's metrics; nil skips them.
	Registerer prometheus.Registerer
}

// Scheduler is the leader's placement loop.
type Scheduler struct {
	cfg        Config
	log        *slog.Logger
	placements prometheus.Counter
	passes     prometheus.Histogram
}

// New returns a Scheduler.
func New(cfg Config) *Scheduler {
	if cfg.Window <= 0 {
		cfg.Window = 4096
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 1024
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Scheduler{cfg: cfg, log: cfg.Logger.With("component", "scheduler"),
		placements: prometheus.NewCounter(prometheus.CounterOpts{Name: "gantry_scheduler_placements_total", Help: "Task placements accepted."}),
		passes:     prometheus.NewHistogram(prometheus.HistogramOpts{Name: "gantry_scheduler_pass_seconds", Help: "Duration of one scheduling pass.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
	}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(s.placements, s.passes)
	}
	return s
}

// Run schedules until ctx ends. A value on kick (or a periodic tick, as a
// safety net) starts a pass; passes repeat while they place anything.
func (s *Scheduler) Run(ctx context.Context, kick <-chan struct{}) {
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		for {
			n, err := s.Pass(ctx)
			if err != nil {
				if ctx.Err() == nil {
					s.log.Warn("scheduling pass failed", "err", err)
				}
				break
			}
			if n == 0 {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-kick:
		case <-tick.C:
		}
	}
}

// The smallest task the store accepts; a node with less free has no room.
const (
	minCPU    = 10
	minMemory = 6 << 20
)

type nodeFree struct {
	name string
	free store.Resources
	cap  store.Resources
}

// Pass computes and proposes one round of placements and returns how many
// the store accepted.
func (s *Scheduler) Pass(ctx context.Context) (int, error) {
	start := time.Now()
	defer func() { s.passes.Observe(time.Since(start).Seconds()) }()
	// Nodes first: when nothing has room, reading the queue is wasted work
	// (a drained cluster with a deep queue would otherwise re-read it on
	// every submission).
	nodes, err := s.cfg.State.Nodes()
	if err != nil {
		return 0, err
	}
	var free []*nodeFree
	for _, n := range nodes {
		if f := n.Free(); n.State == store.NodeReady && f.CPU >= minCPU && f.Memory >= minMemory {
			free = append(free, &nodeFree{name: n.Name, free: f, cap: n.Capacity})
		}
	}
	if len(free) == 0 {
		return 0, nil
	}
	queued, err := s.cfg.State.Queued(s.cfg.Window)
	if err != nil || len(queued) == 0 {
		return 0, err
	}
	placements := plan(queued, free)
	accepted := 0
	for len(placements) > 0 {
		batch := placements
		if len(batch) > s.cfg.Batch {
			batch = batch[:s.cfg.Batch]
		}
		placements = placements[len(batch):]
		res, err := s.cfg.Proposer.Propose(ctx, store.CmdPlace, store.Place{Placements: batch})
		if err != nil {
			return accepted, err
		}
		if r, ok := res.(*store.PlaceResult); ok {
			accepted += r.Accepted
			if r.Rejected > 0 {
				s.log.Debug("placements rejected on apply", "rejected", r.Rejected)
			}
		}
	}
	s.placements.Add(float64(accepted))
	return accepted, nil
}

// plan assigns queued tasks (already in priority, then submission order) to
// nodes. Within one priority level, owners take turns, so one user's large
// array does not hold back everyone else's work. Each task goes to the node
// with the most free capacity (by its dominant share) that fits it, which
// spreads load across the cluster.
func plan(queued []store.QueuedTask, nodes []*nodeFree) []store.Placement {
	var out []store.Placement
	for _, level := range byPriority(queued) {
		for _, t := range roundRobin(level) {
			best := -1
			bestScore := -1.0
			for i, n := range nodes {
				if n.free.CPU < t.CPU || n.free.Memory < t.Memory || n.free.GPUs < t.GPUs {
					continue
				}
				score := min(ratio(n.free.CPU, n.cap.CPU), ratio(n.free.Memory, n.cap.Memory))
				if score > bestScore {
					best, bestScore = i, score
				}
			}
			if best < 0 {
				continue
			}
			n := nodes[best]
			n.free.CPU -= t.CPU
			n.free.Memory -= t.Memory
			n.free.GPUs -= t.GPUs
			out = append(out, store.Placement{JobID: t.JobID, Task: t.Task, Node: n.name})
		}
	}
	return out
}

func ratio(a, b int64) float64 {
	if b <= 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func byPriority(q []store.QueuedTask) [][]store.QueuedTask {
	var out [][]store.QueuedTask
	for i := 0; i < len(q); {
		j := i
		for j < len(q) && q[j].Priority == q[i].Priority {
			j++
		}
		out = append(out, q[i:j])
		i = j
	}
	return out
}

// roundRobin interleaves tasks of different owners, keeping each owner's
// own order.
func roundRobin(level []store.QueuedTask) []store.QueuedTask {
	per := map[string][]store.QueuedTask{}
	var owners []string
	for _, t := range level {
		if _, ok := per[t.Owner]; !ok {
			owners = append(owners, t.Owner)
		}
		per[t.Owner] = append(per[t.Owner], t)
	}
	if len(owners) == 1 {
		return level
	}
	out := make([]store.QueuedTask, 0, len(level))
	for len(out) < len(level) {
		for _, o := range owners {
			if ts := per[o]; len(ts) > 0 {
				out = append(out, ts[0])
				per[o] = ts[1:]
			}
		}
	}
	return out
}
