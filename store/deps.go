package store

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/dgraph-io/badger/v4"
)

// Dependency graphs (DESIGN.md, "Dependencies"). A job-level dependency
// (afterok, afternotok, afterany) holds the whole job: Job.Held counts the
// unmet ones and dep/ lists the dependent under each. A per-task
// dependency (n-to-n, and the previous task of a sequential job) holds one
// task: Task.Held counts them. dby/ records every edge for as long as both
// jobs exist: the graph view, cancel --dependents, the n-to-n release of a
// dependency's task and a rerun's re-hold read it.

// depPlan is what a submission's dependencies mean for the new job, worked
// out before its first write.
type depPlan struct {
	waits  []Dep // job-level dependencies still going: the job is held by each
	failed string
	held   []int          // per task: unmet per-task dependencies
	doomed map[int]string // per task: an n-to-n dependency's task that already failed
}

// planDeps checks a new job's dependencies (they exist, are the owner's, an
// n-to-n one has the same array size) and what each one's state means now.
// It only reads.
func (a *applier) planDeps(owner string, spec *JobSpec) (*depPlan, error) {
	p := &depPlan{held: make([]int, spec.Array), doomed: map[int]string{}}
	if spec.Sequential {
		for i := 1; i < spec.Array; i++ {
			p.held[i]++
		}
	}
	for _, dep := range spec.Dependencies() {
		d, err := a.job(dep.Job)
		if errors.Is(err, ErrNotFound) || (err == nil && d.Owner != owner) {
			return nil, Errorf(EInvalid, "deps: %s dependency on job %s: job not found", dep.Kind, dep.Job)
		}
		if err != nil {
			return nil, err
		}
		if dep.Kind == DepNToN {
			if d.Total != spec.Array {
				return nil, Errorf(EInvalid, "deps: job %s has %d tasks and this job %d: an n-to-n dependency needs arrays of the same size", d.ID, d.Total, spec.Array)
			}
			if err := a.eachTask(d.ID, func(t *Task) error {
				switch {
				case t.State == StateSucceeded:
				case Terminal(t.State):
					p.doomed[t.Index] = fmt.Sprintf("dependency %s task %d did not succeed (n-to-n)", d.ID, t.Index)
				default:
					p.held[t.Index]++
				}
				return nil
			}); err != nil {
				return nil, err
			}
			continue
		}
		switch met, ended := depMet(dep.Kind, d.State); {
		case !ended:
			p.waits = append(p.waits, dep)
		case !met && p.failed == "":
			p.failed = unmetMessage(dep.Kind, d)
		}
	}
	return p, nil
}

// depMet says whether a job-level dependency of kind on a job in state is
// met, and whether that is final (the job ended).
func depMet(kind, state string) (met, ended bool) {
	if !Terminal(state) {
		return false, false
	}
	switch kind {
	case DepAfterNotOK:
		return state != StateSucceeded, true
	case DepAfterAny:
		return true, true
	}
	return state == StateSucceeded, true
}

// unmetMessage says why a dependency can never be met.
func unmetMessage(kind string, d *Job) string {
	if kind == DepAfterNotOK {
		return "dependency " + d.ID + " succeeded (afternotok)"
	}
	return "dependency " + d.ID + " did not succeed"
}

// writeDeps records a new job's edges and job-level waits.
func (a *applier) writeDeps(j *Job, p *depPlan) error {
	for _, dep := range j.Spec.Dependencies() {
		if err := a.txn.Set(dependedByKey(dep.Job, dep.Kind, j.ID), nil); err != nil {
			return err
		}
		delete(a.arrayDependents, dep.Job)
	}
	if p.failed != "" {
		return nil
	}
	for _, dep := range p.waits {
		j.Held++
		if err := a.txn.Set(dependentKey(dep.Job, j.ID), depValue(dep.Kind)); err != nil {
			return err
		}
	}
	return nil
}

