package store

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// MaxRerunTasks bounds the task indexes one rerun names.
const MaxRerunTasks = MaxArraySize

// RerunTasks gives chosen ended tasks of a job a new attempt in the same
// job: their earlier attempts and logs stay, the job goes back to running
// and ends again. Failed selects every failed task; Tasks names indexes
// (any ended task). Actor is checked against the owner on apply: only the
// owner reruns, as only the owner resubmits.
type RerunTasks struct {
	JobID  string `json:"job"`
	Failed bool   `json:"failed,omitempty"`
	Tasks  []int  `json:"tasks,omitempty"`
	Actor  string `json:"actor"`
}

// RerunResult is the job after a rerun and the tasks queued again.
type RerunResult struct {
	Job   *Job  `json:"job"`
	Tasks []int `json:"tasks"`
}

// rerunTasks applies RerunTasks. Everything is checked before the first
// write: a job that has not ended, tasks that have not ended or do not
// exist, a dependency that failed and was not rerun.
func (a *applier) rerunTasks(c *RerunTasks) (*RerunResult, error) {
	j, err := a.job(c.JobID)
	if errors.Is(err, ErrNotFound) || (err == nil && j.Owner != c.Actor) {
		return nil, Errorf(ENotFound, "job %s not found", c.JobID)
	}
	if err != nil {
		return nil, err
	}
	if !Terminal(j.State) {
		return nil, Errorf(EConflict, "job %s is %s: rerun tasks once it has ended (or cancel it first)", j.ID, j.State)
	}
	if c.Failed == (len(c.Tasks) > 0) {
		return nil, Errorf(EInvalid, "tasks: name the tasks to rerun, or ask for the failed ones (not both)")
	}
	if len(c.Tasks) > MaxRerunTasks {
		return nil, Errorf(EInvalid, "tasks: at most %d", MaxRerunTasks)
	}
	var chosen []*Task
	if c.Failed {
		if err := a.eachTask(j.ID, func(t *Task) error {
			if t.State == StateFailed {
				chosen = append(chosen, t)
			}
			return nil
		}); err != nil {
			return nil, err
		}
		if len(chosen) == 0 {
			return nil, Errorf(EConflict, "job %s has no failed task to rerun", j.ID)
		}
	} else {
		seen := map[int]bool{}
		for _, i := range c.Tasks {
			if i < 0 || i >= j.Total {
				return nil, Errorf(EInvalid, "tasks: job %s has no task %d (it has 0-%d)", j.ID, i, j.Total-1)
			}
			if seen[i] {
				continue
			}
			seen[i] = true
			var t Task
			if err := getJSON(a.txn, taskKey(j.ID, i), &t); err != nil {
				return nil, err
			}
			chosen = append(chosen, &t)
		}
	}
	// Its own dependencies: one that can no longer be met must be rerun
	// first; one still going makes the job (or the task) wait for it again.
	waitOn, err := a.rerunDependencies(j)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(chosen, func(x, y *Task) int { return x.Index - y.Index })
	held, err := a.rerunTaskHolds(j, chosen)
	if err != nil {
		return nil, err
	}

	for _, d := range waitOn {
		if err := a.txn.Set(dependentKey(d.Job, j.ID), depValue(d.Kind)); err != nil {
			return nil, err
		}
	}
	j.Held = len(waitOn)
	j.CancelRequested = false
	j.Ended = time.Time{}
	j.Message = fmt.Sprintf("%d task(s) rerun by %s", len(chosen), c.Actor)
	j.State = StateQueued
	if !j.Started.IsZero() {
		j.State = StateRunning
	}
	res := &RerunResult{Job: j}
	for k, t := range chosen {
		t.AttemptBase = t.Attempts
		t.Reruns++
		t.Node, t.ExitCode, t.Reason = "", nil, ""
		t.Held = held[k]
		if j.Held == 0 && t.Held == 0 {
			if err := a.txn.Set(taskQueueKey(j, t.Index), nil); err != nil {
				return nil, err
			}
		}
		if err := a.setTask(j, t, StateQueued); err != nil {
			return nil, err
		}
		res.Tasks = append(res.Tasks, t.Index)
	}
	if err := a.rehold(j); err != nil {
		return nil, err
	}
	if err := a.reholdTasks(j, res.Tasks); err != nil {
		return nil, err
	}
	return res, nil
}

