package e2e

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"gantry/client"
	"gantry/gantrytest"
	"gantry/wire"
)

// TestQuotasAndConstraints: an admin's quota bounds what a user's tasks hold
// at once (the rest wait, then run); a task bigger than the quota, than any
// node, or needing a label no node has is refused at submission with one
// line naming the field; constraints place tasks by node label.
func TestQuotasAndConstraints(t *testing.T) {
	t.Parallel()
	n := gantrytest.Start(t, gantrytest.Options{Args: []string{"--label", "zone=lab", "--label", "disk=ssd"}})
	ctx := context.Background()
	alice, _ := n.CreateUser(t, "alice")

	t.Run("node ls shows the node's labels", func(t *testing.T) {
		out, errOut, code := n.Gantry(t, "node", "ls")
		if code != 0 || !strings.Contains(out, "disk=ssd,zone=lab") {
			t.Fatalf("node ls: code %d\n%s%s", code, out, errOut)
		}
	})

	t.Run("a quota of 1 CPU keeps at most two 500m tasks placed at once", func(t *testing.T) {
		out, errOut, code := n.Gantry(t, "user", "quota", "alice", "--cpu", "1")
		if code != 0 || out != "alice may hold at once: 1.0 CPU\n" {
			t.Fatalf("user quota: code %d stdout %q stderr %q", code, out, errOut)
		}
		j := submit(t, alice, wire.JobSpec{Image: "gantry/toolbox", Command: []string{"sleep", "0.5"}, Array: 6, CPU: 500, Memory: 32 << 20})
		j = waitJob(t, alice, j.ID, 2*time.Minute)
		if j.State != wire.StateSucceeded {
			t.Fatalf("job %s", j.State)
		}
		type edge struct {
			at    time.Time
			delta int
		}
		var edges []edge
		for i := 0; i < j.Total; i++ {
			td, err := alice.Task(ctx, j.ID, i)
			if err != nil {
				t.Fatal(err)
			}
			for _, at := range td.AttemptList {
				edges = append(edges, edge{at.Scheduled, +1}, edge{at.Ended, -1})
			}
		}
		sort.Slice(edges, func(a, b int) bool {
			if !edges[a].at.Equal(edges[b].at) {
				return edges[a].at.Before(edges[b].at)
			}
			return edges[a].delta < edges[b].delta
		})
		held, most := 0, 0
		for _, e := range edges {
			held += e.delta
			most = max(most, held)
		}
		if most != 2 {
			t.Fatalf("at most %d tasks held resources at once, want 2 (quota 1 CPU, 500m each)", most)
		}
		var me wire.User
		if err := alice.Do(ctx, "GET", "/api/v1/me", nil, &me); err != nil {
			t.Fatal(err)
		}
		if me.Quota == nil || me.Quota.CPU != 1000 || me.Usage == nil || me.Usage.Tasks != 0 {
			t.Fatalf("/me quota %+v usage %+v, want 1000m and nothing held", me.Quota, me.Usage)
		}
		out, _, _ = n.Gantry(t, "user", "ls")
		if !strings.Contains(out, "alice") || !strings.Contains(out, "0.0/1.0") {
			t.Fatalf("user ls:\n%s", out)
		}
	})

	t.Run("job show says a job waits for the quota", func(t *testing.T) {
		hog := submit(t, alice, wire.JobSpec{Image: "gantry/toolbox", Command: []string{"sleep", "60"}, CPU: 1000, Memory: 32 << 20})
		gantrytest.Eventually(t, 60*time.Second, func() bool {
			j, err := alice.Job(ctx, hog.ID)
			return err == nil && j.State == wire.StateRunning
		}, "the quota-filling job to run")
		waiting := submit(t, alice, wire.JobSpec{Image: "gantry/toolbox", Command: []string{"true"}, CPU: 500, Memory: 32 << 20})
		j, err := alice.Job(ctx, waiting.ID)
		want := "quota: your running tasks hold 1 CPU, 32 MiB; one more task would exceed your quota of 1 CPU"
		if err != nil || j.State != wire.StateQueued || j.Waiting != want {
			t.Fatalf("job behind the quota: %+v %v; want waiting %q", j, err, want)
		}
		out, _, _ := n.GantryAs(t, alice.Token, "job", "show", waiting.ID)
		if !strings.Contains(out, "queued because "+want) {
			t.Fatalf("job show:\n%s", out)
		}
		for _, id := range []string{hog.ID, waiting.ID} {
			if _, err := alice.Cancel(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		waitJob(t, alice, hog.ID, time.Minute)
	})

	refused := []struct {
		name string
		args []string
		want string
	}{
		{"more CPU per task than the quota", []string{"--cpu", "2"}, "cpu: 2 CPUs per task is more than your quota (1 CPU)"},
		{"more memory than any node has", []string{"--cpu", "0.5", "--memory", "100000G"}, "memory: 100000 GiB per task is more than any node has"},
		{"a GPU where no node has one", []string{"--cpu", "0.5", "--gpus", "1"}, "gpus: no node of this cluster has GPUs"},
		{"a label no node has", []string{"--cpu", "0.5", "--constraint", "zone=mars"}, "constraints: no node has zone=mars"},
		{"a malformed constraint", []string{"--cpu", "0.5", "--constraint", "zone=a b"}, "constraints: zone=\"a b\": not a valid label value"},
	}
	for _, tc := range refused {
		t.Run("refused at submission: "+tc.name, func(t *testing.T) {
			args := append(append([]string{"run"}, tc.args...), "gantry/toolbox", "--", "true")
			_, errOut, code := n.GantryAs(t, alice.Token, args...)
			line := strings.TrimSpace(errOut)
			if code == 0 || !strings.Contains(line, tc.want) || strings.Contains(line, "\n") {
				t.Fatalf("code %d stderr %q; want one line containing %q", code, errOut, tc.want)
			}
		})
	}

	t.Run("a constraint the node satisfies runs there", func(t *testing.T) {
		out, errOut, code := n.GantryAs(t, alice.Token, "run", "--cpu", "0.5", "--constraint", "zone=lab", "--constraint", "disk=ssd", "gantry/toolbox", "--", "echo", "on the lab node")
		if code != 0 || out != "on the lab node\n" {
			t.Fatalf("code %d stdout %q stderr %q", code, out, errOut)
		}
	})

	t.Run("gantry run says why its job waits, then runs it", func(t *testing.T) {
		nodes, err := n.Client().Nodes(ctx)
		if err != nil || len(nodes) != 1 {
			t.Fatalf("nodes: %v %v", nodes, err)
		}
		if _, err := n.Client().DrainNode(ctx, nodes[0].Name, "drain", 0); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(gantrytest.Binary(t), "run", "--cpu", "0.1", "--memory", "32M", "gantry/toolbox", "--", "echo", "ran at last")
		cmd.Env = append(os.Environ(), "GANTRY_ADDR="+n.URL, "GANTRY_TOKEN="+n.AdminToken, "HOME="+t.TempDir(), "XDG_CONFIG_HOME="+t.TempDir())
		var stdout bytes.Buffer
		stderr := &syncBuffer{}
		cmd.Stdout, cmd.Stderr = &stdout, stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		t.Cleanup(func() { cmd.Process.Kill() })
		gantrytest.Eventually(t, 30*time.Second, func() bool {
			return strings.Contains(stderr.String(), "is queued because no node is ready (every node is draining or down)")
		}, "gantry run to say why it waits (stderr so far: %q)", lazy(stderr.String))
		if _, err := n.Client().DrainNode(ctx, nodes[0].Name, "ready", 0); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if err != nil || stdout.String() != "ran at last\n" {
				t.Fatalf("gantry run: %v stdout %q stderr %q", err, stdout.String(), stderr.String())
			}
		case <-time.After(60 * time.Second):
			t.Fatalf("gantry run did not finish after the node was readied; stderr %q", stderr.String())
		}
	})

	t.Run("only an admin sets quotas, and not negative ones", func(t *testing.T) {
		_, err := alice.SetQuota(ctx, "alice", wire.Resources{})
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Status != 403 {
			t.Fatalf("alice lifting her own quota: %v", err)
		}
		_, err = n.Client().SetQuota(ctx, "alice", wire.Resources{CPU: -1})
		if !errors.As(err, &ce) || ce.Status != 400 {
			t.Fatalf("negative quota: %v", err)
		}
	})
}

// TestFairShareServesTheUserHoldingLeast: alice fills the node with two
// jobs and has more queued; bob submits one task. When alice's short job
// ends she still holds half the node and bob holds nothing, so the freed
// half goes to bob although alice's queued tasks were submitted first.
func TestFairShareServesTheUserHoldingLeast(t *testing.T) {
	t.Parallel()
	n := gantrytest.Start(t)
	ctx := context.Background()
	alice, _ := n.CreateUser(t, "alice")
	bob, _ := n.CreateUser(t, "bob")
	nodes, err := n.Client().Nodes(ctx)
	if err != nil || len(nodes) != 1 {
		t.Fatalf("nodes: %v %v", nodes, err)
	}
	half := nodes[0].Capacity.CPU / 2
	short := submit(t, alice, wire.JobSpec{Image: "gantry/toolbox", Command: []string{"sleep", "2"}, CPU: half, Memory: 32 << 20})
	long := submit(t, alice, wire.JobSpec{Image: "gantry/toolbox", Command: []string{"sleep", "6"}, Array: 3, CPU: half, Memory: 32 << 20})
	gantrytest.Eventually(t, 60*time.Second, func() bool {
		j, err := alice.Job(ctx, short.ID)
		l, err2 := alice.Job(ctx, long.ID)
		return err == nil && err2 == nil && j.State == wire.StateRunning && l.Counts[wire.StateRunning] == 1
	}, "alice's two tasks running")
	b := submit(t, bob, wire.JobSpec{Image: "gantry/toolbox", Command: []string{"true"}, CPU: half, Memory: 32 << 20})
	if j := waitJob(t, bob, b.ID, 90*time.Second); j.State != wire.StateSucceeded {
		t.Fatalf("bob's job %s", j.State)
	}
	bt, err := bob.Task(ctx, b.ID, 0)
	if err != nil || len(bt.AttemptList) != 1 {
		t.Fatalf("bob's task: %+v %v", bt, err)
	}
	bobAt := bt.AttemptList[0].Scheduled
	for i := 1; i < 3; i++ {
		at, err := alice.Task(ctx, long.ID, i)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range at.AttemptList {
			if a.Scheduled.Before(bobAt) {
				t.Fatalf("alice's queued task %d was placed at %s, before bob's at %s: the freed half went to the user already holding half the node", i, a.Scheduled, bobAt)
			}
		}
	}
	if _, err := alice.Cancel(ctx, long.ID); err != nil {
		t.Fatal(err)
	}
}

// syncBuffer is a bytes.Buffer safe to read while a process writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
