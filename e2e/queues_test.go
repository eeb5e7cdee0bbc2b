package e2e

import (
	"context"
	"io"
	"math"
	"sort"
	"strings"
	"testing"
	"time"

	"gantry/client"
	"gantry/gantrytest"
	"gantry/wire"
)

// The node of these tests is this machine: its capacity is Docker's CPUs
// (2 here), so 250-millicore tasks give 8 slots.

// heldShares integrates, from attempt records, the CPU each key (of
// keyOf(job)) held between from and to: an attempt holds its CPU from its
// placement until it ends.
func heldShares(t *testing.T, c *client.Client, jobs []*wire.Job, keyOf func(*wire.Job) string, from, to time.Time) map[string]float64 {
	t.Helper()
	ctx := context.Background()
	out := map[string]float64{}
	for _, j := range jobs {
		for i := 0; i < j.Total; i++ {
			td, err := c.Task(ctx, j.ID, i)
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range td.AttemptList {
				s, e := a.Scheduled, a.Ended
				if e.IsZero() {
					e = to
				}
				if s.Before(from) {
					s = from
				}
				if e.After(to) {
					e = to
				}
				if e.After(s) {
					out[keyOf(j)] += float64(a.CPU) * e.Sub(s).Seconds()
				}
			}
		}
	}
	return out
}

// saturate drains the node, submits each spec, readies the node (so the
// first pass sees every backlog at once), waits until the first job of
// specs has no queued task left, and returns the jobs, the time the node
// came back and the time the backlog ran out.
func saturate(t *testing.T, n *gantrytest.Node, subs []func() *wire.Job) ([]*wire.Job, time.Time, time.Time) {
	t.Helper()
	ctx := context.Background()
	name := nodeName(t, n)
	if out, errOut, code := n.Gantry(t, "node", "drain", name); code != 0 {
		t.Fatalf("drain: %s%s", out, errOut)
	}
	var jobs []*wire.Job
	for _, s := range subs {
		jobs = append(jobs, s())
	}
	if out, errOut, code := n.Gantry(t, "node", "ready", name); code != 0 {
		t.Fatalf("ready: %s%s", out, errOut)
	}
	start := time.Now()
	c := n.Client()
	gantrytest.Eventually(t, 3*time.Minute, func() bool {
		j, err := c.Job(ctx, jobs[0].ID)
		return err == nil && j.Counts[wire.StateQueued] == 0
	}, "job %s never had all its tasks placed", jobs[0].ID)
	end := time.Now()
	for _, j := range jobs {
		if _, err := c.Cancel(ctx, j.ID); err != nil {
			t.Fatal(err)
		}
	}
	for _, j := range jobs {
		waitJob(t, c, j.ID, 2*time.Minute)
	}
	return jobs, start, end
}

func nodeName(t *testing.T, n *gantrytest.Node) string {
	t.Helper()
	nodes, err := n.Client().Nodes(context.Background())
	if err != nil || len(nodes) != 1 {
		t.Fatalf("nodes %+v %v", nodes, err)
	}
	return nodes[0].Name
}

// TestQueuesAndUserWeightsSplitASaturatedNode: two queues with weights 3:1,
// both with more work than fits, hold 75% and 25% of the node (from the
// attempt records, ± 5%); within one queue, users with weights 3:1 do too.
func TestQueuesAndUserWeightsSplitASaturatedNode(t *testing.T) {
	t.Parallel()
	n := gantrytest.Start(t)
	alice, _ := n.CreateUser(t, "alice")
	bob, _ := n.CreateUser(t, "bob")
	for _, args := range [][]string{
		{"queue", "create", "big", "--weight", "3", "--borrow"},
		{"queue", "create", "small", "--weight", "1", "--borrow"},
	} {
		if out, errOut, code := n.Gantry(t, args...); code != 0 {
			t.Fatalf("%v: %s%s", args, out, errOut)
		}
	}
	out, _, _ := n.Gantry(t, "queue", "ls")
	if !strings.Contains(out, "big") || !strings.Contains(out, "60%") || !strings.Contains(out, "20%") {
		t.Fatalf("queue ls does not show big's 60%% and small's 20%% guarantees (default weighs 1):\n%s", out)
	}
	task := func(queue string, array int) wire.JobSpec {
		return wire.JobSpec{Image: "gantry/toolbox", Command: []string{"sleep", "6"}, Array: array, CPU: 250, Memory: 32 << 20, Queue: queue}
	}
	check := func(what string, shares map[string]float64, a, b string) {
		t.Helper()
		got := shares[a] / (shares[a] + shares[b])
		t.Logf("%s: %s held %.3f of the CPU held, %s %.3f", what, a, got, b, 1-got)
		if math.Abs(got-0.75) > 0.05 {
			t.Fatalf("%s: %s held %.3f and %s %.3f of the node, want 0.75/0.25 ± 0.05", what, a, got, b, 1-got)
		}
	}

	t.Run("queues", func(t *testing.T) {
		queueOf := map[string]string{}
		jobs, start, end := saturate(t, n, []func() *wire.Job{
			func() *wire.Job { j := submit(t, alice, task("big", 24)); queueOf[j.ID] = "big"; return j },
			func() *wire.Job { j := submit(t, bob, task("small", 24)); queueOf[j.ID] = "small"; return j },
		})
		check("queues 3:1", heldShares(t, n.Client(), jobs, func(j *wire.Job) string { return queueOf[j.ID] }, start, end), "big", "small")
	})

	t.Run("user weights", func(t *testing.T) {
		if out, errOut, code := n.Gantry(t, "user", "weight", "alice", "3"); code != 0 || !strings.Contains(out, "alice has fair-share weight 3") {
			t.Fatalf("user weight: %s%s", out, errOut)
		}
		owner := map[string]string{}
		jobs, start, end := saturate(t, n, []func() *wire.Job{
			func() *wire.Job { j := submit(t, alice, task("", 24)); owner[j.ID] = "alice"; return j },
			func() *wire.Job { j := submit(t, bob, task("", 24)); owner[j.ID] = "bob"; return j },
		})
		check("users 3:1", heldShares(t, n.Client(), jobs, func(j *wire.Job) string { return owner[j.ID] }, start, end), "alice", "bob")
	})
}

