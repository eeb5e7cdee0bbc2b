//go:build bench

package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"testing"
	"time"

	"gantry/node/scheduler"
	"gantry/store"
)

// TestBenchSchedulingPolicy measures the scheduler's placements per second
// of its own time with the policies of the scheduling issue switched on
// (three weighted queues, all borrowing, one with a limit; two priority
// levels, the higher arriving once the cluster is full; per-user weights;
// preemption as a node runs it, looking for victims at most once a second
// while it finds none, and, second figure, on every pass, its worst case; a
// DAG of 1,000 dependency edges) against plain priority scheduling (one
// queue, one priority, no dependencies), for the same tasks, in one run.
//
// The nodes are SIMULATED: node records with capacity and no runner. A
// simulated runner ends attempts between passes (the oldest tenth each
// round, so the cluster stays full and high-priority work has to preempt),
// and its time is not counted: the figure is the scheduler's
// (reading the queue, planning, proposing and applying task.place through
// the real store, and choosing victims).
func TestBenchSchedulingPolicy(t *testing.T) {
	const (
		nodes   = 100
		nodeCPU = 32000 // 32 CPUs: 3,200 one-CPU slots in all
	)
	tasks := 60000
	if os.Getenv("QUICK") != "" {
		tasks = 12000
	}
	run := func(policy bool, preemptEvery time.Duration) (placed int, spent time.Duration, preempted int) {
		st, err := store.Open(t.TempDir(), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		ctx := context.Background()
		p := store.NewDirect(st)
		for i := 0; i < nodes; i++ {
			must(t, ignore(store.CmdUpsertNode.Propose(ctx, p, store.UpsertNode{Node: store.Node{
				Name: fmt.Sprintf("sim-%03d", i), State: store.NodeReady, Capacity: store.Resources{CPU: nodeCPU, Memory: 256 << 30}}})))
		}
		for _, u := range []string{"alice", "bob", "carol"} {
			must(t, ignore(store.CmdCreateUser.Propose(ctx, p, store.CreateUser{User: store.User{Name: u}})))
		}
		if policy {
			w := 3.0
			must(t, ignore(store.CmdUpdateUser.Propose(ctx, p, store.UpdateUser{Name: "alice", Weight: &w})))
			for _, q := range []store.Queue{
				{Name: "research", Weight: 3, Borrow: true},
				{Name: "teaching", Weight: 2, Borrow: true},
				{Name: "urgent", Weight: 1, Borrow: true, Limit: store.Resources{CPU: 600 * 1000}},
			} {
				must(t, ignore(store.CmdCreateQueue.Propose(ctx, p, store.CreateQueue{Queue: q})))
			}
		}
		seq := 0
		submit := func(owner, queue string, prio, array int, deps []store.Dep) string {
			seq++
			id := fmt.Sprintf("01JOB%021d", seq)
			spec := store.JobSpec{Image: "sim", CPU: 1000, Memory: 1 << 20, Array: array}
			if policy {
				spec.Queue, spec.Priority, spec.Deps = queue, prio, deps
			}
			spec.Defaults()
			must(t, ignore(store.CmdSubmitJob.Propose(ctx, p, store.SubmitJob{ID: id, Owner: owner, Spec: spec})))
			return id
		}
		// The DAG: 11 layers of 10 jobs, each job after every job of the
		// layer before (10 x 10 x 10 = 1,000 edges), 20 tasks each.
		var layer []string
		dagTasks := 0
		for l := 0; l < 11; l++ {
			var next []string
			for k := 0; k < 10; k++ {
				var deps []store.Dep
				for _, d := range layer {
					deps = append(deps, store.Dep{Job: d, Kind: store.DepAfterOK})
				}
				next = append(next, submit("carol", "research", 0, 20, deps))
				dagTasks += 20
			}
			layer = next
		}
		// The rest: big arrays in every queue at low priority, then, once
		// the cluster is full, urgent work at high priority.
		rest := tasks - dagTasks
		users := []string{"alice", "bob"}
		queues := []string{"research", "teaching", "urgent"}
		bulk := rest * 8 / 10
		for i := 0; bulk > 0; i++ {
			n := min(2000, bulk)
			submit(users[i%2], queues[i%2], 0, n, nil)
			bulk -= n
		}
		urgent := rest - rest*8/10
		s := scheduler.New(scheduler.Config{State: st, Proposer: p, PreemptEvery: preemptEvery,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		round := 0
		for placed < tasks {
			start := time.Now()
			n, err := s.Pass(ctx)
			spent += time.Since(start)
			if err != nil {
				t.Fatal(err)
			}
			placed += n
			round++
			if round > 100000 {
				t.Fatalf("stuck after %d of %d placements", placed, tasks)
			}
			if round == 2 && urgent > 0 {
				for urgent > 0 {
					n := min(500, urgent)
					submit("bob", queues[urgent/500%3], 10, n, nil)
					urgent -= n
				}
			}
			// The simulated runner: every preempted attempt stops, the
			// DAG's short tasks end, and the oldest tenth of the others (by
			// placement) end, all succeeding (the DAG's layers run only
			// after theirs succeeded): long tasks of equal length keep the
			// cluster full.
			active, err := st.Active()
			if err != nil {
				t.Fatal(err)
			}
			sort.SliceStable(active, func(i, j int) bool { return active[i].Attempt.Scheduled.Before(active[j].Attempt.Scheduled) })
			var ends [][]byte
			ending := len(active) / 10
			if ending == 0 {
				ending = len(active)
			}
			for i, a := range active {
				at := a.Attempt
				reason := store.ReasonExited
				switch {
				case at.Preempt:
					reason = store.ReasonPreempted
					preempted++
				case a.Job.Owner == "carol": // the DAG's tasks are short: they end every round
				case i >= ending:
					continue
				}
				b, err := store.EncodeCommand(store.CmdAttemptEnded.Type(), time.Now(), store.AttemptEnded{JobID: at.JobID, Task: at.Task, N: at.N,
					Reason: reason, ExitCode: 0, Ended: time.Now()})
				must(t, err)
				ends = append(ends, b)
			}
			// The runners' reports arrive together and Raft hands them to
			// the store in batches (its BatchingFSM), as here.
			for len(ends) > 0 {
				k := min(len(ends), 256)
				for _, r := range p.ApplyBatch(ends[:k]) {
					if err, ok := r.(error); ok {
						t.Fatal(err)
					}
				}
				ends = ends[k:]
			}
			if len(active) == 0 && n == 0 {
				t.Fatalf("nothing runs and nothing was placed: %d of %d placed", placed, tasks)
			}
		}
		t.Logf("policy %v preemptEvery %v: %d placements in %d passes, %s", policy, preemptEvery, placed, round, spent)
		return placed, spent, preempted
	}
	// Alternate, best of three each, so one noisy moment does not decide.
	type figure struct {
		rate      float64
		preempted int
	}
	best := func(f *figure, policy bool, every time.Duration) {
		n, d, pre := run(policy, every)
		if r := float64(n) / d.Seconds(); r > f.rate {
			*f = figure{r, pre}
		}
	}
	var plain, policy, everyPass figure
	for i := 0; i < 3; i++ {
		best(&plain, false, 0)
		best(&policy, true, 0)
		best(&everyPass, true, time.Nanosecond)
	}
	report(t, "scheduling policy (SIMULATED nodes: 100 x 32 CPUs, %d tasks): plain priority %.0f placements/s; queues+weights+limits+preemption+1,000-edge DAG %.0f placements/s (%d preempted): %.2fx (goal >= 0.8x); the same looking for victims on every pass %.0f placements/s (%d preempted): %.2fx",
		tasks, plain.rate, policy.rate, policy.preempted, policy.rate/plain.rate, everyPass.rate, everyPass.preempted, everyPass.rate/plain.rate)
	if everyPass.preempted == 0 {
		t.Fatalf("no task was preempted: the benchmark did not exercise preemption")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func ignore[T any](_ T, err error) error { return err }
