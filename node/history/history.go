// Package history keeps a small in-memory history of the cluster for the
// console's charts: every Interval (10 s by default) a sample of the
// cluster's CPU, memory and GPUs (capacity, allocated, used), the queue
// depth, tasks started and finished per minute, each user's usage against
// their quota and each node's load. The last hour is kept at full
// resolution and the last day at one point a minute, in rings allocated
// once, so the memory held is fixed by Config (see DESIGN.md).
//
// It owns the sampling and the rings. It does not own what it samples
// (the replicated store, and the machine usage the cluster package
// measures), nor who may read what: node/api filters users' series.
package history

import (
	"context"
	"log/slog"
	"math"
	"sort"
	"sync"
	"time"

	"gantry/store"
)

// Source is what a sample reads from the replicated state (*store.Store
// implements it). Every replica holds the whole state, so any node's
// figures are the cluster's.
type Source interface {
	Nodes() ([]store.Node, error)
	QueueDepth() (int, error)
	TaskCounts() (started, finished uint64)
	Usages() (map[string]store.UserUsage, error)
	Quotas() (map[string]store.Resources, error)
}

var _ Source = (*store.Store)(nil)

// Config configures a History.
type Config struct {
	Source Source
	// Used reports what a node's machine uses (CPU from /proc/stat,
	// memory as MemTotal - MemAvailable: node/cluster's NodeUsage); nil
	// or a nil answer: not measured, kept as missing.
	Used func(ctx context.Context, n store.Node) *store.Resources
	// Interval between samples (default 10 s); the hour ring holds an
	// hour of them.
	Interval time.Duration
	// DayStep is the resolution of the day ring (default 1 min).
	DayStep time.Duration
	// MaxNodes and MaxUsers bound the per-node and per-user series
	// (defaults 16 and 16): names beyond are not recorded (Dropped).
	MaxNodes, MaxUsers int
	// Now is the clock (default time.Now).
	Now    func() time.Time
	Logger *slog.Logger
	// OnSample, when set, is called after each sample is recorded (the
	// console's live channel tells open dashboards to redraw).
	OnSample func(at time.Time)
}

// Window names the two rings.
type Window string

// The windows a History answers.
const (
	Hour Window = "1h"
	Day  Window = "1d"
)

// The cluster figures of a point, in the order of ClusterFields.
const (
	cCPUCapacity = iota
	cCPUAllocated
	cCPUUsed
	cMemCapacity
	cMemAllocated
	cMemUsed
	cGPUCapacity
	cGPUAllocated
	cQueue
	cRunning
	cStarted
	cFinished
	clusterFields
)

// ClusterFields names the cluster series (CPU in millicores, memory in
// MiB, GPUs, tasks; started and finished per minute).
var ClusterFields = [clusterFields]string{"cpu_capacity", "cpu_allocated", "cpu_used", "memory_capacity", "memory_allocated", "memory_used",
	"gpu_capacity", "gpu_allocated", "queue_depth", "running", "started_per_min", "finished_per_min"}

// The per-node figures.
const (
	nCPUCapacity = iota
	nCPUAllocated
	nCPUUsed
	nMemCapacity
	nMemAllocated
	nMemUsed
	nRunning
	nodeFields
)

// NodeFields names the per-node series.
var NodeFields = [nodeFields]string{"cpu_capacity", "cpu_allocated", "cpu_used", "memory_capacity", "memory_allocated", "memory_used", "running"}

// The per-user figures.
const (
	uCPU = iota
	uMem
	uGPU
	uCPUQuota
	uMemQuota
	uGPUQuota
	uTasks
	userFields
)

// UserFields names the per-user series (a quota of 0 is no limit).
var UserFields = [userFields]string{"cpu", "memory", "gpus", "cpu_quota", "memory_quota", "gpu_quota", "tasks"}

// ClusterPoint, NodePoint and UserPoint are one sample's figures, in the
// order of ClusterFields, NodeFields and UserFields, memory in MiB. They
// are float32: CPU millicores and MiB are exact to 16 million, at half the
// size of float64 (DESIGN.md). NaN is a missing value.
type (
	ClusterPoint [clusterFields]float32
	NodePoint    [nodeFields]float32
	UserPoint    [userFields]float32
)

// History is the rings and the sampler. Safe for concurrent use.
type History struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	hour    *ring
	day     *ring
	acc     accumulator // the day ring's current step
	last    struct{ started, finished uint64 }
	lastAt  time.Time
	dropped map[string]bool
}

// New returns a History with its rings allocated.
func New(cfg Config) *History {
	if cfg.Interval <= 0 {
		cfg.Interval = 10 * time.Second
	}
	if cfg.DayStep <= 0 {
		cfg.DayStep = time.Minute
	}
	if cfg.MaxNodes <= 0 {
		cfg.MaxNodes = 16
	}
	if cfg.MaxUsers <= 0 {
		cfg.MaxUsers = 16
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	h := &History{cfg: cfg, log: cfg.Logger.With("component", "history"), dropped: map[string]bool{}}
	h.hour = newRing(int(time.Hour/cfg.Interval), cfg.Interval, cfg.MaxNodes, cfg.MaxUsers)
	h.day = newRing(int(24*time.Hour/cfg.DayStep), cfg.DayStep, cfg.MaxNodes, cfg.MaxUsers)
	h.acc.reset()
	return h
}

// Interval is the time between samples.
func (h *History) Interval() time.Duration { return h.cfg.Interval }

// Run samples every Interval until ctx ends.
func (h *History) Run(ctx context.Context) {
	t := time.NewTicker(h.cfg.Interval)
	defer t.Stop()
	h.Sample(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			h.Sample(ctx)
		}
	}
}

