package api

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"testing"
	"time"

	"gantry/node/history"
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
					n, _ := resp.Body.Read(make([]byte, 0))
					_ = n
					buf := make([]byte, 64<<10)
					size := 0
					for {
						k, err := resp.Body.Read(buf)
						size += k
						if err != nil {
							break
						}
					}
					resp.Body.Close()
					lat = append(lat, time.Since(start))
					if resp.StatusCode != 200 {
						b.Fatalf("status %d", resp.StatusCode)
					}
					b.SetBytes(int64(size))
				}
				sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			})
		}
	}
}
