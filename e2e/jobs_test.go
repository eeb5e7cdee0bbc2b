// Package e2e holds end-to-end tests against real gantry server processes
// and the real Docker Engine, started through package gantrytest.
//
// Tests of one node call t.Parallel: each starts its own node (its own
// ports, data directory, cluster id and so its own containers and
// networks), and most of their time is spent waiting on Docker, so a few
// run at once (make test passes -parallel). Tests of several nodes and of
// faults (kill -9, SIGSTOP, partitions, elections) stay serial, and Go
// runs every serial test before the parallel ones start: their Raft
// timings are not measured on a machine busy with other tests.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"gantry/client"
	"gantry/gantrytest"
	"gantry/wire"
)

func waitJob(t *testing.T, c *client.Client, id string, timeout time.Duration) *wire.Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		j, err := c.Wait(ctx, id, 30*time.Second)
		if err != nil {
			t.Fatalf("wait for job %s: %v", id, err)
		}
		if wire.Terminal(j.State) {
			return j
		}
	}
}

func submit(t *testing.T, c *client.Client, spec wire.JobSpec) *wire.Job {
	t.Helper()
	j, err := c.Submit(context.Background(), spec)
	if err != nil {
		t.Fatalf("submit %+v: %v", spec, err)
	}
	return j
}

