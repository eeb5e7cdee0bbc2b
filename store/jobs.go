package store

import (
	"errors"
	"slices"

	"github.com/dgraph-io/badger/v4"
)

var stateRank = map[string]int{StateQueued: 0, StateScheduled: 1, StateRunning: 2, StateSucceeded: 3, StateFailed: 3, StateCancelled: 3}

func (a *applier) submitJob(c *SubmitJob) (*Job, error) {
	if c.Key != "" {
		id, err := getString(a.txn, submitKeyKey(c.Owner, c.Key))
		switch {
		case err == nil:
			return a.job(id) // submitted before under this key
		case !errors.Is(err, ErrNotFound):
			return nil, err
		}
	}
	// A job submitted earlier in the same transaction (another command of
	// the batch) is only in the cache until flush.
	if _, ok := a.jobs[c.ID]; ok {
		return nil, Errorf(EConflict, "job %s already exists", c.ID)
	}
	if ok, err := exists(a.txn, jobKey(c.ID)); err != nil || ok {
		if ok {
			return nil, Errorf(EConflict, "job %s already exists", c.ID)
		}
		return nil, err
	}
	spec := c.Spec
	queue, err := a.admitToQueue(c.Owner, &spec)
	if err != nil {
		return nil, err
	}
	// Checked before anything is written, so a rejected command leaves no
	// trace: the dependencies exist and are the owner's, and what their
	// states mean for the new job now (wait, or fail at once).
	plan, err := a.planDeps(c.Owner, &spec)
	if err != nil {
		return nil, err
	}
	if err := a.checkJobInputs(c.Owner, &spec); err != nil {
		return nil, err
	}
	j := &Job{ID: c.ID, Owner: c.Owner, Spec: spec, State: StateQueued, Submitted: a.at, Queue: queue,
		Counts: map[string]int{StateQueued: spec.Array}, Total: spec.Array, Key: c.Key, GenAI: c.GenAI, Trial: c.Trial}
	if err := a.writeDeps(j, plan); err != nil {
		return nil, err
	}
	// The spec's one write: every later change rewrites only the job's
	// state record (flush).
	if err := a.putSpec(j.ID, &j.Spec); err != nil {
		return nil, err
	}
	if err := a.txn.Set(jobOwnerKey(c.Owner, c.ID), nil); err != nil {
		return nil, err
	}
	if c.Key != "" {
		if err := a.txn.Set(submitKeyKey(c.Owner, c.Key), []byte(c.ID)); err != nil {
			return nil, err
		}
	}
	a.jobs[j.ID] = j
	a.dirty[j.ID] = ""
	for i := 0; i < spec.Array; i++ {
		t := Task{JobID: j.ID, Index: i, State: StateQueued, Updated: a.at, Held: plan.held[i]}
		if err := putJSON(a.txn, taskKey(j.ID, i), t); err != nil {
			return nil, err
		}
		if j.Held == 0 && plan.failed == "" && t.Held == 0 {
			if err := a.txn.Set(taskQueueKey(j, i), nil); err != nil {
				return nil, err
			}
		}
	}
	if plan.failed != "" {
		j.Held = 0
		if err := a.failQueued(j, plan.failed); err != nil {
			return nil, err
		}
		return j, nil
	}
	// Tasks whose n-to-n dependency's task already failed fail now, in
	// index order (a sequential job's later tasks follow them).
	doomed := make([]int, 0, len(plan.doomed))
	for i := range plan.doomed {
		doomed = append(doomed, i)
	}
	slices.Sort(doomed)
	for _, i := range doomed {
		t, err := a.task(j.ID, i)
		if err != nil {
			return nil, err
		}
		if t.State != StateQueued {
			continue
		}
		t.Held, t.Reason = 0, ReasonDependency
		j.Message = plan.doomed[i]
		if err := a.txn.Delete(taskQueueKey(j, i)); err != nil {
			return nil, err
		}
		if err := a.setTask(j, t, StateFailed); err != nil {
			return nil, err
		}
	}
	return j, nil
}

