package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gantry/gantrytest"
	"gantry/wire"
)

// previousRelease is the build the upgrade test starts from: Gantry 0.9.0
// as CI last passed it (stop 23), before this release changed stored
// records (job.submit v5 and v6, attempt.ended v2, the task's output).
const previousRelease = "92e1c545843f91c611583e8e76db34ee2224a910"

// TestUpgradeFromThePreviousRelease: a node of the previous release holds
// a user, a finished array job with its logs, a dataset and a schedule;
// restarted on this build over the same data directory, all of it is
// there as it was, the user signs in with her password, and a new job
// reads the old dataset and keeps an output (what only this build does).
func TestUpgradeFromThePreviousRelease(t *testing.T) {
	gantrytest.RequireDocker(t)
	root, err := gantrytest.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	has := exec.Command("git", "-C", root, "cat-file", "-e", previousRelease+"^{commit}").Run() == nil
	gantrytest.Require(t, has, "the repository's history (commit "+previousRelease[:12]+", the previous release) is needed to build it")
	old := gantrytest.BuildAt(t, previousRelease)

	n := gantrytest.Start(t, gantrytest.Options{Binary: old})
	alice, pw := n.CreateUser(t, "alice")
	must := func(args ...string) string {
		t.Helper()
		out, errOut, code := n.GantryAs(t, alice.Token, args...)
		if code != 0 {
			t.Fatalf("gantry %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
		}
		return strings.TrimSpace(out)
	}
	job := submit(t, alice, wire.JobSpec{Name: "before", Image: "gantry/toolbox", Command: []string{"echo", "from the old release"}, Array: 3, CPU: 100, Memory: 32 << 20})
	if j := waitJob(t, alice, job.ID, 90*time.Second); j.State != wire.StateSucceeded {
		t.Fatalf("the old release's job ended %s", j.State)
	}
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "a.txt"), []byte("a dataset of the old release\n"), 0o644)
	must("data", "push", src, "old:v1")
	sched, err := alice.CreateSchedule(t.Context(), "nightly", "0 3 * * *", wire.JobSpec{Image: "gantry/toolbox", Command: []string{"true"}}, false)
	if err != nil {
		t.Fatal(err)
	}

	n.Stop()
	n.SetBinary("")
	n.Restart(t)

	if got := must("version"); !strings.Contains(got, "gantry") {
		t.Logf("version: %s", got)
	}
	j, err := alice.Job(t.Context(), job.ID)
	if err != nil || j.State != wire.StateSucceeded || j.Counts[wire.StateSucceeded] != 3 || j.Spec.Name != "before" {
		t.Fatalf("the old job after the upgrade: %+v %v", j, err)
	}
	if got := logOf(t, alice, job.ID, 2); got != "from the old release\n" {
		t.Errorf("task 2's log after the upgrade: %q", got)
	}
	if s, err := alice.Schedule(t.Context(), sched.ID); err != nil || s.Cron != "0 3 * * *" {
		t.Errorf("the schedule after the upgrade: %+v %v", s, err)
	}
	if _, err := n.ClientAs("").Login(t.Context(), "alice", pw, "test"); err != nil {
		t.Errorf("alice's password after the upgrade: %v", err)
	}
	dst := t.TempDir()
	must("data", "pull", "old:v1", dst)
	if b, _ := os.ReadFile(filepath.Join(dst, "a.txt")); string(b) != "a dataset of the old release\n" {
		t.Errorf("the old dataset pulled after the upgrade: %q", b)
	}
	// What only this build does, on the old data: an output, from the old input.
	id := must("run", "-d", "--input", "old:v1=/in", "--output", "/out", "gantry/toolbox", "--", "task-output", "/out")
	must("job", "wait", id)
	if out := must("job", "output", id, filepath.Join(t.TempDir(), "o")); !strings.Contains(out, "downloaded the output of 1 of 1 tasks") {
		t.Errorf("job output after the upgrade: %s", out)
	}
}
