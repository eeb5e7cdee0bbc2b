package store

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/dgraph-io/badger/v4"
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
	// Its own dependencies: one that failed (for after) must be rerun
	// first; one still going makes the job wait for it again.
	waitOn, err := a.rerunDependencies(j)
	if err != nil {
		return nil, err
	}

	for _, d := range waitOn {
		var v []byte
		if d.any {
			v = []byte(depAny)
		}
		if err := a.txn.Set(dependentKey(d.job, j.ID), v); err != nil {
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
	for _, t := range chosen {
		t.AttemptBase = t.Attempts
		t.Reruns++
		t.Node, t.ExitCode, t.Reason = "", nil, ""
		if j.Held == 0 {
			if err := a.txn.Set(taskQueueKey(j, t.Index), nil); err != nil {
				return nil, err
			}
		}
		if err := a.setTask(j, t, StateQueued); err != nil {
			return nil, err
		}
		res.Tasks = append(res.Tasks, t.Index)
	}
	slices.Sort(res.Tasks)
	if err := a.rehold(j); err != nil {
		return nil, err
	}
	return res, nil
}

type depWait struct {
	job string
	any bool
}

// rerunDependencies checks a rerun job's own dependencies: it returns those
// still going (the job waits for them again), and refuses when an `after`
// dependency ended without succeeding.
func (a *applier) rerunDependencies(j *Job) ([]depWait, error) {
	var waitOn []depWait
	for _, l := range []struct {
		ids []string
		any bool
	}{{j.Spec.After, false}, {j.Spec.AfterAny, true}} {
		for _, id := range l.ids {
			d, err := a.job(id)
			if errors.Is(err, ErrNotFound) {
				if l.any {
					continue
				}
				return nil, Errorf(EConflict, "job %s depends on job %s, which no longer exists", j.ID, id)
			}
			if err != nil {
				return nil, err
			}
			switch {
			case !Terminal(d.State):
				waitOn = append(waitOn, depWait{id, l.any})
			case !l.any && d.State != StateSucceeded:
				return nil, Errorf(EConflict, "job %s depends on job %s, which %s: rerun it first", j.ID, id, d.State)
			}
		}
	}
	return waitOn, nil
}

// rehold makes the dependents this job released when it ended, and that
// have not started since, wait for it again.
func (a *applier) rehold(j *Job) error {
	prefix := []byte(pReleased + j.ID + "/")
	it := a.txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
	type rel struct {
		id  string
		any bool
	}
	var rels []rel
	for it.Rewind(); it.Valid(); it.Next() {
		id := string(it.Item().Key()[len(prefix):])
		var any bool
		if err := it.Item().Value(func(v []byte) error { any = string(v) == depAny; return nil }); err != nil {
			it.Close()
			return err
		}
		rels = append(rels, rel{id, any})
	}
	it.Close()
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
		var v []byte
		if r.any {
			v = []byte(depAny)
		}
		if err := a.txn.Set(dependentKey(j.ID, d.ID), v); err != nil {
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
