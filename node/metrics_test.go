package node

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"gantry/store"
)

// gather collects c and returns each sample's value by name and labels
// ("gantry_nodes{state=down}").
func gather(t *testing.T, c prometheus.Collector) map[string]float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			k := mf.GetName() + "{"
			for i, l := range m.GetLabel() {
				if i > 0 {
					k += ","
				}
				k += l.GetName() + "=" + l.GetValue()
			}
			k += "}"
			switch {
			case m.Gauge != nil:
				out[k] = m.GetGauge().GetValue()
			case m.Counter != nil:
				out[k] = m.GetCounter().GetValue()
			}
		}
	}
	return out
}

// TestStateMetricsFollowTheStore: the jobs and nodes metrics report what
// the replicated state holds: a node marked down reads 0 in gantry_node_up
// and counts under gantry_nodes{state="down"}, jobs count by state.
func TestStateMetricsFollowTheStore(t *testing.T) {
	st, err := store.Open(t.TempDir(), quiet())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	p := store.NewDirect(st)
	ctx := context.Background()
	for _, name := range []string{"a", "b"} {
		nd := store.Node{Name: name, State: store.NodeReady, Capacity: store.Resources{CPU: 4000, Memory: 8 << 30}}
		if _, err := store.CmdUpsertNode.Propose(ctx, p, store.UpsertNode{Node: nd}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := store.CmdSubmitJob.Propose(ctx, p, store.SubmitJob{ID: "j1", Owner: "alice",
		Spec: store.JobSpec{Image: "x", Array: 2, CPU: 100, Memory: 1 << 20}}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.CmdNodeLost.Propose(ctx, p, store.NodeLost{Name: "b"}); err != nil {
		t.Fatal(err)
	}
	got := gather(t, stateCollector{st})
	for k, want := range map[string]float64{
		"gantry_node_up{node=a}":                            1,
		"gantry_node_up{node=b}":                            0,
		"gantry_nodes{state=ready}":                         1,
		"gantry_nodes{state=down}":                          1,
		"gantry_nodes{state=draining}":                      0,
		"gantry_node_cpu_millicores{kind=capacity,node=a}":  4000,
		"gantry_node_memory_bytes{kind=capacity,node=a}":    8 << 30,
		"gantry_node_cpu_millicores{kind=allocated,node=a}": 0,
		"gantry_node_running_tasks{node=a}":                 0,
		"gantry_jobs{state=queued}":                         1,
		"gantry_jobs{state=succeeded}":                      0,
		"gantry_jobs_ended_total{state=failed}":             0,
		"gantry_jobs_ended_total{state=succeeded}":          0,
		"gantry_jobs_ended_total{state=cancelled}":          0,
	} {
		if v, ok := got[k]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", k, v, ok, want)
		}
	}
	if _, err := store.CmdCancelJob.Propose(ctx, p, store.CancelJob{ID: "j1", Actor: "alice"}); err != nil {
		t.Fatal(err)
	}
	got = gather(t, stateCollector{st})
	if got["gantry_jobs_ended_total{state=cancelled}"] != 1 || got["gantry_jobs{state=cancelled}"] != 1 || got["gantry_jobs{state=queued}"] != 0 {
		t.Fatalf("after a cancel: %v", got)
	}
}

// TestDiskMetricsReadTheDataDirectory: free space is reported, no larger
// than the file system.
func TestDiskMetricsReadTheDataDirectory(t *testing.T) {
	got := gather(t, diskCollector{dir: t.TempDir()})
	free, size := got["gantry_data_disk_free_bytes{}"], got["gantry_data_disk_size_bytes{}"]
	if size <= 0 || free <= 0 || free > size {
		t.Fatalf("disk free %v of %v", free, size)
	}
	if len(gather(t, diskCollector{dir: "/no/such/dir"})) != 0 {
		t.Fatal("a missing directory reports no disk metrics")
	}
}
