package store

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// queuedOf lists the queued (placeable) task indexes of job.
func (f *fsm) queuedOf(job string) []int {
	f.t.Helper()
	q, err := f.st.Queued(100000)
	if err != nil {
		f.t.Fatal(err)
	}
	var out []int
	for _, t := range q {
		if t.JobID == job {
			out = append(out, t.Task)
		}
	}
	slices.Sort(out)
	return out
}

// runTask places task i of job on n1 and ends its latest attempt with code.
func (f *fsm) runTask(job string, i, code int) {
	f.t.Helper()
	if r := f.must(CmdPlace, Place{Placements: []Placement{{JobID: job, Task: i, Node: "n1"}}}).(*PlaceResult); r.Accepted != 1 {
		f.t.Fatalf("task %s/%d was not placeable", job, i)
	}
	tk, err := f.st.Task(job, i)
	if err != nil {
		f.t.Fatal(err)
	}
	f.end(job, i, tk.Attempts, code, ReasonExited)
}

// runJob runs every task of a single-task job with code.
func (f *fsm) runJob(job string, code int) { f.t.Helper(); f.runTask(job, 0, code) }

func (f *fsm) task(job string, i int) *Task {
	f.t.Helper()
	tk, err := f.st.Task(job, i)
	if err != nil {
		f.t.Fatal(err)
	}
	return tk
}

func deps(kind string, ids ...string) []Dep {
	var out []Dep
	for _, id := range ids {
		out = append(out, Dep{Job: id, Kind: kind})
	}
	return out
}

// TestJobLevelDependencyKinds: each kind releases or fails its dependent as
// its dependency ends, whether it ends before or after the submission.
func TestJobLevelDependencyKinds(t *testing.T) {
	cases := []struct {
		kind     string
		depCode  int
		released bool
		message  string
	}{
		{DepAfterOK, 0, true, ""},
		{DepAfterOK, 1, false, "dependency a did not succeed"},
		{DepAfterNotOK, 1, true, ""},
		{DepAfterNotOK, 0, false, "dependency a succeeded (afternotok)"},
		{DepAfterAny, 0, true, ""},
		{DepAfterAny, 1, true, ""},
	}
	for _, tc := range cases {
		for _, when := range []string{"while it runs", "after it ended"} {
			t.Run(fmt.Sprintf("%s on a dependency exiting %d, submitted %s", tc.kind, tc.depCode, when), func(t *testing.T) {
				f := newFSM(t)
				f.node("n1", 64000)
				f.submit("a", "alice", JobSpec{Image: "x", CPU: 100})
				if when == "after it ended" {
					f.runJob("a", tc.depCode)
				}
				b := f.submit("b", "alice", JobSpec{Image: "x", CPU: 100, Deps: deps(tc.kind, "a")})
				if when == "while it runs" {
					if b.Held != 1 || len(f.queuedOf("b")) != 0 {
						t.Fatalf("the dependent is not held: %+v", b)
					}
					f.runJob("a", tc.depCode)
				}
				b = f.job("b")
				if tc.released {
					if b.State != StateQueued || b.Held != 0 || len(f.queuedOf("b")) != 1 {
						t.Fatalf("the dependent should be queued: %+v", b)
					}
					return
				}
				if b.State != StateFailed || b.Message != tc.message {
					t.Fatalf("the dependent should have failed with %q: %s %q", tc.message, b.State, b.Message)
				}
				if tk := f.task("b", 0); tk.Reason != ReasonDependency {
					t.Fatalf("task reason %q, want %s", tk.Reason, ReasonDependency)
				}
			})
		}
	}
}

