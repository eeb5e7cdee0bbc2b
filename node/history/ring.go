package history

import (
	"math"
	"slices"
	"sort"
	"time"
)

// series is one name's points in a ring, aligned with the ring's slots.
type series[P any] struct {
	vals []P
	seen uint64 // the ring's push count when the name last had a value
}

// ring holds the last n samples at one step: times and the cluster's
// points in arrays allocated once, a series per node and per user
// allocated when the name first appears (at most maxNodes, maxUsers) and
// freed once the name has had no value for a whole ring.
type ring struct {
	n, head, count     int
	pushes             uint64
	step               time.Duration
	times              []int64
	cluster            []ClusterPoint
	nodes              map[string]*series[NodePoint]
	users              map[string]*series[UserPoint]
	maxNodes, maxUsers int
}

func newRing(n int, step time.Duration, maxNodes, maxUsers int) *ring {
	return &ring{n: n, step: step, times: make([]int64, n), cluster: make([]ClusterPoint, n),
		nodes: map[string]*series[NodePoint]{}, users: map[string]*series[UserPoint]{}, maxNodes: maxNodes, maxUsers: maxUsers}
}

func (r *ring) push(s Snapshot, dropped map[string]bool) {
	i := r.head
	r.times[i] = s.At.UnixMilli()
	r.cluster[i] = s.Cluster
	pushInto(r, r.nodes, s.Nodes, r.maxNodes, "node:", dropped, missingNode)
	pushInto(r, r.users, s.Users, r.maxUsers, "user:", dropped, missingUser)
	r.head = (r.head + 1) % r.n
	r.count = min(r.count+1, r.n)
	r.pushes++
}

func pushInto[P any](r *ring, m map[string]*series[P], vals map[string]P, max int, kind string, dropped map[string]bool, miss P) {
	i := r.head
	for name, s := range m {
		if v, ok := vals[name]; ok {
			s.vals[i], s.seen = v, r.pushes
			continue
		}
		if r.pushes-s.seen >= uint64(r.n) {
			delete(m, name) // no value left in the ring
			continue
		}
		s.vals[i] = miss
	}
	// New names are taken in name order, so which ones a full ring drops
	// does not depend on map order and is the same in the hour and day rings.
	var fresh []string
	for name := range vals {
		if _, ok := m[name]; !ok {
			fresh = append(fresh, name)
		}
	}
	slices.Sort(fresh)
	for _, name := range fresh {
		v := vals[name]
		if len(m) >= max {
			dropped[kind+name] = true
			continue
		}
		s := &series[P]{vals: make([]P, r.n), seen: r.pushes}
		for j := range s.vals {
			s.vals[j] = miss
		}
		s.vals[i] = v
		m[name] = s
	}
}

var missingNode, missingUser = func() (NodePoint, UserPoint) {
	var n NodePoint
	var u UserPoint
	for k := range n {
		n[k] = nan
	}
	for k := range u {
		u[k] = nan
	}
	return n, u
}()

// accumulator averages the samples of one step of the day ring; a
// missing value counts in neither the sum nor the count.
type accumulator struct {
	step    time.Time
	n       int
	cluster sums
	nodes   map[string]*sums
	users   map[string]*sums
}

type sums struct {
	sum [clusterFields]float64
	cnt [clusterFields]int
}

func (s *sums) add(vals []float32) {
	for k, v := range vals {
		if !math.IsNaN(float64(v)) {
			s.sum[k] += float64(v)
			s.cnt[k]++
		}
	}
}

func (s *sums) mean(out []float32) {
	for k := range out {
		if s.cnt[k] == 0 {
			out[k] = nan
		} else {
			out[k] = float32(s.sum[k] / float64(s.cnt[k]))
		}
	}
}

func (a *accumulator) reset() {
	*a = accumulator{nodes: map[string]*sums{}, users: map[string]*sums{}}
}

func (a *accumulator) add(step time.Time, s Snapshot) {
	a.step = step
	a.n++
	a.cluster.add(s.Cluster[:])
	for name, p := range s.Nodes {
		if a.nodes[name] == nil {
			a.nodes[name] = &sums{}
		}
		a.nodes[name].add(p[:])
	}
	for name, p := range s.Users {
		if a.users[name] == nil {
			a.users[name] = &sums{}
		}
		a.users[name].add(p[:])
	}
}