// setTask moves a task to a new state, keeping the job's counts and
// aggregate state in step.
func (a *applier) setTask(j *Job, t *Task, state string) error {
	ended := !Terminal(t.State) && Terminal(state)
	if t.State != state {
		if state == StateRunning {
			a.started++
		}
		if ended {
			a.finished++
		}
		j.Counts[t.State]--
		if j.Counts[t.State] <= 0 {
			delete(j.Counts, t.State)
		}
		j.Counts[state]++
		t.State = state
	}
	t.Updated = a.at
	if err := putJSON(a.txn, taskKey(t.JobID, t.Index), t); err != nil {
		return err
	}
	tc := *t
	a.events = append(a.events, Event{Type: "task", Owner: j.Owner, Task: &tc})
	if a.written == nil {
		a.written = map[string]Task{}
	}
	a.written[string(taskKey(t.JobID, t.Index))] = tc
	if err := a.aggregate(j); err != nil {
		return err
	}
	if ended {
		return a.taskEnded(j, t)
	}
	return nil
}

// aggregate recomputes the job's state from its task counts. A job's state
// never moves backwards; when it ends, its dependents are released.
func (a *applier) aggregate(j *Job) error {
	c := j.Counts
	done := c[StateSucceeded] + c[StateFailed] + c[StateCancelled]
	var s string
	switch {
	case done == j.Total:
		switch {
		case c[StateSucceeded] == j.Total:
			s = StateSucceeded
		case j.CancelRequested:
			s = StateCancelled
		default:
			s = StateFailed
		}
	case c[StateRunning] > 0 || done > 0:
		s = StateRunning
	case c[StateScheduled] > 0:
		s = StateScheduled
	default:
		s = StateQueued
	}
	if Terminal(j.State) || stateRank[s] < stateRank[j.State] {
		return nil
	}
	if s == j.State {
		return nil
	}
	j.State = s
	if s == StateRunning && j.Started.IsZero() {
		j.Started = a.at
	}
	if Terminal(s) {
		j.Ended = a.at
		return a.releaseDependents(j)
	}
	return nil
}

// failQueued fails every queued task of a job (a dependency can never be
// met).
func (a *applier) failQueued(j *Job, msg string) error {
	j.Message = msg
	return a.eachTask(j.ID, func(t *Task) error {
		if t.State != StateQueued {
			return nil
		}
		if err := a.txn.Delete(taskQueueKey(j, t.Index)); err != nil {
			return err
		}
		t.Reason, t.Held = ReasonDependency, 0
		return a.setTask(j, t, StateFailed)
	})
}

func (a *applier) eachTask(jobID string, fn func(t *Task) error) error {
	prefix := []byte(pTask + jobID + "/")
	it := a.txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: 100})
	var tasks []*Task
	for it.Rewind(); it.Valid(); it.Next() {
		var t Task
		if err := it.Item().Value(func(b []byte) error { return jsonUnmarshal(b, &t) }); err != nil {
			it.Close()
			return err
		}
		tasks = append(tasks, &t)
	}
	it.Close()
	for _, t := range tasks {
		// fn may end a task, and a sequential job's end walks the tasks
		// after it: those are taken as they are now, not as read above.
		if w, ok := a.written[string(taskKey(t.JobID, t.Index))]; ok {
			*t = w
		}
		if err := fn(t); err != nil {
			return err
		}
	}
	return nil
}

func (a *applier) cancelJob(c *CancelJob) (*Job, error) {
	j, err := a.job(c.ID)
	if errors.Is(err, ErrNotFound) || (err == nil && !c.Admin && j.Owner != c.Actor) {
		return nil, Errorf(ENotFound, "job %s not found", c.ID)
	}
	if err != nil {
		return nil, err
	}
	if Terminal(j.State) {
		return nil, Errorf(EConflict, "job %s already %s", j.ID, j.State)
	}
	if c.Dependents {
		// Dependents first, the furthest first: cancelling a job before
		// its dependents would fail them (dependency_failed) instead.
		order, err := a.cancelOrder(j.ID)
		if err != nil {
			return nil, err
		}
		for _, d := range order {
			if err := a.cancelOne(d, "cancelled by "+c.Actor+" with its dependency "+j.ID); err != nil {
				return nil, err
			}
		}
	}
	return j, a.cancelOne(j, "cancelled by "+c.Actor)
}

