package store

import (
	"errors"
	"testing"
)

// runTo places every queued task of the store on n1 and ends each with the
// exit code fail gives it (0: success).
func (f *fsm) runTo(job string, fail func(task, attempt int) int) {
	f.t.Helper()
	q, err := f.st.Queued(100000)
	if err != nil {
		f.t.Fatal(err)
	}
	f.placeAll("n1")
	for _, qt := range q {
		if qt.JobID != job {
			continue
		}
		tk, err := f.st.Task(job, qt.Task)
		if err != nil {
			f.t.Fatal(err)
		}
		f.end(job, qt.Task, tk.Attempts, fail(qt.Task, tk.Attempts), ReasonExited)
	}
}

func TestRerunFailedTasks(t *testing.T) {
	f := newFSM(t)
	f.node("n1", 64000)
	f.submit("j1", "alice", JobSpec{Image: "x", Array: 6, CPU: 100})
	failOnce := map[int]bool{1: true, 4: true}
	f.runTo("j1", func(task, attempt int) int {
		if failOnce[task] && attempt == 1 {
			return 3
		}
		return 0
	})
	j := f.job("j1")
	if j.State != StateFailed || j.Counts[StateFailed] != 2 || j.Ended.IsZero() {
		t.Fatalf("before the rerun: %s %v", j.State, j.Counts)
	}
	res := f.must(CmdRerunTasks, RerunTasks{JobID: "j1", Failed: true, Actor: "alice"}).(*RerunResult)
	if len(res.Tasks) != 2 || res.Tasks[0] != 1 || res.Tasks[1] != 4 {
		t.Fatalf("rerun tasks %v, want [1 4]", res.Tasks)
	}
	j = f.job("j1")
	if j.State != StateRunning || !j.Ended.IsZero() || j.Counts[StateQueued] != 2 || j.Counts[StateSucceeded] != 4 {
		t.Fatalf("after the rerun: %s ended %v %v", j.State, j.Ended, j.Counts)
	}
	if counts, _ := f.st.CountJobs(); counts[StateRunning] != 1 || counts[StateFailed] != 0 {
		t.Fatalf("job state index after the rerun: %v", counts)
	}
	f.runTo("j1", func(task, attempt int) int { return 0 })
	j = f.job("j1")
	if j.State != StateSucceeded || j.Counts[StateSucceeded] != 6 {
		t.Fatalf("after the rerun ran: %s %v", j.State, j.Counts)
	}
	total := 0
	for i := 0; i < 6; i++ {
		atts, _ := f.st.Attempts("j1", i)
		total += len(atts)
		tk, _ := f.st.Task("j1", i)
		if failOnce[i] && (len(atts) != 2 || atts[0].State != StateFailed || tk.Reruns != 1) {
			t.Fatalf("task %d: attempts %+v reruns %d", i, atts, tk.Reruns)
		}
	}
	if total != 8 {
		t.Fatalf("%d attempts on record, want 8 (6 + 2 reruns)", total)
	}
}

func TestRerunGivesANewRetryBudget(t *testing.T) {
	f := newFSM(t)
	f.node("n1", 64000)
	f.submit("j1", "alice", JobSpec{Image: "x", Array: 1, CPU: 100, Retries: 1})
	f.runTo("j1", func(int, int) int { return 1 })
	f.runTo("j1", func(int, int) int { return 1 })
	if j := f.job("j1"); j.State != StateFailed {
		t.Fatalf("after two failures with one retry: %s", j.State)
	}
	f.must(CmdRerunTasks, RerunTasks{JobID: "j1", Tasks: []int{0}, Actor: "alice"})
	f.runTo("j1", func(int, int) int { return 1 })
	if tk, _ := f.st.Task("j1", 0); tk.State != StateQueued || tk.Attempts != 3 {
		t.Fatalf("the rerun's first failure should be retried: %+v", tk)
	}
	f.runTo("j1", func(int, int) int { return 0 })
	if j := f.job("j1"); j.State != StateSucceeded {
		t.Fatalf("after the retry: %s", j.State)
	}
}