// TestAFailureCascadesExactlyWhereItShould: a failure fails the afterok
// chain below it, and stops where an afternotok or afterany dependent is
// met by that failure.
func TestAFailureCascadesExactlyWhereItShould(t *testing.T) {
	f := newFSM(t)
	f.node("n1", 64000)
	f.submit("a", "alice", JobSpec{Image: "x", CPU: 100})
	f.submit("b", "alice", JobSpec{Image: "x", CPU: 100, Deps: deps(DepAfterOK, "a")})
	f.submit("c", "alice", JobSpec{Image: "x", CPU: 100, Deps: deps(DepAfterOK, "b")})
	f.submit("d", "alice", JobSpec{Image: "x", CPU: 100, Deps: deps(DepAfterNotOK, "c")}) // the cleanup
	f.submit("e", "alice", JobSpec{Image: "x", CPU: 100, Deps: deps(DepAfterAny, "b")})
	f.submit("g", "alice", JobSpec{Image: "x", CPU: 100, Deps: deps(DepAfterOK, "d")})
	f.submit("h", "alice", JobSpec{Image: "x", CPU: 100, Deps: deps(DepAfterNotOK, "g")})
	f.runJob("a", 3)
	want := map[string]string{"a": StateFailed, "b": StateFailed, "c": StateFailed, "d": StateQueued, "e": StateQueued, "g": StateQueued, "h": StateQueued}
	for id, st := range want {
		if j := f.job(id); j.State != st {
			t.Errorf("job %s: %s, want %s (%s)", id, j.State, st, j.Message)
		}
	}
	if got := f.job("c").Message; got != "dependency b did not succeed" {
		t.Errorf("c's message names its own dependency: %q", got)
	}
	if q := f.queuedOf("d"); len(q) != 1 {
		t.Error("the afternotok cleanup should be placeable")
	}
	if q := f.queuedOf("g"); len(q) != 0 {
		t.Error("g waits for d")
	}
	f.runJob("d", 0)
	f.runJob("g", 0)
	if j := f.job("h"); j.State != StateFailed || j.Message != "dependency g succeeded (afternotok)" {
		t.Fatalf("h after g succeeded: %s %q", j.State, j.Message)
	}
}

// TestManyDependencies: a job waits for each of 150 dependencies, and a
// list above the bound is refused naming it.
func TestManyDependencies(t *testing.T) {
	f := newFSM(t)
	f.node("n1", 1000000)
	var ids []string
	for i := range 150 {
		id := fmt.Sprintf("d%03d", i)
		f.submit(id, "alice", JobSpec{Image: "x", CPU: 100})
		ids = append(ids, id)
	}
	kinds := []string{DepAfterOK, DepAfterAny, DepAfterNotOK}
	var ds []Dep
	for i, id := range ids {
		ds = append(ds, Dep{Job: id, Kind: kinds[i%3]})
	}
	j := f.submit("big", "alice", JobSpec{Image: "x", CPU: 100, Deps: ds})
	if j.Held != 150 {
		t.Fatalf("held %d, want 150", j.Held)
	}
	for i, id := range ids {
		code := 0
		if kinds[i%3] == DepAfterNotOK {
			code = 1
		}
		f.runJob(id, code)
		if got, want := f.job("big").Held, 150-i-1; got != want {
			t.Fatalf("after %d dependencies ended, held %d", i+1, got)
		}
	}
	if q := f.queuedOf("big"); len(q) != 1 {
		t.Fatal("the job is not queued once every dependency was met")
	}

	tooMany := make([]Dep, MaxDependencies+1)
	for i := range tooMany {
		tooMany[i] = Dep{Job: fmt.Sprintf("x%d", i), Kind: DepAfterOK}
	}
	s := JobSpec{Image: "x", Deps: tooMany}
	s.Defaults()
	if err := s.Validate(); ErrorCode(err) != EInvalid || !strings.Contains(err.Error(), "at most 1000") {
		t.Fatalf("1001 dependencies: %v", err)
	}
	for _, bad := range []JobSpec{
		{Image: "x", Deps: []Dep{{Job: "a", Kind: "afterwards"}}},
		{Image: "x", Deps: []Dep{{Job: "a", Kind: DepAfterOK}, {Job: "a", Kind: DepAfterAny}}},
		{Image: "x", Deps: []Dep{{Job: "a/b", Kind: DepAfterOK}}},
		{Image: "x", After: []string{"a"}, Deps: []Dep{{Job: "a", Kind: DepNToN}}},
	} {
		bad.Defaults()
		if err := bad.Validate(); ErrorCode(err) != EInvalid || !strings.HasPrefix(err.Error(), "deps:") {
			t.Errorf("%+v: %v", bad.Deps, err)
		}
	}
}

