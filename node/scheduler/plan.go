package scheduler

import (
	"container/heap"
	"sort"

	"gantry/store"
)

// view is what one pass plans from: the queued tasks (each queue's in
// priority, then submission order), the ready nodes with room, and what
// queues and users hold.
type view struct {
	queued  []store.QueuedTask
	nodes   []*nodeFree
	total   store.Resources // of every ready node: the measure of shares
	usage   map[string]store.UserUsage
	quotas  map[string]store.Resources
	queues  []store.Queue // every queue; nil: the default queue alone
	qusage  map[string]store.UserUsage
	weights map[string]float64 // users' fair-share weights (missing: 1)
	// holders: for each input (repo@digest) of a queued task, the nodes
	// that hold all its blobs already.
	holders map[string]map[string]bool
}

// plan is a pass's outcome: the placements, and the tasks that fit no node
// (candidates for preemption), in the order they were considered.
type planned struct {
	placements []store.Placement
	unplaced   []store.QueuedTask
	queues     map[string]*queueState
}

// queueState is one queue during a pass.
type queueState struct {
	q      store.Queue
	held   store.Resources // what its placed tasks hold, with this pass's
	guar   float64         // guaranteed share: weight over the sum of weights
	levels [][]store.QueuedTask
	level  int
	owners ownerHeap
	score  float64 // share held per unit of weight
}

// share is a dominant share of the cluster: the largest of the CPU, memory
// and GPU fractions of r.
func (v *view) share(r store.Resources) float64 {
	s := max(ratio(r.CPU, v.total.CPU), ratio(r.Memory, v.total.Memory))
	if v.total.GPUs > 0 {
		s = max(s, float64(r.GPUs)/float64(v.total.GPUs))
	}
	return s
}

// shareSlack absorbs rounding when a share is compared with a guarantee.
const shareSlack = 1e-9

// plan assigns queued tasks to nodes.
//
// Between queues: the next task always comes from the queue whose dominant
// share held, divided by its weight, is smallest (weighted DRF), so queues
// that all want more than they have converge to their weights' split. A
// queue without Borrow never holds more than its guaranteed share (its
// weight over the sum of all queues' weights); with Borrow it may use idle
// capacity beyond it, which preemption takes back when a queue under its
// guarantee needs it. A queue's Limit bounds what it holds.
//
// Within a queue: higher priorities first; within a priority level, users
// by dominant resource fairness (their share over their weight, smallest
// first; ties to the earlier submission). A task that would take its user
// over their quota, or fits no node, is skipped and later ones may still be
// placed (backfill). Each task goes to the matching node with the most free
// capacity (spread) or, in a queue that packs, the least that fits.
func plan(v *view) planned {
	queues := v.queues
	if len(queues) == 0 {
		queues = []store.Queue{{Name: store.DefaultQueue, Weight: 1, Borrow: true}}
	}
	var sum float64
	for _, q := range queues {
		sum += q.Weight
	}
	states := map[string]*queueState{}
	for _, q := range queues {
		states[q.Name] = &queueState{q: q, held: v.qusage[q.Name].Allocated, guar: q.Weight / sum}
	}
	byQueue := map[string][]store.QueuedTask{}
	for _, t := range v.queued {
		name := t.Queue
		if name == "" {
			name = store.DefaultQueue
		}
		if states[name] == nil { // a queue removed under its last tasks
			states[name] = &queueState{q: store.Queue{Name: name, Weight: 1, Borrow: true}, held: v.qusage[name].Allocated}
		}
		byQueue[name] = append(byQueue[name], t)
	}
	held := map[string]store.Resources{}
	for u, x := range v.usage {
		held[u] = x.Allocated
	}
	ownerShare := func(u string) float64 {
		w := v.weights[u]
		if w <= 0 {
			w = 1
		}
		return v.share(held[u]) / w
	}
	var qh queueHeap
	for name, tasks := range byQueue {
		qs := states[name]
		qs.levels = byPriority(tasks)
		qs.startLevel(ownerShare)
		qs.score = v.share(qs.held) / qs.q.Weight
		qh = append(qh, qs)
	}
	heap.Init(&qh)
	out := planned{queues: states}
	for qh.Len() > 0 {
		qs := qh[0]
		o := qs.owners[0]
		t := o.tasks[0]
		o.tasks, o.pos = o.tasks[1:], o.pos[1:]
		need := store.Resources{CPU: t.CPU, Memory: t.Memory, GPUs: t.GPUs}
		after := qs.held.Plus(need)
		switch {
		case !qs.q.Limit.Allows(after):
		case (!qs.q.Borrow || t.NoPreempt) && v.share(after) > qs.guar+shareSlack:
			// Not allowed beyond its guarantee (a job that may not be
			// preempted never borrows: it could not give it back).
		case !quotaAllows(v.quotas, o.name, held[o.name].Plus(need)):
		default:
			if n := bestNode(v.nodes, need, t.Constraints, qs.q.Placement == store.PlacePack, v.inputsHeld(t)); n != nil {
				n.free = n.free.Minus(need)
				held[o.name] = held[o.name].Plus(need)
				qs.held = after
				qs.score = v.share(qs.held) / qs.q.Weight
				o.share = ownerShare(o.name)
				out.placements = append(out.placements, store.Placement{JobID: t.JobID, Task: t.Task, Node: n.name})
			} else {
				out.unplaced = append(out.unplaced, t)
			}
		}
		if len(o.tasks) == 0 {
			heap.Pop(&qs.owners)
		} else {
			heap.Fix(&qs.owners, 0)
		}
		if qs.owners.Len() == 0 {
			qs.level++
			qs.startLevel(ownerShare)
		}
		if qs.owners.Len() == 0 {
			heap.Pop(&qh)
		} else {
			heap.Fix(&qh, 0)
		}
	}
	return out
}

