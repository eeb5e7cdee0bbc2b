package store

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// largestSpec is a spec of array tasks whose encoding is just under
// MaxSpecBytes: environment values (each under the kernel's 128 KiB for
// one NAME=value) fill it.
func largestSpec(array int) JobSpec {
	s := JobSpec{Image: "gantry/toolbox", Command: []string{"true"}, Array: array, CPU: 10, Memory: 6 << 20,
		Env: map[string]string{"A": strings.Repeat("a", 120<<10), "B": strings.Repeat("b", 120<<10), "C": ""}}
	s.Defaults()
	s.Env["C"] = strings.Repeat("c", MaxSpecBytes-s.EncodedSize()-8)
	return s
}

// dirBytes sums the sizes of the files under dir.
func dirBytes(t *testing.T, dir string) int64 {
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

// TestJobSpecIsWrittenOnce: a 50-task job with the largest spec allowed,
// each task placed, started and ended, each report its own entry as
// runners send them. The state DB grows by about one copy of the spec
// plus the tasks' own records; with the job record holding the spec, as
// layout 1 did, it grew by a copy of the spec per entry (measured in the
// same run by writing that record again after every entry).
func TestJobSpecIsWrittenOnce(t *testing.T) {
	const tasks = 50
	spec := largestSpec(tasks)
	specBytes := int64(spec.EncodedSize())
	if err := spec.Validate(); err != nil {
		t.Fatalf("the largest spec is refused: %v", err)
	}
	// run applies the job's whole life to a fresh store and returns how
	// much the DB grew on disk and what Apply wrote to the job's records.
	run := func(t *testing.T, layout1 bool) (int64, JobWrites) {
		dir := t.TempDir()
		st, err := Open(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		f := &fsm{t: t, st: st}
		f.node("n1", 64000)
		st.Close()
		base := dirBytes(t, dir)
		if f.st, err = Open(dir, nil); err != nil {
			t.Fatal(err)
		}
		defer f.st.Close()
		// What layout 1 wrote besides: the whole job, spec included, once
		// per entry that changed it (every entry here does).
		rewrite := func() {
			if !layout1 {
				return
			}
			j := f.job("big")
			b, _ := json.Marshal(j)
			if err := f.st.db.Update(func(txn *badger.Txn) error { return txn.Set([]byte("x/big"), b) }); err != nil {
				t.Fatal(err)
			}
		}
		f.submit("big", "alice", spec)
		rewrite()
		if n := f.placeAll("n1"); n != tasks {
			t.Fatalf("placed %d of %d", n, tasks)
		}
		rewrite()
		for i := 0; i < tasks; i++ {
			f.must(CmdAttemptStarted, AttemptStarted{JobID: "big", Task: i, N: 1, Container: "c"})
			rewrite()
		}
		for i := 0; i < tasks; i++ {
			f.end("big", i, 1, 0, ReasonExited)
			rewrite()
		}
		if j := f.job("big"); j.State != StateSucceeded || j.Spec.Env["C"] != spec.Env["C"] {
			t.Fatalf("job %s %v, spec kept: %v", j.State, j.Counts, j.Spec.Env["C"] == spec.Env["C"])
		}
		w := f.st.JobWrites()
		f.st.Close()
		return dirBytes(t, dir) - base, w
	}
	grew, w := run(t, false)
	old, _ := run(t, true)
	t.Logf("spec %d bytes; the DB grew %d bytes (%.2f specs), with layout 1's rewrites %d bytes (%.1f specs): %.1f times less",
		specBytes, grew, float64(grew)/float64(specBytes), old, float64(old)/float64(specBytes), float64(old)/float64(grew))
	t.Logf("job record writes: %d state records, %d bytes (%d a write); %d spec record, %d bytes",
		w.States, w.StateBytes, w.StateBytes/max(w.States, 1), w.Specs, w.SpecBytes)
	// The tasks' own records (task, attempt, node, usage, indexes), each
	// written a few times, take about 2 KiB a task; 8 KiB leaves room.
	if perTask := int64(8 << 10); grew > 2*specBytes+tasks*perTask {
		t.Errorf("the DB grew %d bytes: more than twice the spec (%d) and %d a task", grew, specBytes, perTask)
	}
	if w.Specs != 1 || int64(w.SpecBytes) != specBytes {
		t.Errorf("spec records written: %d, %d bytes; want one of %d", w.Specs, w.SpecBytes, specBytes)
	}
	// One state record per entry: submit, the placement, 50 starts, 50 ends.
	if w.States != 2+2*tasks || w.StateBytes/w.States > 1024 {
		t.Errorf("state records written: %d, %d bytes; want %d of at most 1 KiB", w.States, w.StateBytes, 2+2*tasks)
	}
	if old < int64(w.States)*specBytes {
		t.Errorf("layout 1's rewrites grew the DB by %d bytes only, less than %d copies of the spec", old, w.States)
	}
}

func TestSpecLimits(t *testing.T) {
	refused := []struct {
		name, want string
		spec       JobSpec
	}{
		{"a spec over MaxSpecBytes names the limit", "spec: 262145 bytes encoded, at most 262144 (256 KiB)", func() JobSpec {
			s := largestSpec(1)
			s.Env["D"] = "dd"
			return s
		}()},
		{"one env value over 128 KiB names the variable", "env: BIG is 131076 bytes, at most 131071", JobSpec{Image: "x", Env: map[string]string{"BIG": strings.Repeat("v", 128<<10)}}},
		{"a label value over 1 KiB names the label", "labels: the value of note is 1025 bytes, at most 1024", JobSpec{Image: "x", Labels: map[string]string{"note": strings.Repeat("n", 1025)}}},
		{"too many labels", "labels: 65 labels, at most 64", JobSpec{Image: "x", Labels: func() map[string]string {
			m := map[string]string{}
			for i := 0; i <= MaxLabels; i++ {
				m[strings.Repeat("k", i+1)] = "v"
			}
			return m
		}()}},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.spec
			s.Defaults()
			err := s.Validate()
			if err == nil || ErrorCode(err) != EInvalid || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("got %v, want %s...", err, tc.want)
			}
		})
	}
	t.Run("the largest spec is accepted", func(t *testing.T) {
		s := largestSpec(1)
		if n := s.EncodedSize(); n > MaxSpecBytes || n < MaxSpecBytes-64 {
			t.Fatalf("largestSpec is %d bytes", n)
		}
		if err := s.Validate(); err != nil {
			t.Fatal(err)
		}
	})
}