// TestPreemption: a task that outranks running ones makes room by stopping
// them: SIGTERM, the queue's grace period (the task logs both), the attempt
// ends preempted and the task runs again later, without using a retry; an
// equal-priority task waits instead. A queue under its guarantee takes back
// what another queue borrowed.
func TestPreemption(t *testing.T) {
	t.Parallel()
	n := gantrytest.Start(t)
	ctx := context.Background()
	alice, _ := n.CreateUser(t, "alice")
	bob, _ := n.CreateUser(t, "bob")
	if out, errOut, code := n.Gantry(t, "queue", "update", "default", "--grace", "5s"); code != 0 {
		t.Fatalf("queue update: %s%s", out, errOut)
	}

	t.Run("priority", func(t *testing.T) {
		// Two 1-CPU tasks fill the node; each works 15 s, and on SIGTERM
		// takes 1 s to clean up.
		low := submit(t, alice, wire.JobSpec{Image: "gantry/toolbox", Command: []string{"graceful", "15", "1"}, Array: 2, CPU: 1000, Memory: 32 << 20})
		gantrytest.Eventually(t, time.Minute, func() bool {
			j, err := alice.Job(ctx, low.ID)
			return err == nil && j.Counts[wire.StateRunning] == 2
		}, "the low-priority tasks never ran")
		equal := submit(t, bob, wire.JobSpec{Image: "gantry/toolbox", Command: []string{"echo", "equal"}, CPU: 1000, Memory: 32 << 20})
		// The scheduler looks for victims at least once a second: over 3 s
		// it looks several times and must find none.
		deadline := time.Now().Add(3 * time.Second)
		for time.Now().Before(deadline) {
			j, err := alice.Job(ctx, low.ID)
			if err != nil {
				t.Fatal(err)
			}
			if j.Counts[wire.StateRunning] != 2 || j.Preemptions != 0 {
				t.Fatalf("an equal-priority task preempted: low job %+v", j.Counts)
			}
			e, _ := bob.Job(ctx, equal.ID)
			if e.State != wire.StateQueued {
				t.Fatalf("the equal-priority job is %s, want queued", e.State)
			}
			time.Sleep(200 * time.Millisecond) // the poll interval
		}
		if _, err := bob.Cancel(ctx, equal.ID); err != nil {
			t.Fatal(err)
		}
		submitted := time.Now()
		high := submit(t, bob, wire.JobSpec{Image: "gantry/toolbox", Command: []string{"echo", "urgent"}, CPU: 1000, Memory: 32 << 20, Priority: 10})
		if j := waitJob(t, bob, high.ID, time.Minute); j.State != wire.StateSucceeded {
			t.Fatalf("high-priority job %s", j.State)
		}
		t.Logf("the high-priority job ran %s after its submission", time.Since(submitted).Round(time.Millisecond))
		j := waitJob(t, alice, low.ID, 2*time.Minute)
		if j.State != wire.StateSucceeded || j.Preemptions != 1 || j.Spec.Retries != 0 {
			t.Fatalf("low job %s with %d preemptions (retries %d): want succeeded after one preemption, with no retry to spend", j.State, j.Preemptions, j.Spec.Retries)
		}
		var victim *wire.TaskDetail
		for i := 0; i < 2; i++ {
			td, err := alice.Task(ctx, low.ID, i)
			if err != nil {
				t.Fatal(err)
			}
			if td.Preemptions == 1 {
				victim = td
			}
		}
		if victim == nil || len(victim.AttemptList) != 2 {
			t.Fatalf("no task with one preemption and two attempts: %+v", victim)
		}
		first := victim.AttemptList[0]
		if first.Reason != wire.ReasonPreempted || first.PreemptedBy != high.ID+"/0" || time.Duration(first.Grace) != 5*time.Second {
			t.Fatalf("first attempt %+v, want reason preempted for %s/0 with a 5s grace", first, high.ID)
		}
		if took := first.Ended.Sub(first.PreemptAt); took < time.Second || took > 5*time.Second+3*time.Second {
			t.Fatalf("the victim took %s from preemption to its end: want its 1 s cleanup, within the 5 s grace", took)
		}
		if second := victim.AttemptList[1]; second.State != wire.StateSucceeded {
			t.Fatalf("second attempt %+v", second)
		}
		rc, _, err := alice.Logs(ctx, low.ID, victim.Index, 1, false)
		if err != nil {
			t.Fatal(err)
		}
		log, _ := io.ReadAll(rc)
		rc.Close()
		if !strings.Contains(string(log), "received SIGTERM") || !strings.Contains(string(log), "stopped cleanly") {
			t.Fatalf("the preempted attempt's log does not show SIGTERM and a clean stop:\n%s", log)
		}
		out, errOut, code := n.Gantry(t, "job", "show", low.ID)
		if code != 0 || !strings.Contains(out, "preempted once") {
			t.Fatalf("job show does not show the preemption: %s%s", out, errOut)
		}
	})

	t.Run("borrowed capacity goes back", func(t *testing.T) {
		for _, args := range [][]string{
			{"queue", "create", "lender", "--weight", "3"},
			{"queue", "create", "borrower", "--weight", "1", "--borrow", "--grace", "2s"},
		} {
			if out, errOut, code := n.Gantry(t, args...); code != 0 {
				t.Fatalf("%v: %s%s", args, out, errOut)
			}
		}
		// Guarantees: default 1, lender 3, borrower 1 of 5: the borrower
		// is guaranteed 400m of 2000m and borrows the rest while idle.
		b := submit(t, bob, wire.JobSpec{Image: "gantry/toolbox", Command: []string{"graceful", "300", "0"}, Array: 8, CPU: 250, Memory: 32 << 20, Queue: "borrower"})
		gantrytest.Eventually(t, time.Minute, func() bool {
			j, err := bob.Job(ctx, b.ID)
			return err == nil && j.Counts[wire.StateRunning] == 8
		}, "the borrower never used the whole idle node")
		l := submit(t, alice, wire.JobSpec{Image: "gantry/toolbox", Command: []string{"sleep", "300"}, Array: 8, CPU: 250, Memory: 32 << 20, Queue: "lender"})
		// The lender is guaranteed 1200m: it takes back four 250m slots
		// (a fifth would pass its guarantee); the borrower keeps four,
		// above its own 400m.
		gantrytest.Eventually(t, time.Minute, func() bool {
			j, err := alice.Job(ctx, l.ID)
			return err == nil && j.Counts[wire.StateRunning] == 4
		}, "the lender never got its guaranteed share back")
		bj, err := bob.Job(ctx, b.ID)
		if err != nil {
			t.Fatal(err)
		}
		if bj.Preemptions != 4 || bj.Counts[wire.StateRunning] != 4 || bj.Counts[wire.StateQueued] != 4 {
			t.Fatalf("borrower after the lender came: %d preemptions, counts %v; want 4 preempted and requeued, 4 running", bj.Preemptions, bj.Counts)
		}
		qs, err := n.Client().Queues(ctx)
		if err != nil {
			t.Fatal(err)
		}
		sort.Slice(qs, func(i, j int) bool { return qs[i].Name < qs[j].Name })
		for _, q := range qs {
			switch q.Name {
			case "borrower", "lender":
				if q.Usage.Allocated.CPU != 1000 {
					t.Fatalf("queue %s holds %dm, want 1000m", q.Name, q.Usage.Allocated.CPU)
				}
			}
		}
		for _, c := range []struct {
			cl *client.Client
			id string
		}{{bob, b.ID}, {alice, l.ID}} {
			if _, err := c.cl.Cancel(ctx, c.id); err != nil {
				t.Fatal(err)
			}
			waitJob(t, c.cl, c.id, time.Minute)
		}
	})
}