// releaseDependents settles the job-level dependents of j, which has just
// ended: each whose dependency is met waits for one job fewer (and is
// queued at none), each whose dependency can never be met fails, which
// cascades through aggregate.
func (a *applier) releaseDependents(j *Job) error {
	ws, err := a.edges(pDependent + j.ID + "/")
	if err != nil {
		return err
	}
	for _, w := range ws {
		if err := a.txn.Delete(dependentKey(j.ID, w.id)); err != nil {
			return err
		}
		d, err := a.job(w.id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if Terminal(d.State) || d.Held == 0 {
			continue
		}
		if met, _ := depMet(w.kind, j.State); !met {
			d.Held = 0
			if err := a.failQueued(d, unmetMessage(w.kind, j)); err != nil {
				return err
			}
			continue
		}
		d.Held--
		if err := a.txn.Set(releasedKey(j.ID, w.id), depValue(w.kind)); err != nil {
			return err
		}
		if d.Held > 0 || d.CancelRequested {
			continue
		}
		if err := a.eachTask(d.ID, func(t *Task) error {
			if t.State == StateQueued && t.Held == 0 {
				return a.txn.Set(taskQueueKey(d, t.Index), nil)
			}
			return nil
		}); err != nil {
			return err
		}
	}
	return nil
}

// taskEnded settles the per-task dependents of a task that has just ended:
// the same task of each n-to-n dependent, and the next task of a
// sequential job. A success releases them (queued once nothing else holds
// them); any other end fails them with dependency_failed, which cascades
// (their own ends come back here).
func (a *applier) taskEnded(j *Job, t *Task) error {
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
		if Terminal(d.State) || t.Index >= d.Total {
			continue
		}
		msg := fmt.Sprintf("dependency %s task %d did not succeed (n-to-n)", j.ID, t.Index)
		if err := a.settleTask(d, t.Index, t.State == StateSucceeded, msg); err != nil {
			return err
		}
	}
	if !j.Spec.Sequential || j.CancelRequested || a.seqWalk[j.ID] {
		return nil
	}
	// The chain after t is walked here, not by recursion through each
	// task's end, so a 10,000-task sequential failure stays one loop.
	if a.seqWalk == nil {
		a.seqWalk = map[string]bool{}
	}
	a.seqWalk[j.ID] = true
	defer delete(a.seqWalk, j.ID)
	ok := t.State == StateSucceeded
	for i := t.Index + 1; i < j.Total; i++ {
		next, err := a.task(j.ID, i)
		if err != nil {
			return err
		}
		if next.State != StateQueued || next.Held == 0 {
			return nil
		}
		msg := fmt.Sprintf("task %d did not succeed (sequential)", i-1)
		if err := a.settleTask(j, i, ok, msg); err != nil {
			return err
		}
		if ok {
			return nil
		}
	}
	return nil
}

// settleTask releases (ok) or fails one queued, held task of d.
func (a *applier) settleTask(d *Job, i int, ok bool, msg string) error {
	dt, err := a.task(d.ID, i)
	if err != nil {
		return err
	}
	if dt.State != StateQueued || dt.Held == 0 {
		return nil
	}
	if !ok {
		dt.Held = 0
		dt.Reason = ReasonDependency
		d.Message = msg
		if err := a.txn.Delete(taskQueueKey(d, i)); err != nil {
			return err
		}
		return a.setTask(d, dt, StateFailed)
	}
	dt.Held--
	if dt.Held == 0 && d.Held == 0 && !d.CancelRequested {
		if err := a.txn.Set(taskQueueKey(d, i), nil); err != nil {
			return err
		}
	}
	return a.setTask(d, dt, StateQueued)
}

// task reads one task (the transaction sees this batch's writes).
func (a *applier) task(job string, i int) (*Task, error) {
	var t Task
	if err := getJSON(a.txn, taskKey(job, i), &t); err != nil {
		return nil, fmt.Errorf("task %s/%d: %w", job, i, err)
	}
	return &t, nil
}

// dependentsOfKind lists the jobs that depend on job with kind (dby/).
// n-to-n lists are asked for at every task's end, so they are kept for the
// batch: an iterator over a transaction with many pending writes sorts
// them all, which a 10,000-task job's ends would do 10,000 times.
func (a *applier) dependentsOfKind(job, kind string) ([]string, error) {
	if kind == DepNToN {
		if ids, ok := a.arrayDependents[job]; ok {
			return ids, nil
		}
	}
	ids, err := a.scanDependents(job, kind)
	if err == nil && kind == DepNToN {
		if a.arrayDependents == nil {
			a.arrayDependents = map[string][]string{}
		}
		a.arrayDependents[job] = ids
	}
	return ids, err
}

func (a *applier) scanDependents(job, kind string) ([]string, error) {
	prefix := []byte(pDependedBy + job + "/" + kind + "/")
	var ids []string
	it := a.txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
	for it.Rewind(); it.Valid(); it.Next() {
		ids = append(ids, string(it.Item().Key()[len(prefix):]))
	}
	it.Close()
	return ids, nil
}

