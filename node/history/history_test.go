package history

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"testing"
	"time"

	"gantry/gantrytest"
	"gantry/store"
)

// fakeSource is a hand-written Source whose figures the test sets.
type fakeSource struct {
	nodes             []store.Node
	depth             int
	started, finished uint64
	usages            map[string]store.UserUsage
	quotas            map[string]store.Resources
}

func (f *fakeSource) Nodes() ([]store.Node, error)                { return f.nodes, nil }
func (f *fakeSource) QueueDepth() (int, error)                    { return f.depth, nil }
func (f *fakeSource) TaskCounts() (uint64, uint64)                { return f.started, f.finished }
func (f *fakeSource) Usages() (map[string]store.UserUsage, error) { return f.usages, nil }
func (f *fakeSource) Quotas() (map[string]store.Resources, error) { return f.quotas, nil }

func node(name string, cpu, alloc int64) store.Node {
	return store.Node{Name: name, State: store.NodeReady, Capacity: store.Resources{CPU: cpu, Memory: 4 << 30, GPUs: 1},
		Allocated: store.Resources{CPU: alloc, Memory: 1 << 30}, Running: int(alloc / 100)}
}

func newTestHistory(src *fakeSource, clock *gantrytest.Clock, used func(context.Context, store.Node) *store.Resources) *History {
	return New(Config{Source: src, Used: used, Now: clock.Now})
}

func last(xs []float64) float64 { return xs[len(xs)-1] }

// TestSamplesAreTheClusters: a sample sums the nodes' capacity,
// allocation and measured use, reports the queue, the start and finish
// rates per minute, and each user's usage against quota.
func TestSamplesAreTheClusters(t *testing.T) {
	clock := gantrytest.NewClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	src := &fakeSource{nodes: []store.Node{node("n1", 4000, 1000), node("n2", 2000, 500)}, depth: 7,
		usages: map[string]store.UserUsage{"alice": {Allocated: store.Resources{CPU: 1500, Memory: 2 << 30}, Tasks: 15}},
		quotas: map[string]store.Resources{"alice": {CPU: 3000}, "bob": {Memory: 8 << 30}}}
	used := func(_ context.Context, n store.Node) *store.Resources {
		if n.Name == "n2" {
			return nil // not measured: missing, not zero
		}
		return &store.Resources{CPU: 700, Memory: 3 << 30}
	}
	h := newTestHistory(src, clock, used)
	ctx := context.Background()
	h.Sample(ctx)
	clock.Advance(10 * time.Second)
	src.started, src.finished = 5, 2
	h.Sample(ctx)
	v := h.Read(Hour, 0, func(string) bool { return true })
	if len(v.Times) != 2 || v.Step != 10*time.Second {
		t.Fatalf("%d points at %s, want 2 at 10s", len(v.Times), v.Step)
	}
	want := map[string]float64{"cpu_capacity": 6000, "cpu_allocated": 1500, "cpu_used": 700, "memory_capacity": 8 << 30,
		"memory_allocated": 2 << 30, "memory_used": 3 << 30, "gpu_capacity": 2, "gpu_allocated": 0, "queue_depth": 7, "running": 15,
		"started_per_min": 30, "finished_per_min": 12}
	for k, w := range want {
		if got := last(v.Cluster[k]); got != w {
			t.Errorf("cluster %s = %v, want %v", k, got, w)
		}
	}
	if len(v.Nodes) != 2 || v.Nodes[1].Name != "n2" || !math.IsNaN(last(v.Nodes[1].Fields["cpu_used"])) {
		t.Errorf("nodes = %+v, want n1 and n2 with n2's use missing", v.Nodes)
	}
	if len(v.Users) != 2 || v.Users[0].Name != "alice" || last(v.Users[0].Fields["cpu"]) != 1500 || last(v.Users[0].Fields["cpu_quota"]) != 3000 ||
		last(v.Users[1].Fields["memory_quota"]) != 8<<30 {
		t.Errorf("users = %+v, want alice at 1500 of 3000 and bob with an 8 GiB quota", v.Users)
	}
	if v := h.Read(Hour, 0, func(u string) bool { return u == "bob" }); len(v.Users) != 1 || v.Users[0].Name != "bob" {
		t.Errorf("a reader allowed only bob sees %+v", v.Users)
	}
	if v := h.Read(Hour, 0, nil); len(v.Users) != 0 {
		t.Errorf("a reader allowed no user sees %+v", v.Users)
	}
}

