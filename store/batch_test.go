package store

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// batchEntry encodes payloads (command, payload pairs) as one batch entry.
func (f *fsm) batchEntry(cmds ...any) *raft.Log {
	f.t.Helper()
	var enc [][]byte
	for i := 0; i < len(cmds); i += 2 {
		b, err := EncodeCommand(cmds[i].(commandType).Type(), time.Date(2026, 1, 1, 0, 0, i, 0, time.UTC), cmds[i+1])
		if err != nil {
			f.t.Fatal(err)
		}
		enc = append(enc, b)
	}
	entry, err := EncodeBatch(enc)
	if err != nil {
		f.t.Fatal(err)
	}
	f.n++
	return &raft.Log{Index: f.n, Type: raft.LogCommand, Data: entry}
}

func namedSpec(name string) JobSpec {
	s := JobSpec{Image: "x", Name: name}
	s.Defaults()
	return s
}

// TestBatchAppliesEachCommandWithItsOwnResult: the commands of one batch
// entry apply in order, each returns its own result or its own error, and
// one that fails neither fails the others nor leaves a trace.
func TestBatchAppliesEachCommandWithItsOwnResult(t *testing.T) {
	f := newFSM(t)
	res := f.st.Apply(f.batchEntry(
		CmdSubmitJob, SubmitJob{ID: "j1", Owner: "alice", Spec: namedSpec("first")},
		CmdSubmitJob, SubmitJob{ID: "j1", Owner: "bob", Spec: namedSpec("same id")}, // refused: j1 exists by now
		CmdCancelJob, CancelJob{ID: "nope", Actor: "alice"}, // refused: no such job
		CmdSubmitJob, SubmitJob{ID: "j2", Owner: "bob", Spec: namedSpec("second"), Key: "k"},
		CmdSubmitJob, SubmitJob{ID: "j3", Owner: "bob", Spec: namedSpec("repeat"), Key: "k"}, // the same key: j2 again
		CmdCancelJob, CancelJob{ID: "j1", Actor: "alice"}, // sees j1, submitted earlier in the batch
	))
	br, ok := res.(BatchResults)
	if !ok || len(br) != 6 {
		t.Fatalf("a batch of 6 returned %T %v", res, res)
	}
	if j, ok := br[0].(*Job); !ok || j.ID != "j1" || j.Spec.Name != "first" {
		t.Fatalf("command 1: %#v", br[0])
	}
	if err, ok := br[1].(error); !ok || ErrorCode(err) != EConflict {
		t.Fatalf("command 2 (a repeated id): %#v, want a conflict", br[1])
	}
	if err, ok := br[2].(error); !ok || !errors.Is(err, ErrNotFound) {
		t.Fatalf("command 3 (cancel a missing job): %#v, want not found", br[2])
	}
	if j, ok := br[3].(*Job); !ok || j.ID != "j2" {
		t.Fatalf("command 4: %#v", br[3])
	}
	if j, ok := br[4].(*Job); !ok || j.ID != "j2" {
		t.Fatalf("command 5 (same idempotency key): %#v, want job j2", br[4])
	}
	if j, ok := br[5].(*Job); !ok || j.ID != "j1" || j.State != StateCancelled {
		t.Fatalf("command 6 (cancel j1): %#v", br[5])
	}
	if j := f.job("j1"); j.Owner != "alice" || j.State != StateCancelled {
		t.Fatalf("j1 after the batch: %+v", j)
	}
	if _, err := f.st.Job("j3"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("j3 exists (%v): a repeated key must not make a second job", err)
	}
	counts, _ := f.st.CountJobs()
	if counts[StateQueued] != 1 || counts[StateCancelled] != 1 {
		t.Fatalf("job counts %v, want one queued and one cancelled", counts)
	}
	if f.st.AppliedIndex() != f.n {
		t.Fatalf("applied %d, want %d", f.st.AppliedIndex(), f.n)
	}
}

