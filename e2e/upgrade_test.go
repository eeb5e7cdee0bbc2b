package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gantry/gantrytest"
	"gantry/wire"
)

// previousRelease is the build the upgrade test starts from: Gantry 0.9.0
// as CI last passed it (stop 23), before this release changed stored
// records (job.submit v5 and v6, attempt.ended v2, the task's output).
const previousRelease = "92e1c545843f91c611583e8e76db34ee2224a910"

// previousBinary builds the previous release from its commit (Go's build
// cache makes the second build of a run quick).
func previousBinary(t *testing.T) string {
	t.Helper()
	root, err := gantrytest.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	has := exec.Command("git", "-C", root, "cat-file", "-e", previousRelease+"^{commit}").Run() == nil
	gantrytest.Require(t, has, "the repository's history (commit "+previousRelease[:12]+", the previous release) is needed to build it")
	return gantrytest.BuildAt(t, previousRelease)
}

// TestUpgradeFromThePreviousRelease: a node of the previous release holds
// a user, a finished array job with its logs, a dataset and a schedule;
// restarted on this build over the same data directory, all of it is
// there as it was, the user signs in with her password, and a new job
// reads the old dataset and keeps an output (what only this build does).
func TestUpgradeFromThePreviousRelease(t *testing.T) {
	gantrytest.RequireDocker(t)
	old := previousBinary(t)

	n := gantrytest.Start(t, gantrytest.Options{Binary: old})
	alice, pw := n.CreateUser(t, "alice")
	must := func(args ...string) string {
		t.Helper()
		return strings.TrimSpace(n.MustGantry(t, alice.Token, args...))
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

// TestRollingUpgrade: a 3-node cluster of the previous release is upgraded
// one node at a time while jobs are submitted to every node. While any
// node still runs the old release, an upgraded node writes within what
// that node applies (a plain job is written at the old version) and
// refuses what it cannot (a job with an output, naming the old node);
// once all run this build, an output is accepted. At the end every
// acknowledged job is on every node, ended, in the same state on each;
// most succeed (a task placed on a node while it restarts may fail its
// image pull; those are logged).
func TestRollingUpgrade(t *testing.T) {
	gantrytest.RequireDocker(t)
	old := previousBinary(t)
	c := gantrytest.StartCluster(t, 3, gantrytest.Options{Binary: old})
	ctx := t.Context()

	var mu sync.Mutex
	acked := map[string]bool{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, n := range c.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < 15; k++ { // 45 jobs over the upgrade: what 2 cores run in time
				select {
				case <-stop:
					return
				case <-time.After(time.Second): // pacing the load, not waiting for a state
				}
				key := fmt.Sprintf("u%d-%d", i, k)
				for try := 0; try < 40; try++ { // the node may be restarting: the same key again
					j, err := n.Client().SubmitKeyed(ctx, wire.JobSpec{Name: key, Image: "gantry/toolbox", Command: []string{"true"}, CPU: 50, Memory: 16 << 20, Retries: 2}, key)
					if err == nil {
						mu.Lock()
						acked[j.ID] = true
						mu.Unlock()
						break
					}
					select {
					case <-stop:
						return
					case <-time.After(250 * time.Millisecond): // backoff before the retry
					}
				}
			}
		}()
	}

	// Ahead of the load in the queue.
	withOutput := wire.JobSpec{Image: "gantry/toolbox", Command: []string{"task-output", "/out"}, CPU: 50, Memory: 16 << 20, Priority: 100, Output: &wire.Output{Path: "/out"}}
	for i, n := range c.Nodes {
		n.Stop()
		// The others elect a leader before the node comes back, as an
		// operator restarting nodes one by one would wait for. (A node
		// restarted within the election timeout can win the election with
		// the newest log and then wait for its state for 30 s: found by
		// this test, open.)
		c.Leader(t, 60*time.Second)
		n.SetBinary("")
		n.Restart(t)
		c.Leader(t, 60*time.Second)
		if i < len(c.Nodes)-1 {
			// Old nodes remain: the upgraded one refuses an output, naming one.
			gantrytest.Eventually(t, 30*time.Second, func() bool {
				_, err := n.Client().Submit(ctx, withOutput)
				return err != nil && strings.Contains(err.Error(), "the cluster is being upgraded: node node")
			}, "%s to refuse an output while old nodes remain", n.Name)
		}
	}
	// Every node runs this build: an output is accepted and kept.
	var j *wire.Job
	gantrytest.Eventually(t, 30*time.Second, func() bool {
		var err error
		j, err = c.Nodes[0].Client().Submit(ctx, withOutput)
		return err == nil
	}, "an output to be accepted once every node is upgraded")
	if j = waitJob(t, c.Nodes[0].Client(), j.ID, 3*time.Minute); j.State != wire.StateSucceeded {
		t.Fatalf("the job with an output after the upgrade: %s", j.State)
	}
	close(stop)
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	if len(acked) < 30 {
		t.Fatalf("only %d jobs acknowledged during the upgrade", len(acked))
	}
	// Every acknowledged job is on every node, ended, in the same state on
	// each (what the gate is for: no member skipped a write).
	states := map[string]string{}
	for _, n := range c.Nodes {
		var bad []string
		for deadline := time.Now().Add(3 * time.Minute); ; {
			bad = bad[:0]
			jobs, err := listAll(ctx, n)
			have := map[string]string{}
			for _, j := range jobs {
				have[j.ID] = j.State
			}
			for id := range acked {
				if st := have[id]; !wire.Terminal(st) || (states[id] != "" && states[id] != st) {
					bad = append(bad, id+"="+st)
				}
			}
			if err == nil && len(bad) == 0 {
				for id := range acked {
					states[id] = have[id]
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %s: %d of %d acknowledged jobs missing, not ended or in another state than on the other nodes (%v): %v", n.Name, len(bad), len(acked), err, bad)
			}
			time.Sleep(250 * time.Millisecond) // polling the condition above until its deadline
		}
	}
	// A task placed on a node while it restarts fails its pull and is
	// retried; one whose every attempt failed is logged with why (a
	// finding of this test, left in docs/benchmarks.md's note).
	failed := 0
	for id, st := range states {
		if st == wire.StateSucceeded {
			continue
		}
		failed++
		if d, err := c.Nodes[0].Client().Task(ctx, id, 0); err == nil {
			for _, a := range d.AttemptList {
				t.Logf("job %s attempt %d on %s: %s %s %q", id, a.N, a.Node, a.State, a.Reason, a.Message)
			}
		}
	}
	if failed > len(acked)/10 {
		t.Errorf("%d of %d jobs did not succeed during the upgrade", failed, len(acked))
	}
	t.Logf("rolling upgrade: %d jobs acknowledged while the nodes were upgraded one by one, all on every node in one state; %d did not succeed", len(acked), failed)
}
