package store

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// fsm drives a real Store through Apply with increasing log indexes, as
// Raft would.
type fsm struct {
	t  *testing.T
	st *Store
	n  uint64
}

func newFSM(t *testing.T) *fsm {
	t.Helper()
	st, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &fsm{t: t, st: st}
}

// commandType is any declared command (*Command[P, R]).
type commandType interface{ Type() string }

func (f *fsm) entry(c commandType, payload any) *raft.Log {
	f.t.Helper()
	b, err := EncodeCommand(c.Type(), time.Date(2026, 1, 1, 0, 0, 0, int(f.n)*1000, time.UTC), payload)
	if err != nil {
		f.t.Fatal(err)
	}
	f.n++
	return &raft.Log{Index: f.n, Type: raft.LogCommand, Data: b}
}

func (f *fsm) do(typ commandType, payload any) (any, error) {
	f.t.Helper()
	res := f.st.Apply(f.entry(typ, payload))
	if err, ok := res.(error); ok {
		return nil, err
	}
	return res, nil
}

func (f *fsm) must(typ commandType, payload any) any {
	f.t.Helper()
	res, err := f.do(typ, payload)
	if err != nil {
		f.t.Fatalf("%s: %v", typ.Type(), err)
	}
	return res
}

func (f *fsm) node(name string, cpu int64) {
	f.must(CmdUpsertNode, UpsertNode{Node: Node{Name: name, Capacity: Resources{CPU: cpu, Memory: 64 << 30}}})
}

func (f *fsm) submit(id, owner string, spec JobSpec) *Job {
	f.t.Helper()
	spec.Defaults()
	return f.must(CmdSubmitJob, SubmitJob{ID: id, Owner: owner, Spec: spec}).(*Job)
}

func (f *fsm) job(id string) *Job {
	f.t.Helper()
	j, err := f.st.Job(id)
	if err != nil {
		f.t.Fatal(err)
	}
	return j
}

// placeAll places every queued task on node.
func (f *fsm) placeAll(node string) int {
	f.t.Helper()
	q, err := f.st.Queued(100000)
	if err != nil {
		f.t.Fatal(err)
	}
	var ps []Placement
	for _, t := range q {
		ps = append(ps, Placement{JobID: t.JobID, Task: t.Task, Node: node})
	}
	return f.must(CmdPlace, Place{Placements: ps}).(*PlaceResult).Accepted
}

func (f *fsm) end(job string, task, n, code int, reason string) {
	f.t.Helper()
	f.must(CmdAttemptEnded, AttemptEnded{JobID: job, Task: task, N: n, ExitCode: code, Reason: reason, Ended: time.Now()})
}

func TestJobLifecycle(t *testing.T) {
	f := newFSM(t)
	f.node("n1", 4000)
	j := f.submit("j1", "alice", JobSpec{Image: "x", Array: 3})
	if j.State != StateQueued || j.Counts[StateQueued] != 3 || j.Total != 3 {
		t.Fatalf("new job: %+v", j)
	}
	if got := f.placeAll("n1"); got != 3 {
		t.Fatalf("placed %d, want 3", got)
	}
	if j := f.job("j1"); j.State != StateScheduled || j.Counts[StateScheduled] != 3 {
		t.Fatalf("after placement: %s %v", j.State, j.Counts)
	}
	n, _ := f.st.Node("n1")
	if n.Allocated.CPU != 3000 || n.Running != 3 {
		t.Fatalf("node allocation %+v running %d", n.Allocated, n.Running)
	}
	f.must(CmdAttemptStarted, AttemptStarted{JobID: "j1", Task: 0, N: 1, Container: "c0"})
	if j := f.job("j1"); j.State != StateRunning || j.Started.IsZero() {
		t.Fatalf("after start: %s", j.State)
	}
	for i := 0; i < 3; i++ {
		f.end("j1", i, 1, 0, ReasonExited)
	}
	j = f.job("j1")
	if j.State != StateSucceeded || j.Counts[StateSucceeded] != 3 || j.Ended.IsZero() {
		t.Fatalf("after all ended: %s %v", j.State, j.Counts)
	}
	n, _ = f.st.Node("n1")
	if n.Allocated.CPU != 0 || n.Running != 0 {
		t.Fatalf("resources not released: %+v", n)
	}
	if as, _ := f.st.NodeAttempts("n1"); len(as) != 0 {
		t.Fatalf("node still lists %d active attempts", len(as))
	}
	// A repeated end report changes nothing.
	f.end("j1", 0, 1, 1, ReasonExited)
	if j := f.job("j1"); j.State != StateSucceeded {
		t.Fatalf("duplicate report changed the job to %s", j.State)
	}
}