func TestRerunRefusals(t *testing.T) {
	f := newFSM(t)
	f.node("n1", 64000)
	f.submit("done", "alice", JobSpec{Image: "x", Array: 2, CPU: 100})
	f.runTo("done", func(task, _ int) int { return task })
	f.submit("live", "alice", JobSpec{Image: "x", Array: 1, CPU: 100})
	cases := []struct {
		name string
		cmd  RerunTasks
		code string
	}{
		{"a job still going", RerunTasks{JobID: "live", Failed: true, Actor: "alice"}, EConflict},
		{"another user's job", RerunTasks{JobID: "done", Failed: true, Actor: "bob"}, ENotFound},
		{"a job that does not exist", RerunTasks{JobID: "nope", Failed: true, Actor: "alice"}, ENotFound},
		{"a task the job does not have", RerunTasks{JobID: "done", Tasks: []int{2}, Actor: "alice"}, EInvalid},
		{"neither failed nor tasks", RerunTasks{JobID: "done", Actor: "alice"}, EInvalid},
		{"both failed and tasks", RerunTasks{JobID: "done", Failed: true, Tasks: []int{0}, Actor: "alice"}, EInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.do(CmdRerunTasks, tc.cmd)
			var se *Error
			if !errors.As(err, &se) || se.Code != tc.code {
				t.Fatalf("rerun: %v, want %s", err, tc.code)
			}
			if j := f.job("done"); j.State != StateFailed || j.Counts[StateFailed] != 1 {
				t.Fatalf("a refused rerun changed the job: %s %v", j.State, j.Counts)
			}
		})
	}
	f.runTo("live", func(int, int) int { return 0 })
	if _, err := f.do(CmdRerunTasks, RerunTasks{JobID: "live", Failed: true, Actor: "alice"}); ErrorCode(err) != EConflict {
		t.Fatalf("rerun of a job with no failed task: %v", err)
	}
}

// TestRerunHoldsDependentsAgain: a dependent released when its dependency
// ended waits again when the dependency is rerun, if it has not started;
// a job whose `after` dependency failed can be rerun only once that
// dependency is running again, and then waits for it.
func TestRerunHoldsDependentsAgain(t *testing.T) {
	f := newFSM(t)
	f.node("n1", 64000)
	f.submit("a", "alice", JobSpec{Image: "x", Array: 1, CPU: 100})
	f.submit("any", "alice", JobSpec{Image: "x", Array: 1, CPU: 100, AfterAny: []string{"a"}})
	f.submit("ok", "alice", JobSpec{Image: "x", Array: 1, CPU: 100, After: []string{"a"}})
	// Only a runs: the dependents are held.
	f.placeAll("n1")
	f.end("a", 0, 1, 1, ReasonExited)
	if d := f.job("any"); d.Held != 0 || d.State != StateQueued {
		t.Fatalf("after_any dependent after a failed: %+v", d)
	}
	if d := f.job("ok"); d.State != StateFailed {
		t.Fatalf("after dependent after a failed: %s", d.State)
	}
	if _, err := f.do(CmdRerunTasks, RerunTasks{JobID: "ok", Tasks: []int{0}, Actor: "alice"}); ErrorCode(err) != EConflict {
		t.Fatalf("rerun of a job whose dependency failed: %v", err)
	}
	f.must(CmdRerunTasks, RerunTasks{JobID: "a", Failed: true, Actor: "alice"})
	if d := f.job("any"); d.Held != 1 {
		t.Fatalf("the after_any dependent that had not started should wait again: %+v", d)
	}
	if q, _ := f.st.Queued(100); len(q) != 1 || q[0].JobID != "a" {
		t.Fatalf("queue while a runs again: %+v", q)
	}
	f.must(CmdRerunTasks, RerunTasks{JobID: "ok", Tasks: []int{0}, Actor: "alice"})
	if d := f.job("ok"); d.Held != 1 || d.State != StateQueued {
		t.Fatalf("rerun of ok while a runs again should wait for a: %+v", d)
	}
	f.placeAll("n1")
	f.end("a", 0, 2, 0, ReasonExited)
	if d := f.job("any"); d.Held != 0 {
		t.Fatalf("after_any dependent after a succeeded: %+v", d)
	}
	if d := f.job("ok"); d.Held != 0 || d.State != StateQueued {
		t.Fatalf("after dependent after a succeeded: %+v", d)
	}
	if q, _ := f.st.Queued(100); len(q) != 2 {
		t.Fatalf("both dependents should be queued now: %+v", q)
	}
}

