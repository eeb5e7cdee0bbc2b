package store_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"gantry/store"
)

// TestTaskCountsAndJobAttempts: a task that fails once and is retried
// counts two starts and one finish; JobAttempts lists every attempt of the
// job in task order from the task asked for.
func TestTaskCountsAndJobAttempts(t *testing.T) {
	st, err := store.Open(t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	d := store.NewDirect(st)
	ctx := context.Background()
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(store.CmdUpsertNode.Propose(ctx, d, store.UpsertNode{Node: store.Node{Name: "n1", Addr: "a", Capacity: store.Resources{CPU: 4000, Memory: 8 << 30}}}))
	spec := store.JobSpec{Image: "gantry/toolbox", Command: []string{"exit", "1"}, Array: 3, Retries: 1, CPU: 100, Memory: 32 << 20}
	spec.Defaults()
	const job = "01COUNTS000000000000000000"
	must(store.CmdSubmitJob.Propose(ctx, d, store.SubmitJob{ID: job, Owner: "alice", Spec: spec}))
	run := func(task, n, code int) {
		t.Helper()
		now := time.Now()
		must(store.CmdPlace.Propose(ctx, d, store.Place{Placements: []store.Placement{{JobID: job, Task: task, Node: "n1"}}}))
		must(store.CmdAttemptStarted.Propose(ctx, d, store.AttemptStarted{JobID: job, Task: task, N: n, Container: "c", At: now}))
		must(store.CmdAttemptEnded.Propose(ctx, d, store.AttemptEnded{JobID: job, Task: task, N: n, Container: "c", ExitCode: code, Reason: store.ReasonExited, Ended: now}))
	}
	run(0, 1, 1) // retried
	run(0, 2, 0)
	run(1, 1, 0)
	started, finished := st.TaskCounts()
	if started != 3 || finished != 2 {
		t.Fatalf("TaskCounts = %d started, %d finished; want 3, 2", started, finished)
	}
	var got [][2]int
	if err := st.JobAttempts(job, 0, func(a store.Attempt) bool { got = append(got, [2]int{a.Task, a.N}); return true }); err != nil {
		t.Fatal(err)
	}
	if want := [][2]int{{0, 1}, {0, 2}, {1, 1}}; len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("JobAttempts from 0 = %v, want %v", got, want)
	}
	got = nil
	_ = st.JobAttempts(job, 1, func(a store.Attempt) bool { got = append(got, [2]int{a.Task, a.N}); return true })
	if len(got) != 1 || got[0] != [2]int{1, 1} {
		t.Fatalf("JobAttempts from 1 = %v, want [[1 1]]", got)
	}
}
