//go:build bench

package bench

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"gantry/store"
)

// TestBenchSpecWriteAmplification: the bytes the store writes for the
// tasks of one job with the largest spec allowed (256 KiB), every task
// placed (100 to an entry, as the scheduler batches them), started and
// ended (an entry each, as runners report them), through the real
// store's Apply. Since a job's spec has its own record, it is written
// once and every entry rewrites only the job's small state record; the
// previous layout rewrote the whole job, spec included, at every such
// write. Its figure is computed from the same run: the bytes measured
// plus one spec for every state record written. Also the state DB's
// growth on disk. BENCH_SPEC_TASKS sets the number of tasks (default
// 10,000, the example).
func TestBenchSpecWriteAmplification(t *testing.T) {
	tasks := 10000
	if v, err := strconv.Atoi(os.Getenv("BENCH_SPEC_TASKS")); err == nil && v > 0 {
		tasks = v
	}
	ctx := context.Background()
	spec := store.JobSpec{Image: "gantry/toolbox", Command: []string{"true"}, Array: tasks, CPU: 10, Memory: 6 << 20,
		Env: map[string]string{"A": strings.Repeat("a", 120<<10), "B": strings.Repeat("b", 120<<10), "C": ""}}
	spec.Defaults()
	spec.Env["C"] = strings.Repeat("c", store.MaxSpecBytes-spec.EncodedSize()-8)
	if err := spec.Validate(); err != nil {
		t.Fatalf("the largest spec is refused: %v", err)
	}
	dir := t.TempDir()
	st, err := store.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := store.NewDirect(st)
	node := store.Node{Name: "n1", Capacity: store.Resources{CPU: int64(tasks) * 10, Memory: int64(tasks) * 6 << 20}}
	if _, err := store.CmdUpsertNode.Propose(ctx, p, store.UpsertNode{Node: node}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	base := dirSize(t, dir)
	if st, err = store.Open(dir, nil); err != nil {
		t.Fatal(err)
	}
	p = store.NewDirect(st)
	start := time.Now()
	entries := 0
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		entries++
	}
	must(store.CmdSubmitJob.Propose(ctx, p, store.SubmitJob{ID: "big", Owner: "alice", Spec: spec}))
	for i := 0; i < tasks; i += 100 {
		var ps []store.Placement
		for k := i; k < min(i+100, tasks); k++ {
			ps = append(ps, store.Placement{JobID: "big", Task: k, Node: "n1"})
		}
		res, err := store.CmdPlace.Propose(ctx, p, store.Place{Placements: ps})
		must(res, err)
		if res.Accepted != len(ps) {
			t.Fatalf("placed %d of %d", res.Accepted, len(ps))
		}
	}
	for i := 0; i < tasks; i++ {
		must(store.CmdAttemptStarted.Propose(ctx, p, store.AttemptStarted{JobID: "big", Task: i, N: 1, Container: "c"}))
	}
	for i := 0; i < tasks; i++ {
		must(store.CmdAttemptEnded.Propose(ctx, p, store.AttemptEnded{JobID: "big", Task: i, N: 1, Reason: store.ReasonExited, Ended: time.Now()}))
	}
	took := time.Since(start)
	j, err := st.Job("big")
	if err != nil || j.State != store.StateSucceeded {
		t.Fatalf("job %+v %v", j, err)
	}
	w := st.JobWrites()
	st.Close()
	grew := dirSize(t, dir) - base
	oldExtra := int64(w.States) * int64(w.SpecBytes) // each state write carried the spec too
	const mb = 1e6
	report(t, "spec write amplification: %d tasks, spec %d bytes, %d entries in %s (%.0f entries/s): job records written %.2f MB (spec once %.2f MB, %d state records %.2f MB, %d bytes each); state DB grew %.2f MB on disk (%.1f KB a task)",
		tasks, w.SpecBytes, entries, took.Round(time.Millisecond), float64(entries)/took.Seconds(),
		float64(w.SpecBytes+w.StateBytes)/mb, float64(w.SpecBytes)/mb, w.States, float64(w.StateBytes)/mb, w.StateBytes/max(w.States, 1),
		float64(grew)/mb, float64(grew)/float64(tasks)/1e3)
	report(t, "spec write amplification: the previous layout would have written %.0f MB of job records (the spec at each of %d state writes) and grown the DB by about %.0f MB: %.0f times the job-record bytes, %.0f times the DB growth of this layout",
		float64(oldExtra+int64(w.StateBytes))/mb, w.States, float64(grew+oldExtra)/mb,
		float64(oldExtra+int64(w.StateBytes))/float64(w.SpecBytes+w.StateBytes), float64(grew+oldExtra)/float64(grew))
}

// dirSize sums the sizes of the files under dir.
func dirSize(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		n += info.Size()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