// rawRecords reads every key and value under prefix as stored.
func rawRecords(t *testing.T, st *Store, prefix string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := st.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefix), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			out[string(it.Item().Key())] = v
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// checkLayout2 checks that every job's spec is in its own record and no
// state record holds one.
func checkLayout2(t *testing.T, st *Store, jobs int) {
	t.Helper()
	states, specs := rawRecords(t, st, pJob), rawRecords(t, st, pJobSpec)
	if len(states) != jobs || len(specs) != jobs {
		t.Fatalf("%d state records and %d spec records, want %d of each", len(states), len(specs), jobs)
	}
	for k, v := range states {
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(v, &fields); err != nil {
			t.Fatal(err)
		}
		if _, ok := fields["spec"]; ok {
			t.Errorf("%s still holds its spec", k)
		}
		if _, ok := specs[pJobSpec+k[len(pJob):]]; !ok {
			t.Errorf("%s has no spec record", k)
		}
	}
	var v int
	if err := st.view(func(txn *badger.Txn) error { return getJSON(txn, []byte(kLayout), &v) }); err != nil || v != layoutVersion {
		t.Fatalf("layout %d (%v), want %d", v, err, layoutVersion)
	}
}

// layout1 is a snapshot of a store written by the binary before specs had
// their own records (format 1, layout 1), and its jobs as that binary's
// ListJobs returned them: six jobs, queued, held by dependencies (in the
// old spelling "after"), running, succeeded and cancelled.
func layout1(t *testing.T) (snap []byte, jobs []Job) {
	t.Helper()
	snap, err := os.ReadFile("testdata/layout1.snap")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(snap, []byte(snapshotMagicV1)) {
		t.Fatal("testdata/layout1.snap is not of format 1")
	}
	b, err := os.ReadFile("testdata/layout1.jobs.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &jobs); err != nil {
		t.Fatal(err)
	}
	return snap, jobs
}