// TestBatchesAndSingleEntriesApplyTogether: Raft hands the FSM plain
// entries (every entry written before batches existed is one) and batch
// entries mixed; they apply in log order, in one transaction.
func TestBatchesAndSingleEntriesApplyTogether(t *testing.T) {
	f := newFSM(t)
	logs := []*raft.Log{
		f.entry(CmdSubmitJob, SubmitJob{ID: "a", Owner: "alice", Spec: namedSpec("a")}),
		f.batchEntry(
			CmdSubmitJob, SubmitJob{ID: "b", Owner: "alice", Spec: namedSpec("b")},
			CmdCancelJob, CancelJob{ID: "a", Actor: "alice"},
		),
		f.entry(CmdCancelJob, CancelJob{ID: "b", Actor: "alice"}),
	}
	res := f.st.ApplyBatch(logs)
	if j, ok := res[0].(*Job); !ok || j.ID != "a" {
		t.Fatalf("entry 1: %#v", res[0])
	}
	br := res[1].(BatchResults)
	if j, ok := br[1].(*Job); !ok || j.ID != "a" || j.State != StateCancelled {
		t.Fatalf("entry 2, command 2: %#v", br[1])
	}
	if j, ok := res[2].(*Job); !ok || j.ID != "b" || j.State != StateCancelled {
		t.Fatalf("entry 3: %#v", res[2])
	}
	// A replay after a restart skips what was applied, batches included.
	f.st.ApplyBatch(logs)
	if counts, _ := f.st.CountJobs(); counts[StateCancelled] != 2 || len(counts) != 1 {
		t.Fatalf("after a replay: %v", counts)
	}
}

// TestBatchRefusesWhatItCannotRead: a nested batch, an unknown command and
// a newer batch version are refused with a code; only the nested command
// is refused when the rest of its batch is fine.
func TestBatchRefusesWhatItCannotRead(t *testing.T) {
	f := newFSM(t)
	inner, err := EncodeBatch([][]byte{[]byte(`{"t":"job.cancel","v":1,"at":"2026-01-01T00:00:00Z","d":{"id":"x"}}`)})
	if err != nil {
		t.Fatal(err)
	}
	ok, _ := EncodeCommand(CmdCreateUser.Type(), time.Now(), CreateUser{User: User{Name: "carol"}})
	entry, _ := EncodeBatch([][]byte{inner, []byte(`{"t":"job.teleport","v":1,"d":{}}`), ok})
	f.n++
	br := f.st.Apply(&raft.Log{Index: f.n, Type: raft.LogCommand, Data: entry}).(BatchResults)
	for i, want := range []string{EInvalid, EInvalid} {
		if err, _ := br[i].(error); ErrorCode(err) != want || err == nil {
			t.Errorf("command %d: %v, want %s", i+1, br[i], want)
		}
	}
	if u, ok := br[2].(*User); !ok || u.Name != "carol" {
		t.Fatalf("command 3: %#v", br[2])
	}
	f.n++
	res := f.st.Apply(&raft.Log{Index: f.n, Type: raft.LogCommand, Data: []byte(`{"t":"batch","v":9,"d":[]}`)})
	if err, _ := res.(error); ErrorCode(err) != EUnavailable {
		t.Fatalf("a newer batch version: %v, want unavailable", res)
	}
	cmds, isBatch := DecodeBatch(entry)
	if !isBatch || len(cmds) != 3 || string(cmds[2]) != string(ok) {
		t.Fatalf("DecodeBatch: %v %q", isBatch, cmds)
	}
	if _, isBatch := DecodeBatch(ok); isBatch {
		t.Fatal("DecodeBatch took a single command for a batch")
	}
}