func TestPlacementRespectsCapacityAndState(t *testing.T) {
	f := newFSM(t)
	f.node("n1", 2000)
	f.submit("j1", "alice", JobSpec{Image: "x", Array: 5, CPU: 1000})
	if got := f.placeAll("n1"); got != 2 {
		t.Fatalf("placed %d on a 2-CPU node, want 2", got)
	}
	f.must(CmdSetNodeState, SetNodeState{Name: "n1", State: NodeDraining})
	f.end("j1", 0, 1, 0, ReasonExited)
	if got := f.placeAll("n1"); got != 0 {
		t.Fatalf("placed %d on a draining node", got)
	}
	if got := f.placeAll("nope"); got != 0 {
		t.Fatalf("placed %d on an unknown node", got)
	}
}

func TestRetriesAndRetryOn(t *testing.T) {
	f := newFSM(t)
	f.node("n1", 8000)
	f.submit("j1", "alice", JobSpec{Image: "x", Retries: 2})
	for n := 1; n <= 2; n++ {
		f.placeAll("n1")
		f.end("j1", 0, n, 3, ReasonExited)
		if tk, _ := f.st.Task("j1", 0); tk.State != StateQueued || tk.Attempts != n {
			t.Fatalf("after failure %d: %+v", n, tk)
		}
		if j := f.job("j1"); j.State != StateRunning {
			t.Fatalf("job went back to %s on retry", j.State)
		}
	}
	f.placeAll("n1")
	f.end("j1", 0, 3, 3, ReasonExited)
	if j := f.job("j1"); j.State != StateFailed {
		t.Fatalf("after retries exhausted: %s", j.State)
	}
	atts, _ := f.st.Attempts("j1", 0)
	if len(atts) != 3 {
		t.Fatalf("%d attempts, want 3", len(atts))
	}

	f.submit("j2", "alice", JobSpec{Image: "x", Retries: 3, RetryOn: []int{7}})
	f.placeAll("n1")
	f.end("j2", 0, 1, 5, ReasonExited)
	if j := f.job("j2"); j.State != StateFailed {
		t.Fatalf("exit 5 not in retry_on retried: %s", j.State)
	}
	f.submit("j3", "alice", JobSpec{Image: "x"})
	f.placeAll("n1")
	f.end("j3", 0, 1, -1, ReasonNodeLost)
	if tk, _ := f.st.Task("j3", 0); tk.State != StateQueued {
		t.Fatalf("a node_lost attempt was not rescheduled: %+v", tk)
	}
}

func TestCancel(t *testing.T) {
	f := newFSM(t)
	f.node("n1", 1000)
	f.submit("j1", "alice", JobSpec{Image: "x", Array: 3})
	f.placeAll("n1") // one task placed, two queued
	if _, err := f.do(CmdCancelJob, CancelJob{ID: "j1", Actor: "bob"}); ErrorCode(err) != ENotFound {
		t.Fatalf("bob cancelling alice's job: %v, want not found", err)
	}
	j := f.must(CmdCancelJob, CancelJob{ID: "j1", Actor: "alice"}).(*Job)
	if j.State == StateCancelled || j.Counts[StateCancelled] != 2 {
		t.Fatalf("after cancel with one running: %s %v", j.State, j.Counts)
	}
	as, _ := f.st.NodeAttempts("n1")
	if len(as) != 1 || !as[0].Attempt.CancelRequested {
		t.Fatalf("the running attempt was not asked to stop: %+v", as)
	}
	f.end("j1", 0, 1, 137, ReasonCancelled)
	if j := f.job("j1"); j.State != StateCancelled {
		t.Fatalf("final state %s, want cancelled", j.State)
	}
	if _, err := f.do(CmdCancelJob, CancelJob{ID: "j1", Actor: "alice"}); ErrorCode(err) != EConflict {
		t.Fatalf("cancel of an ended job: %v, want conflict", err)
	}
}