// TestNToN: task i waits for task i of the other array; a failed task
// fails only its own counterpart, which cascades down an n-to-n chain;
// arrays of different sizes are refused.
func TestNToN(t *testing.T) {
	f := newFSM(t)
	f.node("n1", 64000)
	f.submit("a", "alice", JobSpec{Image: "x", CPU: 100, Array: 4})
	if _, err := f.do(CmdSubmitJob, SubmitJob{ID: "bad", Owner: "alice", Spec: JobSpec{Image: "x", CPU: 100, Array: 3, Deps: deps(DepNToN, "a")}}); ErrorCode(err) != EInvalid || !strings.Contains(err.Error(), "same size") {
		t.Fatalf("an n-to-n dependency on an array of another size: %v", err)
	}
	f.submit("b", "alice", JobSpec{Image: "x", CPU: 100, Array: 4, Deps: deps(DepNToN, "a")})
	f.submit("c", "alice", JobSpec{Image: "x", CPU: 100, Array: 4, Deps: deps(DepNToN, "b")})
	if q := f.queuedOf("b"); len(q) != 0 {
		t.Fatalf("b's tasks should wait: %v", q)
	}
	f.runTask("a", 2, 0)
	if q := f.queuedOf("b"); !slices.Equal(q, []int{2}) {
		t.Fatalf("after a/2 succeeded, b's placeable tasks: %v", q)
	}
	// A task still held is refused on apply even when proposed.
	if r := f.must(CmdPlace, Place{Placements: []Placement{{JobID: "b", Task: 1, Node: "n1"}}}).(*PlaceResult); r.Accepted != 0 {
		t.Fatal("a held task was placed")
	}
	f.runTask("a", 1, 1)
	if tk := f.task("b", 1); tk.State != StateFailed || tk.Reason != ReasonDependency {
		t.Fatalf("b/1 after a/1 failed: %+v", tk)
	}
	if tk := f.task("c", 1); tk.State != StateFailed || tk.Reason != ReasonDependency {
		t.Fatalf("c/1 after b/1 failed: %+v", tk)
	}
	if j := f.job("c"); !strings.Contains(j.Message, "dependency b task 1 did not succeed") {
		t.Fatalf("c's message: %q", j.Message)
	}
	for _, i := range []int{0, 3} {
		if tk := f.task("b", i); tk.State != StateQueued || tk.Held != 1 {
			t.Fatalf("b/%d should still wait: %+v", i, tk)
		}
	}
	f.runTask("b", 2, 0)
	f.runTask("c", 2, 0)
	f.runTask("a", 0, 0)
	f.runTask("a", 3, 0)
	f.runTask("b", 0, 0)
	f.runTask("b", 3, 0)
	f.runTask("c", 0, 0)
	f.runTask("c", 3, 0)
	for _, id := range []string{"a", "b", "c"} {
		if j := f.job(id); j.State != StateFailed || j.Counts[StateSucceeded] != 3 {
			t.Fatalf("job %s: %s %v", id, j.State, j.Counts)
		}
	}
	// Submitted after a ended: a/1's failure fails d/1 at once.
	d := f.submit("d", "alice", JobSpec{Image: "x", CPU: 100, Array: 4, Deps: deps(DepNToN, "a")})
	if d.Counts[StateFailed] != 1 || !slices.Equal(f.queuedOf("d"), []int{0, 2, 3}) {
		t.Fatalf("d submitted after a ended: %v, queued %v", d.Counts, f.queuedOf("d"))
	}
}