// rerunDependencies checks a rerun job's own job-level dependencies: it
// returns those still going (the job waits for them again), and refuses
// when one ended in a way that does not meet it (or, but for afterany, no
// longer exists).
func (a *applier) rerunDependencies(j *Job) ([]Dep, error) {
	var waitOn []Dep
	for _, dep := range j.Spec.Dependencies() {
		if dep.Kind == DepNToN {
			continue // task by task: rerunTaskHolds
		}
		d, err := a.job(dep.Job)
		if errors.Is(err, ErrNotFound) {
			if dep.Kind == DepAfterAny {
				continue
			}
			return nil, Errorf(EConflict, "job %s depends on job %s, which no longer exists", j.ID, dep.Job)
		}
		if err != nil {
			return nil, err
		}
		switch met, ended := depMet(dep.Kind, d.State); {
		case !ended:
			waitOn = append(waitOn, dep)
		case !met && dep.Kind == DepAfterNotOK:
			return nil, Errorf(EConflict, "job %s depends on job %s not succeeding (afternotok), and it succeeded", j.ID, dep.Job)
		case !met:
			return nil, Errorf(EConflict, "job %s depends on job %s, which %s: rerun it first", j.ID, dep.Job, d.State)
		}
	}
	return waitOn, nil
}

// rerunTaskHolds works out, for each chosen task (sorted by index), how
// many of its per-task dependencies are unmet: the same task of each
// n-to-n dependency still going, and in a sequential job the previous
// task when it is rerun too. It refuses when such a dependency failed and
// is not rerun.
func (a *applier) rerunTaskHolds(j *Job, chosen []*Task) ([]int, error) {
	held := make([]int, len(chosen))
	rerun := map[int]bool{}
	for _, t := range chosen {
		rerun[t.Index] = true
	}
	for k, t := range chosen {
		if !j.Spec.Sequential || t.Index == 0 {
			continue
		}
		if rerun[t.Index-1] {
			held[k]++
			continue
		}
		prev, err := a.task(j.ID, t.Index-1)
		if err != nil {
			return nil, err
		}
		if prev.State != StateSucceeded {
			return nil, Errorf(EConflict, "task %d of sequential job %s waits for task %d, which %s: rerun it too", t.Index, j.ID, t.Index-1, prev.State)
		}
	}
	for _, dep := range j.Spec.Dependencies() {
		if dep.Kind != DepNToN {
			continue
		}
		if _, err := a.job(dep.Job); errors.Is(err, ErrNotFound) {
			return nil, Errorf(EConflict, "job %s depends on job %s, which no longer exists", j.ID, dep.Job)
		} else if err != nil {
			return nil, err
		}
		for k, t := range chosen {
			dt, err := a.task(dep.Job, t.Index)
			if err != nil {
				return nil, err
			}
			switch {
			case dt.State == StateSucceeded:
			case Terminal(dt.State):
				return nil, Errorf(EConflict, "task %d of job %s depends on task %d of job %s (n-to-n), which %s: rerun it first", t.Index, j.ID, t.Index, dep.Job, dt.State)
			default:
				held[k]++
			}
		}
	}
	return held, nil
}

// reholdTasks makes the same tasks of j's n-to-n dependents wait for the
// rerun tasks again, where they have not started since.
func (a *applier) reholdTasks(j *Job, tasks []int) error {
	ids, err := a.dependentsOfKind(j.ID, DepNToN)
	if err != nil {
		return err
	}
	for _, id := range ids {
		d, err := a.job(id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if Terminal(d.State) {
			continue
		}
		for _, i := range tasks {
			dt, err := a.task(d.ID, i)
			if err != nil {
				return err
			}
			if dt.State != StateQueued {
				continue // it ran (or ended) on what it saw
			}
			dt.Held++
			if err := a.txn.Delete(taskQueueKey(d, i)); err != nil {
				return err
			}
			if err := a.setTask(d, dt, StateQueued); err != nil {
				return err
			}
		}
	}
	return nil
}

// rehold makes the dependents this job released when it ended, and that
// have not started since, wait for it again.
func (a *applier) rehold(j *Job) error {
	rels, err := a.edges(pReleased + j.ID + "/")
	if err != nil {
		return err
	}
	for _, r := range rels {
		if err := a.txn.Delete(releasedKey(j.ID, r.id)); err != nil {
			return err
		}
		d, err := a.job(r.id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if Terminal(d.State) || !d.Started.IsZero() || d.CancelRequested {
			continue // it ran (or ended) on what it saw; it keeps that
		}
		if err := a.txn.Set(dependentKey(j.ID, d.ID), depValue(r.kind)); err != nil {
			return err
		}
		d.Held++
		d.Message = "waiting again: " + j.ID + " is running again"
		if err := a.eachTask(d.ID, func(t *Task) error {
			if t.State == StateQueued {
				return a.txn.Delete(taskQueueKey(d, t.Index))
			}
			return nil
		}); err != nil {
			return err
		}
	}
	return nil
}
