package store

import (
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/raft"
)

// keysOf counts the keys of the state database that mention id.
func keysOf(t *testing.T, st *Store, id string) []string {
	t.Helper()
	var out []string
	if err := st.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if k := string(it.Item().Key()); strings.Contains(k, id) {
				out = append(out, k)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestPurgeRemovesEndedJobsEntirelyAndNothingElse(t *testing.T) {
	f := newFSM(t)
	f.node("n1", 8000)
	f.submit("01OLD", "alice", JobSpec{Image: "x", Array: 3, CPU: 1000, Memory: 1 << 20})
	f.submit("01RUN", "alice", JobSpec{Image: "x", CPU: 1000, Memory: 1 << 20})
	f.placeAll("n1")
	for i := 0; i < 3; i++ {
		f.end("01OLD", i, 1, 0, ReasonExited)
	}
	if j := f.job("01OLD"); j.State != StateSucceeded || j.Ended.IsZero() {
		t.Fatalf("old job %s", j.State)
	}
	later := time.Now().Add(time.Hour)
	ids, err := f.st.EndedBefore(later, 100)
	if err != nil || len(ids) != 1 || ids[0] != (EndedJob{ID: "01OLD", Tasks: 3}) {
		t.Fatalf("ended before: %v %v", ids, err)
	}
	// Too early a cut-off purges nothing.
	if r := f.must(CmdPurgeJobs, PurgeJobs{IDs: []string{"01OLD", "01RUN"}, Before: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)}).(*PurgeResult); r.Purged != 0 {
		t.Fatalf("purged %d with a cut-off before the job ended", r.Purged)
	}
	r := f.must(CmdPurgeJobs, PurgeJobs{IDs: []string{"01OLD", "01RUN", "01NONE"}, Before: later}).(*PurgeResult)
	if r.Purged != 1 {
		t.Fatalf("purged %d, want only the ended job", r.Purged)
	}
	if left := keysOf(t, f.st, "01OLD"); len(left) != 0 {
		t.Fatalf("keys left of the purged job: %v", left)
	}
	if _, err := f.st.Job("01RUN"); err != nil {
		t.Fatalf("the running job: %v", err)
	}
	jobs, _, err := f.st.ListJobs(JobFilter{Owner: "alice"})
	if err != nil || len(jobs) != 1 || jobs[0].ID != "01RUN" {
		t.Fatalf("alice's jobs after the purge: %+v %v", jobs, err)
	}
	counts, _ := f.st.CountJobs()
	if counts[StateSucceeded] != 0 || counts[StateRunning]+counts[StateScheduled] != 1 {
		t.Fatalf("counts after the purge: %v", counts)
	}
	if r := f.must(CmdPurgeJobs, PurgeJobs{IDs: []string{"01OLD"}, Before: later}).(*PurgeResult); r.Purged != 0 {
		t.Fatal("a repeated purge removed something")
	}
}

// TestPurgeOfA10000TaskJobFitsOneEntry: the largest job (purgeTasks in the
// node's retention loop) is purged by one command.
func TestPurgeOfA10000TaskJobFitsOneEntry(t *testing.T) {
	t.Parallel() // long (a large state, or password hashing under the race detector): overlaps the rest of the package
	f := newFSM(t)
	f.must(CmdUpsertNode, UpsertNode{Node: Node{Name: "huge", Capacity: Resources{CPU: 10 * MaxArraySize, Memory: 1 << 50}}})
	f.submit("01BIG", "alice", JobSpec{Image: "x", Array: MaxArraySize, CPU: 10, Memory: 8 << 20})
	if got := f.placeAll("huge"); got != MaxArraySize {
		t.Fatalf("placed %d", got)
	}
	// Every task ran once: 10,000 attempts too.
	var ends []*raft.Log
	for i := 0; i < MaxArraySize; i++ {
		ends = append(ends, f.entry(CmdAttemptEnded, AttemptEnded{JobID: "01BIG", Task: i, N: 1, ExitCode: 0, Reason: ReasonExited, Ended: time.Now()}))
	}
	f.st.ApplyBatch(ends)
	if j := f.job("01BIG"); j.State != StateSucceeded {
		t.Fatalf("big job %s", j.State)
	}
	r := f.must(CmdPurgeJobs, PurgeJobs{IDs: []string{"01BIG"}, Before: time.Now().Add(time.Hour)}).(*PurgeResult)
	if r.Purged != 1 {
		t.Fatalf("purged %d", r.Purged)
	}
	if left := keysOf(t, f.st, "01BIG"); len(left) != 0 {
		t.Fatalf("%d keys left of the purged job, e.g. %v", len(left), left[0])
	}
}