// TestSequential: task i waits for task i-1; a failure fails every task
// after it; an n-to-n dependent of a sequential job follows task by task.
func TestSequential(t *testing.T) {
	f := newFSM(t)
	f.node("n1", 64000)
	f.submit("s", "alice", JobSpec{Image: "x", CPU: 100, Array: 5, Sequential: true})
	f.submit("n", "alice", JobSpec{Image: "x", CPU: 100, Array: 5, Deps: deps(DepNToN, "s")})
	for i := 0; i < 3; i++ {
		if q := f.queuedOf("s"); !slices.Equal(q, []int{i}) {
			t.Fatalf("step %d: placeable tasks %v", i, q)
		}
		f.runTask("s", i, 0)
	}
	f.runTask("s", 3, 1)
	if tk := f.task("s", 4); tk.State != StateFailed || tk.Reason != ReasonDependency {
		t.Fatalf("s/4 after s/3 failed: %+v", tk)
	}
	if j := f.job("s"); j.State != StateFailed || j.Counts[StateSucceeded] != 3 {
		t.Fatalf("s: %s %v", j.State, j.Counts)
	}
	if q := f.queuedOf("n"); !slices.Equal(q, []int{0, 1, 2}) {
		t.Fatalf("n's placeable tasks: %v", q)
	}
	if j := f.job("n"); j.Counts[StateFailed] != 2 {
		t.Fatalf("n's tasks 3 and 4 should have failed: %v", j.Counts)
	}

	// A whole long chain fails in one walk, not one stack frame per task.
	f.submit("long", "alice", JobSpec{Image: "x", CPU: 100, Array: MaxArraySize, Sequential: true})
	f.runTask("long", 0, 1)
	if j := f.job("long"); j.State != StateFailed || j.Counts[StateFailed] != MaxArraySize {
		t.Fatalf("long: %s %v", j.State, j.Counts)
	}
}

// TestSequentialJobWithAFailedDependency: a job-level dependency failing
// fails every task of a sequential job once, with counts that still add up.
func TestSequentialJobWithAFailedDependency(t *testing.T) {
	f := newFSM(t)
	f.node("n1", 64000)
	f.submit("a", "alice", JobSpec{Image: "x", CPU: 100})
	f.submit("s", "alice", JobSpec{Image: "x", CPU: 100, Array: 4, Sequential: true, Deps: deps(DepAfterOK, "a")})
	f.runJob("a", 1)
	j := f.job("s")
	if j.State != StateFailed || j.Counts[StateFailed] != 4 || len(j.Counts) != 1 {
		t.Fatalf("s: %s %v", j.State, j.Counts)
	}
}