func TestDependencies(t *testing.T) {
	f := newFSM(t)
	f.node("n1", 8000)
	f.submit("a", "alice", JobSpec{Image: "x"})
	b := f.submit("b", "alice", JobSpec{Image: "x", After: []string{"a"}})
	if b.Held != 1 {
		t.Fatalf("dependent not held: %+v", b)
	}
	if got := f.placeAll("n1"); got != 1 {
		t.Fatalf("placed %d; the dependent must wait", got)
	}
	f.end("a", 0, 1, 0, ReasonExited)
	if got := f.placeAll("n1"); got != 1 {
		t.Fatalf("dependent not released after success (placed %d)", got)
	}
	f.submit("c", "alice", JobSpec{Image: "x"})
	f.submit("d", "alice", JobSpec{Image: "x", After: []string{"c"}})
	f.submit("e", "alice", JobSpec{Image: "x", After: []string{"d"}})
	f.placeAll("n1")
	f.end("c", 0, 1, 1, ReasonExited)
	for _, id := range []string{"d", "e"} {
		if j := f.job(id); j.State != StateFailed {
			t.Fatalf("job %s after its dependency failed: %s", id, j.State)
		}
	}
	if _, err := f.do(CmdSubmitJob, SubmitJob{ID: "x", Owner: "bob", Spec: JobSpec{Image: "x", Array: 1, After: []string{"a"}}}); ErrorCode(err) != EInvalid {
		t.Fatalf("depending on another user's job: %v", err)
	}
	if _, err := f.st.Job("x"); !errors.Is(err, ErrNotFound) {
		t.Fatal("a rejected submission left a job behind")
	}
}

func TestReplayIsIdempotent(t *testing.T) {
	f := newFSM(t)
	f.node("n1", 8000)
	sub := f.entry(CmdSubmitJob, SubmitJob{ID: "j1", Owner: "alice", Spec: JobSpec{Image: "x", Array: 2, CPU: 1000, Memory: 1 << 20}})
	f.st.Apply(sub)
	// Raft replays entries at or below the applied index after a restart.
	if res := f.st.Apply(sub); res != nil {
		t.Fatalf("replayed entry was applied again: %v", res)
	}
	if j := f.job("j1"); j.Total != 2 || j.Counts[StateQueued] != 2 {
		t.Fatalf("job after replay: %+v", j)
	}
}

func TestSnapshotRestore(t *testing.T) {
	f := newFSM(t)
	f.node("n1", 8000)
	f.submit("j1", "alice", JobSpec{Image: "x", Array: 4})
	f.placeAll("n1")
	snap, err := f.st.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	// Changes after the snapshot are not in it.
	f.submit("j2", "alice", JobSpec{Image: "x"})

	g := newFSM(t)
	if err := g.st.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	j, err := g.st.Job("j1")
	if err != nil || j.Counts[StateScheduled] != 4 {
		t.Fatalf("restored job: %+v %v", j, err)
	}
	if _, err := g.st.Job("j2"); !errors.Is(err, ErrNotFound) {
		t.Fatal("restored state has a job created after the snapshot")
	}
	if g.st.AppliedIndex() != f.n-1 {
		t.Fatalf("restored applied index %d, want %d", g.st.AppliedIndex(), f.n-1)
	}
	if err := g.st.Restore(io.NopCloser(bytes.NewReader([]byte("garbage")))); err == nil {
		t.Fatal("restore of garbage succeeded")
	}
}

