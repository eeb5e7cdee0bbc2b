package ui_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"gantry/gantrytest"
	"gantry/node/api"
	"gantry/node/auth"
	"gantry/store"
	"gantry/ui"
	"gantry/wire"
)

// chartValue is what a chart's path says about its series.
type chartValue struct {
	Key    string `json:"key"`
	Last   string `json:"last"`
	Points int    `json:"points"`
}

// readChart reads the series of a dashboard chart from its SVG's data
// attributes, with the time of the newest point the page drew.
const readCharts = `(() => ({
  time: Number(document.getElementById('main').dataset.lastTime || 0),
  charts: Object.fromEntries([...document.querySelectorAll('figure[data-chart]')].map((f) => [f.dataset.chart,
    [...f.querySelectorAll('path.chart-line')].map((p) => ({key: p.dataset.key, last: p.dataset.last, points: Number(p.dataset.points)}))])),
}))()`

type chartsOnPage struct {
	Time   int64                   `json:"time"`
	Charts map[string][]chartValue `json:"charts"`
}

func lastOf(s wire.Series) (float64, bool) {
	for i := len(s) - 1; i >= 0; i-- {
		if !math.IsNaN(s[i]) {
			return s[i], true
		}
	}
	return 0, false
}

// checkCharts compares every series the page drew with the API's answer
// for the same window and newest point; it reports false when the node
// took a sample between the two reads (the caller reads both again).
func checkCharts(t *testing.T, p *tab, c interface {
	Do(ctx context.Context, method, path string, in, out any) error
}, user string, admin bool) bool {
	t.Helper()
	got := eval[chartsOnPage](p, readCharts)
	var h wire.StatsHistory
	if err := c.Do(context.Background(), "GET", "/api/v1/stats/history?window=1h", nil, &h); err != nil {
		t.Fatal(err)
	}
	if len(h.Times) == 0 || h.Times[len(h.Times)-1] != got.Time {
		return false
	}
	want := map[string]map[string]wire.Series{
		"cpu": h.Cluster, "memory": h.Cluster, "gpu": h.Cluster, "queue": h.Cluster, "rate": h.Cluster,
		"node-cpu": {}, "node-used": {}, "user-cpu": {}, "user-memory": {},
	}
	for _, n := range h.Nodes {
		want["node-cpu"]["node:"+n.Name] = n.Series["cpu_allocated"]
		want["node-used"]["node:"+n.Name] = n.Series["cpu_used"]
	}
	for _, u := range h.Users {
		if admin {
			want["user-cpu"]["user:"+u.Name] = u.Series["cpu"]
			want["user-memory"]["user:"+u.Name] = u.Series["memory"]
		} else if u.Name == user {
			want["user-cpu"]["cpu"] = u.Series["cpu"]
			want["user-memory"]["memory"] = u.Series["memory"]
		} else {
			t.Errorf("%s's history has %s's usage", user, u.Name)
		}
	}
	for chart, series := range want {
		drawn := got.Charts[chart]
		if len(drawn) == 0 {
			t.Errorf("chart %s drew no series", chart)
		}
		for _, d := range drawn {
			s, ok := series[d.Key]
			if !ok {
				if strings.HasSuffix(d.Key, "_quota") {
					continue // a user's quota line: checked in the table
				}
				t.Errorf("chart %s drew %s, which the API does not answer", chart, d.Key)
				continue
			}
			if d.Points != len(h.Times) {
				t.Errorf("chart %s series %s has %d points, the API %d", chart, d.Key, d.Points, len(h.Times))
			}
			v, ok := lastOf(s)
			if !ok {
				if d.Last != "" {
					t.Errorf("chart %s series %s shows %s, the API has no value", chart, d.Key, d.Last)
				}
				continue
			}
			var shown float64
			if _, err := fmt.Sscan(d.Last, &shown); err != nil || math.Abs(shown-v) > 1e-6*math.Max(1, math.Abs(v)) {
				t.Errorf("chart %s series %s shows %q, the API %v", chart, d.Key, d.Last, v)
			}
		}
	}
	return true
}