func (a *accumulator) mean() Snapshot {
	s := Snapshot{At: a.step, Nodes: make(map[string]NodePoint, len(a.nodes)), Users: make(map[string]UserPoint, len(a.users))}
	a.cluster.mean(s.Cluster[:])
	for name, sm := range a.nodes {
		var p NodePoint
		sm.mean(p[:])
		s.Nodes[name] = p
	}
	for name, sm := range a.users {
		var p UserPoint
		sm.mean(p[:])
		s.Users[name] = p
	}
	return s
}

// View is a window of the history, oldest first, figures as float64 with
// NaN for missing: CPU in millicores, memory in bytes.
type View struct {
	Window Window
	// Step is the time between points (the ring's, times the points
	// merged to keep within the maximum asked).
	Step    time.Duration
	Times   []int64 // Unix milliseconds
	Cluster map[string][]float64
	Nodes   []Named
	Users   []Named
}

// Named is one node's or user's series.
type Named struct {
	Name   string
	Fields map[string][]float64
}

// Read returns a window, with at most maxPoints points (0: all; several
// consecutive points are averaged into one), and the users' series for
// which user returns true (nil: none).
func (h *History) Read(w Window, maxPoints int, user func(name string) bool) View {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.hour
	if w == Day {
		r = h.day
	}
	merge := 1
	if maxPoints > 0 && r.count > maxPoints {
		merge = (r.count + maxPoints - 1) / maxPoints
	}
	// Start where a full group of merge points ends at the newest point.
	skip := r.count % merge
	idx := make([]int, 0, r.count-skip)
	for k := skip; k < r.count; k++ {
		idx = append(idx, (r.head-r.count+k+r.n)%r.n)
	}
	v := View{Window: w, Step: r.step * time.Duration(merge), Cluster: map[string][]float64{}}
	pts := len(idx) / merge
	v.Times = make([]int64, pts)
	for g := range pts {
		v.Times[g] = r.times[idx[g*merge+merge-1]]
	}
	columns(v.Cluster, ClusterFields[:], idx, merge, func(i, k int) float32 { return r.cluster[i][k] }, memFields(ClusterFields[:]))
	for name, s := range r.nodes {
		f := map[string][]float64{}
		columns(f, NodeFields[:], idx, merge, func(i, k int) float32 { return s.vals[i][k] }, memFields(NodeFields[:]))
		v.Nodes = append(v.Nodes, Named{name, f})
	}
	if user != nil {
		for name, s := range r.users {
			if !user(name) {
				continue
			}
			f := map[string][]float64{}
			columns(f, UserFields[:], idx, merge, func(i, k int) float32 { return s.vals[i][k] }, memFields(UserFields[:]))
			v.Users = append(v.Users, Named{name, f})
		}
	}
	sort.Slice(v.Nodes, func(i, j int) bool { return v.Nodes[i].Name < v.Nodes[j].Name })
	sort.Slice(v.Users, func(i, j int) bool { return v.Users[i].Name < v.Users[j].Name })
	return v
}

// memFields marks the fields kept in MiB, answered in bytes.
func memFields(names []string) []bool {
	out := make([]bool, len(names))
	for k, n := range names {
		out[k] = len(n) >= 6 && n[:6] == "memory"
	}
	return out
}

func columns(out map[string][]float64, names []string, idx []int, merge int, at func(i, k int) float32, mem []bool) {
	pts := len(idx) / merge
	for k, name := range names {
		col := make([]float64, pts)
		for g := range pts {
			sum, n := 0.0, 0
			for _, i := range idx[g*merge : g*merge+merge] {
				if x := at(i, k); !math.IsNaN(float64(x)) {
					sum += float64(x)
					n++
				}
			}
			switch {
			case n == 0:
				col[g] = math.NaN()
			case mem[k]:
				col[g] = sum / float64(n) * mib
			default:
				col[g] = sum / float64(n)
			}
		}
		out[name] = col
	}
}