// TestTheRingsKeepAnHourAndADay: the hour ring keeps its last 360 samples,
// the day ring one mean a minute for 1,440 minutes, and Read merges points
// to stay under the maximum asked.
func TestTheRingsKeepAnHourAndADay(t *testing.T) {
	clock := gantrytest.NewClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	src := &fakeSource{nodes: []store.Node{node("n1", 4000, 0)}}
	h := newTestHistory(src, clock, nil)
	ctx := context.Background()
	for i := 0; i < 2*8640; i++ { // two days at 10 s
		src.depth = i % 6 // the mean of a minute is 2.5
		h.Sample(ctx)
		clock.Advance(10 * time.Second)
	}
	hv := h.Read(Hour, 0, nil)
	if len(hv.Times) != 360 || hv.Times[359]-hv.Times[0] != 359*10_000 {
		t.Fatalf("hour: %d points over %d ms, want 360 over 3590 s", len(hv.Times), hv.Times[len(hv.Times)-1]-hv.Times[0])
	}
	dv := h.Read(Day, 0, nil)
	if len(dv.Times) != 1440 || dv.Step != time.Minute {
		t.Fatalf("day: %d points at %s, want 1440 at 1m", len(dv.Times), dv.Step)
	}
	if q := dv.Cluster["queue_depth"][100]; q != 2.5 {
		t.Errorf("a day point's queue depth is %v, want the minute's mean 2.5", q)
	}
	if !math.IsNaN(last(dv.Cluster["cpu_used"])) {
		t.Errorf("use never measured reads %v, want missing", last(dv.Cluster["cpu_used"]))
	}
	mv := h.Read(Day, 300, nil)
	if len(mv.Times) != 288 || mv.Step != 5*time.Minute || mv.Times[287] != dv.Times[1439] {
		t.Errorf("day at most 300 points: %d at %s ending %d, want 288 at 5m ending with the newest %d", len(mv.Times), mv.Step, mv.Times[len(mv.Times)-1], dv.Times[1439])
	}
}

// TestSeriesAreBounded: names beyond MaxNodes are not recorded but
// reported, and a node gone for a whole ring loses its series.
func TestSeriesAreBounded(t *testing.T) {
	clock := gantrytest.NewClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	src := &fakeSource{nodes: []store.Node{node("a", 1000, 0), node("b", 1000, 0), node("c", 1000, 0)}}
	h := New(Config{Source: src, Now: clock.Now, MaxNodes: 2, Interval: time.Minute})
	ctx := context.Background()
	h.Sample(ctx)
	if v := h.Read(Hour, 0, nil); len(v.Nodes) != 2 || last(v.Cluster["cpu_capacity"]) != 3000 {
		t.Fatalf("%d node series and %v capacity, want 2 series and the cluster's 3000", len(v.Nodes), last(v.Cluster["cpu_capacity"]))
	}
	if d := h.Dropped(); len(d) != 1 || d[0] != "node:c" {
		t.Fatalf("Dropped = %v, want [node:c]", d)
	}
	src.nodes = src.nodes[2:]
	for i := 0; i < 60; i++ {
		clock.Advance(time.Minute)
		h.Sample(ctx)
	}
	if v := h.Read(Hour, 0, nil); len(v.Nodes) != 1 || v.Nodes[0].Name != "c" {
		t.Fatalf("after an hour without a and b: %+v, want only c", v.Nodes)
	}
}

// fill records a day of samples, 10 s apart, for nodes and users.
func fill(h *History, nodes, users int) {
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	s := Snapshot{Nodes: map[string]NodePoint{}, Users: map[string]UserPoint{}}
	for i := range nodes {
		s.Nodes[fmt.Sprintf("node-%02d", i)] = NodePoint{4000, 1000, 800, 8192, 1024, 3000, 10}
	}
	for i := range users {
		s.Users[fmt.Sprintf("user-%02d", i)] = UserPoint{1000, 1024, 0, 4000, 0, 0, 10}
	}
	for i := 0; i < 8640; i++ {
		s.At = at.Add(time.Duration(i) * 10 * time.Second)
		s.Cluster = ClusterPoint{64000, float32(i % 64000), 100, 131072, 1024, 2048, 8, 2, float32(i % 100), 10, 60, 60}
		h.Record(s)
	}
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// TestADayCostsUnderTwoMegabytes: a day at one sample per 10 s, with the
// most node and user series the defaults keep (16 each), holds under
// 2 MB of heap, the bound of the issue.
func TestADayCostsUnderTwoMegabytes(t *testing.T) {
	before := heapInUse()
	h := New(Config{Source: &fakeSource{}})
	fill(h, 16, 16)
	after := heapInUse()
	runtime.KeepAlive(h)
	held := int64(after) - int64(before)
	t.Logf("a day of history (16 nodes, 16 users, 8,640 samples at 10 s): %.2f MB of heap", float64(held)/1e6)
	if held > 2<<20 {
		t.Fatalf("a day of history holds %d bytes, want at most 2 MB", held)
	}
}

// BenchmarkDayOfHistory reports the heap a day of history holds (16
// nodes, 16 users) and the cost of recording a sample.
func BenchmarkDayOfHistory(b *testing.B) {
	var held uint64
	for range b.N {
		before := heapInUse()
		h := New(Config{Source: &fakeSource{}})
		fill(h, 16, 16)
		held = heapInUse() - before
		runtime.KeepAlive(h)
	}
	b.ReportMetric(float64(held), "heap-bytes/day")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*8640), "ns/sample")
}