// startLevel fills the owner heap with the users of the current priority
// level (none past the last level).
func (qs *queueState) startLevel(ownerShare func(string) float64) {
	qs.owners = qs.owners[:0]
	if qs.level >= len(qs.levels) {
		return
	}
	per := map[string]*ownerQueue{}
	for pos, t := range qs.levels[qs.level] {
		o, ok := per[t.Owner]
		if !ok {
			o = &ownerQueue{name: t.Owner, share: ownerShare(t.Owner)}
			per[t.Owner] = o
			qs.owners = append(qs.owners, o)
		}
		o.tasks = append(o.tasks, t)
		o.pos = append(o.pos, pos)
	}
	heap.Init(&qs.owners)
}

func quotaAllows(quotas map[string]store.Resources, user string, r store.Resources) bool {
	q, ok := quotas[user]
	return !ok || q.Allows(r)
}

// bestNode is the node matching constraints with room for need that holds
// the most of the task's inputs (held; nil: no inputs) and, among those,
// the most free capacity by dominant share (or, packing, the least), or
// nil.
func bestNode(nodes []*nodeFree, need store.Resources, constraints map[string]string, pack bool, held func(node string) int) *nodeFree {
	var best *nodeFree
	bestScore, bestHeld := 0.0, 0
	for _, n := range nodes {
		if !n.free.Holds(need) || !store.LabelsMatch(n.labels, constraints) {
			continue
		}
		h := 0
		if held != nil {
			h = held(n.name)
		}
		score := min(ratio(n.free.CPU, n.cap.CPU), ratio(n.free.Memory, n.cap.Memory))
		switch {
		case best == nil || h > bestHeld:
		case h < bestHeld:
			continue
		case (!pack && score > bestScore) || (pack && score < bestScore):
		default:
			continue
		}
		best, bestScore, bestHeld = n, score, h
	}
	return best
}

// inputsHeld counts, per node, the task's inputs it holds already; nil
// for a task without inputs.
func (v *view) inputsHeld(t store.QueuedTask) func(node string) int {
	if len(t.Inputs) == 0 || len(v.holders) == 0 {
		return nil
	}
	return func(node string) int {
		n := 0
		for _, in := range t.Inputs {
			if v.holders[in.Repo+"@"+in.Digest][node] {
				n++
			}
		}
		return n
	}
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

// queueHeap orders queues by share held per weight, then by name.
type queueHeap []*queueState

func (h queueHeap) Len() int { return len(h) }
func (h queueHeap) Less(i, j int) bool {
	if h[i].score != h[j].score {
		return h[i].score < h[j].score
	}
	return h[i].q.Name < h[j].q.Name
}
func (h queueHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *queueHeap) Push(x any)   { *h = append(*h, x.(*queueState)) }
func (h *queueHeap) Pop() any {
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

// byPriority splits tasks (sorted by priority, highest first) into levels.
func byPriority(q []store.QueuedTask) [][]store.QueuedTask {
	sort.SliceStable(q, func(i, j int) bool { return q[i].Priority > q[j].Priority })
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
