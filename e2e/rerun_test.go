package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"gantry/gantrytest"
	"gantry/wire"
)

// TestRetryFailedTasks: in a 50-task array five tasks fail once (chosen by
// index, on their first attempt); `gantry job retry --failed` runs exactly
// those five again in the same job, which ends succeeded with 55 attempts
// on record and the first attempts' logs kept.
func TestRetryFailedTasks(t *testing.T) {
	t.Parallel()
	n := gantrytest.Start(t)
	c := n.Client()
	ctx := context.Background()
	failing := map[int]bool{3: true, 11: true, 24: true, 37: true, 49: true}
	j := submit(t, c, wire.JobSpec{Name: "rerun", Image: "gantry/toolbox", Command: []string{"fail-tasks", "3,11,24,37,49", "4"},
		Array: 50, CPU: 100, Memory: 32 << 20})
	if j = waitJob(t, c, j.ID, 5*time.Minute); j.State != wire.StateFailed || j.Counts[wire.StateFailed] != 5 {
		t.Fatalf("first run: %s %v, want failed with 5 failed tasks", j.State, j.Counts)
	}
	out, errOut, code := n.Gantry(t, "job", "retry", j.ID, "--failed")
	if code != 0 || !strings.Contains(errOut, "running 5 task(s) again: 3, 11, 24, 37, 49") {
		t.Fatalf("gantry job retry --failed: exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	j, err := c.Job(ctx, j.ID)
	if err != nil || j.State != wire.StateSucceeded || j.Counts[wire.StateSucceeded] != 50 {
		t.Fatalf("after the retry: %+v %v", j, err)
	}
	tasks, err := c.Tasks(ctx, j.ID)
	if err != nil || len(tasks) != 50 {
		t.Fatalf("tasks %d %v", len(tasks), err)
	}
	attempts := 0
	for _, tk := range tasks {
		attempts += tk.Attempts
		want := 1
		if failing[tk.Index] {
			want = 2
		}
		if tk.Attempts != want || tk.State != wire.StateSucceeded {
			t.Errorf("task %d: %d attempts, %s; want %d, succeeded", tk.Index, tk.Attempts, tk.State, want)
		}
		if failing[tk.Index] && tk.Reruns != 1 {
			t.Errorf("task %d: reruns %d", tk.Index, tk.Reruns)
		}
	}
	if attempts != 55 {
		t.Fatalf("%d attempts on record, want 55", attempts)
	}
	rc, _, err := c.Logs(ctx, j.ID, 24, 1, false)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4096)
	k, _ := rc.Read(b)
	rc.Close()
	if !strings.Contains(string(b[:k]), "failing with exit code 4") {
		t.Fatalf("the first attempt's log of task 24 is gone: %q", b[:k])
	}
	// Nothing failed now: a second retry is refused with one line.
	if _, errOut, code := n.Gantry(t, "job", "retry", j.ID, "--failed"); code == 0 || !strings.Contains(errOut, "has no failed task") {
		t.Fatalf("a retry with nothing failed: exit %d, %s", code, errOut)
	}
}