// Sample reads the state once and records it (Run calls it; tests call it
// with a test clock).
func (h *History) Sample(ctx context.Context) {
	s, err := h.read(ctx)
	if err != nil {
		h.log.Debug("sample", "err", err)
		return
	}
	h.Record(s)
	if h.cfg.OnSample != nil {
		h.cfg.OnSample(s.At)
	}
}

// Snapshot is one sample: the cluster, each node and each user.
type Snapshot struct {
	At      time.Time
	Cluster ClusterPoint
	Nodes   map[string]NodePoint
	Users   map[string]UserPoint
}

const mib = 1 << 20

func (h *History) read(ctx context.Context) (Snapshot, error) {
	now := h.cfg.Now()
	s := Snapshot{At: now, Nodes: map[string]NodePoint{}, Users: map[string]UserPoint{}}
	nodes, err := h.cfg.Source.Nodes()
	if err != nil {
		return s, err
	}
	depth, err := h.cfg.Source.QueueDepth()
	if err != nil {
		return s, err
	}
	usages, err := h.cfg.Source.Usages()
	if err != nil {
		return s, err
	}
	quotas, err := h.cfg.Source.Quotas()
	if err != nil {
		return s, err
	}
	c := &s.Cluster
	c[cCPUUsed], c[cMemUsed] = nan, nan
	measured := false
	var cpuUsed, memUsed float64
	for _, n := range nodes {
		if n.State == store.NodeDown {
			continue
		}
		p := NodePoint{float32(n.Capacity.CPU), float32(n.Allocated.CPU), nan,
			float32(n.Capacity.Memory / mib), float32(n.Allocated.Memory / mib), nan, float32(n.Running)}
		if h.cfg.Used != nil {
			if u := h.cfg.Used(ctx, n); u != nil {
				p[nCPUUsed], p[nMemUsed] = float32(u.CPU), float32(u.Memory/mib)
				cpuUsed += float64(u.CPU)
				memUsed += float64(u.Memory / mib)
				measured = true
			}
		}
		s.Nodes[n.Name] = p
		c[cCPUCapacity] += p[nCPUCapacity]
		c[cCPUAllocated] += p[nCPUAllocated]
		c[cMemCapacity] += p[nMemCapacity]
		c[cMemAllocated] += p[nMemAllocated]
		c[cGPUCapacity] += float32(n.Capacity.GPUs)
		c[cGPUAllocated] += float32(n.Allocated.GPUs)
		c[cRunning] += float32(n.Running)
	}
	if measured {
		c[cCPUUsed], c[cMemUsed] = float32(cpuUsed), float32(memUsed)
	}
	c[cQueue] = float32(depth)
	started, finished := h.cfg.Source.TaskCounts()
	h.mu.Lock()
	if !h.lastAt.IsZero() && now.After(h.lastAt) {
		per := float64(time.Minute) / float64(now.Sub(h.lastAt))
		c[cStarted] = float32(float64(started-h.last.started) * per)
		c[cFinished] = float32(float64(finished-h.last.finished) * per)
	}
	h.last.started, h.last.finished, h.lastAt = started, finished, now
	h.mu.Unlock()
	for name, u := range usages {
		q := quotas[name]
		if u.Tasks == 0 && u.Allocated == (store.Resources{}) && q == (store.Resources{}) {
			continue
		}
		s.Users[name] = UserPoint{float32(u.Allocated.CPU), float32(u.Allocated.Memory / mib), float32(u.Allocated.GPUs),
			float32(q.CPU), float32(q.Memory / mib), float32(q.GPUs), float32(u.Tasks)}
	}
	for name, q := range quotas {
		if _, ok := s.Users[name]; !ok && q != (store.Resources{}) {
			s.Users[name] = UserPoint{0, 0, 0, float32(q.CPU), float32(q.Memory / mib), float32(q.GPUs), 0}
		}
	}
	return s, nil
}

var nan = float32(math.NaN())

// Record adds a sample to the hour ring, and to the day ring's current
// step (averaged, written when the step is over).
func (h *History) Record(s Snapshot) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.hour.push(s, h.dropped)
	step := s.At.Truncate(h.cfg.DayStep)
	if h.acc.n > 0 && !step.Equal(h.acc.step) {
		h.day.push(h.acc.mean(), h.dropped)
		h.acc.reset()
	}
	h.acc.add(step, s)
}

// Dropped lists the node and user names not recorded because their ring
// was full (Config.MaxNodes, MaxUsers), "node:" or "user:" first.
func (h *History) Dropped() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]string, 0, len(h.dropped))
	for k := range h.dropped {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