// TestConsoleCharts: after a real workload on a real node sampling every
// second (jobs of gantry/toolbox at 100 millicores and 32 MiB, one array
// with every task retried once), the dashboard's charts draw the API's figures, a
// user sees only their own usage and an admin every user's; the small
// array's page draws its live timeline with the retry. Screenshots at 1280
// and 390 px and in the dark scheme.
func TestConsoleCharts(t *testing.T) {
	t.Parallel()
	b := browser(t)
	n := gantrytest.Start(t, gantrytest.Options{Args: []string{"--history-interval", "1s"}})
	ctx := context.Background()
	aliceAPI, alicePW := n.CreateUser(t, "alice")
	n.CreateUser(t, "bob")
	quota := wire.Resources{CPU: 4000, Memory: 1 << 30}
	if err := n.Client().Do(ctx, "PATCH", "/api/v1/users/alice", wire.UpdateUser{Quota: &quota}, nil); err != nil {
		t.Fatal(err)
	}
	bobQuota := wire.Resources{CPU: 1000}
	if err := n.Client().Do(ctx, "PATCH", "/api/v1/users/bob", wire.UpdateUser{Quota: &bobQuota}, nil); err != nil {
		t.Fatal(err)
	}
	// Every task fails its first attempt (exit 3) and succeeds on the retry.
	arr, err := aliceAPI.Submit(ctx, wire.JobSpec{Name: "charts-array", Image: "gantry/toolbox", Array: 4, Retries: 1, CPU: 100, Memory: 32 << 20,
		Command: []string{"fail-until", "2", "3"}})
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	long, err := aliceAPI.Submit(ctx, wire.JobSpec{Name: "charts-long", Image: "gantry/toolbox", Command: []string{"sleep", "120"}, CPU: 100, Memory: 32 << 20})
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	t.Cleanup(func() { _, _ = aliceAPI.Cancel(context.Background(), long.ID) })
	gantrytest.Eventually(t, 120*time.Second, func() bool {
		j, err := aliceAPI.Job(ctx, arr.ID)
		return err == nil && j.State == wire.StateSucceeded
	}, "the array job to succeed")

	alice := newTab(t, b, n.URL)
	alice.signIn("alice", alicePW)
	t.Run("the dashboard draws the API's figures after the workload", func(t *testing.T) {
		alice.t = t
		alice.open("/dashboard", `document.querySelector('figure[data-chart=cpu] path[data-key=cpu_allocated]')?.dataset.points > 5`, "the CPU chart with samples")
		var h wire.StatsHistory
		if err := aliceAPI.Do(ctx, "GET", "/api/v1/stats/history?window=1h", nil, &h); err != nil {
			t.Fatal(err)
		}
		if v, _ := maxOf(h.Cluster["started_per_min"]); v <= 0 {
			t.Errorf("the API's history has no task start: started_per_min %v", h.Cluster["started_per_min"])
		}
		if v, _ := maxOf(h.Cluster["cpu_allocated"]); v < 100 {
			t.Errorf("the API's history has no allocation: cpu_allocated max %v", v)
		}
		gantrytest.Eventually(t, 20*time.Second, func() bool { return checkCharts(t, alice, aliceAPI, "alice", false) }, "the charts and the API to agree on one newest point")
		if txt := eval[string](alice, `document.getElementById('main').innerText`); strings.Contains(txt, "bob") {
			t.Errorf("alice's dashboard names bob")
		}
		if got := eval[string](alice, `document.querySelector('tr[data-user=alice] td[data-label=CPU]')?.textContent || ''`); !strings.Contains(got, "of 4 CPU") {
			t.Errorf("alice's quota row says %q, want her 4 CPU quota", got)
		}
		desc := eval[string](alice, `document.querySelector('figure[data-chart=cpu] desc').textContent`)
		if !strings.HasPrefix(desc, "Latest: capacity") {
			t.Errorf("the CPU chart's accessible description is %q", desc)
		}
		eval[bool](alice, `(() => { const svg = document.querySelector('figure[data-chart=cpu] svg'); const r = svg.getBoundingClientRect();
		  svg.dispatchEvent(new PointerEvent('pointermove', {clientX: r.right - 20, clientY: r.top + 40, bubbles: true})); return true; })()`)
		if tip := eval[string](alice, `document.querySelector('figure[data-chart=cpu] .tip:not([hidden])')?.textContent || ''`); !strings.Contains(tip, "allocated:") {
			t.Errorf("the CPU chart's tooltip says %q, want the values under the pointer", tip)
		}
		eval[bool](alice, `(document.querySelector('figure[data-chart=cpu] svg').dispatchEvent(new PointerEvent('pointerleave')), true)`)
		alice.shoot("dashboard")
		alice.shootDark("dashboard")
		eval[any](alice, `document.querySelector('.segmented button[data-window="1d"]').click(); null`)
		alice.waitFor(10*time.Second, `document.getElementById('main').dataset.window === '1d'`, "the day window")
		alice.shoot("dashboard-day")
	})

	t.Run("the dashboard redraws when the node takes a sample, told over the live channel", func(t *testing.T) {
		alice.t = t
		alice.open("/dashboard", `document.getElementById('main').dataset.lastTime > 0`, "the dashboard")
		// Samples come every second; without the live channel the page
		// would fetch only every 6 s (its fallback while connected).
		for i := range 3 {
			last := eval[string](alice, `document.getElementById('main').dataset.lastTime`)
			alice.waitFor(4*time.Second, fmt.Sprintf(`document.getElementById('main').dataset.lastTime !== %q`, last), fmt.Sprintf("redraw %d after a new sample", i+1))
		}
	})

	t.Run("an admin sees every user's usage against quota", func(t *testing.T) {
		adm := newTab(t, b, n.URL)
		adm.t = t
		adm.signIn("admin", "admin-password-123")
		adm.open("/dashboard", `!!document.querySelector('tr[data-user=bob]') && !!document.querySelector('tr[data-user=alice]')`, "both users' rows")
		gantrytest.Eventually(t, 20*time.Second, func() bool { return checkCharts(t, adm, n.Client(), "admin", true) }, "the admin's charts and the API to agree")
		adm.shoot("dashboard-admin")
	})

	t.Run("the array's page draws its live timeline with the retry", func(t *testing.T) {
		alice.t = t
		var tl wire.Timeline
		if err := aliceAPI.Do(ctx, "GET", "/api/v1/jobs/"+arr.ID+"/timeline", nil, &tl); err != nil {
			t.Fatal(err)
		}
		if len(tl.Attempts) != 8 {
			t.Fatalf("the API's timeline has %d attempts, want 8 (4 tasks, each retried once): %+v", len(tl.Attempts), tl.Attempts)
		}
		alice.open("/jobs/"+arr.ID, `document.querySelector('#timeline svg')?.dataset.attempts === '8'`, "the timeline of 8 attempts")
		counts := eval[map[string]string](alice, `Object.fromEntries([...document.querySelectorAll('#timeline path[data-outcome]')].map((p) => [p.dataset.outcome, p.dataset.count]))`)
		if counts["succeeded"] != "4" || counts["retried"] != "4" || eval[string](alice, `document.querySelector('#timeline svg').dataset.retriedTasks`) != "4" {
			t.Errorf("the timeline's outcomes are %v, want 4 succeeded and 4 retried", counts)
		}
		alice.shoot("timeline-live")
	})
}