// cancelOne cancels a job's queued tasks and flags its running attempts.
func (a *applier) cancelOne(j *Job, msg string) error {
	if Terminal(j.State) {
		return nil
	}
	j.CancelRequested = true
	j.Message = msg
	err := a.eachTask(j.ID, func(t *Task) error {
		switch t.State {
		case StateQueued:
			if err := a.txn.Delete(taskQueueKey(j, t.Index)); err != nil {
				return err
			}
			t.Reason = ReasonCancelled
			return a.setTask(j, t, StateCancelled)
		case StateScheduled, StateRunning:
			var at Attempt
			if err := getJSON(a.txn, attemptKey(j.ID, t.Index, t.Attempts), &at); err != nil {
				return err
			}
			at.CancelRequested = true
			if err := putJSON(a.txn, attemptKey(j.ID, t.Index, t.Attempts), at); err != nil {
				return err
			}
			// Re-announce the task so the runner of its node acts on it.
			return a.setTask(j, t, t.State)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return a.aggregate(j)
}

func (a *applier) place(c *Place) (*PlaceResult, error) {
	res := &PlaceResult{}
	for _, p := range c.Placements {
		ok, err := a.placeOne(p)
		if err != nil {
			return nil, err
		}
		if ok {
			res.Accepted++
		} else {
			res.Rejected++
		}
	}
	return res, nil
}

func (a *applier) placeOne(p Placement) (bool, error) {
	j, err := a.job(p.JobID)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if j.CancelRequested || j.Held > 0 || Terminal(j.State) {
		return false, nil
	}
	var t Task
	if err := getJSON(a.txn, taskKey(j.ID, p.Task), &t); err != nil {
		if errors.Is(err, ErrNotFound) {
			return false, nil
		}
		return false, err
	}
	if t.State != StateQueued || t.Held > 0 {
		return false, nil
	}
	n, err := a.node(p.Node)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	need := j.Spec.Task()
	if n.State != NodeReady || !n.Free().Holds(need) || !n.Matches(j.Spec.Constraints) {
		return false, nil
	}
	use, err := a.userUsage(j.Owner)
	if err != nil {
		return false, err
	}
	q, err := a.quota(j.Owner)
	if err != nil {
		return false, err
	}
	// A trial draws on the trial allowance, not on the owner's quota.
	if !j.Trial && !q.Allows(use.Allocated.Plus(need)) {
		return false, nil
	}
	quse, err := a.queueUsage(j.Queue)
	if err != nil {
		return false, err
	}
	if limit, err := a.queueLimit(j.Queue); err != nil || !limit.Allows(quse.Allocated.Plus(need)) {
		return false, err
	}
	t.Attempts++
	t.Node = n.Name
	at := Attempt{JobID: j.ID, Task: t.Index, N: t.Attempts, Node: n.Name, State: StateScheduled,
		Scheduled: a.at, CPU: j.Spec.CPU, Memory: j.Spec.Memory, GPUs: j.Spec.GPUs}
	// Free().Holds checked that need.GPUs devices are free: take them.
	at.Devices = n.assignDevices(need.GPUs, at.Ref())
	if err := putJSON(a.txn, attemptKey(j.ID, t.Index, at.N), at); err != nil {
		return false, err
	}
	if err := a.txn.Set(nodeActiveKey(n.Name, j.ID, t.Index, at.N), nil); err != nil {
		return false, err
	}
	if err := a.txn.Delete(taskQueueKey(j, t.Index)); err != nil {
		return false, err
	}
	n.Allocated = n.Allocated.Plus(need)
	n.Running++
	quse.Allocated = quse.Allocated.Plus(need)
	quse.Tasks++
	if !j.Trial {
		use.Allocated = use.Allocated.Plus(need)
		use.Tasks++
	}
	return true, a.setTask(j, &t, StateScheduled)
}

func (a *applier) attemptStarted(c *AttemptStarted) (None, error) {
	var at Attempt
	if err := getJSON(a.txn, attemptKey(c.JobID, c.Task, c.N), &at); err != nil {
		return None{}, err
	}
	if at.State != StateScheduled {
		return None{}, nil // already running or ended: nothing to do
	}
	at.State = StateRunning
	at.Container = c.Container
	at.Started = c.At
	if err := putJSON(a.txn, attemptKey(c.JobID, c.Task, c.N), at); err != nil {
		return None{}, err
	}
	j, err := a.job(c.JobID)
	if err != nil {
		return None{}, err
	}
	var t Task
	if err := getJSON(a.txn, taskKey(c.JobID, c.Task), &t); err != nil {
		return None{}, err
	}
	if t.Attempts != c.N || t.State != StateScheduled {
		return None{}, nil
	}
	return None{}, a.setTask(j, &t, StateRunning)
}

func (a *applier) attemptEnded(c *AttemptEnded) (None, error) {
	if err := validAttemptOutput(c.Output); err != nil {
		return None{}, err
	}
	var at Attempt
	if err := getJSON(a.txn, attemptKey(c.JobID, c.Task, c.N), &at); err != nil {
		return None{}, err
	}
	if Terminal(at.State) {
		return None{}, nil // already recorded: reports are idempotent
	}
	code := c.ExitCode
	at.ExitCode = &code
	at.Reason = c.Reason
	at.Message = c.Message
	at.Ended = c.Ended
	if at.Started.IsZero() {
		at.Started = c.Started
	}
	if c.Container != "" {
		at.Container = c.Container
	}
	if c.ImageDigest != "" {
		at.ImageDigest = c.ImageDigest
	}
	at.Output = c.Output
	success := c.Reason == ReasonExited && c.ExitCode == 0
	switch {
	case success:
		at.State = StateSucceeded
	case c.Reason == ReasonCancelled || c.Reason == ReasonPreempted:
		at.State = StateCancelled // stopped, not failed: the reason says by what
	default:
		at.State = StateFailed
	}
	if err := putJSON(a.txn, attemptKey(c.JobID, c.Task, c.N), at); err != nil {
		return None{}, err
	}
	if err := a.txn.Delete(nodeActiveKey(at.Node, c.JobID, c.Task, c.N)); err != nil {
		return None{}, err
	}
	held := Resources{CPU: at.CPU, Memory: at.Memory, GPUs: at.GPUs}
	if n, err := a.node(at.Node); err == nil {
		n.Allocated = n.Allocated.Minus(held)
		n.Running = max(n.Running-1, 0)
		n.releaseDevices(at.Ref())
	} else if !errors.Is(err, ErrNotFound) {
		return None{}, err
	}
	j, err := a.job(c.JobID)
	if err != nil {
		return None{}, err
	}
	quse, err := a.queueUsage(j.Queue)
	if err != nil {
		return None{}, err
	}
	quse.Allocated = quse.Allocated.Minus(held)
	quse.Tasks = max(quse.Tasks-1, 0)
	if j.Trial {
		if err := a.addTrialUse(j.Owner, &at); err != nil {
			return None{}, err
		}
	} else {
		use, err := a.userUsage(j.Owner)
		if err != nil {
			return None{}, err
		}
		use.Allocated = use.Allocated.Minus(held)
		use.Tasks = max(use.Tasks-1, 0)
	}
	var t Task
	if err := getJSON(a.txn, taskKey(c.JobID, c.Task), &t); err != nil {
		return None{}, err
	}
	if t.Attempts != c.N || Terminal(t.State) {
		return None{}, nil
	}
	t.ExitCode = &code
	t.Reason = c.Reason
	if c.Output != nil {
		t.Output = c.Output
	}
	switch {
	case success:
		return None{}, a.setTask(j, &t, StateSucceeded)
	case c.Reason == ReasonCancelled || j.CancelRequested:
		return None{}, a.setTask(j, &t, StateCancelled)
	case c.Reason == ReasonPreempted:
		// Preemption is not the task's failure: the attempt does not count
		// against its retries.
		t.AttemptBase++
		t.Preemptions++
		j.Preemptions++
		fallthrough
	case a.retries(j, &t, c):
		t.Node = ""
		if err := a.txn.Set(taskQueueKey(j, t.Index), nil); err != nil {
			return None{}, err
		}
		// An attempt has run, so the job is under way even while the task
		// waits for its next attempt.
		if stateRank[j.State] < stateRank[StateRunning] {
			j.State = StateRunning
			if j.Started.IsZero() {
				j.Started = a.at
			}
		}
		return None{}, a.setTask(j, &t, StateQueued)
	default:
		return None{}, a.setTask(j, &t, StateFailed)
	}
}

// maxNodeLost bounds how often a task is rescheduled because its node died,
// on top of its retry budget.
const maxNodeLost = 5

func (a *applier) retries(j *Job, t *Task, c *AttemptEnded) bool {
	// A rerun starts a new retry budget: attempts before it do not count.
	n := t.Attempts - t.AttemptBase
	if c.Reason == ReasonNodeLost {
		return n < j.Spec.Retries+1+maxNodeLost
	}
	if n >= j.Spec.Retries+1 {
		return false
	}
	if c.Reason == ReasonExited && len(j.Spec.RetryOn) > 0 {
		return slices.Contains(j.Spec.RetryOn, c.ExitCode)
	}
	return true
}
