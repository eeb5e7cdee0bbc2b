package scheduler

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"gantry/store"
)

// sim is a cluster in memory for the policy tests: nodes with capacity, the
// tasks running on them, and queues that always have more tasks waiting.
type sim struct {
	nodes   []*nodeFree
	queues  []store.Queue
	weights map[string]float64
	running []simTask
	seq     int
}

type simTask struct {
	job, queue, owner, node string
	task, priority          int
	res                     store.Resources
	since                   time.Time
	preempting, noPreempt   bool
}

func (s *sim) view(queued []store.QueuedTask) *view {
	v := &view{queued: queued, queues: s.queues, weights: s.weights,
		usage: map[string]store.UserUsage{}, qusage: map[string]store.UserUsage{}}
	free := map[string]store.Resources{}
	for _, n := range s.nodes {
		free[n.name] = n.cap
		v.total = v.total.Plus(n.cap)
	}
	for _, t := range s.running {
		free[t.node] = free[t.node].Minus(t.res)
		u := v.usage[t.owner]
		u.Allocated = u.Allocated.Plus(t.res)
		v.usage[t.owner] = u
		q := v.qusage[orDefault(t.queue)]
		q.Allocated = q.Allocated.Plus(t.res)
		v.qusage[orDefault(t.queue)] = q
	}
	for _, n := range s.nodes {
		v.nodes = append(v.nodes, &nodeFree{name: n.name, free: free[n.name], cap: n.cap, labels: n.labels})
	}
	return v
}

// apply runs a plan's placements, checking that no node goes over capacity.
func (s *sim) apply(t *testing.T, p planned, queued []store.QueuedTask, at time.Time) {
	t.Helper()
	byKey := map[string]store.QueuedTask{}
	for _, q := range queued {
		byKey[q.JobID+"/"+strconv.Itoa(q.Task)] = q
	}
	for _, pl := range p.placements {
		q := byKey[pl.JobID+"/"+strconv.Itoa(pl.Task)]
		s.running = append(s.running, simTask{job: q.JobID, task: q.Task, queue: q.Queue, owner: q.Owner, node: pl.Node,
			priority: q.Priority, res: store.Resources{CPU: q.CPU, Memory: q.Memory, GPUs: q.GPUs}, since: at, noPreempt: q.NoPreempt})
	}
	used := map[string]store.Resources{}
	for _, r := range s.running {
		used[r.node] = used[r.node].Plus(r.res)
	}
	for _, n := range s.nodes {
		if !n.cap.Holds(used[n.name]) {
			t.Fatalf("node %s over capacity: %+v of %+v", n.name, used[n.name], n.cap)
		}
	}
}

func (s *sim) active() []running {
	out := make([]running, len(s.running))
	for i, r := range s.running {
		out[i] = running{key: store.Victim{JobID: r.job, Task: r.task, N: 1}, node: r.node, queue: r.queue,
			priority: r.priority, res: r.res, since: r.since, preempting: r.preempting, noPreempt: r.noPreempt}
	}
	return out
}

// backlog is n waiting tasks of one job.
func (s *sim) backlog(queue, owner string, prio, n int, cpu int64) []store.QueuedTask {
	s.seq++
	job := fmt.Sprintf("%s-%s-%d", queue, owner, s.seq)
	out := make([]store.QueuedTask, n)
	for i := range out {
		out[i] = store.QueuedTask{JobID: job, Task: i, Owner: owner, Queue: queue, Priority: prio, CPU: cpu, Memory: 1 << 20}
	}
	return out
}

func slots(n int, cpu int64) []*nodeFree {
	var out []*nodeFree
	for i := 0; i < n; i++ {
		c := store.Resources{CPU: cpu, Memory: 64 << 30}
		out = append(out, &nodeFree{name: fmt.Sprintf("n%02d", i), free: c, cap: c})
	}
	return out
}

