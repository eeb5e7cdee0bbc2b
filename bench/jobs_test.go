//go:build bench

// Package bench holds Gantry's benchmarks. Each reports a ratio against a
// baseline measured in the same run (the machine is shared and noisy).
// Run them with `make bench`.
package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"

	gclient "gantry/client"
	"gantry/gantrytest"
	"gantry/wire"
)

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func pct(d []time.Duration, p float64) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(float64(len(s)-1) * p)
	return s[i]
}

func report(t *testing.T, format string, args ...any) {
	t.Helper()
	line := fmt.Sprintf(format, args...)
	t.Log(line)
	if f, err := os.OpenFile(os.Getenv("GANTRY_BENCH_OUT"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
		fmt.Fprintln(f, line)
		f.Close()
	}
}

func timeCmd(t *testing.T, env []string, name string, args ...string) time.Duration {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return time.Since(start)
}

// TestBenchJobOverhead: median wall time of `gantry run gantry/toolbox --
// true` against `docker run --rm` of the same image, alternating.
func TestBenchJobOverhead(t *testing.T) {
	n := gantrytest.Start(t)
	env := []string{"GANTRY_ADDR=" + n.URL, "GANTRY_TOKEN=" + n.AdminToken}
	bin := gantrytest.Binary(t)
	// Warm both paths once. The runner pulls the toolbox from the node's
	// registry by digest; docker run uses that same local image by id.
	timeCmd(t, env, bin, "run", "gantry/toolbox", "--", "true")
	img := toolboxImageID(t, n)
	timeCmd(t, nil, "docker", "run", "--rm", img, "true")
	var g, d []time.Duration
	for i := 0; i < 15; i++ {
		g = append(g, timeCmd(t, env, bin, "run", "gantry/toolbox", "--", "true"))
		d = append(d, timeCmd(t, nil, "docker", "run", "--rm", img, "true"))
	}
	gm, dm := median(g), median(d)
	report(t, "job overhead: gantry run median %s, docker run --rm median %s, ratio %.2f (target <= 1.3)", gm.Round(time.Millisecond), dm.Round(time.Millisecond), float64(gm)/float64(dm))
}

// toolboxImageID is the id of the toolbox image Docker pulled from n's
// registry (the runner pulls it at start).
func toolboxImageID(t *testing.T, n *gantrytest.Node) string {
	t.Helper()
	var id string
	gantrytest.Eventually(t, 60*time.Second, func() bool {
		out, err := exec.Command("docker", "images", "--format", "{{.Repository}} {{.ID}}").Output()
		if err != nil {
			return false
		}
		for _, l := range strings.Split(string(out), "\n") {
			if repo, i, ok := strings.Cut(l, " "); ok && repo == n.HTTPAddr+"/gantry/toolbox" {
				id = i
				return true
			}
		}
		return false
	}, "the toolbox pulled from %s in Docker", n.HTTPAddr)
	return id
}

// TestBenchThroughput: 200 one-second tasks through Gantry against the same
// 200 containers started directly with the Docker API at the same
// parallelism.
func TestBenchThroughput(t *testing.T) {
	const tasks, parallel = 200, 20
	n := gantrytest.Start(t)
	c := n.Client()
	ctx := context.Background()
	nodes, err := c.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cpu := nodes[0].Capacity.CPU / parallel
	start := time.Now()
	j, err := c.Submit(ctx, wire.JobSpec{Image: "gantry/toolbox", Command: []string{"sleep", "1"}, Array: tasks, CPU: cpu, Memory: 32 << 20})
	if err != nil {
		t.Fatal(err)
	}
	for {
		cur, err := c.Wait(ctx, j.ID, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if wire.Terminal(cur.State) {
			if cur.State != wire.StateSucceeded {
				t.Fatalf("job %s", cur.State)
			}
			break
		}
	}
	gantryDur := time.Since(start)

	img := toolboxImageID(t, n)
	dc, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	work := make(chan int, tasks)
	for i := 0; i < tasks; i++ {
		work <- i
	}
	close(work)
	start = time.Now()
	var wg sync.WaitGroup
	var firstErr error
	var mu sync.Mutex
	for w := 0; w < parallel; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if err := directRun(ctx, dc, img, i, cpu); err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	directDur := time.Since(start)
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	gr, dr := float64(tasks)/gantryDur.Seconds(), float64(tasks)/directDur.Seconds()
	report(t, "throughput: 200 x 1s tasks at parallelism %d: gantry %.1f tasks/s (%s), direct Docker API %.1f tasks/s (%s), ratio %.2f (target >= 0.8)",
		parallel, gr, gantryDur.Round(time.Millisecond), dr, directDur.Round(time.Millisecond), gr/dr)
}

func directRun(ctx context.Context, dc *client.Client, img string, i int, cpu int64) error {
	name := "gantry-bench-direct-" + strconv.Itoa(i) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	cr, err := dc.ContainerCreate(ctx, &container.Config{Image: img, Cmd: []string{"sleep", "1"}, Labels: map[string]string{"gantry.bench": "1"}},
		&container.HostConfig{Resources: container.Resources{NanoCPUs: cpu * 1e6, Memory: 32 << 20}}, nil, nil, name)
	if err != nil {
		return err
	}
	defer dc.ContainerRemove(context.Background(), cr.ID, container.RemoveOptions{Force: true})
	waitC, errC := dc.ContainerWait(ctx, cr.ID, container.WaitConditionNextExit)
	if err := dc.ContainerStart(ctx, cr.ID, container.StartOptions{}); err != nil {
		return err
	}
	select {
	case <-waitC:
	case err := <-errC:
		return err
	}
	// Collect the logs, as Gantry does.
	rc, err := dc.ContainerLogs(ctx, cr.ID, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err == nil {
		rc.Close()
	}
	return nil
}

// TestBenchSubmission: 10,000 job submissions from 16 concurrent clients to
// one drained node (tasks stay queued).
func TestBenchSubmission(t *testing.T) {
	const total, clients = 10000, 16
	n := gantrytest.Start(t)
	c := n.Client()
	ctx := context.Background()
	if _, err := c.SetNodeState(ctx, n.Name, "drain"); err != nil {
		t.Fatal(err)
	}
	dur, lat := submitMany(t, []*gantrytest.Node{n}, total, clients)
	report(t, "submission: %d jobs from %d clients in %s: %.0f jobs/s (target >= 2000), p50 %s, p99 %s",
		total, clients, dur.Round(time.Millisecond), float64(total)/dur.Seconds(), pct(lat, 0.5).Round(time.Microsecond), pct(lat, 0.99).Round(time.Microsecond))
}

// submitMany submits total one-task jobs from clients concurrent clients,
// spread over nodes, and returns the wall time and each request's latency.
func submitMany(t *testing.T, nodes []*gantrytest.Node, total, clients int) (time.Duration, []time.Duration) {
	t.Helper()
	next := make(chan int, total)
	for i := 0; i < total; i++ {
		next <- i
	}
	close(next)
	var mu sync.Mutex
	var lat []time.Duration
	errs := make(chan error, clients)
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < clients; w++ {
		n := nodes[w%len(nodes)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := gclient.New(n.URL, n.AdminToken)
			var mine []time.Duration
			for range next {
				s := time.Now()
				if _, err := c.Submit(context.Background(), wire.JobSpec{Image: "gantry/toolbox", Command: []string{"true"}}); err != nil {
					errs <- err
					return
				}
				mine = append(mine, time.Since(s))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	dur := time.Since(start)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return dur, lat
}

// TestBenchIdleMemory: RSS of gantry server after start.
func TestBenchIdleMemory(t *testing.T) {
	n := gantrytest.Start(t)
	// Let start-up garbage be collected: wait until RSS stops growing.
	var last int
	gantrytest.Eventually(t, 30*time.Second, func() bool {
		r := rss(t, n.PID())
		stable := r > 0 && r <= last
		last = r
		return stable
	}, "rss never settled")
	report(t, "idle memory: gantry server RSS %.1f MB after start (target <= 60 MB)", float64(rss(t, n.PID()))/1024)
}

func rss(t *testing.T, pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			kb, _ := strconv.Atoi(f[1])
			return kb
		}
	}
	return 0
}
