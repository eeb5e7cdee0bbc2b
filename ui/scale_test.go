package ui_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gantry/gantrytest"
	"gantry/wire"
)

// TestConsolePagesThrough100000Jobs: a user with 100,000 jobs (submitted
// through the API to a real server, the node drained so they stay queued)
// opens the jobs page, pages deep into the list, filters by state and finds
// one job by name; every view appears within the bound. It is the one
// browser test that does not call t.Parallel: its bounds are timings, taken
// before the other tests start their browsers.
func TestConsolePagesThrough100000Jobs(t *testing.T) {
	const total, clients = 100000, 16
	const bound = 2 * time.Second // per page, on a shared 2-core machine
	// A text search reads every job it passes (0.9 s for all 100,000 here).
	const searchBound = 5 * time.Second
	b := browser(t)
	n := gantrytest.Start(t)
	ctx := context.Background()
	alice, pw := n.CreateUser(t, "alice")
	nodes, err := n.Client().Nodes(ctx)
	if err != nil || len(nodes) != 1 {
		t.Fatalf("nodes: %v %v", nodes, err)
	}
	if _, err := n.Client().DrainNode(ctx, nodes[0].Name, "drain", 0); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for w := 0; w < clients; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > total {
					return
				}
				if _, err := alice.Submit(ctx, wire.JobSpec{Name: fmt.Sprintf("job-%06d", i), Image: "gantry/toolbox", Command: []string{"true"}, CPU: 100, Memory: 32 << 20}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("submit: %v", err)
	}
	t.Logf("submitted %d jobs in %s", total, time.Since(start).Round(time.Millisecond))

	p := newTab(t, b, n.URL)
	p.signIn("alice", pw)
	timed := func(what, js string) time.Duration {
		t.Helper()
		s := time.Now()
		p.waitFor(20*time.Second, js, what)
		d := time.Since(s)
		if d > bound {
			t.Errorf("%s took %s, want under %s", what, d.Round(time.Millisecond), bound)
		}
		return d
	}
	// What each page must start with, from the API's own cursor pages.
	var heads []string
	cursor := ""
	for i := 0; i < 11; i++ {
		q := url.Values{"limit": {"50"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		jobs, nxt, err := alice.Jobs(ctx, q)
		if err != nil || len(jobs) != 50 {
			t.Fatalf("API page %d: %d jobs, %v", i+1, len(jobs), err)
		}
		heads = append(heads, jobs[0].Spec.Name)
		cursor = nxt
	}
	page := `document.querySelectorAll('table.jobs tbody tr').length === 50 && document.querySelector('table.jobs tbody tr a')?.textContent === %q`
	d := timed("the first page", fmt.Sprintf(page, heads[0]))
	t.Logf("first page of 50 of %d jobs: %s", total, d.Round(time.Millisecond))
	var pages []time.Duration
	for i := 1; i < len(heads); i++ {
		eval[any](p, `document.querySelector('.pager button:last-child').click(); null`)
		pages = append(pages, timed(fmt.Sprintf("page %d", i+1), fmt.Sprintf(page, heads[i])))
	}
	t.Logf("pages 2-11 (Older): %v", pages)
	p.open("/jobs?state=queued", `document.querySelectorAll('table.jobs tbody tr').length === 50`, "the queued filter")
	want := 54321
	s := time.Now()
	p.open(fmt.Sprintf("/jobs?q=job-%06d", want), fmt.Sprintf(`document.querySelectorAll('table.jobs tbody tr').length === 1 && document.querySelector('table.jobs tbody tr a')?.textContent === 'job-%06d'`, want), "one job found by name")
	if d := time.Since(s); d > searchBound {
		t.Errorf("search by name among %d jobs took %s, want under %s", total, d.Round(time.Millisecond), searchBound)
	} else {
		t.Logf("search by name among %d jobs: %s", total, d.Round(time.Millisecond))
	}
	p.shoot("jobs-100000")
	out, errOut, code := n.GantryAs(t, alice.Token, "job", "ls", "-q", fmt.Sprintf("job-%06d", want))
	if code != 0 || !strings.Contains(out, fmt.Sprintf("job-%06d", want)) {
		t.Fatalf("gantry job ls -q among %d jobs: code %d\n%s%s", total, code, out, errOut)
	}
}