// heldBy sums the CPU the running tasks of each key (queue or owner) hold.
func (s *sim) heldBy(key func(simTask) string) map[string]int64 {
	out := map[string]int64{}
	for _, r := range s.running {
		out[key(r)] += r.res.CPU
	}
	return out
}

// churn ends a random fraction of the running tasks and refills the
// cluster from saturated backlogs, many times, as a busy cluster does.
func (s *sim) churn(t *testing.T, rng *rand.Rand, rounds int, refill func() []store.QueuedTask) {
	at := time.Unix(0, 0)
	for r := 0; r < rounds; r++ {
		at = at.Add(time.Second)
		q := refill()
		s.apply(t, plan(s.view(q)), q, at)
		keep := s.running[:0]
		for _, x := range s.running {
			if rng.IntN(4) != 0 {
				keep = append(keep, x)
			}
		}
		s.running = keep
	}
	q := refill()
	s.apply(t, plan(s.view(q)), q, at)
}

func TestQueuesWithWeightsThreeToOneSplitASaturatedCluster(t *testing.T) {
	s := &sim{nodes: slots(4, 10000), queues: []store.Queue{
		{Name: "default", Weight: 1, Borrow: true},
		{Name: "a", Weight: 3, Borrow: true},
		{Name: "b", Weight: 1, Borrow: true},
	}}
	rng := rand.New(rand.NewPCG(1, 2))
	s.churn(t, rng, 200, func() []store.QueuedTask {
		return append(s.backlog("a", "alice", 0, 40, 500), s.backlog("b", "bob", 0, 40, 500)...)
	})
	held := s.heldBy(func(r simTask) string { return r.queue })
	total := float64(held["a"] + held["b"])
	if total != 40000 {
		t.Fatalf("the cluster is not full: %v", held)
	}
	if a := float64(held["a"]) / total; math.Abs(a-0.75) > 0.02 {
		t.Fatalf("queue a holds %.3f of the cluster, b %.3f: want 0.75/0.25", a, 1-a)
	}
}

func TestAQueueWithoutBorrowStaysWithinItsGuarantee(t *testing.T) {
	s := &sim{nodes: slots(2, 10000), queues: []store.Queue{
		{Name: "default", Weight: 1, Borrow: true},
		{Name: "small", Weight: 1},
	}}
	q := s.backlog("small", "alice", 0, 100, 1000)
	s.apply(t, plan(s.view(q)), q, time.Unix(0, 0))
	if got := s.heldBy(func(r simTask) string { return r.queue })["small"]; got != 10000 {
		t.Fatalf("queue small holds %d millicores, want its guaranteed half of 20000 and not more, though the rest is idle", got)
	}
	s.running = nil
	s.queues[1].Borrow = true
	s.apply(t, plan(s.view(q)), q, time.Unix(0, 0))
	if got := s.heldBy(func(r simTask) string { return r.queue })["small"]; got != 20000 {
		t.Fatalf("queue small with borrow holds %d millicores, want the whole idle cluster", got)
	}
}

func TestAQueueLimitBoundsWhatItHolds(t *testing.T) {
	s := &sim{nodes: slots(2, 10000), queues: []store.Queue{
		{Name: "default", Weight: 1, Borrow: true},
		{Name: "capped", Weight: 5, Borrow: true, Limit: store.Resources{CPU: 3000}},
	}}
	q := s.backlog("capped", "alice", 0, 100, 1000)
	s.apply(t, plan(s.view(q)), q, time.Unix(0, 0))
	if got := s.heldBy(func(r simTask) string { return r.queue })["capped"]; got != 3000 {
		t.Fatalf("queue capped holds %d millicores, want its limit 3000", got)
	}
}

