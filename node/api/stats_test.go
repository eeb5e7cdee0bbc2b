package api

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"slices"
	"sort"
	"testing"
	"time"

	"gantry/node/history"
	"gantry/store"
	"gantry/wire"
)

// TestStatsHistory: the history answers the cluster's figures to
// everyone, every user's usage to admins and only their own to a user;
// a bad window or point count is refused.
func TestStatsHistory(t *testing.T) {
	f := newFixture(t)
	names := func(ns []wire.NamedSeries) []string {
		var out []string
		for _, n := range ns {
			out = append(out, n.Name)
		}
		return out
	}
	for _, tc := range []struct {
		who   role
		users []string
	}{{admin, []string{"alice", "bob"}}, {owner, []string{"alice"}}, {other, []string{"bob"}}} {
		t.Run(fmt.Sprintf("%s sees the cluster and the users %v", tc.who, tc.users), func(t *testing.T) {
			w := f.do(tc.who, "GET", "/api/v1/stats/history", nil)
			if w.Code != http.StatusOK {
				t.Fatalf("status %d: %s", w.Code, w.Body.String())
			}
			h := decodeAs[wire.StatsHistory](t, w)
			if h.Window != "1h" || len(h.Times) != 1 || h.Interval != 10 || h.Node != "n1" {
				t.Fatalf("window %q, %d points, interval %v, node %q; want 1h, 1, 10, n1", h.Window, len(h.Times), h.Interval, h.Node)
			}
			// The fixture's node offers 4000 millicores; alice's placed task
			// holds the spec's default; "used" is the fake measurement.
			if h.Cluster["cpu_capacity"][0] != 4000 || h.Cluster["cpu_used"][0] != 700 || h.Cluster["memory_used"][0] != 3<<30 {
				t.Errorf("cluster cpu %v capacity, %v used, memory %v used; want 4000, 700, 3 GiB", h.Cluster["cpu_capacity"], h.Cluster["cpu_used"], h.Cluster["memory_used"])
			}
			if h.Cluster["cpu_allocated"][0] <= 0 {
				t.Errorf("cluster cpu_allocated %v, want alice's placed task", h.Cluster["cpu_allocated"])
			}
			if got := names(h.Nodes); !slices.Equal(got, []string{"n1"}) {
				t.Errorf("nodes %v, want [n1]", got)
			}
			got := names(h.Users)
			sort.Strings(got)
			if !slices.Equal(got, tc.users) {
				t.Errorf("users %v, want %v", got, tc.users)
			}
			for _, u := range h.Users {
				if u.Name == "bob" && (u.Series["cpu_quota"][0] != 2000 || u.Series["memory_quota"][0] != 4<<30 || u.Series["cpu"][0] != 0) {
					t.Errorf("bob's series %v, want 0 of a 2000 millicore and 4 GiB quota", u.Series)
				}
			}
		})
	}
	t.Run("a day answers in points of at least a minute", func(t *testing.T) {
		h := decodeAs[wire.StatsHistory](t, f.do(owner, "GET", "/api/v1/stats/history?window=1d&points=100", nil))
		if h.Window != "1d" || h.Step < 60 {
			t.Fatalf("window %q step %v, want 1d and at least 60 s", h.Window, h.Step)
		}
	})
	t.Run("a missing figure is null", func(t *testing.T) {
		f.clock.Advance(10 * time.Second)
		f.hist.Record(history.Snapshot{At: f.clock.Now()}) // nothing measured
		w := f.do(owner, "GET", "/api/v1/stats/history", nil)
		h := decodeAs[wire.StatsHistory](t, w)
		if len(h.Times) != 2 || !math.IsNaN(h.Nodes[0].Series["cpu_used"][1]) {
			t.Fatalf("n1's cpu_used %v, want a missing second point", h.Nodes[0].Series["cpu_used"])
		}
	})
	for _, q := range []string{"window=2h", "points=5", "points=x"} {
		t.Run("?"+q+" is refused", func(t *testing.T) {
			wantError(t, f.do(owner, "GET", "/api/v1/stats/history?"+q, nil), 400, wire.CodeInvalid)
		})
	}
}

// TestJobTimeline: a job's attempts come in task order with their times
// and states, retries as further attempts, a page at a time.
func TestJobTimeline(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	spec := store.JobSpec{Image: "gantry/toolbox", Command: []string{"exit", "1"}, Array: 5, Retries: 1, CPU: 100, Memory: 32 << 20}
	spec.Defaults()
	const job = "01JOBTIMELINE0000000000000"
	f.must(ignore(store.CmdSubmitJob.Propose(ctx, f.direct, store.SubmitJob{ID: job, Owner: "alice", Spec: spec})))
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	run := func(task, n, code int, at time.Time) {
		f.must(ignore(store.CmdPlace.Propose(ctx, f.direct, store.Place{Placements: []store.Placement{{JobID: job, Task: task, Node: "n1"}}})))
		f.must(ignore(store.CmdAttemptStarted.Propose(ctx, f.direct, store.AttemptStarted{JobID: job, Task: task, N: n, Container: "c", At: at})))
		f.must(ignore(store.CmdAttemptEnded.Propose(ctx, f.direct, store.AttemptEnded{JobID: job, Task: task, N: n, Container: "c", ExitCode: code, Reason: store.ReasonExited, Ended: at.Add(time.Second)})))
	}
	run(0, 1, 1, t0)
	run(0, 2, 0, t0.Add(2*time.Second))
	run(3, 1, 0, t0)
	tl := decodeAs[wire.Timeline](t, f.do(owner, "GET", "/api/v1/jobs/"+job+"/timeline", nil))
	if tl.Total != 5 || tl.Next != "" || len(tl.Attempts) != 3 {
		t.Fatalf("total %d next %q attempts %+v; want 5, \"\", 3 attempts", tl.Total, tl.Next, tl.Attempts)
	}
	first := tl.Attempts[0]
	if first.Task != 0 || first.Attempt != 1 || first.State != store.StateFailed || first.Start != t0.UnixMilli() || first.End != t0.Add(time.Second).UnixMilli() {
		t.Errorf("first attempt %+v, want task 0 attempt 1 failed from t0 to t0+1s", first)
	}
	if a := tl.Attempts[1]; a.Task != 0 || a.Attempt != 2 || a.State != store.StateSucceeded {
		t.Errorf("second attempt %+v, want task 0's retry, succeeded", a)
	}
	page := decodeAs[wire.Timeline](t, f.do(owner, "GET", "/api/v1/jobs/"+job+"/timeline?limit=2", nil))
	if len(page.Attempts) != 2 || page.Next != "2" {
		t.Fatalf("first page of 2 tasks: %+v next %q, want task 0's two attempts and next 2", page.Attempts, page.Next)
	}
	page = decodeAs[wire.Timeline](t, f.do(owner, "GET", "/api/v1/jobs/"+job+"/timeline?cursor=2&limit=2", nil))
	if len(page.Attempts) != 1 || page.Attempts[0].Task != 3 || page.Next != "4" {
		t.Fatalf("second page: %+v next %q, want task 3's attempt and next 4", page.Attempts, page.Next)
	}
	wantError(t, f.do(other, "GET", "/api/v1/jobs/"+job+"/timeline", nil), 404, wire.CodeNotFound)
	wantError(t, f.do(owner, "GET", "/api/v1/jobs/"+job+"/timeline?limit=0", nil), 400, wire.CodeInvalid)
}