// snapshotRecords parses a snapshot stream into its keys and values.
func snapshotRecords(t *testing.T, snap []byte) [][2][]byte {
	t.Helper()
	r := bufio.NewReader(bytes.NewReader(snap[len(snapshotMagic):]))
	var out [][2][]byte
	for {
		kl, err := binary.ReadUvarint(r)
		if errors.Is(err, io.EOF) {
			return out
		}
		vl, err2 := binary.ReadUvarint(r)
		buf := make([]byte, kl+vl)
		if _, err3 := io.ReadFull(r, buf); err != nil || err2 != nil || err3 != nil {
			t.Fatalf("snapshot: %v %v %v", err, err2, err3)
		}
		out = append(out, [2][]byte{buf[:kl], buf[kl:]})
	}
}

// checkMigrated checks a store made from layout1: the layout, every job
// as the old binary showed it, and that it works on: the running job's
// end releases the job held by it, and a failed task retries as its spec
// says.
func checkMigrated(t *testing.T, st *Store, want []Job) {
	t.Helper()
	checkLayout2(t, st, len(want))
	got, _, err := st.ListJobs(JobFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if !bytes.Equal(g, w) {
		t.Fatalf("jobs after migration:\n%s\nwant:\n%s", g, w)
	}
	f := &fsm{t: t, st: st, n: st.AppliedIndex()}
	f.end("01ALICERUN", 0, 1, 0, ReasonExited)
	if j := f.job("01HELD"); j.Held != 0 || len(f.queuedOf("01HELD")) != 3 {
		t.Fatalf("the held job after its dependency ended: held %d, queued %v", j.Held, f.queuedOf("01HELD"))
	}
	f.end("01RUNNING", 0, 1, 3, ReasonExited) // retry_on [3]
	if tk := f.task("01RUNNING", 0); tk.State != StateQueued {
		t.Fatalf("a task failing with a code its spec retries is %s", tk.State)
	}
	checkLayout2(t, st, len(want))
}

func TestLayout1StoreOpens(t *testing.T) {
	snap, want := layout1(t)
	t.Run("a format-1 snapshot restores into layout 2", func(t *testing.T) {
		f := newFSM(t)
		if err := f.st.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
			t.Fatal(err)
		}
		checkMigrated(t, f.st, want)
		sn, err := f.st.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		defer sn.Release()
		sink := &memSink{}
		if err := sn.Persist(sink); err != nil || !bytes.HasPrefix(sink.Bytes(), []byte(snapshotMagic)) {
			t.Fatalf("a new snapshot starts %q (%v)", sink.Bytes()[:12], err)
		}
	})
	t.Run("a state DB of layout 1 is migrated when opened", func(t *testing.T) {
		dir := t.TempDir()
		db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil))
		if err != nil {
			t.Fatal(err)
		}
		wb := db.NewWriteBatch()
		for _, kv := range snapshotRecords(t, snap) {
			if err := wb.Set(kv[0], kv[1]); err != nil {
				t.Fatal(err)
			}
		}
		if err := wb.Flush(); err != nil {
			t.Fatal(err)
		}
		db.Close()
		st, err := Open(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if st.AppliedIndex() != 17 {
			t.Fatalf("applied index %d after migration, want 17", st.AppliedIndex())
		}
		checkMigrated(t, st, want)
	})
	t.Run("a layout-1 record the migration missed is split by the next change", func(t *testing.T) {
		f := newFSM(t)
		f.node("n1", 4000)
		f.submit("j1", "alice", JobSpec{Image: "x", Array: 2, Env: map[string]string{"K": "v"}})
		old, _ := json.Marshal(f.job("j1"))
		if err := f.st.db.Update(func(txn *badger.Txn) error {
			if err := txn.Set(jobKey("j1"), old); err != nil {
				return err
			}
			return txn.Delete(jobSpecKey("j1"))
		}); err != nil {
			t.Fatal(err)
		}
		if j := f.job("j1"); j.Spec.Env["K"] != "v" {
			t.Fatalf("a layout-1 record reads as %+v", j.Spec)
		}
		f.placeAll("n1")
		checkLayout2(t, f.st, 1)
		if j := f.job("j1"); j.Spec.Env["K"] != "v" || j.Counts[StateScheduled] != 2 {
			t.Fatalf("after the split: %+v %v", j.Spec, j.Counts)
		}
	})
	t.Run("a state DB of a newer layout is refused", func(t *testing.T) {
		dir := t.TempDir()
		st, err := Open(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.db.Update(func(txn *badger.Txn) error { return putJSON(txn, []byte(kLayout), layoutVersion+1) }); err != nil {
			t.Fatal(err)
		}
		st.Close()
		if st, err := Open(dir, nil); err == nil || !strings.Contains(err.Error(), "newer than this binary") {
			if st != nil {
				st.Close()
			}
			t.Fatalf("opened: %v", err)
		}
	})
	t.Run("a snapshot of a newer format is refused, naming it", func(t *testing.T) {
		f := newFSM(t)
		err := f.st.Restore(io.NopCloser(strings.NewReader("GANTRYSNAP9\n")))
		if err == nil || !strings.Contains(err.Error(), "newer") {
			t.Fatalf("restore: %v", err)
		}
	})
}