func TestUserWeightsChangeTheFairSplitWithinAQueue(t *testing.T) {
	s := &sim{nodes: slots(2, 10000), weights: map[string]float64{"alice": 3}}
	rng := rand.New(rand.NewPCG(3, 4))
	s.churn(t, rng, 200, func() []store.QueuedTask {
		return append(s.backlog("default", "alice", 0, 40, 500), s.backlog("default", "bob", 0, 40, 500)...)
	})
	held := s.heldBy(func(r simTask) string { return r.owner })
	if a := float64(held["alice"]) / float64(held["alice"]+held["bob"]); math.Abs(a-0.75) > 0.03 {
		t.Fatalf("alice (weight 3) holds %.3f, bob (weight 1) %.3f: want 0.75/0.25", a, 1-a)
	}
}

func TestPackFillsOneNodeBeforeTheNext(t *testing.T) {
	s := &sim{nodes: slots(3, 4000), queues: []store.Queue{{Name: "default", Weight: 1, Borrow: true, Placement: store.PlacePack}}}
	q := s.backlog("default", "u", 0, 4, 1000)
	s.apply(t, plan(s.view(q)), q, time.Unix(0, 0))
	per := s.heldBy(func(r simTask) string { return r.node })
	if len(per) != 1 {
		t.Fatalf("packing spread tasks over %v, want one node", per)
	}
	s.running = nil
	s.queues[0].Placement = store.PlaceSpread
	s.apply(t, plan(s.view(q)), q, time.Unix(0, 0))
	if per := s.heldBy(func(r simTask) string { return r.node }); len(per) != 3 {
		t.Fatalf("spreading used %v, want all three nodes", per)
	}
}

func TestAHigherPriorityTaskPreemptsTheYoungestLowerOne(t *testing.T) {
	s := &sim{nodes: slots(1, 4000)}
	old := s.backlog("default", "alice", 0, 2, 1000)
	s.apply(t, plan(s.view(old)), old, time.Unix(100, 0))
	young := s.backlog("default", "alice", 0, 2, 1000)
	s.apply(t, plan(s.view(young)), young, time.Unix(200, 0))
	urgent := s.backlog("default", "bob", 5, 1, 2000)
	v := s.view(urgent)
	p := plan(v)
	if len(p.placements) != 0 || len(p.unplaced) != 1 {
		t.Fatalf("plan %+v, want the urgent task waiting", p)
	}
	vs := victims(v, p, s.active(), time.Unix(300, 0))
	if len(vs) != 2 || vs[0].JobID != young[0].JobID || vs[1].JobID != young[0].JobID {
		t.Fatalf("victims %+v, want the two youngest tasks (%s)", vs, young[0].JobID)
	}
	if vs[0].For != urgent[0].JobID+"/0" {
		t.Fatalf("victim is for %q, want %s/0", vs[0].For, urgent[0].JobID)
	}
}

func TestAnEqualPriorityTaskIsNeverPreempted(t *testing.T) {
	s := &sim{nodes: slots(1, 2000)}
	first := s.backlog("default", "alice", 3, 2, 1000)
	s.apply(t, plan(s.view(first)), first, time.Unix(100, 0))
	for _, prio := range []int{3, 2, -1} {
		waiting := s.backlog("default", "bob", prio, 1, 1000)
		v := s.view(waiting)
		if vs := victims(v, plan(v), s.active(), time.Unix(200, 0)); len(vs) != 0 {
			t.Fatalf("a priority %d task preempted %+v of priority 3", prio, vs)
		}
	}
}

func TestNoPreemptAndStoppingTasksAreNotVictimsAgain(t *testing.T) {
	s := &sim{nodes: slots(1, 2000)}
	low := s.backlog("default", "alice", 0, 2, 1000)
	low[0].NoPreempt = true
	s.apply(t, plan(s.view(low)), low, time.Unix(100, 0))
	urgent := s.backlog("default", "bob", 9, 1, 1000)
	v := s.view(urgent)
	vs := victims(v, plan(v), s.active(), time.Unix(200, 0))
	if len(vs) != 1 || vs[0].JobID != low[1].JobID || vs[0].Task != 1 {
		t.Fatalf("victims %+v, want only task 1 (task 0's job opted out)", vs)
	}
	// While that victim stops, the next pass waits for its room.
	for i := range s.running {
		if s.running[i].task == 1 {
			s.running[i].preempting = true
		}
	}
	v = s.view(urgent)
	if vs := victims(v, plan(v), s.active(), time.Unix(201, 0)); len(vs) != 0 {
		t.Fatalf("victims %+v while the room is on its way, want none", vs)
	}
}

