package e2e

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"gantry/gantrytest"
	"gantry/wire"
)

// TestCluster shares one three-node cluster across the behaviours that do
// not kill nodes.
func TestCluster(t *testing.T) {
	cl := gantrytest.StartCluster(t, 3)
	ctx := context.Background()

	t.Run("node ls on any node shows three ready nodes", func(t *testing.T) {
		for _, n := range cl.Nodes {
			out, errOut, code := n.Gantry(t, "node", "ls")
			if code != 0 {
				t.Fatalf("%s: node ls exit %d: %s", n.Name, code, errOut)
			}
			if got := strings.Count(out, " ready "); got != 3 {
				t.Fatalf("%s: node ls shows %d ready nodes, want 3:\n%s", n.Name, got, out)
			}
		}
	})

	t.Run("jobs submitted to a follower run and spread over the nodes", func(t *testing.T) {
		f := cl.Followers(t)[0]
		c := f.Client()
		j := submit(t, c, wire.JobSpec{Image: "gantry/toolbox", Command: []string{"sleep", "1"}, Array: 12, CPU: 500, Memory: 32 << 20})
		j = waitJob(t, c, j.ID, 2*time.Minute)
		if j.State != wire.StateSucceeded {
			t.Fatalf("job %s ended %s, counts %v", j.ID, j.State, j.Counts)
		}
		tasks, err := c.Tasks(ctx, j.ID)
		if err != nil {
			t.Fatal(err)
		}
		used := map[string]int{}
		for _, tk := range tasks {
			used[tk.Node]++
		}
		if len(used) < 2 {
			t.Fatalf("tasks ran on %v, want at least 2 nodes", used)
		}
		t.Logf("placement: %v", used)
	})

	t.Run("concurrent submissions through a follower land once each, batched", func(t *testing.T) {
		concurrentSubmissionsThroughAFollower(t, cl)
	})

	t.Run("a consistent read on a follower sees a write made on another node", func(t *testing.T) {
		j := submit(t, cl.Leader(t, 10*time.Second).Client(), wire.JobSpec{Image: "gantry/toolbox", Command: []string{"echo", "x"}, CPU: 100, Memory: 32 << 20})
		var got wire.Job
		if err := cl.Followers(t)[0].Client().Do(ctx, "GET", "/api/v1/jobs/"+j.ID+"?consistent=true", nil, &got); err != nil || got.ID != j.ID {
			t.Fatalf("consistent read of %s on a follower: %v (got %q)", j.ID, err, got.ID)
		}
	})

	t.Run("logs of tasks that ran on other nodes are served by any node", func(t *testing.T) {
		c := cl.Nodes[0].Client()
		j := submit(t, c, wire.JobSpec{Image: "gantry/toolbox", Command: []string{"echo", "hello-from-a-task"}, Array: 9, CPU: 700, Memory: 32 << 20})
		j = waitJob(t, c, j.ID, 2*time.Minute)
		if j.State != wire.StateSucceeded {
			t.Fatalf("job ended %s %v", j.State, j.Counts)
		}
		tasks, _ := c.Tasks(ctx, j.ID)
		remote := 0
		for _, tk := range tasks {
			if tk.Node != cl.Nodes[0].Name {
				remote++
			}
			for _, via := range []*gantrytest.Node{cl.Nodes[0], cl.Nodes[2]} {
				if got := logOf(t, via.Client(), j.ID, tk.Index); got != "hello-from-a-task\n" {
					t.Fatalf("log of task %d (ran on %s) via %s: %q", tk.Index, tk.Node, via.Name, got)
				}
			}
		}
		if remote == 0 {
			t.Fatalf("every task ran on %s; the test needs some elsewhere", cl.Nodes[0].Name)
		}
	})

	t.Run("a join with a wrong secret is refused with a clear message", func(t *testing.T) {
		hash := strings.Split(cl.Token, "-")[1]
		bad := "gantry1-" + hash + "-" + strings.Repeat("ab", 32)
		exited, out := gantrytest.TryStart(t, 60*time.Second, "--join", cl.Join, "--token", bad)
		if !exited || !strings.Contains(out, "join token's secret is not valid") {
			t.Fatalf("join with a wrong secret: exited=%v, output:\n%s", exited, tail(out))
		}
	})

	t.Run("a join with a forged CA hash is refused before the secret is used", func(t *testing.T) {
		parts := strings.Split(cl.Token, "-")
		forged := "gantry1-" + strings.Repeat("0", 64) + "-" + parts[2]
		exited, out := gantrytest.TryStart(t, 60*time.Second, "--join", cl.Join, "--token", forged)
		if !exited || !strings.Contains(out, "does not match the token") {
			t.Fatalf("join with a forged CA hash: exited=%v, output:\n%s", exited, tail(out))
		}
	})

	t.Run("a rotated token is refused and join-command prints the new one", func(t *testing.T) {
		out, errOut, code := cl.Nodes[1].Gantry(t, "cluster", "join-command", "--rotate")
		if code != 0 || !strings.HasPrefix(out, "gantry server --join ") || strings.Contains(out, cl.Token) {
			t.Fatalf("rotate: code %d out %q err %q", code, out, errOut)
		}
		tokenOf := func(cmd string) string { f := strings.Fields(cmd); return f[len(f)-1] }
		again, _, _ := cl.Nodes[2].Gantry(t, "cluster", "join-command")
		if again == "" || tokenOf(again) != tokenOf(out) {
			t.Fatalf("join-command on another node prints %q, want the token of %q", again, out)
		}
		exited, log := gantrytest.TryStart(t, 60*time.Second, "--join", cl.Join, "--token", cl.Token)
		if !exited || !strings.Contains(log, "rotated") {
			t.Fatalf("join with the rotated token: exited=%v, output:\n%s", exited, tail(log))
		}
	})

	t.Run("a client without a node certificate cannot speak to the raft port", func(t *testing.T) {
		addr := cl.Nodes[0].ClusterAddr
		conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12})
		if err == nil {
			defer conn.Close()
			_, _ = conn.Write([]byte{'R'})
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err = conn.Read(make([]byte, 16))
			var ne net.Error
			if err == nil || errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("a TLS client without a certificate got an open raft connection (read err %v)", err)
			}
		}
		raw, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		_, _ = raw.Write([]byte("R\x00\x00\x00plain raft bytes"))
		_ = raw.SetReadDeadline(time.Now().Add(15 * time.Second))
		if n, err := raw.Read(make([]byte, 64)); err == nil && n > 0 {
			// The server may answer with a TLS alert record; it must then close.
			_, err = raw.Read(make([]byte, 64))
			if err == nil {
				t.Fatalf("a plain TCP client kept a connection to the raft port")
			}
		}
	})

	t.Run("a drained node with nothing running shows as drained, remove takes a node out", func(t *testing.T) {
		n0 := cl.Nodes[0]
		if _, errOut, code := n0.Gantry(t, "node", "drain", "node3"); code != 0 {
			t.Fatalf("drain: %s", errOut)
		}
		gantrytest.Eventually(t, 30*time.Second, func() bool {
			out, _, _ := n0.Gantry(t, "node", "ls")
			return strings.Contains(out, "drained")
		}, "node3 shows drained")
		out, errOut, code := cl.Nodes[1].Gantry(t, "node", "remove", "node3")
		if code != 0 || !strings.Contains(out, "node3 removed") {
			t.Fatalf("remove: code %d out %q err %q", code, out, errOut)
		}
		var m struct {
			Members []struct{ ID string } `json:"members"`
		}
		if err := n0.Client().Do(ctx, "GET", "/api/v1/cluster/members", nil, &m); err != nil || len(m.Members) != 2 {
			t.Fatalf("members after remove: %v %+v", err, m)
		}
		if st := cl.NodeStates(t, n0); len(st) != 2 {
			t.Fatalf("nodes after remove: %v", st)
		}
	})
}