// TestBatchTooBigForOneTransaction: a batch whose commands together do not
// fit in a transaction applies nothing and says so (ErrBatchTooBig), so
// its proposer sends them one by one; the entries around it apply.
func TestBatchTooBigForOneTransaction(t *testing.T) {
	t.Parallel() // long (a large state, or password hashing under the race detector): overlaps the rest of the package
	f := newFSM(t)
	const users = 70000 // more writes than one Badger transaction of the state DB takes
	var cmds []any
	for i := 0; i < users; i++ {
		cmds = append(cmds, CmdCreateUser, CreateUser{User: User{Name: fmt.Sprintf("user%05d", i)}})
	}
	before := f.entry(CmdCreateUser, CreateUser{User: User{Name: "before"}})
	big := f.batchEntry(cmds...)
	after := f.entry(CmdCreateUser, CreateUser{User: User{Name: "after"}})
	res := f.st.ApplyBatch([]*raft.Log{before, big, after})
	if err, _ := res[1].(error); !errors.Is(err, ErrBatchTooBig) {
		t.Fatalf("the big batch: %T, want ErrBatchTooBig", res[1])
	}
	if _, err := f.st.User("user00000"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a command of the refused batch was applied: %v", err)
	}
	for _, name := range []string{"before", "after"} {
		if _, err := f.st.User(name); err != nil {
			t.Fatalf("user %s: %v", name, err)
		}
	}
	if f.st.AppliedIndex() != f.n {
		t.Fatalf("applied %d, want %d", f.st.AppliedIndex(), f.n)
	}
}

// TestAttemptReportAppliesEachReport: attempt.report applies a node's
// starts and ends in order with an outcome each, as attempt.started and
// attempt.ended would one by one; a bad report fails alone.
func TestAttemptReportAppliesEachReport(t *testing.T) {
	f := newFSM(t)
	f.node("n1", 4000)
	f.submit("j1", "alice", JobSpec{Image: "x", Array: 3})
	if got := f.placeAll("n1"); got != 3 {
		t.Fatalf("placed %d", got)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	reports := []AttemptReport{
		{Started: &AttemptStarted{JobID: "j1", Task: 0, N: 1, Container: "c0", At: now}},
		{Started: &AttemptStarted{JobID: "j1", Task: 1, N: 1, Container: "c1", At: now}},
		{Ended: &AttemptEnded{JobID: "j1", Task: 0, N: 1, ExitCode: 0, Reason: ReasonExited, Ended: now.Add(time.Second)}},
		{Started: &AttemptStarted{JobID: "j1", Task: 7, N: 1, At: now}}, // no such task
		{}, // neither
		{Ended: &AttemptEnded{JobID: "j1", Task: 1, N: 1, ExitCode: 3, Reason: ReasonExited, Ended: now.Add(time.Second)}},
		{Ended: &AttemptEnded{JobID: "j1", Task: 0, N: 1, ExitCode: 0, Reason: ReasonExited, Ended: now.Add(time.Second)}}, // a repeat: a no-op
	}
	out := f.must(CmdReportAttempts, ReportAttempts{Reports: reports}).([]ReportOutcome)
	codes := make([]string, len(out))
	for i, o := range out {
		codes[i] = o.Code
	}
	if want := []string{"", "", "", ENotFound, EInvalid, "", ""}; !reflect.DeepEqual(codes, want) {
		t.Fatalf("outcomes %v, want codes %q", out, want)
	}
	if out[3].Err() == nil || !errors.Is(out[3].Err(), ErrNotFound) || out[0].Err() != nil {
		t.Fatalf("Err(): %v %v", out[3].Err(), out[0].Err())
	}
	j := f.job("j1")
	if j.Counts[StateSucceeded] != 1 || j.Counts[StateFailed]+j.Counts[StateQueued] != 1 || j.Counts[StateScheduled] != 1 {
		t.Fatalf("job counts %v, want one succeeded, one failed (or queued for a retry), one scheduled", j.Counts)
	}
	a, err := f.st.Attempt("j1", 1, 1)
	if err != nil || a.Container != "c1" || a.ExitCode == nil || *a.ExitCode != 3 {
		t.Fatalf("attempt j1/1/1: %+v %v", a, err)
	}
	n, _ := f.st.Node("n1")
	if n.Running != 1 {
		t.Fatalf("node running %d, want 1", n.Running)
	}
}