// dependentsOf lists every job that depends on job, of any kind, sorted
// and without repeats: dby/, and for jobs submitted before it existed,
// dep/ and rel/.
func dependentsOf(txn *badger.Txn, job string) ([]Dep, error) {
	var out []Dep
	seen := map[string]bool{}
	scan := func(prefix string, parse func(rest string, v []byte) (Dep, bool)) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefix)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			d, ok := parse(string(it.Item().Key()[len(prefix):]), v)
			if ok && !seen[d.Job] {
				seen[d.Job] = true
				out = append(out, d)
			}
		}
		return nil
	}
	if err := scan(pDependedBy+job+"/", func(rest string, _ []byte) (Dep, bool) {
		kind, id, ok := strings.Cut(rest, "/")
		return Dep{Job: id, Kind: kind}, ok
	}); err != nil {
		return nil, err
	}
	for _, p := range []string{pDependent, pReleased} {
		if err := scan(p+job+"/", func(rest string, v []byte) (Dep, bool) {
			return Dep{Job: rest, Kind: depKind(v)}, true
		}); err != nil {
			return nil, err
		}
	}
	slices.SortFunc(out, func(x, y Dep) int { return strings.Compare(x.Job, y.Job) })
	return out, nil
}

// cancelOrder lists the dependents of job, transitively, that have not
// ended and have not started (none of their tasks ran): what cancel
// --dependents cancels. Dependents come before the jobs they depend on, so
// each is cancelled before its dependency's end could fail it.
func (a *applier) cancelOrder(job string) ([]*Job, error) {
	var order []*Job
	visited := map[string]bool{job: true}
	var visit func(id string) error
	visit = func(id string) error {
		deps, err := dependentsOf(a.txn, id)
		if err != nil {
			return err
		}
		for _, dep := range deps {
			if visited[dep.Job] {
				continue
			}
			visited[dep.Job] = true
			d, err := a.job(dep.Job)
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if Terminal(d.State) || !d.Started.IsZero() {
				continue
			}
			if err := visit(d.ID); err != nil {
				return err
			}
			order = append(order, d)
		}
		return nil
	}
	return order, visit(job)
}

// deleteEdges removes a purged job's dependency keys on both sides.
func (a *applier) deleteEdges(j *Job) error {
	delete(a.arrayDependents, j.ID)
	for _, dep := range j.Spec.Dependencies() {
		delete(a.arrayDependents, dep.Job)
		for _, k := range [][]byte{dependedByKey(dep.Job, dep.Kind, j.ID), dependentKey(dep.Job, j.ID), releasedKey(dep.Job, j.ID)} {
			if err := a.txn.Delete(k); err != nil {
				return err
			}
		}
	}
	return a.deletePrefix([]byte(pDependedBy + j.ID + "/"))
}

// DepEdge is one edge of the graph around a job: the job at its other end
// and the kind of dependency.
type DepEdge struct {
	Dep
	Job *Job // nil when the job no longer exists (purged)
}

// JobGraph is the graph around a job: what it depends on and what depends
// on it, one step each way.
type JobGraph struct {
	Job          *Job
	Dependencies []DepEdge
	Dependents   []DepEdge
}

// Graph returns the dependencies and dependents of job id (ErrNotFound if
// it does not exist). A dependent is always its dependency's owner's job.
func (s *Store) Graph(id string) (*JobGraph, error) {
	g := &JobGraph{}
	err := s.view(func(txn *badger.Txn) error {
		var j Job
		if err := s.getJob(txn, id, &j); err != nil {
			return err
		}
		g.Job = &j
		lookup := func(d Dep) (DepEdge, error) {
			var o Job
			err := s.getJob(txn, d.Job, &o)
			switch {
			case errors.Is(err, ErrNotFound):
				return DepEdge{Dep: d}, nil
			case err != nil:
				return DepEdge{}, err
			}
			return DepEdge{Dep: d, Job: &o}, nil
		}
		for _, d := range j.Spec.Dependencies() {
			e, err := lookup(d)
			if err != nil {
				return err
			}
			g.Dependencies = append(g.Dependencies, e)
		}
		deps, err := dependentsOf(txn, id)
		if err != nil {
			return err
		}
		for _, d := range deps {
			e, err := lookup(d)
			if err != nil {
				return err
			}
			if e.Job != nil {
				g.Dependents = append(g.Dependents, e)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return g, nil
}

// edge is a dependent job under a dep/ or rel/ prefix, with its kind.
type edge struct{ id, kind string }

// edges reads the dependents under prefix (dep/<job>/ or rel/<job>/).
func (a *applier) edges(prefix string) ([]edge, error) {
	var out []edge
	it := a.txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefix), PrefetchValues: true})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		e := edge{id: string(it.Item().Key()[len(prefix):])}
		if err := it.Item().Value(func(v []byte) error { e.kind = depKind(v); return nil }); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}