func TestJobRecordKeepsEveryFieldButTheSpec(t *testing.T) {
	j := Job{ID: "j", Owner: "o", Spec: JobSpec{Image: "x", Env: map[string]string{"K": "v"}}, State: StateRunning,
		Submitted: time.Unix(1, 0).UTC(), Started: time.Unix(2, 0).UTC(), Ended: time.Unix(3, 0).UTC(),
		Counts: map[string]int{StateRunning: 1}, Total: 1, CancelRequested: true, Held: 2, Message: "m", Key: "k",
		GenAI: true, Trial: true, Queue: "q", Preemptions: 4}
	b, err := encodeJobState(&j)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte(`"spec"`)) || bytes.Contains(b, []byte(`"K"`)) {
		t.Fatalf("the state record holds the spec: %s", b)
	}
	var back Job
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	j.Spec = JobSpec{}
	// Every field set above is non-zero: one the record dropped would differ.
	if v := reflect.ValueOf(j); v.NumField() != 17 {
		t.Fatalf("Job has %d fields: set the new ones above", v.NumField())
	}
	if !reflect.DeepEqual(back, j) {
		t.Fatalf("round trip:\n%+v\nwant\n%+v", back, j)
	}
}

func TestSpecCache(t *testing.T) {
	spec := JobSpec{Image: "x", Array: 2, Env: map[string]string{"K": "v"}, Constraints: map[string]string{"zone": "lab"}}
	labNode := func(f *fsm) {
		f.must(CmdUpsertNode, UpsertNode{Node: Node{Name: "n1", Capacity: Resources{CPU: 1000, Memory: 64 << 30}, Labels: map[string]string{"zone": "lab"}}})
	}
	same := func(a, b map[string]string) bool { return reflect.ValueOf(a).Pointer() == reflect.ValueOf(b).Pointer() }
	t.Run("the scheduler's and the runner's reads decode a job's spec once", func(t *testing.T) {
		f := newFSM(t)
		labNode(f)
		f.submit("j1", "alice", spec)
		q1, _ := f.st.Queued(10)
		q2, _ := f.st.Queued(10)
		if len(q1) != 2 || !same(q1[0].Constraints, q2[1].Constraints) {
			t.Fatalf("two passes decoded the spec twice (%d queued)", len(q1))
		}
		f.placeAll("n1")
		a1, _ := f.st.NodeAttempts("n1")
		a2, _ := f.st.NodeAttempts("n1")
		if len(a1) != 1 || !same(a1[0].Job.Spec.Env, a2[0].Job.Spec.Env) {
			t.Fatalf("the runner's reads decoded the spec again (%d attempts)", len(a1))
		}
	})
	t.Run("Job gives the caller a spec of its own", func(t *testing.T) {
		f := newFSM(t)
		labNode(f)
		f.submit("j1", "alice", spec)
		f.st.Queued(10) // into the cache
		j := f.job("j1")
		j.Spec.Env["K"] = "changed"
		j.Spec.Constraints["zone"] = "mars"
		if j := f.job("j1"); j.Spec.Env["K"] != "v" {
			t.Fatalf("a caller's change reached the store: %v", j.Spec.Env)
		}
		if q, _ := f.st.Queued(10); q[0].Constraints["zone"] != "lab" {
			t.Fatalf("a caller's change reached the cache: %v", q[0].Constraints)
		}
	})
	t.Run("a job id submitted again after a purge reads its new spec", func(t *testing.T) {
		f := newFSM(t)
		labNode(f)
		f.submit("j1", "alice", JobSpec{Image: "x", Priority: 1})
		f.st.Queued(10)
		f.must(CmdCancelJob, CancelJob{ID: "j1", Actor: "alice"})
		if r := f.must(CmdPurgeJobs, PurgeJobs{IDs: []string{"j1"}, Before: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}).(*PurgeResult); r.Purged != 1 {
			t.Fatalf("purged %d", r.Purged)
		}
		if n := len(rawRecords(t, f.st, pJobSpec)); n != 0 {
			t.Fatalf("%d spec records after the purge", n)
		}
		f.submit("j1", "alice", JobSpec{Image: "x", Priority: 7})
		if q, _ := f.st.Queued(10); len(q) != 1 || q[0].Priority != 7 {
			t.Fatalf("queued %+v, want priority 7", q)
		}
	})
	t.Run("the cache stays within its bound, least recently used out first", func(t *testing.T) {
		c := newSpecCache(3 * (100 + specEntryCost))
		read := func(v uint64) specRead { return specRead{spec: &JobSpec{Image: "x"}, version: v, size: 100} }
		c.add("a", read(1))
		c.add("b", read(1))
		c.add("c", read(1))
		c.get("a", 1) // b is now the least recently used
		c.add("d", read(1))
		if c.get("b", 1) != nil || c.get("a", 1) == nil || c.get("d", 1) == nil || c.size > c.max {
			t.Fatalf("after a fourth entry: %d entries, %d of %d bytes", len(c.items), c.size, c.max)
		}
		if c.get("a", 2) != nil {
			t.Fatal("an entry served another version of its record")
		}
		c.add("big", specRead{spec: &JobSpec{}, version: 1, size: c.max})
		if c.get("big", 1) != nil || len(c.items) != 3 {
			t.Fatal("a spec larger than the cache was kept")
		}
	})
	t.Run("a restored snapshot's specs are read afresh", func(t *testing.T) {
		a, b := newFSM(t), newFSM(t)
		a.submit("j1", "alice", JobSpec{Image: "x", Priority: 1})
		b.submit("j1", "alice", JobSpec{Image: "x", Priority: 2})
		a.st.Queued(10)
		sn, _ := b.st.Snapshot()
		sink := &memSink{}
		if err := sn.Persist(sink); err != nil {
			t.Fatal(err)
		}
		sn.Release()
		if err := a.st.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
			t.Fatal(err)
		}
		if q, _ := a.st.Queued(10); len(q) != 1 || q[0].Priority != 2 {
			t.Fatalf("queued %+v, want the restored priority 2", q)
		}
	})
}