func maxOf(s wire.Series) (float64, bool) {
	m, ok := math.Inf(-1), false
	for _, v := range s {
		if !math.IsNaN(v) && v > m {
			m, ok = v, true
		}
	}
	return m, ok
}

// TestConsoleTimelineOf2000TasksSimulated: the timeline of an array of
// 2,000 tasks with retries. SIMULATED: 2,000 containers take ~25 min on
// the test machine, so the attempts are applied straight to a real store
// (store.Direct), behind the real API, hub and console in this process;
// TestConsoleCharts runs a real job through Docker for the live path.
func TestConsoleTimelineOf2000TasksSimulated(t *testing.T) {
	t.Parallel()
	b := browser(t)
	const tasks = 2000
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := store.Open(t.TempDir(), logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	d := store.NewDirect(st)
	ctx := context.Background()
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	hash, err := auth.HashPassword("alice-password-1")
	if err != nil {
		t.Fatal(err)
	}
	must(store.CmdBootstrap.Propose(ctx, d, store.Bootstrap{Cluster: store.ClusterInfo{ID: "simulated"},
		Admin: store.User{Name: "admin", PasswordHash: hash, Admin: true}, Token: store.Token{ID: "tok-admin", User: "admin", Name: "t"}, TokenHash: auth.HashToken(auth.NewSecret())}))
	must(store.CmdCreateUser.Propose(ctx, d, store.CreateUser{User: store.User{Name: "alice", PasswordHash: hash}}))
	must(store.CmdUpsertNode.Propose(ctx, d, store.UpsertNode{Node: store.Node{Name: "sim1", Addr: "127.0.0.1:1", Capacity: store.Resources{CPU: 1 << 40, Memory: 1 << 50}}}))
	spec := store.JobSpec{Name: "simulated-2000", Image: "gantry/toolbox", Command: []string{"exit", "1"}, Array: tasks, Retries: 2, CPU: 100, Memory: 32 << 20}
	spec.Defaults()
	const job = "01SIMULATED000000000000000"
	must(store.CmdSubmitJob.Propose(ctx, d, store.SubmitJob{ID: job, Owner: "alice", Spec: spec}))

	// Task i starts at i*30 ms (20 at a time, like a node of 20 slots) and
	// runs 0.5 to 2 s; every 7th fails once and succeeds on its retry,
	// every 97th fails all three attempts, the last 20 are still running.
	t0 := time.Now().Add(-5 * time.Minute)
	want := map[string]int{}
	run := func(attempt int, pick func(i int) (code int, ok bool)) {
		var place store.Place
		var started, ended []any
		for i := 0; i < tasks; i++ {
			code, ok := pick(i)
			if !ok {
				continue
			}
			at := t0.Add(time.Duration(i)*30*time.Millisecond + time.Duration(attempt-1)*70*time.Second)
			place.Placements = append(place.Placements, store.Placement{JobID: job, Task: i, Node: "sim1"})
			started = append(started, store.AttemptStarted{JobID: job, Task: i, N: attempt, Container: "sim", At: at})
			if code >= 0 {
				ended = append(ended, store.AttemptEnded{JobID: job, Task: i, N: attempt, Container: "sim", ExitCode: code, Reason: store.ReasonExited,
					Ended: at.Add(500*time.Millisecond + time.Duration(i%4)*500*time.Millisecond)})
			}
		}
		apply := func(cmd interface{ Type() string }, payloads []any) {
			cmds := make([][]byte, 0, len(payloads))
			for _, p := range payloads {
				data, err := store.EncodeCommand(cmd.Type(), time.Now(), p)
				if err != nil {
					t.Fatal(err)
				}
				cmds = append(cmds, data)
			}
			for _, r := range d.ApplyBatch(cmds) {
				if err, ok := r.(error); ok && err != nil {
					t.Fatalf("apply %s: %v", cmd.Type(), err)
				}
			}
		}
		apply(store.CmdPlace, []any{place})
		apply(store.CmdAttemptStarted, started)
		apply(store.CmdAttemptEnded, ended)
	}
	running := func(i int) bool { return i >= tasks-20 }
	run(1, func(i int) (int, bool) {
		switch {
		case running(i):
			want["running"]++
			return -1, true
		case i%97 == 0:
			want["retried"]++
			return 1, true
		case i%7 == 0:
			want["retried"]++
			return 1, true
		}
		want["succeeded"]++
		return 0, true
	})
	run(2, func(i int) (int, bool) {
		switch {
		case running(i):
			return 0, false
		case i%97 == 0:
			want["retried"]++
			return 1, true
		case i%7 == 0:
			want["succeeded"]++
			return 0, true
		}
		return 0, false
	})
	run(3, func(i int) (int, bool) {
		if !running(i) && i%97 == 0 {
			want["failed"]++
			return 1, true
		}
		return 0, false
	})
	attempts := want["running"] + want["succeeded"] + want["retried"] + want["failed"]

	au := auth.New(auth.Config{Store: st, NodeSecret: "simulated-secret", Logger: logger})
	hub := ui.NewHub(ui.HubConfig{Store: st, Logger: logger, Viewer: func(r *http.Request) (ui.Viewer, bool) {
		id, ok := auth.FromContext(r.Context())
		return ui.Viewer{User: id.User, Admin: id.Admin}, ok
	}})
	t.Cleanup(func() { hub.Shutdown(context.Background()) })
	srv := httptest.NewServer(api.New(api.Config{Store: st, Proposer: d, Auth: au, Logger: logger, NodeName: "sim1",
		Leader: func() (bool, string) { return true, "sim1" }, Events: hub, UI: ui.Assets()}))
	t.Cleanup(srv.Close)

	p := newTab(t, b, srv.URL)
	p.signIn("alice", "alice-password-1")
	s := time.Now()
	p.open("/jobs/"+job, fmt.Sprintf(`document.querySelector('#timeline svg')?.dataset.attempts === '%d'`, attempts), "the timeline of every attempt")
	t.Logf("timeline of %d tasks, %d attempts drawn %s after opening the page", tasks, attempts, time.Since(s).Round(time.Millisecond))
	counts := eval[map[string]string](p, `Object.fromEntries([...document.querySelectorAll('#timeline path[data-outcome]')].map((p) => [p.dataset.outcome, p.dataset.count]))`)
	for k, w := range want {
		if counts[k] != fmt.Sprint(w) {
			t.Errorf("the timeline shows %s attempts %s, want %d (all: %v, want %v)", k, counts[k], w, counts, want)
		}
	}
	retried := 0
	for i := 0; i < tasks-20; i++ {
		if i%7 == 0 || i%97 == 0 {
			retried++
		}
	}
	if got := eval[string](p, `document.querySelector('#timeline svg').dataset.retriedTasks`); got != fmt.Sprint(retried) {
		t.Errorf("the timeline says %s tasks retried, want %d", got, retried)
	}
	if n := eval[int](p, `document.querySelectorAll('#timeline svg path').length`); n != 6 {
		t.Errorf("the timeline has %d paths, want one per outcome (6)", n)
	}
	p.shoot("timeline-2000-simulated")
	p.shootDark("timeline-2000-simulated")
}
