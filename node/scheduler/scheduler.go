// Package scheduler places queued tasks on nodes. It runs on the leader
// only, computes placements from the leader's view of the state and proposes
// them in batches; the store re-checks every placement when it applies the
// batch. It does not start containers (node/runner does). See DESIGN.md.
package scheduler

import (
	"container/heap"
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
	// Usages is what each user's placed, unended tasks hold.
	Usages() (map[string]store.UserUsage, error)
	// Quotas is each user's quota (users without one are missing).
	Quotas() (map[string]store.Resources, error)
}

// Config configures a Scheduler.
type Config struct {
	State    State
	Proposer store.Proposer
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
	name   string
	free   store.Resources
	cap    store.Resources
	labels map[string]string
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
	var total store.Resources // of every ready node: the measure of shares
	for _, n := range nodes {
		if n.State != store.NodeReady {
			continue
		}
		total = total.Plus(n.Capacity)
		if f := n.Free(); f.CPU >= minCPU && f.Memory >= minMemory {
			free = append(free, &nodeFree{name: n.Name, free: f, cap: n.Capacity, labels: n.Labels})
		}
	}
	if len(free) == 0 {
		return 0, nil
	}
	queued, err := s.cfg.State.Queued(s.cfg.Window)
	if err != nil || len(queued) == 0 {
		return 0, err
	}
	usage, err := s.cfg.State.Usages()
	if err != nil {
		return 0, err
	}
	quotas, err := s.cfg.State.Quotas()
	if err != nil {
		return 0, err
	}
	placements := plan(queued, free, total, usage, quotas)
	accepted := 0
	for len(placements) > 0 {
		batch := placements
		if len(batch) > s.cfg.Batch {
			batch = batch[:s.cfg.Batch]
		}
		placements = placements[len(batch):]
		r, err := store.CmdPlace.Propose(ctx, s.cfg.Proposer, store.Place{Placements: batch})
		if err != nil {
			return accepted, err
		}
		accepted += r.Accepted
		if r.Rejected > 0 {
			s.log.Debug("placements rejected on apply", "rejected", r.Rejected)
		}
	}
	s.placements.Add(float64(accepted))
	return accepted, nil
}

// plan assigns queued tasks (already in priority, then submission order) to
// nodes. Higher priorities go first. Within one priority level, users are
// served by dominant resource fairness: the next task is always the user's
// whose dominant share of the cluster (the largest of their CPU, memory and
// GPU fractions, counting what they hold already and what this pass gave
// them) is smallest; ties go to the earlier submission. A task that would
// take its user over their quota, or fits no node, is skipped and later ones
// may still be placed (backfill). Each task goes to the matching node with
// the most free capacity by its dominant share, which spreads load.
func plan(queued []store.QueuedTask, nodes []*nodeFree, total store.Resources, usage map[string]store.UserUsage, quotas map[string]store.Resources) []store.Placement {
	share := func(r store.Resources) float64 {
		s := max(ratio(r.CPU, total.CPU), ratio(r.Memory, total.Memory))
		if total.GPUs > 0 {
			s = max(s, float64(r.GPUs)/float64(total.GPUs))
		}
		return s
	}
	held := map[string]store.Resources{}
	for u, x := range usage {
		held[u] = x.Allocated
	}
	var out []store.Placement
	for _, level := range byPriority(queued) {
		per := map[string]*ownerQueue{}
		var h ownerHeap
		for pos, t := range level {
			o, ok := per[t.Owner]
			if !ok {
				o = &ownerQueue{name: t.Owner}
				per[t.Owner] = o
			}
			o.tasks = append(o.tasks, t)
			o.pos = append(o.pos, pos)
		}
		for _, o := range per {
			o.share = share(held[o.name])
			h = append(h, o)
		}
		heap.Init(&h)
		for h.Len() > 0 {
			o := h[0]
			t := o.tasks[0]
			o.tasks, o.pos = o.tasks[1:], o.pos[1:]
			need := store.Resources{CPU: t.CPU, Memory: t.Memory, GPUs: t.GPUs}
			if q, ok := quotas[o.name]; !ok || q.Allows(held[o.name].Plus(need)) {
				if n := bestNode(nodes, need, t.Constraints); n != nil {
					n.free = n.free.Minus(need)
					held[o.name] = held[o.name].Plus(need)
					o.share = share(held[o.name])
					out = append(out, store.Placement{JobID: t.JobID, Task: t.Task, Node: n.name})
				}
			}
			if len(o.tasks) == 0 {
				heap.Pop(&h)
			} else {
				heap.Fix(&h, 0)
			}
		}
	}
	return out
}

// bestNode is the node matching constraints with room for need and the most
// free capacity by dominant share, or nil.
func bestNode(nodes []*nodeFree, need store.Resources, constraints map[string]string) *nodeFree {
	var best *nodeFree
	bestScore := -1.0
	for _, n := range nodes {
		if !n.free.Holds(need) || !store.LabelsMatch(n.labels, constraints) {
			continue
		}
		if score := min(ratio(n.free.CPU, n.cap.CPU), ratio(n.free.Memory, n.cap.Memory)); score > bestScore {
			best, bestScore = n, score
		}
	}
	return best
}

// ownerQueue is one user's queued tasks of a priority level, with their
// positions in the level (submission order) and the user's current share.
type ownerQueue struct {
	name  string
	tasks []store.QueuedTask
	pos   []int
	share float64
}

// ownerHeap orders users by share, then by their next task's position.
type ownerHeap []*ownerQueue

func (h ownerHeap) Len() int { return len(h) }
func (h ownerHeap) Less(i, j int) bool {
	if h[i].share != h[j].share {
		return h[i].share < h[j].share
	}
	return h[i].pos[0] < h[j].pos[0]
}
func (h ownerHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *ownerHeap) Push(x any)   { *h = append(*h, x.(*ownerQueue)) }
func (h *ownerHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
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
