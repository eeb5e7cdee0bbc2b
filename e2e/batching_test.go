package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gantry/gantrytest"
	"gantry/wire"
)

// concurrentSubmissionsThroughAFollower (part of TestCluster): 16 clients
// submit 400 jobs at once through one follower, whose proposals travel to
// the leader in batches; every submission lands exactly once, with its own
// id, on every node, and the follower made fewer forward calls than it
// forwarded commands. The jobs wait for a parent job, so nothing runs.
func concurrentSubmissionsThroughAFollower(t *testing.T, cl *gantrytest.Cluster) {
	ctx := context.Background()
	f := cl.Followers(t)[0]
	c := f.Client()
	parent := submit(t, c, wire.JobSpec{Image: "gantry/toolbox", Command: []string{"sleep", "600"}, CPU: 100, Memory: 32 << 20})
	defer func() {
		if _, err := c.CancelDependents(ctx, parent.ID); err != nil {
			t.Errorf("cancel the parent and the submitted jobs: %v", err)
		}
	}()
	commands0 := metric(t, f, `gantry_proposals_total{path="forwarded"}`)
	calls0 := metric(t, f, `gantry_proposal_batches_total{path="forwarded"}`)

	const clients, each = 16, 25
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	ids := make([]string, clients*each)
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for w := 0; w < clients; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < each; k++ {
				i := w*each + k
				name := fmt.Sprintf("batch-%s-%03d", run, i)
				j, err := c.Submit(ctx, wire.JobSpec{Name: name, Image: "gantry/toolbox", Command: []string{"true"},
					CPU: 100, Memory: 32 << 20, After: []string{parent.ID}})
				if err != nil {
					errs <- fmt.Errorf("submission %d: %w", i, err)
					return
				}
				if j.Spec.Name != name {
					errs <- fmt.Errorf("submission %d (%s) was answered with job %s named %q", i, name, j.ID, j.Spec.Name)
					return
				}
				ids[i] = j.ID
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for i, id := range ids {
		if prev, dup := seen[id]; dup {
			t.Fatalf("submissions %d and %d got the same job %s", prev, i, id)
		}
		seen[id] = i
	}

	// Every node holds each job once, under the name its submitter gave it.
	for _, n := range cl.Nodes {
		got := jobsNamed(t, n, "batch-"+run)
		if len(got) != len(ids) {
			t.Fatalf("%s lists %d jobs of the run, want %d", n.Name, len(got), len(ids))
		}
		for i, id := range ids {
			if name := got[id]; name != fmt.Sprintf("batch-%s-%03d", run, i) {
				t.Fatalf("%s: job %s is named %q, want submission %d's name", n.Name, id, name, i)
			}
		}
	}

	commands := metric(t, f, `gantry_proposals_total{path="forwarded"}`) - commands0
	calls := metric(t, f, `gantry_proposal_batches_total{path="forwarded"}`) - calls0
	t.Logf("%s forwarded %.0f commands in %.0f calls", f.Name, commands, calls)
	if commands < float64(len(ids)) || calls >= commands {
		t.Fatalf("%s forwarded %.0f commands in %.0f calls: want the %d submissions batched", f.Name, commands, calls, len(ids))
	}

	// The runners' reports of the jobs run so far went through their
	// batchers: each task's start and end, in no more commands than reports.
	var reports, reportCommands float64
	for _, n := range cl.Nodes {
		reports += metric(t, n, "gantry_attempt_reports_total")
		reportCommands += metric(t, n, "gantry_attempt_report_commands_total")
	}
	t.Logf("attempt reports: %.0f in %.0f commands", reports, reportCommands)
	if reports == 0 || reportCommands > reports {
		t.Fatalf("attempt reports: %.0f in %.0f commands", reports, reportCommands)
	}
}

// jobsNamed lists, by a consistent read on n, the jobs whose name contains
// prefix: id -> name.
func jobsNamed(t *testing.T, n *gantrytest.Node, prefix string) map[string]string {
	t.Helper()
	out := map[string]string{}
	cursor := ""
	for {
		q := url.Values{"q": {prefix}, "limit": {"1000"}, "consistent": {"true"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		jobs, next, err := n.Client().Jobs(context.Background(), q)
		if err != nil {
			t.Fatalf("list jobs on %s: %v", n.Name, err)
		}
		for _, j := range jobs {
			if strings.HasPrefix(j.Spec.Name, prefix) {
				if _, dup := out[j.ID]; dup {
					t.Fatalf("%s lists job %s twice", n.Name, j.ID)
				}
				out[j.ID] = j.Spec.Name
			}
		}
		if next == "" {
			return out
		}
		cursor = next
	}
}

// metric reads one sample of n's /metrics, by its name and labels as the
// exposition writes them; a sample not there yet is 0.
func metric(t *testing.T, n *gantrytest.Node, sample string) float64 {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, n.URL+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+n.AdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("metrics of %s: %v", n.Name, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("metrics of %s: %q", n.Name, line)
			}
			return f
		}
	}
	return 0
}