// TestSpecCacheUnderConcurrentReads: the scheduler's and the runner's
// reads share the cache with Apply while tasks change (run with -race).
func TestSpecCacheUnderConcurrentReads(t *testing.T) {
	f := newFSM(t)
	f.node("n1", 64000)
	f.submit("j1", "alice", JobSpec{Image: "x", Array: 40, CPU: 100, Env: map[string]string{"K": "v"}})
	stop := make(chan struct{})
	done := make(chan error)
	go func() {
		for {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			if _, err := f.st.Queued(100); err != nil {
				done <- err
				return
			}
			as, err := f.st.NodeAttempts("n1")
			if err != nil {
				done <- err
				return
			}
			for _, a := range as {
				if a.Job.Spec.Env["K"] != "v" {
					done <- errors.New("a runner read a job without its spec")
					return
				}
			}
			if j, err := f.st.Job("j1"); err != nil || j.Spec.Env["K"] != "v" {
				done <- errors.New("Job read without its spec")
				return
			}
		}
	}()
	f.placeAll("n1")
	for i := 0; i < 40; i++ {
		f.must(CmdAttemptStarted, AttemptStarted{JobID: "j1", Task: i, N: 1, Container: "c"})
		f.end("j1", i, 1, 0, ReasonExited)
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if j := f.job("j1"); j.State != StateSucceeded {
		t.Fatalf("job %s", j.State)
	}
}
