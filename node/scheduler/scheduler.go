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
	// Usages is what each user's placed, unended tasks hold.
	Usages() (map[string]store.UserUsage, error)
	// Quotas is each user's quota (users without one are missing).
	Quotas() (map[string]store.Resources, error)
	// Queues lists every queue; QueueUsages is what each one's placed,
	// unended tasks hold; UserWeights the users' fair-share weights.
	Queues() ([]store.Queue, error)
	QueueUsages() (map[string]store.UserUsage, error)
	UserWeights() (map[string]float64, error)
	// Active lists every placed, unended attempt (for preemption).
	Active() ([]store.ActiveAttempt, error)
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
	// PreemptEvery is the least time between two looks for victims when
	// the last one found none (reading every running attempt is the
	// dearest part of a pass); 0 means one second.
	PreemptEvery time.Duration
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Scheduler is the leader's placement loop.
type Scheduler struct {
	cfg        Config
	log        *slog.Logger
	placements prometheus.Counter
	preempted  prometheus.Counter
	passes     prometheus.Histogram
	// lastPreemptLook is when the preemption step last read the running
	// attempts and found no victim (the leader's loop is its only caller).
	lastPreemptLook time.Time
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
	if cfg.PreemptEvery <= 0 {
		cfg.PreemptEvery = time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Scheduler{cfg: cfg, log: cfg.Logger.With("component", "scheduler"),
		placements: prometheus.NewCounter(prometheus.CounterOpts{Name: "gantry_scheduler_placements_total", Help: "Task placements accepted."}),
		preempted:  prometheus.NewCounter(prometheus.CounterOpts{Name: "gantry_scheduler_preemptions_total", Help: "Running attempts asked to stop to make room for a task that outranks them."}),
		passes:     prometheus.NewHistogram(prometheus.HistogramOpts{Name: "gantry_scheduler_pass_seconds", Help: "Duration of one scheduling pass.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
	}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(s.placements, s.preempted, s.passes)
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

// Pass computes and proposes one round of placements (and preemptions)
// and returns how many placements the store accepted.
func (s *Scheduler) Pass(ctx context.Context) (int, error) {
	start := time.Now()
	defer func() { s.passes.Observe(time.Since(start).Seconds()) }()
	v, err := s.view()
	if err != nil || v == nil {
		return 0, err
	}
	p := plan(v)
	accepted := 0
	for placements := p.placements; len(placements) > 0; {
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
	if err := s.preempt(ctx, v, p); err != nil {
		return accepted, err
	}
	return accepted, nil
}

// view reads what a pass needs; nil when no pass is worth making: no node
// has room and it is not yet time to look for victims (a drained or full
// cluster with a deep queue would otherwise re-read it on every kick).
func (s *Scheduler) view() (*view, error) {
	nodes, err := s.cfg.State.Nodes()
	if err != nil {
		return nil, err
	}
	v := &view{}
	room := false
	for _, n := range nodes {
		if n.State != store.NodeReady {
			continue
		}
		v.total = v.total.Plus(n.Capacity)
		f := n.Free()
		room = room || f.CPU >= minCPU && f.Memory >= minMemory
		v.nodes = append(v.nodes, &nodeFree{name: n.Name, free: f, cap: n.Capacity, labels: n.Labels})
	}
	if len(v.nodes) == 0 || !room && !s.preemptDue() {
		return nil, nil
	}
	if v.queued, err = s.cfg.State.Queued(s.cfg.Window); err != nil || len(v.queued) == 0 {
		return nil, err
	}
	if v.usage, err = s.cfg.State.Usages(); err != nil {
		return nil, err
	}
	if v.quotas, err = s.cfg.State.Quotas(); err != nil {
		return nil, err
	}
	if v.queues, err = s.cfg.State.Queues(); err != nil {
		return nil, err
	}
	if v.qusage, err = s.cfg.State.QueueUsages(); err != nil {
		return nil, err
	}
	if v.weights, err = s.cfg.State.UserWeights(); err != nil {
		return nil, err
	}
	if v.holders, err = s.inputHolders(v.queued); err != nil {
		return nil, err
	}
	return v, nil
}

// InputHolders is what a State may also tell: the nodes that hold every
// blob of an input artifact (store.Store.InputHolders). Without it tasks
// with inputs are placed like any other.
type InputHolders interface {
	InputHolders(repo, digest string) ([]string, error)
}

// maxInputsPerPass bounds the inputs a pass looks up holders for; tasks
// with others are placed as if no node held them.
const maxInputsPerPass = 256

// inputHolders looks up, once per pass and input, which nodes hold the
// inputs of the queued tasks.
func (s *Scheduler) inputHolders(queued []store.QueuedTask) (map[string]map[string]bool, error) {
	ih, ok := s.cfg.State.(InputHolders)
	if !ok {
		return nil, nil
	}
	var out map[string]map[string]bool
	for _, t := range queued {
		for _, in := range t.Inputs {
			if in.Job != "" {
				continue // another job's outputs, pinned only when the task starts
			}
			key := in.Repo + "@" + in.Digest
			if _, done := out[key]; done || len(out) >= maxInputsPerPass {
				continue
			}
			nodes, err := ih.InputHolders(in.Repo, in.Digest)
			if err != nil {
				return nil, err
			}
			if out == nil {
				out = map[string]map[string]bool{}
			}
			out[key] = map[string]bool{}
			for _, n := range nodes {
				out[key][n] = true
			}
		}
	}
	return out, nil
}

func (s *Scheduler) preemptDue() bool {
	return s.cfg.Now().Sub(s.lastPreemptLook) >= s.cfg.PreemptEvery
}

// preempt asks the runners of the victims chosen for the pass's waiting
// tasks to stop them. A look that finds none is not repeated for
// PreemptEvery.
func (s *Scheduler) preempt(ctx context.Context, v *view, p planned) error {
	if len(p.unplaced) == 0 || !s.preemptDue() {
		return nil
	}
	active, err := s.cfg.State.Active()
	if err != nil {
		return err
	}
	now := s.cfg.Now()
	rs := make([]running, 0, len(active))
	for _, a := range active {
		at := a.Attempt
		since := at.Started
		if since.IsZero() {
			since = at.Scheduled
		}
		rs = append(rs, running{
			key:  store.Victim{JobID: at.JobID, Task: at.Task, N: at.N},
			node: at.Node, queue: a.Job.Queue, priority: a.Job.Spec.Priority,
			res: store.Resources{CPU: at.CPU, Memory: at.Memory, GPUs: at.GPUs}, since: since,
			preempting: at.Preempt || at.CancelRequested || a.Job.CancelRequested, noPreempt: a.Job.Spec.NoPreempt,
		})
	}
	vs := victims(v, p, rs, now)
	if len(vs) == 0 {
		s.lastPreemptLook = now
		return nil
	}
	r, err := store.CmdPreempt.Propose(ctx, s.cfg.Proposer, store.Preempt{Victims: vs})
	if err != nil {
		return err
	}
	s.preempted.Add(float64(r.Accepted))
	s.log.Info("preempting", "victims", r.Accepted)
	return nil
}