func logOf(t *testing.T, c *client.Client, id string, task int) string {
	t.Helper()
	rc, _, err := c.Logs(context.Background(), id, task, 0, false)
	if err != nil {
		t.Fatalf("logs of %s/%d: %v", id, task, err)
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	return string(b)
}

// TestJobs shares one node across the job behaviours a user relies on.
func TestJobs(t *testing.T) {
	t.Parallel()
	n := gantrytest.Start(t, gantrytest.Options{Args: []string{"--allow-registry", "registry.invalid"}})
	c := n.Client()
	ctx := context.Background()

	t.Run("run echo prints its output and exits 0", func(t *testing.T) {
		out, errOut, code := n.Gantry(t, "run", "gantry/toolbox", "--", "echo", "hello")
		if code != 0 || out != "hello\n" {
			t.Fatalf("got code %d stdout %q stderr %q; want 0 and \"hello\\n\"", code, out, errOut)
		}
	})

	t.Run("an attempt records the manifest digest it ran", func(t *testing.T) {
		j := submit(t, c, wire.JobSpec{Image: "gantry/toolbox", Command: []string{"true"}})
		waitJob(t, c, j.ID, time.Minute)
		td, err := c.Task(ctx, j.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		imgs, err := c.Images(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := ""
		for _, r := range imgs.Repositories {
			for _, tg := range r.Tags {
				if r.Name == "gantry/toolbox" && tg.Tag == "latest" {
					want = tg.Digest
				}
			}
		}
		if want == "" || td.AttemptList[0].ImageDigest != want {
			t.Fatalf("attempt image digest %q, want the manifest digest of gantry/toolbox:latest %q", td.AttemptList[0].ImageDigest, want)
		}
	})

	t.Run("run exit 3 exits 3", func(t *testing.T) {
		_, errOut, code := n.Gantry(t, "run", "gantry/toolbox", "--", "exit", "3")
		if code != 3 {
			t.Fatalf("got exit code %d (stderr %q), want 3", code, errOut)
		}
	})

	t.Run("an array job of 50 tasks gives each task its own index", func(t *testing.T) {
		j := submit(t, c, wire.JobSpec{Image: "gantry/toolbox", Command: []string{"env"}, Array: 50, CPU: 100, Memory: 32 << 20})
		j = waitJob(t, c, j.ID, 3*time.Minute)
		if j.State != wire.StateSucceeded || j.Counts[wire.StateSucceeded] != 50 {
			t.Fatalf("job %s: state %s counts %v, want succeeded with 50", j.ID, j.State, j.Counts)
		}
		for i := 0; i < 50; i++ {
			log := logOf(t, c, j.ID, i)
			if !strings.Contains(log, fmt.Sprintf("GANTRY_TASK_INDEX=%d\n", i)) || !strings.Contains(log, "GANTRY_TASK_COUNT=50\n") ||
				!strings.Contains(log, "GANTRY_JOB_ID="+j.ID+"\n") || !strings.Contains(log, "GANTRY_ATTEMPT=1\n") {
				t.Fatalf("task %d env lacks its GANTRY_* values:\n%s", i, log)
			}
		}
	})

	t.Run("a task over its memory limit fails as oom_killed", func(t *testing.T) {
		j := submit(t, c, wire.JobSpec{Image: "gantry/toolbox", Command: []string{"alloc", "256"}, Memory: 32 << 20})
		j = waitJob(t, c, j.ID, time.Minute)
		td, err := c.Task(ctx, j.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		if j.State != wire.StateFailed || td.Reason != wire.ReasonOOMKilled {
			t.Fatalf("job %s, task reason %q; want failed with oom_killed", j.State, td.Reason)
		}
	})

	t.Run("a task past its timeout ends timed_out", func(t *testing.T) {
		start := time.Now()
		j := submit(t, c, wire.JobSpec{Image: "gantry/toolbox", Command: []string{"sleep", "60"}, Timeout: wire.Duration(time.Second)})
		j = waitJob(t, c, j.ID, time.Minute)
		td, _ := c.Task(ctx, j.ID, 0)
		if j.State != wire.StateFailed || td.Reason != wire.ReasonTimedOut {
			t.Fatalf("job %s, task reason %q; want failed with timed_out", j.State, td.Reason)
		}
		if d := time.Since(start); d > 30*time.Second {
			t.Fatalf("timeout of 1s took %s to act", d)
		}
	})

	t.Run("a retried task that fails twice then succeeds shows three attempts", func(t *testing.T) {
		j := submit(t, c, wire.JobSpec{Image: "gantry/toolbox", Command: []string{"fail-until", "3", "7"}, Retries: 3})
		j = waitJob(t, c, j.ID, time.Minute)
		td, err := c.Task(ctx, j.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		if j.State != wire.StateSucceeded || len(td.AttemptList) != 3 {
			t.Fatalf("job %s with %d attempts; want succeeded after 3", j.State, len(td.AttemptList))
		}
		for i, a := range td.AttemptList[:2] {
			if a.ExitCode == nil || *a.ExitCode != 7 || a.State != wire.StateFailed {
				t.Fatalf("attempt %d: %+v; want failed with exit 7", i+1, a)
			}
		}
	})

	t.Run("retry_on limits which exit codes retry", func(t *testing.T) {
		j := submit(t, c, wire.JobSpec{Image: "gantry/toolbox", Command: []string{"exit", "5"}, Retries: 3, RetryOn: []int{7}})
		j = waitJob(t, c, j.ID, time.Minute)
		td, _ := c.Task(ctx, j.ID, 0)
		if j.State != wire.StateFailed || len(td.AttemptList) != 1 {
			t.Fatalf("job %s with %d attempts; want failed after 1 (exit 5 is not in retry_on)", j.State, len(td.AttemptList))
		}
	})

	t.Run("cancel stops a running container within seconds", func(t *testing.T) {
		j := submit(t, c, wire.JobSpec{Image: "gantry/toolbox", Command: []string{"sleep", "120"}})
		gantrytest.Eventually(t, time.Minute, func() bool {
			cur, err := c.Job(ctx, j.ID)
			return err == nil && cur.State == wire.StateRunning
		}, "job %s never ran", j.ID)
		var container string
		td, _ := c.Task(ctx, j.ID, 0)
		container = td.AttemptList[0].Container
		start := time.Now()
		if _, err := c.Cancel(ctx, j.ID); err != nil {
			t.Fatal(err)
		}
		j = waitJob(t, c, j.ID, 30*time.Second)
		if j.State != wire.StateCancelled {
			t.Fatalf("job state %s, want cancelled", j.State)
		}
		gantrytest.Eventually(t, 10*time.Second, func() bool {
			for _, id := range n.Containers(t) {
				if strings.HasPrefix(container, id) {
					return false
				}
			}
			return true
		}, "container %s still exists after cancel", container)
		if d := time.Since(start); d > 10*time.Second {
			t.Fatalf("cancel took %s", d)
		}
		if _, err := c.Cancel(ctx, j.ID); err == nil {
			t.Fatal("cancelling an ended job again succeeded; want a conflict")
		}
	})

	t.Run("drain with a deadline moves running tasks off the node", func(t *testing.T) {
		j := submit(t, c, wire.JobSpec{Image: "gantry/toolbox", Command: []string{"sleep", "120"}})
		gantrytest.Eventually(t, time.Minute, func() bool {
			cur, err := c.Job(ctx, j.ID)
			return err == nil && cur.State == wire.StateRunning
		}, "job %s never ran", j.ID)
		td, _ := c.Task(ctx, j.ID, 0)
		first := td.AttemptList[0].Container
		if out, errOut, code := n.Gantry(t, "node", "drain", n.Name, "--deadline", "1s"); code != 0 {
			t.Fatalf("gantry node drain: %d %s %s", code, out, errOut)
		}
		gantrytest.Eventually(t, 30*time.Second, func() bool {
			td, err := c.Task(ctx, j.ID, 0)
			return err == nil && td.State == wire.StateQueued && len(td.AttemptList) == 1 &&
				td.AttemptList[0].Reason == wire.ReasonNodeLost
		}, "the task to be moved off the drained node")
		gantrytest.Eventually(t, 15*time.Second, func() bool {
			for _, id := range n.Containers(t) {
				if strings.HasPrefix(first, id) {
					return false
				}
			}
			return true
		}, "the moved task's container to be stopped")
		if _, _, code := n.Gantry(t, "node", "ready", n.Name); code != 0 {
			t.Fatal("gantry node ready failed")
		}
		gantrytest.Eventually(t, time.Minute, func() bool {
			td, err := c.Task(ctx, j.ID, 0)
			return err == nil && td.State == wire.StateRunning && len(td.AttemptList) == 2
		}, "the task to run again once the node is ready")
		if _, err := c.Cancel(ctx, j.ID); err != nil {
			t.Fatal(err)
		}
		if j := waitJob(t, c, j.ID, 30*time.Second); j.State != wire.StateCancelled {
			t.Fatalf("job %s, want cancelled", j.State)
		}
	})

	t.Run("after waits for its dependency and fails fast when it failed", func(t *testing.T) {
		first := submit(t, c, wire.JobSpec{Image: "gantry/toolbox", Command: []string{"sleep", "1"}})
		second := submit(t, c, wire.JobSpec{Image: "gantry/toolbox", Command: []string{"true"}, After: []string{first.ID}})
		if second.State != wire.StateQueued {
			t.Fatalf("dependent job state %s, want queued", second.State)
		}
		f := waitJob(t, c, first.ID, time.Minute)
		s := waitJob(t, c, second.ID, time.Minute)
		if f.State != wire.StateSucceeded || s.State != wire.StateSucceeded || s.Started.Before(f.Ended) {
			t.Fatalf("first %s (ended %s), second %s (started %s); want second to start after first succeeded", f.State, f.Ended, s.State, s.Started)
		}
		bad := submit(t, c, wire.JobSpec{Image: "gantry/toolbox", Command: []string{"exit", "1"}})
		waitJob(t, c, bad.ID, time.Minute)
		dep := submit(t, c, wire.JobSpec{Image: "gantry/toolbox", Command: []string{"true"}, After: []string{bad.ID}})
		if dep.State != wire.StateFailed {
			t.Fatalf("job after a failed job is %s, want failed at once", dep.State)
		}
	})

	t.Run("after-any runs once its dependency ended, even in failure", func(t *testing.T) {
		out, errOut, code := n.Gantry(t, "run", "-d", "gantry/toolbox", "--", "sleep", "1")
		if code != 0 {
			t.Fatalf("run -d: %s", errOut)
		}
		failing := strings.TrimSpace(out)
		out, errOut, code = n.Gantry(t, "run", "--after-any", failing, "gantry/toolbox", "--", "echo", "cleanup")
		if code != 0 || out != "cleanup\n" {
			t.Fatalf("run --after-any: code %d stdout %q stderr %q", code, out, errOut)
		}
		f, err := c.Job(ctx, failing)
		if err != nil || !wire.Terminal(f.State) {
			t.Fatalf("the dependency had not ended when the dependent ran: %+v %v", f, err)
		}
		bad := submit(t, c, wire.JobSpec{Image: "gantry/toolbox", Command: []string{"exit", "2"}})
		waitJob(t, c, bad.ID, time.Minute)
		out, errOut, code = n.Gantry(t, "run", "--after-any", bad.ID, "gantry/toolbox", "--", "echo", "after a failure")
		if code != 0 || out != "after a failure\n" {
			t.Fatalf("run --after-any a failed job: code %d stdout %q stderr %q", code, out, errOut)
		}
	})

	t.Run("a missing image in an allowed registry fails as image_pull_failed", func(t *testing.T) {
		j := submit(t, c, wire.JobSpec{Image: "registry.invalid/nope:1", Command: []string{"true"}})
		j = waitJob(t, c, j.ID, time.Minute)
		td, _ := c.Task(ctx, j.ID, 0)
		if j.State != wire.StateFailed || td.Reason != wire.ReasonImagePullFailed {
			t.Fatalf("job %s reason %q; want failed with image_pull_failed", j.State, td.Reason)
		}
	})

	t.Run("an image of a registry not allowed is refused at submission", func(t *testing.T) {
		// A service on the host's loopback is the case that matters: the
		// Docker daemon would send it requests on a user's behalf.
		for _, img := range []string{"127.0.0.1:17099/x/y:1", "registry.example.org/tool:1"} {
			_, err := c.Submit(ctx, wire.JobSpec{Image: img, Command: []string{"true"}})
			ce, ok := err.(*client.Error)
			if !ok || ce.Status != 400 || !strings.Contains(ce.Message, "gantry server --allow-registry") {
				t.Fatalf("submit %s: %v; want 400 naming --allow-registry", img, err)
			}
		}
	})

	t.Run("a missing repository of the local registry is a 400 at submission", func(t *testing.T) {
		_, err := c.Submit(ctx, wire.JobSpec{Image: "nobody/does-not-exist:1", Command: []string{"true"}})
		ce, ok := err.(*client.Error)
		if !ok || ce.Status != 400 || !strings.Contains(ce.Message, "image: nobody/does-not-exist:1 not found") {
			t.Fatalf("submit got %v; want 400 \"image: nobody/does-not-exist:1 not found\"", err)
		}
	})
}

// TestIsolation checks that one user can never see or touch another's jobs.
func TestIsolation(t *testing.T) {
	t.Parallel()
	n := gantrytest.Start(t)
	alice, _ := n.CreateUser(t, "alice")
	bob, _ := n.CreateUser(t, "bob")
	ctx := context.Background()
	j := submit(t, alice, wire.JobSpec{Image: "gantry/toolbox", Command: []string{"sleep", "30"}})

	jobs, _, err := bob.Jobs(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range jobs {
		if x.ID == j.ID {
			t.Fatal("bob's job list shows alice's job")
		}
	}
	expect404 := func(what string, err error) {
		t.Helper()
		ce, ok := err.(*client.Error)
		if !ok || (ce.Status != 404 && ce.Status != 403) {
			t.Fatalf("%s of alice's job as bob: %v; want 403 or 404", what, err)
		}
	}
	_, err = bob.Job(ctx, j.ID)
	expect404("read", err)
	_, _, err = bob.Logs(ctx, j.ID, 0, 0, false)
	expect404("logs", err)
	_, err = bob.Cancel(ctx, j.ID)
	expect404("cancel", err)
	_, err = bob.Tasks(ctx, j.ID)
	expect404("tasks", err)
	if cur, _ := alice.Job(ctx, j.ID); cur.CancelRequested {
		t.Fatal("bob's cancel reached alice's job")
	}
	// The admin sees everything.
	if _, err := n.Client().Job(ctx, j.ID); err != nil {
		t.Fatalf("admin cannot read alice's job: %v", err)
	}
	// Without a token: 401 everywhere but the health check and login.
	for _, p := range []string{"/api/v1/jobs", "/api/v1/jobs/" + j.ID, "/api/v1/nodes", "/api/v1/me", "/metrics", "/api/v1/users"} {
		resp, err := http.Get(n.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Fatalf("GET %s without a token: %d, want 401", p, resp.StatusCode)
		}
	}
	resp, err := http.Get(n.URL + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz without a token: %v %v", resp, err)
	}
	// A non-admin cannot manage users.
	if err := alice.CreateUser(ctx, "mallory", "password-123", true); err == nil {
		t.Fatal("alice created a user; want 403")
	}
	if _, err := alice.Cancel(ctx, j.ID); err != nil {
		t.Fatalf("alice cannot cancel her own job: %v", err)
	}
	// API tokens: the secret is shown once, works, is never listed, and stops
	// working when deleted.
	var created struct {
		Token string     `json:"token"`
		Info  wire.Token `json:"info"`
	}
	if err := alice.Do(ctx, "POST", "/api/v1/tokens", map[string]string{"name": "ci"}, &created); err != nil || !strings.HasPrefix(created.Token, "gtk_") {
		t.Fatalf("create token: %+v %v", created, err)
	}
	viaToken := client.New(n.URL, created.Token)
	if _, err := viaToken.Job(ctx, j.ID); err != nil {
		t.Fatalf("the new token cannot read alice's job: %v", err)
	}
	var listed struct {
		Tokens []map[string]any `json:"tokens"`
	}
	if err := alice.Do(ctx, "GET", "/api/v1/tokens", nil, &listed); err != nil {
		t.Fatal(err)
	}
	for _, tk := range listed.Tokens {
		for _, v := range tk {
			if s, ok := v.(string); ok && strings.Contains(s, created.Token[4:]) {
				t.Fatalf("the token list shows a secret: %v", tk)
			}
		}
	}
	if err := alice.Do(ctx, "DELETE", "/api/v1/tokens/"+created.Info.ID, nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := viaToken.Job(ctx, j.ID); err == nil || err.(*client.Error).Status != 401 {
		t.Fatalf("a deleted token still works: %v", err)
	}
	// /metrics, with a token, in Prometheus text format.
	req, _ := http.NewRequest("GET", n.URL+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+n.AdminToken)
	mresp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	mbody, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	for _, name := range []string{"gantry_queue_depth", "gantry_raft_commit_seconds", "gantry_scheduler_placements_total", "go_goroutines"} {
		if !strings.Contains(string(mbody), name) {
			t.Fatalf("/metrics lacks %s", name)
		}
	}

	// Any user sees the nodes with capacity, allocation and measured usage.
	nodes, err := alice.Nodes(ctx)
	if err != nil || len(nodes) != 1 {
		t.Fatalf("nodes: %v %v", nodes, err)
	}
	if nd := nodes[0]; nd.Capacity.CPU <= 0 || nd.Used == nil || nd.Used.Memory <= 0 || nd.Used.Memory > nd.Capacity.Memory {
		t.Fatalf("node %+v used %+v: want capacity and a measured memory use", nd, nd.Used)
	}
}

// TestBadSpecs checks that malformed job specs get 400 naming the problem.
func TestBadSpecs(t *testing.T) {
	t.Parallel()
	n := gantrytest.Start(t)
	cases := []struct {
		name, body, want string
	}{
		{"unknown field", `{"image":"gantry/toolbox","colour":"red"}`, `unknown field "colour"`},
		{"negative memory", `{"image":"gantry/toolbox","memory":-5}`, "memory"},
		{"empty image", `{"image":""}`, "image"},
		{"missing image", `{"command":["true"]}`, "image"},
		{"array size 0", `{"image":"gantry/toolbox","array":-1}`, "array"},
		{"array over the limit", `{"image":"gantry/toolbox","array":10001}`, "array"},
		{"wrong type", `{"image":"gantry/toolbox","cpu":"lots"}`, "cpu"},
		{"bad timeout", `{"image":"gantry/toolbox","timeout":"soon"}`, "timeout"},
		{"negative retries", `{"image":"gantry/toolbox","retries":-1}`, "retries"},
		{"reserved env", `{"image":"gantry/toolbox","env":{"GANTRY_TASK_INDEX":"9"}}`, "env"},
		{"not JSON", `{"image":`, "JSON"},
		{"unknown dependency", `{"image":"gantry/toolbox","after":["nope"]}`, "after"},
		{"missing local repository", `{"image":"nobody/does-not-exist:1"}`, "image: nobody/does-not-exist:1 not found"},
		{"missing tag of the toolbox", `{"image":"gantry/toolbox:no-such-tag"}`, "not found"},
		{"invalid local reference", `{"image":"Gantry/Toolbox"}`, "image"},
		{"NUL in an env value", `{"image":"gantry/toolbox","env":{"K":"a\u0000b"}}`, "env: the value of K holds a NUL byte"},
		{"relative workdir", `{"image":"gantry/toolbox","workdir":"../../etc"}`, "workdir"},
		{"a 200 KB argument", `{"image":"gantry/toolbox","command":["echo","` + strings.Repeat("x", 200<<10) + `"]}`, "command: argument 1 is 204800 bytes"},
		{"a spec over 256 KiB", `{"image":"gantry/toolbox","env":{"A":"` + strings.Repeat("a", 100<<10) + `","B":"` + strings.Repeat("b", 100<<10) +
			`","C":"` + strings.Repeat("c", 100<<10) + `"}}`, "at most 262144 (256 KiB)"},
		{"a label value over 1 KiB", `{"image":"gantry/toolbox","labels":{"note":"` + strings.Repeat("n", 2000) + `"}}`, "labels: the value of note is 2000 bytes, at most 1024"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", n.URL+"/api/v1/jobs", strings.NewReader(tc.body))
			req.Header.Set("Authorization", "Bearer "+n.AdminToken)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct {
				Error string `json:"error"`
			}
			b, _ := io.ReadAll(resp.Body)
			gantrytest.JSON(t, b, &body)
			if resp.StatusCode != 400 || !strings.Contains(body.Error, tc.want) {
				t.Fatalf("status %d error %q; want 400 mentioning %q", resp.StatusCode, body.Error, tc.want)
			}
		})
	}
	t.Run("gantry run refuses a spec over 256 KiB in one line", func(t *testing.T) {
		cmd := exec.Command(gantrytest.Binary(t), "run", "-d", "--env", "A="+strings.Repeat("a", 120<<10), "--env", "B="+strings.Repeat("b", 120<<10),
			"--env", "C="+strings.Repeat("c", 30<<10), "gantry/toolbox", "--", "true")
		cmd.Env = append(os.Environ(), "GANTRY_ADDR="+n.URL, "GANTRY_TOKEN="+n.AdminToken, "HOME="+t.TempDir(), "XDG_CONFIG_HOME="+t.TempDir())
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		line := stderr.String()
		if cmd.ProcessState.ExitCode() != 1 || strings.Count(line, "\n") != 1 || !strings.HasPrefix(line, "gantry: spec: ") ||
			!strings.Contains(line, "at most 262144 (256 KiB)") || stdout.Len() != 0 {
			t.Fatalf("gantry run: %v, exit %d, stdout %q, stderr %q; want exit 1 and one line naming the limit", err, cmd.ProcessState.ExitCode(), stdout.String(), line)
		}
	})
	jobs, _, err := n.Client().Jobs(context.Background(), nil)
	if err != nil || len(jobs) != 0 {
		t.Fatalf("after only bad submissions the job list has %d jobs (err %v); want none", len(jobs), err)
	}
}

// TestCrashRecovery kills the server with SIGKILL while tasks run and checks
// that every acknowledged job reaches its true final state with no task run
// twice.
func TestCrashRecovery(t *testing.T) {
	t.Parallel()
	n := gantrytest.Start(t)
	c := n.Client()
	ctx := context.Background()
	var ids []string
	var mu sync.Mutex
	add := func(j *wire.Job) { mu.Lock(); ids = append(ids, j.ID); mu.Unlock() }
	// Long enough to be running at the kill, short enough to finish while the
	// node is down or right after.
	for i := 0; i < 4; i++ {
		add(submit(t, c, wire.JobSpec{Image: "gantry/toolbox", Command: []string{"sleep", "2"}, CPU: 100, Memory: 32 << 20}))
	}
	arr := submit(t, c, wire.JobSpec{Image: "gantry/toolbox", Command: []string{"sleep", "1"}, Array: 10, CPU: 200, Memory: 32 << 20})
	add(arr)
	failing := submit(t, c, wire.JobSpec{Image: "gantry/toolbox", Command: []string{"sh-not-here"}, CPU: 100, Memory: 32 << 20})
	add(failing)
	gantrytest.Eventually(t, time.Minute, func() bool {
		j, err := c.Job(ctx, arr.ID)
		return err == nil && j.Counts[wire.StateRunning] > 0
	}, "array job never ran")
	n.Kill9(t)
	n.Restart(t)
	c = n.Client()
	for _, id := range ids {
		j := waitJob(t, c, id, 2*time.Minute)
		want := wire.StateSucceeded
		if id == failing.ID {
			want = wire.StateFailed
		}
		if j.State != want {
			t.Fatalf("job %s ended %s, want %s", id, j.State, want)
		}
		tasks, err := c.Tasks(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for _, tk := range tasks {
			if tk.Attempts != 1 {
				td, _ := c.Task(ctx, id, tk.Index)
				t.Fatalf("job %s task %d has %d attempts, want exactly 1: %+v", id, tk.Index, tk.Attempts, td.AttemptList)
			}
		}
	}
	gantrytest.Eventually(t, 30*time.Second, func() bool { return len(n.Containers(t)) == 0 },
		"containers left behind after all jobs ended: %v", n.Containers(t))
}