// TestCancelDependents: with Dependents, the waiting dependents are
// cancelled, transitively; without, each behaves as its kind says.
func TestCancelDependents(t *testing.T) {
	setup := func(t *testing.T) *fsm {
		f := newFSM(t)
		f.node("n1", 64000)
		f.submit("a", "alice", JobSpec{Image: "x", CPU: 100, Array: 2})
		f.submit("b", "alice", JobSpec{Image: "x", CPU: 100, Deps: deps(DepAfterOK, "a")})
		f.submit("c", "alice", JobSpec{Image: "x", CPU: 100, Deps: deps(DepAfterOK, "b")})
		f.submit("d", "alice", JobSpec{Image: "x", CPU: 100, Deps: deps(DepAfterAny, "a")})
		f.submit("e", "alice", JobSpec{Image: "x", CPU: 100, Deps: deps(DepAfterNotOK, "c")})
		f.submit("n", "alice", JobSpec{Image: "x", CPU: 100, Array: 2, Deps: deps(DepNToN, "a")})
		f.submit("other", "alice", JobSpec{Image: "x", CPU: 100})
		return f
	}
	t.Run("with dependents every waiting dependent is cancelled", func(t *testing.T) {
		f := setup(t)
		f.must(CmdCancelJob, CancelJob{ID: "a", Actor: "alice", Dependents: true})
		for _, id := range []string{"a", "b", "c", "d", "e", "n"} {
			j := f.job(id)
			if j.State != StateCancelled {
				t.Errorf("job %s: %s (%s)", id, j.State, j.Message)
			}
			if tk := f.task(id, 0); tk.Reason != ReasonCancelled {
				t.Errorf("task %s/0: reason %q", id, tk.Reason)
			}
		}
		if j := f.job("c"); j.Message != "cancelled by alice with its dependency a" {
			t.Errorf("c's message: %q", j.Message)
		}
		if j := f.job("other"); j.State != StateQueued {
			t.Errorf("an unrelated job: %s", j.State)
		}
	})
	t.Run("without, dependents follow their kind", func(t *testing.T) {
		f := setup(t)
		f.must(CmdCancelJob, CancelJob{ID: "a", Actor: "alice"})
		want := map[string]string{"a": StateCancelled, "b": StateFailed, "c": StateFailed, "d": StateQueued, "e": StateQueued, "n": StateFailed}
		for id, st := range want {
			if j := f.job(id); j.State != st {
				t.Errorf("job %s: %s, want %s (%s)", id, j.State, st, j.Message)
			}
		}
		if tk := f.task("n", 1); tk.Reason != ReasonDependency {
			t.Errorf("n/1: %q", tk.Reason)
		}
	})
	t.Run("a dependent that has started is left to its kind", func(t *testing.T) {
		f := setup(t)
		f.runTask("a", 0, 0)
		f.runTask("n", 0, 0) // n has started
		f.must(CmdCancelJob, CancelJob{ID: "a", Actor: "alice", Dependents: true})
		if j := f.job("b"); j.State != StateCancelled {
			t.Errorf("b: %s", j.State)
		}
		if j := f.job("n"); j.State != StateFailed || j.Counts[StateSucceeded] != 1 {
			t.Errorf("n: %s %v", j.State, j.Counts)
		}
	})
}

// TestRerunAndPerTaskHolds: a rerun of an n-to-n dependency holds the
// dependent's same tasks again; a sequential job's failed tasks rerun in
// order; a rerun waits for an n-to-n dependency still going and refuses
// one that failed.
func TestRerunAndPerTaskHolds(t *testing.T) {
	f := newFSM(t)
	f.node("n1", 64000)
	f.submit("a", "alice", JobSpec{Image: "x", CPU: 100, Array: 2})
	f.submit("b", "alice", JobSpec{Image: "x", CPU: 100, Array: 2, Deps: deps(DepNToN, "a")})
	f.runTask("a", 0, 0)
	f.runTask("a", 1, 0)
	if q := f.queuedOf("b"); !slices.Equal(q, []int{0, 1}) {
		t.Fatalf("b: %v", q)
	}
	f.must(CmdRerunTasks, RerunTasks{JobID: "a", Tasks: []int{1}, Actor: "alice"})
	if q := f.queuedOf("b"); !slices.Equal(q, []int{0}) {
		t.Fatalf("b/1 should wait for a/1 again: %v", q)
	}
	f.runTask("a", 1, 1)
	if tk := f.task("b", 1); tk.State != StateFailed || tk.Reason != ReasonDependency {
		t.Fatalf("b/1 after a/1's rerun failed: %+v", tk)
	}
	f.runTask("b", 0, 0)
	if _, err := f.do(CmdRerunTasks, RerunTasks{JobID: "b", Tasks: []int{1}, Actor: "alice"}); ErrorCode(err) != EConflict {
		t.Fatalf("rerun of b/1 while a/1 failed: %v", err)
	}
	f.must(CmdRerunTasks, RerunTasks{JobID: "a", Tasks: []int{1}, Actor: "alice"})
	f.must(CmdRerunTasks, RerunTasks{JobID: "b", Tasks: []int{1}, Actor: "alice"})
	if tk := f.task("b", 1); tk.Held != 1 || len(f.queuedOf("b")) != 0 {
		t.Fatalf("b/1 rerun while a/1 runs again should wait: %+v", tk)
	}
	f.runTask("a", 1, 0)
	f.runTask("b", 1, 0)
	if j := f.job("b"); j.State != StateSucceeded {
		t.Fatalf("b: %s", j.State)
	}

	f.submit("s", "alice", JobSpec{Image: "x", CPU: 100, Array: 4, Sequential: true})
	f.runTask("s", 0, 0)
	f.runTask("s", 1, 1)
	if _, err := f.do(CmdRerunTasks, RerunTasks{JobID: "s", Tasks: []int{2}, Actor: "alice"}); ErrorCode(err) != EConflict {
		t.Fatalf("rerun of s/2 without s/1: %v", err)
	}
	f.must(CmdRerunTasks, RerunTasks{JobID: "s", Failed: true, Actor: "alice"})
	if q := f.queuedOf("s"); !slices.Equal(q, []int{1}) {
		t.Fatalf("after rerunning the failed tasks, placeable: %v", q)
	}
	f.runTask("s", 1, 0)
	f.runTask("s", 2, 0)
	f.runTask("s", 3, 0)
	if j := f.job("s"); j.State != StateSucceeded {
		t.Fatalf("s: %s %v", j.State, j.Counts)
	}
}