func TestListJobsByOwnerStateAndCursor(t *testing.T) {
	f := newFSM(t)
	f.node("n1", 1000)
	for i := 0; i < 25; i++ {
		owner := "alice"
		if i%5 == 0 {
			owner = "bob"
		}
		f.submit(string(rune('A'+i)), owner, JobSpec{Image: "x", Name: "job"})
	}
	var seen []string
	cursor := ""
	for {
		jobs, next, err := f.st.ListJobs(JobFilter{Owner: "alice", Limit: 7, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range jobs {
			if j.Owner != "alice" {
				t.Fatalf("owner filter returned %s's job", j.Owner)
			}
			seen = append(seen, j.ID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if len(seen) != 20 || seen[0] != "Y" || seen[19] != "B" {
		t.Fatalf("pages gave %v; want alice's 20 jobs newest first", seen)
	}
	f.placeAll("n1")
	running, _, _ := f.st.ListJobs(JobFilter{State: StateScheduled})
	if len(running) != 1 {
		t.Fatalf("state index lists %d scheduled jobs, want 1", len(running))
	}
	counts, _ := f.st.CountJobs()
	if counts[StateQueued] != 24 || counts[StateScheduled] != 1 {
		t.Fatalf("counts %v", counts)
	}
}

func TestBigArrayFitsOneCommand(t *testing.T) {
	f := newFSM(t)
	j := f.submit("big", "alice", JobSpec{Image: "x", Array: MaxArraySize})
	if j.Total != MaxArraySize {
		t.Fatalf("total %d", j.Total)
	}
	tasks, next, err := f.st.Tasks("big", "", 9990, 100)
	if err != nil || len(tasks) != 10 || next != -1 {
		t.Fatalf("last page: %d tasks next %d err %v", len(tasks), next, err)
	}
}

func TestSpecValidationNamesTheField(t *testing.T) {
	big := strings.Repeat("x", 1<<20)
	cases := []struct {
		field string
		spec  JobSpec
	}{
		{"image", JobSpec{Image: ""}},
		{"memory", JobSpec{Image: "x", Memory: -1}},
		{"array", JobSpec{Image: "x", Array: MaxArraySize + 1}},
		{"retries", JobSpec{Image: "x", Retries: -1}},
		{"env", JobSpec{Image: "x", Env: map[string]string{"GANTRY_X": "1"}}},
		// What Docker or the kernel would refuse only when the attempt starts.
		{"env", JobSpec{Image: "x", Env: map[string]string{"K": "a\x00b"}}},
		{"env", JobSpec{Image: "x", Env: map[string]string{"K": big}}},
		{"command", JobSpec{Image: "x", Command: []string{"echo", "a\x00b"}}},
		{"command", JobSpec{Image: "x", Command: []string{"echo", big}}},
		// Arguments and environment together are bounded by the spec's size.
		{"spec", JobSpec{Image: "x", Command: slices.Repeat([]string{strings.Repeat("y", 100<<10)}, 11)}},
		{"workdir", JobSpec{Image: "x", WorkDir: "../../etc"}},
		{"workdir", JobSpec{Image: "x", WorkDir: "/work/../../etc"}},
		{"workdir", JobSpec{Image: "x", WorkDir: "work"}},
	}
	for _, tc := range cases {
		spec := tc.spec
		spec.Defaults()
		err := spec.Validate()
		if err == nil || ErrorCode(err) != EInvalid || !strings.HasPrefix(err.Error(), tc.field+":") {
			t.Errorf("%s: got %v", tc.field, err)
		}
	}
	for _, ok := range []JobSpec{
		{Image: "x", WorkDir: "/work"},
		{Image: "x", WorkDir: "/work/"},
		{Image: "x", Command: []string{"echo", strings.Repeat("y", 100<<10)}, Env: map[string]string{"K": "v"}},
	} {
		ok.Defaults()
		if err := ok.Validate(); err != nil {
			t.Errorf("%+.80v refused: %v", ok, err)
		}
	}
}

type memSink struct{ bytes.Buffer }

func (m *memSink) ID() string    { return "mem" }
func (m *memSink) Cancel() error { return nil }
func (m *memSink) Close() error  { return nil }

func TestEvictAfterDrainDeadline(t *testing.T) {
	f := newFSM(t)
	f.node("n1", 4000)
	f.submit("j1", "alice", JobSpec{Image: "x"})
	f.placeAll("n1")
	// Command times in these tests are 2026-01-01 plus microseconds.
	f.must(CmdSetNodeState, SetNodeState{Name: "n1", State: NodeDraining, Deadline: time.Date(2026, 1, 1, 1, 0, 0, 0, time.UTC)})
	f.must(CmdEvictNode, EvictNode{Name: "n1"})
	if tk, _ := f.st.Task("j1", 0); tk.State != StateScheduled {
		t.Fatalf("evicted before the deadline: %+v", tk)
	}
	f.must(CmdSetNodeState, SetNodeState{Name: "n1", State: NodeDraining, Deadline: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)})
	f.must(CmdEvictNode, EvictNode{Name: "n1"})
	tk, _ := f.st.Task("j1", 0)
	atts, _ := f.st.Attempts("j1", 0)
	if tk.State != StateQueued || atts[0].Reason != ReasonNodeLost {
		t.Fatalf("after the deadline: task %+v attempt %+v", tk, atts[0])
	}
	if n, _ := f.st.Node("n1"); n.Running != 0 || n.Allocated.CPU != 0 {
		t.Fatalf("node still holds resources: %+v", n)
	}
	f.must(CmdSetNodeState, SetNodeState{Name: "n1", State: NodeReady})
	if n, _ := f.st.Node("n1"); !n.DrainDeadline.IsZero() {
		t.Fatal("ready kept the drain deadline")
	}
}

// TestWaitAppliedWakesOnApply: a waiter for a future index returns as soon
// as that index is applied, and gives up when its context ends.
func TestWaitAppliedWakesOnApply(t *testing.T) {
	f := newFSM(t)
	f.node("n1", 4000)
	if !f.st.WaitApplied(context.Background(), f.n) {
		t.Fatal("an applied index must not wait")
	}
	want := f.n + 2
	done := make(chan bool, 1)
	go func() { done <- f.st.WaitApplied(context.Background(), want) }()
	f.node("n2", 4000)
	select {
	case <-done:
		t.Fatal("returned before the index was applied")
	default:
	}
	f.node("n3", 4000)
	select {
	case ok := <-done:
		if !ok {
			t.Fatal("WaitApplied = false after the index was applied")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("waiter not woken by the apply")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if f.st.WaitApplied(ctx, f.n+10) {
		t.Fatal("WaitApplied = true for an index never applied")
	}
}

// TestQuotaIsRecheckedOnApplyAndUsageFollowsAttempts: placements beyond a
// user's quota are rejected by the state machine itself; the user's usage
// grows with each placement and shrinks when an attempt ends.
func TestQuotaIsRecheckedOnApplyAndUsageFollowsAttempts(t *testing.T) {
	f := newFSM(t)
	f.node("n1", 16000)
	f.must(CmdCreateUser, CreateUser{User: User{Name: "alice"}})
	f.must(CmdUpdateUser, UpdateUser{Name: "alice", Quota: &Resources{CPU: 2000}})
	f.submit("j1", "alice", JobSpec{Image: "x", Array: 5, CPU: 1000, Memory: 1 << 30})
	if got := f.placeAll("n1"); got != 2 {
		t.Fatalf("placed %d with a 2-CPU quota, want 2", got)
	}
	u, err := f.st.Usage("alice")
	if err != nil || u.Tasks != 2 || u.Allocated != (Resources{CPU: 2000, Memory: 2 << 30}) {
		t.Fatalf("usage %+v %v, want 2 tasks holding 2 CPUs and 2 GiB", u, err)
	}
	f.end("j1", 0, 1, 0, ReasonExited)
	if got := f.placeAll("n1"); got != 1 {
		t.Fatalf("placed %d after one task ended, want 1", got)
	}
	f.must(CmdUpdateUser, UpdateUser{Name: "alice", Quota: &Resources{}})
	if got := f.placeAll("n1"); got != 2 {
		t.Fatalf("placed %d once the quota was lifted, want the last 2", got)
	}
	for i := 1; i < 5; i++ {
		f.end("j1", i, 1, 0, ReasonExited)
	}
	if u, _ := f.st.Usage("alice"); u.Tasks != 0 || !u.Allocated.IsZero() {
		t.Fatalf("usage after every task ended: %+v", u)
	}
	if _, err := f.do(CmdUpdateUser, UpdateUser{Name: "alice", Quota: &Resources{CPU: -1}}); ErrorCode(err) != EInvalid {
		t.Fatalf("negative quota: %v", err)
	}
}

// TestGPUsAreReleasedAndConstraintsRecheckedOnApply: a node's GPUs come back
// when the task holding them ends, and a placement on a node without the
// constrained label is rejected on apply.
func TestGPUsAreReleasedAndConstraintsRecheckedOnApply(t *testing.T) {
	f := newFSM(t)
	f.must(CmdUpsertNode, UpsertNode{Node: Node{Name: "gpu", Capacity: Resources{CPU: 8000, Memory: 8 << 30},
		Devices: []Device{{ID: "0", Mode: DeviceNVIDIA}}, Labels: map[string]string{"zone": "a"}}})
	f.must(CmdUpsertNode, UpsertNode{Node: Node{Name: "plain", Capacity: Resources{CPU: 8000, Memory: 8 << 30}, Labels: map[string]string{"zone": "b"}}})
	f.submit("g", "alice", JobSpec{Image: "x", Array: 2, GPUs: 1})
	if got := f.placeAll("gpu"); got != 1 {
		t.Fatalf("placed %d one-GPU tasks on a one-GPU node, want 1", got)
	}
	f.end("g", 0, 1, 0, ReasonExited)
	if got := f.placeAll("gpu"); got != 1 {
		t.Fatalf("the GPU was not released: placed %d", got)
	}
	f.end("g", 1, 1, 0, ReasonExited)
	f.submit("c", "alice", JobSpec{Image: "x", Constraints: map[string]string{"zone": "a"}})
	if got := f.placeAll("plain"); got != 0 {
		t.Fatalf("placed a zone=a task on a zone=b node")
	}
	if got := f.placeAll("gpu"); got != 1 {
		t.Fatalf("the zone=a task was not placed on the zone=a node")
	}
	bad := JobSpec{Image: "x", CPU: 1000, Memory: 1 << 30, Array: 1, Constraints: map[string]string{"zone": "a b"}}
	if err := bad.Validate(); ErrorCode(err) != EInvalid || !strings.Contains(err.Error(), "constraints") {
		t.Fatalf("constraint with a space: %v", err)
	}
}

// TestAfterAnyWaitsForAnyEnd: an after_any dependent starts once its
// dependency ended, whether it failed or was cancelled, and when it had
// already ended at submission; an after dependent in the same chain fails.
func TestAfterAnyWaitsForAnyEnd(t *testing.T) {
	f := newFSM(t)
	f.node("n1", 8000)
	f.submit("a", "alice", JobSpec{Image: "x"})
	cleanup := f.submit("cleanup", "alice", JobSpec{Image: "x", AfterAny: []string{"a"}})
	strict := f.submit("strict", "alice", JobSpec{Image: "x", After: []string{"a"}})
	if cleanup.Held != 1 || strict.Held != 1 {
		t.Fatalf("dependents not held: %d %d", cleanup.Held, strict.Held)
	}
	if got := f.placeAll("n1"); got != 1 {
		t.Fatalf("placed %d; the dependents must wait", got)
	}
	f.end("a", 0, 1, 3, ReasonExited)
	if j := f.job("strict"); j.State != StateFailed {
		t.Fatalf("after dependent of a failed job: %s", j.State)
	}
	if got := f.placeAll("n1"); got != 1 {
		t.Fatalf("after_any dependent not released after a failure (placed %d)", got)
	}
	f.submit("b", "alice", JobSpec{Image: "x"})
	f.must(CmdCancelJob, CancelJob{ID: "b", Actor: "alice"})
	late := f.submit("late", "alice", JobSpec{Image: "x", AfterAny: []string{"b"}})
	if late.Held != 0 || late.State != StateQueued {
		t.Fatalf("after_any on an already cancelled job: held %d state %s", late.Held, late.State)
	}
	twice := JobSpec{Image: "x", Array: 1, After: []string{"a"}, AfterAny: []string{"a"}}
	if err := twice.Validate(); ErrorCode(err) != EInvalid || !strings.Contains(err.Error(), "listed twice") {
		t.Fatalf("a job in after and after_any: %v", err)
	}
}

func TestWaitReasonSaysWhatHoldsAJobBack(t *testing.T) {
	job := func(mod func(*Job)) *Job {
		j := &Job{ID: "j", State: StateQueued, Counts: map[string]int{StateQueued: 1}, Total: 1, Spec: JobSpec{CPU: 1000, Memory: 1 << 30}}
		if mod != nil {
			mod(j)
		}
		return j
	}
	node := func(state string, freeCPU int64, labels map[string]string) Node {
		return Node{Name: "n", State: state, Capacity: Resources{CPU: 4000, Memory: 8 << 30}, Allocated: Resources{CPU: 4000 - freeCPU}, Labels: labels}
	}
	full := []Node{node(NodeReady, 500, nil)}
	room := []Node{node(NodeReady, 4000, map[string]string{"zone": "a"})}
	for _, tc := range []struct {
		name    string
		j       *Job
		pending []string
		nodes   []Node
		quota   Resources
		use     UserUsage
		want    string
	}{
		{"placeable now", job(nil), nil, room, Resources{}, UserUsage{}, ""},
		{"ended", job(func(j *Job) { j.State = StateSucceeded; j.Counts = map[string]int{StateSucceeded: 1} }), nil, full, Resources{}, UserUsage{}, ""},
		{"dependencies", job(func(j *Job) { j.Held = 1 }), []string{"J1"}, room, Resources{}, UserUsage{}, "waiting for J1 to end (dependencies)"},
		{"quota", job(nil), nil, room, Resources{CPU: 2000}, UserUsage{Allocated: Resources{CPU: 1500, Memory: 512 << 20}}, "quota: your running tasks hold 1.5 CPUs, 512 MiB; one more task would exceed your quota of 2 CPUs"},
		{"no ready node", job(nil), nil, []Node{node(NodeDraining, 4000, nil), node(NodeDown, 4000, nil)}, Resources{}, UserUsage{}, "no node is ready (every node is draining or down)"},
		{"constraints", job(func(j *Job) { j.Spec.Constraints = map[string]string{"zone": "b"} }), nil, room, Resources{}, UserUsage{}, "no ready node has zone=b"},
		{"full", job(nil), nil, full, Resources{}, UserUsage{}, "resources: no ready node has 1 CPU, 1 GiB free for one task now"},
	} {
		if got := WaitReason(tc.j, tc.pending, tc.nodes, tc.quota, tc.use); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// A replay after a restart hands the FSM entries well below its applied
// index, in batches: the applied index must not move back to a replayed
// batch's last entry, or the entries between it and the true applied
// index are applied a second time (a job ended and re-run by its own
// replayed history; the fault campaign read a failed job running again).
func TestReplayInBatchesNeverMovesTheAppliedIndexBack(t *testing.T) {
	f := newFSM(t)
	f.node("n1", 8000)
	var logs []*raft.Log
	spec := JobSpec{Image: "x", CPU: 100, Memory: 1 << 20}
	spec.Defaults()
	for _, id := range []string{"j1", "j2", "j3", "j4"} {
		l := f.entry(CmdSubmitJob, SubmitJob{ID: id, Owner: "alice", Spec: spec})
		f.st.Apply(l)
		logs = append(logs, l)
	}
	applied := f.st.AppliedIndex()
	if n := f.placeAll("n1"); n != 4 {
		t.Fatalf("placed %d, want 4", n)
	}
	f.end("j4", 0, 1, 0, ReasonExited)
	end := f.st.AppliedIndex()
	// The replay: the first two submissions in one batch, then the rest.
	f.st.ApplyBatch(logs[:2])
	if got := f.st.AppliedIndex(); got != end {
		t.Fatalf("applied index %d after replaying entries up to %d, want it to stay %d", got, logs[1].Index, end)
	}
	for _, res := range f.st.ApplyBatch(logs[2:]) {
		if res != nil {
			t.Fatalf("a replayed entry below the applied index (%d) was applied again: %v", applied, res)
		}
	}
	if j := f.job("j4"); j.State != StateSucceeded {
		t.Fatalf("j4 after the replay: %s, want succeeded", j.State)
	}
}
