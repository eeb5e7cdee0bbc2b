package store

import (
	"errors"
	"testing"
	"time"
)

func TestQueuesAdmitJobsAndCountWhatTheyHold(t *testing.T) {
	f := newFSM(t)
	f.node("n1", 8000)
	f.must(CmdCreateQueue, CreateQueue{Queue: Queue{Name: "gpu", Weight: 2, Users: []string{"alice"}, Limit: Resources{CPU: 2000},
		Priority: 4, MaxRunTime: Duration(time.Hour), Constraints: map[string]string{"gpu": "yes"}}})
	if _, err := f.do(CmdSubmitJob, SubmitJob{ID: "jb", Owner: "bob", Spec: spec("gpu")}); ErrorCode(err) != EForbidden {
		t.Fatalf("bob submitted to alice's queue: %v", err)
	}
	if _, err := f.do(CmdSubmitJob, SubmitJob{ID: "jx", Owner: "alice", Spec: spec("nope")}); ErrorCode(err) != EInvalid {
		t.Fatalf("a job of an unknown queue: %v", err)
	}
	s := spec("gpu")
	s.Constraints = map[string]string{"gpu": "no"}
	if _, err := f.do(CmdSubmitJob, SubmitJob{ID: "jc", Owner: "alice", Spec: s}); ErrorCode(err) != EInvalid {
		t.Fatalf("a constraint against the queue's: %v", err)
	}
	s = spec("gpu")
	s.Array = 3
	j := f.submit("ja", "alice", s)
	if j.Queue != "gpu" || j.Spec.Priority != 4 || j.Spec.Timeout != Duration(time.Hour) || j.Spec.Constraints["gpu"] != "yes" {
		t.Fatalf("job as admitted: queue %q, spec %+v", j.Queue, j.Spec)
	}
	if n, _ := f.st.QueuedCount("gpu"); n != 3 {
		t.Fatalf("%d tasks queued in gpu, want 3", n)
	}
	// n1 lacks the label; n2 has it. The queue's limit (2 CPUs) lets two
	// of the three 1-CPU tasks run.
	f.must(CmdUpsertNode, UpsertNode{Node: Node{Name: "n2", Capacity: Resources{CPU: 8000, Memory: 64 << 30}, Labels: map[string]string{"gpu": "yes"}}})
	if got := f.placeAll("n2"); got != 2 {
		t.Fatalf("placed %d, want 2 (the queue's limit)", got)
	}
	use, _ := f.st.QueueUsages()
	if use["gpu"].Allocated.CPU != 2000 || use["gpu"].Tasks != 2 {
		t.Fatalf("queue usage %+v", use["gpu"])
	}
	f.end("ja", 0, 1, 0, ReasonExited)
	if use, _ = f.st.QueueUsages(); use["gpu"].Allocated.CPU != 1000 || use["gpu"].Tasks != 1 {
		t.Fatalf("queue usage after an end %+v", use["gpu"])
	}
	if _, err := f.do(CmdDeleteQueue, DeleteQueue{Name: "gpu"}); ErrorCode(err) != EConflict {
		t.Fatalf("removed a queue with tasks: %v", err)
	}
	f.must(CmdCancelJob, CancelJob{ID: "ja", Actor: "alice"})
	f.end("ja", 1, 1, 137, ReasonCancelled)
	f.must(CmdDeleteQueue, DeleteQueue{Name: "gpu"})
	if _, err := f.st.Queue("gpu"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("queue after delete: %v", err)
	}
}

func TestTheDefaultQueueKeepsTheOldIndexAndCanBeChanged(t *testing.T) {
	f := newFSM(t)
	f.node("n1", 4000)
	j := f.submit("j1", "alice", spec(""))
	if j.Queue != "" || j.Spec.Queue != DefaultQueue {
		t.Fatalf("job queue %q, spec queue %q", j.Queue, j.Spec.Queue)
	}
	if n, _ := f.st.QueuedCount(DefaultQueue); n != 1 {
		t.Fatalf("%d queued in default, want 1", n)
	}
	if _, err := f.do(CmdCreateQueue, CreateQueue{Queue: Queue{Name: DefaultQueue, Weight: 1}}); ErrorCode(err) != EConflict {
		t.Fatalf("created default: %v", err)
	}
	f.must(CmdUpdateQueue, UpdateQueue{Queue: Queue{Name: DefaultQueue, Weight: 5, Borrow: true}})
	qs, _ := f.st.Queues()
	if len(qs) != 1 || qs[0].Weight != 5 {
		t.Fatalf("queues %+v", qs)
	}
	if _, err := f.do(CmdDeleteQueue, DeleteQueue{Name: DefaultQueue}); ErrorCode(err) != EConflict {
		t.Fatalf("removed default: %v", err)
	}
}

func TestAPreemptedAttemptIsRequeuedWithoutUsingARetry(t *testing.T) {
	f := newFSM(t)
	f.node("n1", 4000)
	f.must(CmdUpdateQueue, UpdateQueue{Queue: Queue{Name: DefaultQueue, Weight: 1, Borrow: true, Grace: Duration(5 * time.Second)}})
	f.submit("low", "alice", spec("")) // no retries
	f.placeAll("n1")
	f.must(CmdAttemptStarted, AttemptStarted{JobID: "low", Task: 0, N: 1, At: time.Now()})
	r := f.must(CmdPreempt, Preempt{Victims: []Victim{{JobID: "low", Task: 0, N: 1, For: "high/0"}}}).(*PreemptResult)
	if r.Accepted != 1 {
		t.Fatalf("preempt accepted %d", r.Accepted)
	}
	at, _ := f.st.Attempt("low", 0, 1)
	if !at.Preempt || at.PreemptedBy != "high/0" || at.Grace != Duration(5*time.Second) {
		t.Fatalf("attempt %+v", at)
	}
	// Asking again is a no-op.
	if r := f.must(CmdPreempt, Preempt{Victims: []Victim{{JobID: "low", Task: 0, N: 1, For: "high/0"}}}).(*PreemptResult); r.Accepted != 0 {
		t.Fatalf("preempted twice")
	}
	f.end("low", 0, 1, 143, ReasonPreempted)
	task, _ := f.st.Task("low", 0)
	j := f.job("low")
	if task.State != StateQueued || task.Preemptions != 1 || j.Preemptions != 1 {
		t.Fatalf("task %+v, job preemptions %d: want it queued again", task, j.Preemptions)
	}
	at, _ = f.st.Attempt("low", 0, 1)
	if at.State != StateCancelled || at.Reason != ReasonPreempted {
		t.Fatalf("attempt %+v", at)
	}
	f.placeAll("n1")
	f.end("low", 0, 2, 1, ReasonExited)
	if j := f.job("low"); j.State != StateFailed {
		t.Fatalf("job %s after its one real attempt failed, want failed (no retries)", j.State)
	}
	// A job that opted out is never marked.
	s := spec("")
	s.NoPreempt = true
	f.submit("keep", "alice", s)
	f.placeAll("n1")
	if r := f.must(CmdPreempt, Preempt{Victims: []Victim{{JobID: "keep", Task: 0, N: 1, For: "x/0"}}}).(*PreemptResult); r.Accepted != 0 {
		t.Fatalf("a no_preempt job was preempted")
	}
}

func spec(queue string) JobSpec {
	s := JobSpec{Image: "img", CPU: 1000, Memory: 1 << 20, Queue: queue}
	s.Defaults()
	return s
}