// TestGraphAndPurge: the graph shows both directions with kinds; a purge
// removes the purged job's edges on both sides.
func TestGraphAndPurge(t *testing.T) {
	f := newFSM(t)
	f.node("n1", 64000)
	f.submit("01A", "alice", JobSpec{Image: "x", CPU: 100})
	f.submit("01B", "alice", JobSpec{Image: "x", CPU: 100, Deps: deps(DepAfterOK, "01A")})
	f.submit("01C", "alice", JobSpec{Image: "x", CPU: 100, Deps: []Dep{{Job: "01A", Kind: DepAfterNotOK}, {Job: "01B", Kind: DepAfterAny}}})
	g, err := f.st.Graph("01B")
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Dependencies) != 1 || g.Dependencies[0].Dep != (Dep{Job: "01A", Kind: DepAfterOK}) || g.Dependencies[0].Job.State != StateQueued {
		t.Fatalf("dependencies: %+v", g.Dependencies)
	}
	if len(g.Dependents) != 1 || g.Dependents[0].Dep != (Dep{Job: "01C", Kind: DepAfterAny}) {
		t.Fatalf("dependents: %+v", g.Dependents)
	}
	f.runJob("01A", 0) // 01C fails (afternotok), 01B runs
	f.runJob("01B", 0)
	later := time.Now().Add(time.Hour)
	f.must(CmdPurgeJobs, PurgeJobs{IDs: []string{"01A", "01B", "01C"}, Before: later})
	for _, id := range []string{"01A", "01B", "01C"} {
		if left := keysOf(t, f.st, id); len(left) != 0 {
			t.Fatalf("keys left of %s: %v", id, left)
		}
	}
}

// TestPurgeOfADependentLeavesItsDependencyClean: purging only the dependent
// removes its edges under the dependency, which stays.
func TestPurgeOfADependentLeavesItsDependencyClean(t *testing.T) {
	f := newFSM(t)
	f.node("n1", 64000)
	f.submit("01A", "alice", JobSpec{Image: "x", CPU: 100})
	f.submit("01B", "alice", JobSpec{Image: "x", CPU: 100, Deps: deps(DepAfterNotOK, "01A")})
	f.submit("01C", "alice", JobSpec{Image: "x", CPU: 100, Deps: deps(DepNToN, "01A")})
	f.must(CmdCancelJob, CancelJob{ID: "01B", Actor: "alice"})
	f.must(CmdCancelJob, CancelJob{ID: "01C", Actor: "alice"})
	f.must(CmdPurgeJobs, PurgeJobs{IDs: []string{"01B", "01C"}, Before: time.Now().Add(time.Hour)})
	for _, k := range keysOf(t, f.st, "01A") {
		if strings.Contains(k, "01B") || strings.Contains(k, "01C") {
			t.Fatalf("key of a purged dependent left: %s", k)
		}
	}
	if g, err := f.st.Graph("01A"); err != nil || len(g.Dependents) != 0 {
		t.Fatalf("graph of 01A: %+v %v", g, err)
	}
}
