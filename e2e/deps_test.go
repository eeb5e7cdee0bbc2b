package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"gantry/client"
	"gantry/gantrytest"
	"gantry/wire"
)

// dagJob is one job of the generated graph and what it should come to.
type dagJob struct {
	id    string
	fails bool // its own command exits 1
	deps  []wire.Dependency
	// want is the state the graph's rules give it; doomed: it never ran
	// (a dependency could not be met).
	want   string
	doomed bool
}

// attemptOf returns the only attempt of a single-task job's task i, or nil.
func attemptOf(t *testing.T, c *client.Client, id string, i int) (*wire.TaskDetail, *wire.Attempt) {
	t.Helper()
	td, err := c.Task(context.Background(), id, i)
	if err != nil {
		t.Fatalf("task %s/%d: %v", id, i, err)
	}
	if len(td.AttemptList) == 0 {
		return td, nil
	}
	return td, &td.AttemptList[len(td.AttemptList)-1]
}

// TestDependencyGraph runs, on one node, a 5-level graph of 50 jobs using
// every dependency kind, where some jobs fail, next to an n-to-n pair of
// arrays and a sequential array. From the attempts' start and end times it
// checks that no job started before a dependency ended, that a failure
// failed exactly the jobs the rules say (dependency_failed, never run) and
// no other, and that the arrays' tasks waited task by task.
func TestDependencyGraph(t *testing.T) {
	t.Parallel()
	n := gantrytest.Start(t)
	c := n.Client()
	ctx := context.Background()
	small := func(s wire.JobSpec) wire.JobSpec {
		s.Image, s.CPU, s.Memory = "gantry/toolbox", 100, 32<<20
		return s
	}

	// The graph: level 0 has no dependencies; each job of level L depends
	// on one to three jobs of earlier levels (at least one of level L-1),
	// the kinds taken in turn so each appears at every level.
	rng := rand.New(rand.NewPCG(14, 5))
	kinds := []string{wire.DepAfterOK, wire.DepAfterNotOK, wire.DepAfterAny, wire.DepNToN}
	var levels [][]*dagJob
	byID := map[string]*dagJob{}
	kindTurn := 0
	for l := 0; l < 5; l++ {
		var level []*dagJob
		for k := 0; k < 10; k++ {
			j := &dagJob{fails: rng.IntN(10) < 2}
			if l > 0 {
				picked := map[*dagJob]bool{}
				for len(picked) < 1+rng.IntN(3) {
					from := l - 1
					if len(picked) > 0 {
						from = rng.IntN(l)
					}
					d := levels[from][rng.IntN(10)]
					if picked[d] {
						continue
					}
					picked[d] = true
					j.deps = append(j.deps, wire.Dependency{Job: d.id, Kind: kinds[kindTurn%len(kinds)]})
					kindTurn++
				}
			}
			// What the rules say, from the dependencies' outcomes.
			for _, d := range j.deps {
				st := byID[d.Job].want
				switch d.Kind {
				case wire.DepAfterOK, wire.DepNToN:
					j.doomed = j.doomed || st != wire.StateSucceeded
				case wire.DepAfterNotOK:
					j.doomed = j.doomed || st == wire.StateSucceeded
				}
			}
			j.want = wire.StateSucceeded
			if j.doomed || j.fails {
				j.want = wire.StateFailed
			}
			cmd := []string{"true"}
			if j.fails {
				cmd = []string{"exit", "1"}
			}
			sj := submit(t, c, small(wire.JobSpec{Name: fmt.Sprintf("dag-%d-%d", l, k), Command: cmd, Deps: j.deps}))
			j.id = sj.ID
			byID[j.id] = j
			level = append(level, j)
		}
		levels = append(levels, level)
	}
	// The arrays, submitted meanwhile: b waits task by task for a, whose
	// task 2 fails; s runs its tasks one after another until task 2 fails.
	a := submit(t, c, small(wire.JobSpec{Name: "array-a", Array: 4, Command: []string{"fail-tasks", "2", "1"}}))
	b := submit(t, c, small(wire.JobSpec{Name: "array-b", Array: 4, Command: []string{"true"}, Deps: []wire.Dependency{{Job: a.ID, Kind: wire.DepNToN}}}))
	s := submit(t, c, small(wire.JobSpec{Name: "sequential", Array: 4, Sequential: true, Command: []string{"fail-tasks", "2", "1"}}))

	// The graph must exercise what it claims to.
	seen := map[string]bool{}
	doomedDeep, metNotOK := false, false
	for l, level := range levels {
		for _, j := range level {
			doomedDeep = doomedDeep || (l >= 3 && j.doomed)
			for _, d := range j.deps {
				seen[d.Kind] = true
				metNotOK = metNotOK || (d.Kind == wire.DepAfterNotOK && byID[d.Job].want == wire.StateFailed && !j.doomed)
			}
		}
	}
	if len(seen) != len(kinds) || !doomedDeep || !metNotOK {
		t.Fatalf("the generated graph does not exercise every rule: kinds %v, a cascade to level 3+ %v, an afternotok met %v", seen, doomedDeep, metNotOK)
	}

	for _, level := range levels {
		for _, j := range level {
			got := waitJob(t, c, j.id, 2*time.Minute)
			if got.State != j.want {
				t.Errorf("job %s (%s, deps %v): %s, want %s (%s)", j.id, got.Spec.Name, j.deps, got.State, j.want, got.Message)
			}
		}
	}
	for _, id := range []string{a.ID, b.ID, s.ID} {
		waitJob(t, c, id, 2*time.Minute)
	}
	if t.Failed() {
		return
	}

	// Every edge, from the attempts' times: a job that ran started after
	// each of its dependencies ended (the attempt's end for one that ran,
	// the job's end for one failed by its own dependencies).
	endOf := map[string]time.Time{}
	for id, j := range byID {
		td, at := attemptOf(t, c, id, 0)
		switch {
		case j.doomed:
			if at != nil || td.Reason != wire.ReasonDependency {
				t.Errorf("job %s should have failed without running (dependency_failed): reason %q, attempt %+v", id, td.Reason, at)
			}
			jj, err := c.Job(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			endOf[id] = jj.Ended
		case at == nil:
			t.Errorf("job %s never ran", id)
		default:
			endOf[id] = at.Ended
		}
	}
	edges := 0
	for id, j := range byID {
		if j.doomed {
			continue
		}
		_, at := attemptOf(t, c, id, 0)
		for _, d := range j.deps {
			edges++
			if at.Started.Before(endOf[d.Job]) {
				t.Errorf("job %s started at %s, before its %s dependency %s ended at %s", id, at.Started.Format(time.StampMicro), d.Kind, d.Job, endOf[d.Job].Format(time.StampMicro))
			}
		}
	}
	t.Logf("%d edges checked", edges)

	// n-to-n: b's task i started after a's task i ended; b's task 2 never ran.
	for i := 0; i < 4; i++ {
		_, aa := attemptOf(t, c, a.ID, i)
		bt, ba := attemptOf(t, c, b.ID, i)
		if i == 2 {
			if ba != nil || bt.State != wire.StateFailed || bt.Reason != wire.ReasonDependency {
				t.Errorf("b/2 after a/2 failed: %s %q %+v", bt.State, bt.Reason, ba)
			}
			continue
		}
		if ba == nil || bt.State != wire.StateSucceeded || ba.Started.Before(aa.Ended) {
			t.Errorf("b/%d should have run after a/%d ended at %s: %s %+v", i, i, aa.Ended, bt.State, ba)
		}
	}
	// Sequential: each task after the previous one; task 3 never ran.
	var prevEnd time.Time
	for i := 0; i < 4; i++ {
		st, sa := attemptOf(t, c, s.ID, i)
		if i == 3 {
			if sa != nil || st.Reason != wire.ReasonDependency {
				t.Errorf("s/3 after s/2 failed: %s %q %+v", st.State, st.Reason, sa)
			}
			continue
		}
		if sa == nil || sa.Started.Before(prevEnd) {
			t.Errorf("s/%d should have started after s/%d ended at %s: %+v", i, i-1, prevEnd, sa)
			continue
		}
		prevEnd = sa.Ended
	}

	// The graph around a job, as the CLI prints it.
	mid := levels[2][0]
	out, errOut, code := n.Gantry(t, "job", "deps", mid.id, "--output", "json")
	if code != 0 {
		t.Fatalf("gantry job deps: %d %s", code, errOut)
	}
	var g wire.JobGraph
	if err := json.Unmarshal([]byte(out), &g); err != nil {
		t.Fatalf("gantry job deps --output json: %v\n%s", err, out)
	}
	if len(g.Dependencies) != len(mid.deps) {
		t.Fatalf("deps of %s: %+v, want %v", mid.id, g.Dependencies, mid.deps)
	}
	for _, e := range g.Dependencies {
		if e.State != byID[e.Job].want {
			t.Errorf("deps shows %s %s, want %s", e.Job, e.State, byID[e.Job].want)
		}
	}
}