// TestSubmitWithAKeyMakesOneJob: a submission sent again with the same
// idempotency key (after a timeout or an election) returns the job the key
// made; another user's key is theirs alone; a purge forgets the key.
func TestSubmitWithAKeyMakesOneJob(t *testing.T) {
	f := newFSM(t)
	spec := JobSpec{Image: "x"}
	spec.Defaults()
	first := f.must(CmdSubmitJob, SubmitJob{ID: "j1", Owner: "alice", Spec: spec, Key: "k1"}).(*Job)
	again := f.must(CmdSubmitJob, SubmitJob{ID: "j2", Owner: "alice", Spec: spec, Key: "k1"}).(*Job)
	if first.ID != "j1" || again.ID != "j1" {
		t.Fatalf("a repeated key made %s then %s", first.ID, again.ID)
	}
	if bob := f.must(CmdSubmitJob, SubmitJob{ID: "j3", Owner: "bob", Spec: spec, Key: "k1"}).(*Job); bob.ID != "j3" {
		t.Fatalf("bob's submission with alice's key returned %s", bob.ID)
	}
	if jobs, _, _ := f.st.ListJobs(JobFilter{Owner: "alice"}); len(jobs) != 1 {
		t.Fatalf("alice has %d jobs", len(jobs))
	}
}

// TestJobsEndedCountsEachEnding: the counter of ended jobs moves once per
// job that reaches a final state, by that state, and again when a job run
// again ends again.
func TestJobsEndedCountsEachEnding(t *testing.T) {
	f := newFSM(t)
	f.node("n1", 64000)
	want := map[string]uint64{StateSucceeded: 0, StateFailed: 0, StateCancelled: 0}
	check := func(when string) {
		t.Helper()
		got := f.st.JobsEnded()
		for st, n := range want {
			if got[st] != n {
				t.Fatalf("%s: JobsEnded %v, want %v", when, got, want)
			}
		}
	}
	check("nothing ended")
	// runTo places every queued task: each job is submitted when it runs.
	f.submit("ok", "alice", JobSpec{Image: "x", Array: 3, CPU: 100})
	check("nothing ended")
	f.runTo("ok", func(int, int) int { return 0 })
	want[StateSucceeded] = 1
	check("one job succeeded")
	f.submit("bad", "alice", JobSpec{Image: "x", Array: 2, CPU: 100})
	f.runTo("bad", func(task, attempt int) int {
		if task == 1 && attempt == 1 {
			return 2
		}
		return 0
	})
	want[StateFailed] = 1
	check("one job failed")
	f.submit("gone", "alice", JobSpec{Image: "x", Array: 1, CPU: 100})
	f.must(CmdCancelJob, CancelJob{ID: "gone", Actor: "alice"})
	if j := f.job("gone"); j.State != StateCancelled {
		t.Fatalf("cancelled job is %s", j.State)
	}
	want[StateCancelled] = 1
	check("one job cancelled")
	f.must(CmdRerunTasks, RerunTasks{JobID: "bad", Failed: true, Actor: "alice"})
	check("a job running again has not ended again")
	f.runTo("bad", func(int, int) int { return 0 })
	want[StateSucceeded] = 2
	check("the rerun job succeeded")
}