func tail(s string) string {
	if len(s) > 3000 {
		return s[len(s)-3000:]
	}
	return s
}

// TestClusterFailover kills the leader while 100 tasks run, then a worker,
// and checks that nothing acknowledged is lost and every task succeeds
// exactly once.
func TestClusterFailover(t *testing.T) {
	cl := gantrytest.StartCluster(t, 3)
	ctx := context.Background()
	leader := cl.Leader(t, 10*time.Second)
	f := cl.Followers(t)[0]

	var jobs []string
	for i := 0; i < 4; i++ {
		j := submit(t, f.Client(), wire.JobSpec{Image: "gantry/toolbox", Command: []string{"sleep", "1"}, Array: 25, CPU: 100, Memory: 32 << 20})
		jobs = append(jobs, j.ID)
	}
	gantrytest.Eventually(t, 60*time.Second, func() bool {
		nodes, err := f.Client().Nodes(ctx)
		if err != nil {
			return false
		}
		for _, n := range nodes {
			if n.Name == leader.Name {
				return n.Running >= 5
			}
		}
		return false
	}, "tasks running on the leader %s", leader.Name)

	// Keep submitting through a follower while the leader dies: every
	// acknowledged job must survive.
	var mu sync.Mutex
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			j, err := f.Client().Submit(ctx, wire.JobSpec{Image: "gantry/toolbox", Command: []string{"echo", fmt.Sprint(i)}, CPU: 100, Memory: 32 << 20})
			if err == nil {
				mu.Lock()
				jobs = append(jobs, j.ID)
				mu.Unlock()
			}
			time.Sleep(100 * time.Millisecond) // pacing the writer, not waiting for a state
		}
	}()
	killed := time.Now()
	leader.Kill9(t)
	newLeader := cl.Leader(t, 10*time.Second)
	elected := time.Since(killed)
	t.Logf("new leader %s after %s", newLeader.Name, elected)
	if elected > 5*time.Second {
		t.Errorf("new leader after %s, want within 5s", elected)
	}
	// Let the writer get writes acknowledged by the new leader.
	mu.Lock()
	acked := len(jobs)
	mu.Unlock()
	gantrytest.Eventually(t, 30*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(jobs) >= acked+5
	}, "writes acknowledged after the failover")
	close(stop)
	wg.Wait()

	checkAllSucceededOnce(t, newLeader, jobs)

	t.Run("the killed leader restarts and rejoins without operator action", func(t *testing.T) {
		leader.Restart(t)
		cl.WaitReady(t, 3, 60*time.Second)
	})

	t.Run("a killed worker's tasks run elsewhere and it rejoins after restart", func(t *testing.T) {
		l := cl.Leader(t, 10*time.Second)
		var worker *gantrytest.Node
		for _, n := range cl.Nodes {
			if n != l {
				worker = n
			}
		}
		j := submit(t, l.Client(), wire.JobSpec{Image: "gantry/toolbox", Command: []string{"sleep", "3"}, Array: 20, CPU: 200, Memory: 32 << 20})
		gantrytest.Eventually(t, 60*time.Second, func() bool {
			tasks, err := l.Client().Tasks(ctx, j.ID)
			if err != nil {
				return false
			}
			for _, tk := range tasks {
				if tk.Node == worker.Name && tk.State == wire.StateRunning {
					return true
				}
			}
			return false
		}, "a task running on %s", worker.Name)
		worker.Kill9(t)
		gantrytest.Eventually(t, 20*time.Second, func() bool {
			return cl.NodeStates(t, l)[worker.Name] == wire.NodeDown
		}, "%s marked down", worker.Name)
		checkAllSucceededOnce(t, l, []string{j.ID})
		worker.Restart(t)
		cl.WaitReady(t, 3, 60*time.Second)
	})
}

// checkAllSucceededOnce waits for the jobs and checks from their attempt
// records that every task succeeded exactly once.
func checkAllSucceededOnce(t *testing.T, via *gantrytest.Node, jobs []string) {
	t.Helper()
	ctx := context.Background()
	c := via.Client()
	tasksTotal, lost := 0, 0
	for _, id := range jobs {
		j := waitJob(t, c, id, 3*time.Minute)
		if j.State != wire.StateSucceeded {
			t.Fatalf("job %s ended %s %v", id, j.State, j.Counts)
		}
		for i := 0; i < j.Total; i++ {
			td, err := c.Task(ctx, id, i)
			if err != nil {
				t.Fatalf("task %s/%d: %v", id, i, err)
			}
			ok := 0
			for _, a := range td.AttemptList {
				if a.State == wire.StateSucceeded {
					ok++
				}
				if a.Reason == wire.ReasonNodeLost {
					lost++
				}
			}
			if ok != 1 {
				t.Fatalf("task %s/%d succeeded %d times, want exactly once: %+v", id, i, ok, td.AttemptList)
			}
			tasksTotal++
		}
	}
	t.Logf("%d jobs, %d tasks each succeeded once; %d attempts ended node_lost", len(jobs), tasksTotal, lost)
}