func TestAQueueUnderItsGuaranteeReclaimsWhatAnotherBorrowed(t *testing.T) {
	s := &sim{nodes: slots(1, 4000), queues: []store.Queue{
		{Name: "default", Weight: 1},
		{Name: "lender", Weight: 1},
		{Name: "borrower", Weight: 2, Borrow: true},
	}}
	// The borrower's guarantee is half; it took the whole idle cluster.
	b := s.backlog("borrower", "bob", 5, 4, 1000)
	s.apply(t, plan(s.view(b)), b, time.Unix(100, 0))
	l := s.backlog("lender", "alice", 0, 4, 1000)
	v := s.view(l)
	p := plan(v)
	vs := victims(v, p, s.active(), time.Unix(200, 0))
	// The lender may take back its quarter (one task) of lower priority
	// than the borrower's, and no more: the borrower keeps its half.
	if len(vs) != 1 {
		t.Fatalf("victims %+v, want one: what the lender is guaranteed", vs)
	}
	for i := range s.running {
		if s.running[i].job == vs[0].JobID && s.running[i].task == vs[0].Task {
			s.running = append(s.running[:i], s.running[i+1:]...)
			break
		}
	}
	v = s.view(l)
	p = plan(v)
	s.apply(t, p, l, time.Unix(300, 0))
	if vs := victims(s.view(l), plan(s.view(l)), s.active(), time.Unix(300, 0)); len(vs) != 0 {
		t.Fatalf("victims %+v once the lender holds its guarantee, want none", vs)
	}
	held := s.heldBy(func(r simTask) string { return r.queue })
	if held["lender"] != 1000 || held["borrower"] != 3000 {
		t.Fatalf("held %v, want lender 1000 and borrower 3000", held)
	}
}

// TestPolicyProperties plans random clusters and job mixes and checks what
// must always hold: no node over capacity (sim.apply), no preemption of a
// task of the same queue with equal or higher priority, no victim of
// another queue unless that queue holds more than its guarantee and the
// preemptor's queue stays within its own, no victim that opted out.
func TestPolicyProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for round := 0; round < 300; round++ {
		s := &sim{nodes: slots(1+rng.IntN(5), int64(1000*(1+rng.IntN(8))))}
		nq := 1 + rng.IntN(3)
		for i := 0; i < nq; i++ {
			name := "default"
			if i > 0 {
				name = fmt.Sprintf("q%d", i)
			}
			s.queues = append(s.queues, store.Queue{Name: name, Weight: float64(1 + rng.IntN(4)), Borrow: rng.IntN(2) == 0})
		}
		mix := func() []store.QueuedTask {
			var q []store.QueuedTask
			for j := 0; j < 1+rng.IntN(4); j++ {
				b := s.backlog(s.queues[rng.IntN(nq)].Name, fmt.Sprintf("u%d", rng.IntN(3)), rng.IntN(4), 1+rng.IntN(6), int64(250*(1+rng.IntN(8))))
				if rng.IntN(5) == 0 {
					for k := range b {
						b[k].NoPreempt = true
					}
				}
				q = append(q, b...)
			}
			return q
		}
		first := mix()
		s.apply(t, plan(s.view(first)), first, time.Unix(100, 0))
		waiting := mix()
		v := s.view(waiting)
		p := plan(v)
		guar, heldBefore := map[string]float64{}, map[string]store.Resources{}
		for q, st := range p.queues {
			guar[q], heldBefore[q] = st.guar, st.held // with this pass's placements
		}
		vs := victims(v, p, s.active(), time.Unix(200, 0))
		byKey := map[string]simTask{}
		for _, r := range s.running {
			byKey[r.job+"/"+strconv.Itoa(r.task)] = r
		}
		wait := map[string]store.QueuedTask{}
		for _, w := range waiting {
			wait[w.JobID+"/"+strconv.Itoa(w.Task)] = w
		}
		for _, x := range vs {
			victim, pre := byKey[x.JobID+"/"+strconv.Itoa(x.Task)], wait[x.For]
			switch {
			case victim.noPreempt:
				t.Fatalf("round %d: preempted %+v, which opted out", round, victim)
			case orDefault(victim.queue) == orDefault(pre.Queue) && victim.priority >= pre.Priority:
				t.Fatalf("round %d: %+v (priority %d) preempted %+v of the same queue with priority %d", round, pre, pre.Priority, victim, victim.priority)
			case orDefault(victim.queue) != orDefault(pre.Queue) && v.share(heldBefore[orDefault(victim.queue)]) <= guar[orDefault(victim.queue)]+shareSlack:
				t.Fatalf("round %d: preempted %+v of queue %s, which did not hold more than its guarantee", round, victim, victim.queue)
			}
		}
	}
}

