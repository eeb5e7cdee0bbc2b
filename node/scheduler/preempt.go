package scheduler

import (
	"slices"
	"sort"
	"strconv"
	"time"

	"gantry/store"
)

// running is an active attempt as the preemption step sees it.
type running struct {
	key      store.Victim
	node     string
	queue    string
	priority int
	res      store.Resources
	since    time.Time // started, or placed if not yet started
	// preempting: already asked to stop; its resources are on their way
	// back to the node.
	preempting bool
	noPreempt  bool
}

// maxPreemptors bounds how many waiting tasks one pass finds victims for.
const maxPreemptors = 64

// victims chooses attempts to preempt so that tasks that fit no node can
// run. A waiting task may preempt, on one node matching its constraints:
//
//   - tasks of its own queue of strictly lower priority, and
//   - tasks of another queue that holds more than its guaranteed share
//     (it borrowed), while the waiting task's queue stays within its own:
//     borrowed capacity goes back to the queue it belongs to.
//
// Never a task of its own queue with equal or higher priority, never a job
// that opted out (no_preempt), never one already stopping. Resources of
// attempts already being preempted count as free (they are on their way), so
// a task waiting for them preempts nothing more. On each node the victims
// are taken lowest priority first, then youngest first, until the task
// fits; the node chosen is the one needing the fewest victims, then the
// least run time lost.
func victims(v *view, p planned, active []running, now time.Time) []store.Victim {
	if len(p.unplaced) == 0 || len(active) == 0 {
		return nil
	}
	type nodeRoom struct {
		n       *nodeFree
		pending store.Resources // freed by attempts already stopping
		cands   []*running
	}
	rooms := map[string]*nodeRoom{}
	for _, n := range v.nodes {
		rooms[n.name] = &nodeRoom{n: n}
	}
	for i := range active {
		a := &active[i]
		r := rooms[a.node]
		if r == nil {
			continue // node not ready or without room; its tasks cannot help
		}
		if a.preempting {
			r.pending = r.pending.Plus(a.res)
			continue
		}
		if !a.noPreempt {
			r.cands = append(r.cands, a)
		}
	}
	for _, r := range rooms {
		// Lowest priority first, then the youngest (least work lost).
		sort.Slice(r.cands, func(i, j int) bool {
			a, b := r.cands[i], r.cands[j]
			if a.priority != b.priority {
				return a.priority < b.priority
			}
			return a.since.After(b.since)
		})
	}
	qs := p.queues
	heldOf := func(q string) store.Resources {
		if s := qs[q]; s != nil {
			return s.held
		}
		return store.Resources{}
	}
	guarOf := func(q string) float64 {
		if s := qs[q]; s != nil {
			return s.guar
		}
		return 0
	}
	// The lowest priority each queue has running: a waiting task of that
	// queue at or below it can only reclaim borrowed capacity.
	lowest := map[string]int{}
	for i := range active {
		a := &active[i]
		if a.preempting || a.noPreempt {
			continue
		}
		q := orDefault(a.queue)
		if l, ok := lowest[q]; !ok || a.priority < l {
			lowest[q] = a.priority
		}
	}
	// Highest priority first (stable: within a priority, the order the
	// plan considered them), and only tasks that could have a victim
	// count against maxPreemptors.
	waiting := slices.Clone(p.unplaced)
	sort.SliceStable(waiting, func(i, j int) bool { return waiting[i].Priority > waiting[j].Priority })
	taken := map[store.Victim]bool{}
	var out []store.Victim
	tried := 0
	for _, t := range waiting {
		if tried == maxPreemptors {
			break
		}
		tq := orDefault(t.Queue)
		need := store.Resources{CPU: t.CPU, Memory: t.Memory, GPUs: t.GPUs}
		underGuarantee := v.share(heldOf(tq).Plus(need)) <= guarOf(tq)+shareSlack
		if l, ok := lowest[tq]; !underGuarantee && (!ok || l >= t.Priority) {
			continue // nothing it may preempt
		}
		tried++
		// What a victim's queue would hold after losing it, per queue.
		var (
			best     *nodeRoom
			bestSet  []*running
			bestLost time.Duration
		)
		for _, name := range sortedRooms(rooms) {
			r := rooms[name]
			if !store.LabelsMatch(r.n.labels, t.Constraints) || !r.n.cap.Holds(need) {
				continue
			}
			room := r.n.free.Plus(r.pending)
			if room.Holds(need) {
				best, bestSet = r, nil
				break // room is on its way: wait for it
			}
			var set []*running
			qheld := map[string]store.Resources{}
			for _, c := range r.cands {
				if taken[c.key] {
					continue
				}
				cq := orDefault(c.queue)
				switch {
				case cq == tq && c.priority < t.Priority:
				case cq != tq && underGuarantee:
					h, ok := qheld[cq]
					if !ok {
						h = heldOf(cq)
					}
					if v.share(h.Minus(c.res)) < guarOf(cq)-shareSlack {
						continue // would take that queue below its own guarantee
					}
					qheld[cq] = h.Minus(c.res)
				default:
					continue
				}
				set = append(set, c)
				room = room.Plus(c.res)
				if room.Holds(need) {
					break
				}
			}
			if !room.Holds(need) {
				continue
			}
			var lost time.Duration
			for _, c := range set {
				lost += now.Sub(c.since)
			}
			if best == nil || len(set) < len(bestSet) || len(set) == len(bestSet) && lost < bestLost {
				best, bestSet, bestLost = r, set, lost
			}
		}
		if best == nil {
			continue
		}
		// The room (free, stopping, victims) is this task's: later tasks
		// of the pass cannot count on it.
		room := best.n.free.Plus(best.pending)
		for _, c := range bestSet {
			room = room.Plus(c.res)
			taken[c.key] = true
			if s := qs[orDefault(c.queue)]; s != nil {
				s.held = s.held.Minus(c.res)
			}
			out = append(out, store.Victim{JobID: c.key.JobID, Task: c.key.Task, N: c.key.N, For: t.JobID + "/" + strconv.Itoa(t.Task)})
		}
		if s := qs[tq]; s != nil {
			s.held = s.held.Plus(need)
		}
		left := room.Minus(need)
		best.pending = store.Resources{}
		best.n.free = store.Resources{CPU: max(left.CPU, 0), Memory: max(left.Memory, 0), GPUs: max(left.GPUs, 0)}
	}
	return out
}

func sortedRooms[T any](m map[string]T) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func orDefault(q string) string {
	if q == "" {
		return store.DefaultQueue
	}
	return q
}
