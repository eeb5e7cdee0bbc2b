package api

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"testing"
	"time"

	"gantry/node/history"
	"gantry/store"
)

// BenchmarkStatsHistory measures GET /api/v1/stats/history over real HTTP
// with a full day of history (8,640 samples at 10 s, 16 nodes, 16 users:
// the most the defaults keep), as an admin (every user's series) and as a
// user, for both windows; it reports the p99 latency (goal: 50 ms).
//
//	go test ./node/api -run '^$' -bench StatsHistory -benchtime 200x
func BenchmarkStatsHistory(b *testing.B) {
	f := newFixture(b)
	at := f.clock.Now()
	s := history.Snapshot{Nodes: map[string]history.NodePoint{}, Users: map[string]history.UserPoint{}}
	for i := range 16 {
		s.Nodes[fmt.Sprintf("node-%02d", i)] = history.NodePoint{4000, 1000, 800, 8192, 1024, 3000, 10}
	}
	for i := range 15 {
		s.Users[fmt.Sprintf("user-%02d", i)] = history.UserPoint{1000, 1024, 0, 4000, 0, 0, 10}
	}
	for i := 0; i < 8640; i++ {
		at = at.Add(10 * time.Second)
		s.At = at
		s.Cluster = history.ClusterPoint{64000, float32(i % 64000), 100, 131072, 1024, 2048, 8, 2, float32(i % 100), 10, 60, 60}
		f.hist.Record(s)
	}
	srv := httptest.NewServer(f.api)
	defer srv.Close()
	for _, who := range []role{admin, owner} {
		for _, w := range []string{"1h", "1d"} {
			b.Run(fmt.Sprintf("%s/%s", who, w), func(b *testing.B) {
				lat := make([]time.Duration, 0, b.N)
				for range b.N {
					req, _ := http.NewRequest("GET", srv.URL+"/api/v1/stats/history?window="+w, nil)
					req.Header.Set("Authorization", "Bearer "+f.tokens[userOf[who]])
					start := time.Now()
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						b.Fatal(err)
					}
					size, _ := io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					lat = append(lat, time.Since(start))
					if resp.StatusCode != 200 {
						b.Fatalf("status %d", resp.StatusCode)
					}
					b.SetBytes(size)
				}
				sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			})
		}
	}
}

// BenchmarkJobTimeline measures GET /api/v1/jobs/{id}/timeline over real
// HTTP for an array of 10,000 tasks, 10,000 attempts ended and 1,000
// retries, applied to a real store; it reports the p99 latency.
//
//	go test ./node/api -run '^$' -bench JobTimeline -benchtime 50x
func BenchmarkJobTimeline(b *testing.B) {
	f := newFixture(b)
	ctx := context.Background()
	const tasks = 10000
	spec := store.JobSpec{Image: "gantry/toolbox", Command: []string{"exit", "1"}, Array: tasks, Retries: 1, CPU: 1, Memory: 1 << 20}
	spec.Defaults()
	const job = "01JOBTIMELINEBENCH00000000"
	f.must(ignore(store.CmdSubmitJob.Propose(ctx, f.direct, store.SubmitJob{ID: job, Owner: "alice", Spec: spec})))
	f.must(ignore(store.CmdUpsertNode.Propose(ctx, f.direct, store.UpsertNode{Node: store.Node{Name: "big", Addr: "127.0.0.1:3",
		Capacity: store.Resources{CPU: 1 << 40, Memory: 1 << 50}}})))
	now := time.Now()
	apply := func(cmd interface{ Type() string }, payloads []any) {
		cmds := make([][]byte, 0, len(payloads))
		for _, p := range payloads {
			data, err := store.EncodeCommand(cmd.Type(), now, p)
			f.must(err)
			cmds = append(cmds, data)
		}
		for _, r := range f.direct.ApplyBatch(cmds) {
			if err, ok := r.(error); ok && err != nil {
				b.Fatal(err)
			}
		}
	}
	for attempt := 1; attempt <= 2; attempt++ {
		for lo := 0; lo < tasks; lo += 500 {
			var place store.Place
			var started, ended []any
			for i := lo; i < lo+500; i++ {
				if attempt == 2 && i%10 != 0 {
					continue
				}
				code := 0
				if attempt == 1 && i%10 == 0 {
					code = 1
				}
				place.Placements = append(place.Placements, store.Placement{JobID: job, Task: i, Node: "big"})
				started = append(started, store.AttemptStarted{JobID: job, Task: i, N: attempt, Container: "c", At: now})
				ended = append(ended, store.AttemptEnded{JobID: job, Task: i, N: attempt, Container: "c", ExitCode: code, Reason: store.ReasonExited, Ended: now.Add(time.Second)})
			}
			if len(started) == 0 {
				continue
			}
			apply(store.CmdPlace, []any{place})
			apply(store.CmdAttemptStarted, started)
			apply(store.CmdAttemptEnded, ended)
		}
	}
	srv := httptest.NewServer(f.api)
	defer srv.Close()
	b.ResetTimer()
	lat := make([]time.Duration, 0, b.N)
	for range b.N {
		req, _ := http.NewRequest("GET", srv.URL+"/api/v1/jobs/"+job+"/timeline", nil)
		req.Header.Set("Authorization", "Bearer "+f.tokens["alice"])
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		lat = append(lat, time.Since(start))
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
		b.SetBytes(n)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
}