// TestWeightsAreHonouredWithinBounds: random weights for two or three
// borrowing queues, every one saturated, on random clusters with churn:
// each queue's share of what is held ends within one task (plus 3%) of its
// weight's share.
func TestWeightsAreHonouredWithinBounds(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for round := 0; round < 20; round++ {
		s := &sim{nodes: slots(2+rng.IntN(4), 8000)}
		nq := 2 + rng.IntN(2)
		var sum float64
		for i := 0; i < nq; i++ {
			w := float64(1 + rng.IntN(4))
			s.queues = append(s.queues, store.Queue{Name: fmt.Sprintf("q%d", i), Weight: w, Borrow: true})
			sum += w
		}
		s.churn(t, rng, 150, func() []store.QueuedTask {
			var q []store.QueuedTask
			for _, qu := range s.queues {
				q = append(q, s.backlog(qu.Name, "u", 0, 64, 500)...)
			}
			return q
		})
		held := s.heldBy(func(r simTask) string { return r.queue })
		var total float64
		for _, v := range held {
			total += float64(v)
		}
		for _, qu := range s.queues {
			got, want := float64(held[qu.Name])/total, qu.Weight/sum
			if math.Abs(got-want) > 500/total+0.03 {
				t.Fatalf("round %d: queue %s (weight %g of %g) holds %.3f, want %.3f", round, qu.Name, qu.Weight, sum, got, want)
			}
		}
	}
}

// TestGPUsFitByFreeDevices: a node's free GPUs are its free devices, so a
// task needing two fits only where two are free.
func TestGPUsFitByFreeDevices(t *testing.T) {
	c := store.Resources{CPU: 8000, Memory: 8 << 30, GPUs: 4}
	nodes := []*nodeFree{
		{name: "one-free", free: store.Resources{CPU: 8000, Memory: 8 << 30, GPUs: 1}, cap: c},
		{name: "two-free", free: store.Resources{CPU: 8000, Memory: 8 << 30, GPUs: 2}, cap: c},
	}
	var q []store.QueuedTask
	for i := 0; i < 3; i++ {
		q = append(q, store.QueuedTask{JobID: "gpu", Task: i, Owner: "u", CPU: 100, Memory: 1 << 20, GPUs: 2})
	}
	p := plan(&view{queued: q, nodes: nodes, total: store.Resources{CPU: 16000, Memory: 16 << 30, GPUs: 8}})
	if len(p.placements) != 1 || p.placements[0].Node != "two-free" || len(p.unplaced) != 2 {
		t.Fatalf("placements %+v unplaced %d: want one task on two-free, two waiting", p.placements, len(p.unplaced))
	}
}
