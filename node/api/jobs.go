package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/oklog/ulid/v2"

	"gantry/node/view"
	"gantry/store"
	"gantry/wire"
)

// readableJob returns the job if the caller may read it; others' jobs are
// reported as not found so their existence is not revealed.
func (a *API) readableJob(c *gin.Context) (*store.Job, bool) {
	id := c.Param("id")
	j, err := a.cfg.Store.Job(id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !canRead(c, j)) {
		fail(c, store.Errorf(store.ENotFound, "job %s not found", id))
		return nil, false
	}
	if err != nil {
		fail(c, err)
		return nil, false
	}
	return j, true
}

func canRead(c *gin.Context, j *store.Job) bool {
	id := identity(c)
	return id.Admin || j.Owner == id.User
}

func (a *API) submitJob(c *gin.Context) {
	var spec wire.JobSpec
	if err := decode(c, &spec); err != nil {
		fail(c, err)
		return
	}
	key := c.GetHeader(wire.IdempotencyKeyHeader)
	if !validKey(key) {
		fail(c, store.Errorf(store.EInvalid, "%s: 1 to 128 letters, digits, '.', '-' or '_'", wire.IdempotencyKeyHeader))
		return
	}
	a.submit(c, view.StoreJobSpec(spec), key)
}

// validKey reports whether an idempotency key is absent or well formed.
func validKey(k string) bool {
	if len(k) > 128 {
		return false
	}
	for _, r := range k {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

func (a *API) submit(c *gin.Context, spec store.JobSpec, key string) {
	spec.Defaults()
	spec.FoldDependencies()
	if err := spec.Validate(); err != nil {
		fail(c, err)
		return
	}
	id := identity(c)
	if err := a.checkImage(c, id.User, id.Admin, spec.Image); err != nil {
		fail(c, err)
		return
	}
	if err := a.pinInputs(c.Request.Context(), &spec, id.User, id.Admin); err != nil {
		fail(c, err)
		return
	}
	if err := a.checkPlaceable(&spec, id.User); err != nil {
		fail(c, err)
		return
	}
	if err := a.checkDependencies(&spec, id.User); err != nil {
		fail(c, err)
		return
	}
	genai, err := a.genAI(a.imageRepo(spec.Image))
	if err != nil {
		fail(c, err)
		return
	}
	j, ok := propose(c, a, store.CmdSubmitJob, store.SubmitJob{ID: ulid.Make().String(), Owner: id.User, Spec: spec, Key: key, GenAI: genai})
	if !ok {
		return
	}
	c.JSON(http.StatusCreated, view.Job(j))
}

// checkDependencies refuses dependencies on jobs that do not exist or that
// belong to someone else (both "not found", so others' jobs are not
// revealed), and n-to-n dependencies on arrays of another size; a store
// that cannot answer is an internal error, not a missing job. The store
// checks again on apply.
func (a *API) checkDependencies(spec *store.JobSpec, user string) error {
	for _, dep := range spec.Dependencies() {
		j, err := a.cfg.Store.Job(dep.Job)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("read dependency %s: %w", dep.Job, err)
		}
		if err != nil || j.Owner != user {
			return store.Errorf(store.EInvalid, "deps: %s dependency on job %s: job not found", dep.Kind, dep.Job)
		}
		if dep.Kind == store.DepNToN && j.Total != spec.Array {
			return store.Errorf(store.EInvalid, "deps: job %s has %d tasks and this job %d: an n-to-n dependency needs arrays of the same size", j.ID, j.Total, spec.Array)
		}
	}
	return nil
}

func (a *API) listJobs(c *gin.Context) {
	id := identity(c)
	f := store.JobFilter{State: c.Query("state"), Query: c.Query("q"), Cursor: c.Query("cursor"), Owner: id.User}
	if id.Admin {
		f.Owner = c.Query("owner")
	}
	if f.State != "" && !validState(f.State) {
		fail(c, store.Errorf(store.EInvalid, "state: want one of queued, scheduled, running, succeeded, failed, cancelled"))
		return
	}
	if l := c.Query("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			fail(c, store.Errorf(store.EInvalid, "limit: want 1..1000"))
			return
		}
		f.Limit = n
	}
	jobs, next, err := a.cfg.Store.ListJobs(f)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, wire.JobList{Jobs: view.Jobs(jobs), Next: next})
}

func validState(s string) bool {
	for _, v := range store.States {
		if v == s {
			return true
		}
	}
	return false
}

func (a *API) getJob(c *gin.Context) {
	j, ok := a.readableJob(c)
	if !ok {
		return
	}
	waiting, err := a.waitReason(j)
	if err != nil {
		fail(c, err)
		return
	}
	v := view.Job(j)
	v.Waiting = waiting
	c.JSON(http.StatusOK, v)
}

// waitReason says why a job's queued tasks are not running (store.WaitReason).
func (a *API) waitReason(j *store.Job) (string, error) {
	if store.Terminal(j.State) || j.Counts[store.StateQueued] == 0 {
		return "", nil
	}
	var pending []string
	if j.Held > 0 {
		for _, dep := range j.Spec.Dependencies() {
			if dep.Kind == store.DepNToN {
				continue
			}
			d, err := a.cfg.Store.Job(dep.Job)
			switch {
			case errors.Is(err, store.ErrNotFound):
			case err != nil:
				return "", fmt.Errorf("read dependency %s: %w", dep.Job, err)
			case !store.Terminal(d.State):
				pending = append(pending, dep.Job)
			}
		}
		if len(pending) > 10 {
			pending = append(pending[:10], fmt.Sprintf("%d more", len(pending)-10))
		}
	}
	if j.Held == 0 && perTaskDeps(&j.Spec) {
		if held, err := a.allQueuedHeld(j); err != nil || held {
			return "waiting for the tasks they depend on (n-to-n: the same task of the other job; sequential: the task before)", err
		}
	}
	nodes, err := a.cfg.Store.Nodes()
	if err != nil {
		return "", fmt.Errorf("read nodes: %w", err)
	}
	var quota store.Resources
	u, err := a.cfg.Store.User(j.Owner)
	switch {
	case err == nil:
		quota = u.Quota
	case !errors.Is(err, store.ErrNotFound):
		return "", fmt.Errorf("read user %s: %w", j.Owner, err)
	}
	use, err := a.cfg.Store.Usage(j.Owner)
	if err != nil {
		return "", fmt.Errorf("read usage of %s: %w", j.Owner, err)
	}
	return store.WaitReason(j, pending, nodes, quota, use), nil
}

// perTaskDeps reports whether a job's tasks may wait one by one.
func perTaskDeps(s *store.JobSpec) bool {
	if s.Sequential {
		return true
	}
	for _, d := range s.Deps {
		if d.Kind == store.DepNToN {
			return true
		}
	}
	return false
}

// allQueuedHeld reports whether every queued task of j (the first 1000)
// waits for a task it depends on.
func (a *API) allQueuedHeld(j *store.Job) (bool, error) {
	tasks, _, err := a.cfg.Store.Tasks(j.ID, store.StateQueued, 0, 1000)
	if err != nil {
		return false, fmt.Errorf("read tasks of %s: %w", j.ID, err)
	}
	for _, t := range tasks {
		if t.Held == 0 {
			return false, nil
		}
	}
	return len(tasks) > 0, nil
}

func (a *API) cancelJob(c *gin.Context) {
	j, ok := a.readableJob(c)
	if !ok {
		return
	}
	dependents := false
	if v := c.Query("dependents"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			fail(c, store.Errorf(store.EInvalid, "dependents: want true or false"))
			return
		}
		dependents = b
	}
	id := identity(c)
	res, ok := propose(c, a, store.CmdCancelJob, store.CancelJob{ID: j.ID, Actor: id.User, Admin: id.Admin, Dependents: dependents})
	if !ok {
		return
	}
	c.JSON(http.StatusOK, view.Job(res))
}

func (a *API) retryJob(c *gin.Context) {
	j, ok := a.readableJob(c)
	if !ok {
		return
	}
	if identity(c).User != j.Owner {
		fail(c, store.Errorf(store.EForbidden, "only the owner can resubmit a job"))
		return
	}
	spec := j.Spec
	spec.Deps, spec.After, spec.AfterAny = nil, nil, nil
	a.submit(c, spec, "")
}

// jobDeps answers the graph around a job: its dependencies and its
// dependents (always its owner's jobs), each with kind and state.
func (a *API) jobDeps(c *gin.Context) {
	j, ok := a.readableJob(c)
	if !ok {
		return
	}
	g, err := a.cfg.Store.Graph(j.ID)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, view.Graph(g))
}

// rerunJob gives chosen ended tasks of a job a new attempt in the same job
// (the owner only: a job runs as its owner).
func (a *API) rerunJob(c *gin.Context) {
	j, ok := a.readableJob(c)
	if !ok {
		return
	}
	id := identity(c)
	if id.User != j.Owner {
		fail(c, store.Errorf(store.EForbidden, "only the owner can rerun the tasks of a job"))
		return
	}
	var req wire.Rerun
	if err := decode(c, &req); err != nil {
		fail(c, err)
		return
	}
	res, ok := propose(c, a, store.CmdRerunTasks, store.RerunTasks{JobID: j.ID, Failed: req.Failed, Tasks: req.Tasks, Actor: id.User})
	if !ok {
		return
	}
	c.JSON(http.StatusOK, wire.RerunResult{Job: view.Job(res.Job), Tasks: res.Tasks})
}

func (a *API) waitJob(c *gin.Context) {
	j, ok := a.readableJob(c)
	if !ok {
		return
	}
	timeout := 60 * time.Second
	if t := c.Query("timeout"); t != "" {
		d, err := time.ParseDuration(t)
		if err != nil || d < 0 || d > time.Hour {
			fail(c, store.Errorf(store.EInvalid, "timeout: want a duration up to 1h"))
			return
		}
		timeout = d
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), timeout)
	defer cancel()
	j, err := a.waitTerminal(ctx, j.ID)
	if err != nil && j == nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, view.Job(j))
}

// waitTerminal waits for a job to end, returning its latest state when ctx
// ends first.
func (a *API) waitTerminal(ctx context.Context, id string) (*store.Job, error) {
	for {
		sub := a.cfg.Store.Subscribe(256)
		j, err := a.cfg.Store.Job(id)
		if err != nil || store.Terminal(j.State) {
			sub.Close()
			return j, err
		}
		lost := false
		for !lost {
			select {
			case <-ctx.Done():
				sub.Close()
				j, err := a.cfg.Store.Job(id)
				return j, err
			case ev, ok := <-sub.C:
				if !ok {
					lost = true
					break
				}
				if ev.Type == "job" && ev.Job.ID == id && store.Terminal(ev.Job.State) {
					sub.Close()
					return ev.Job, nil
				}
			}
		}
		sub.Close()
	}
}

func (a *API) listTasks(c *gin.Context) {
	j, ok := a.readableJob(c)
	if !ok {
		return
	}
	state := c.Query("state")
	if state != "" && !validState(state) {
		fail(c, store.Errorf(store.EInvalid, "state: want one of queued, scheduled, running, succeeded, failed, cancelled"))
		return
	}
	cursor, limit, err := taskPage(c, 1000)
	if err != nil {
		fail(c, err)
		return
	}
	tasks, next, err := a.cfg.Store.Tasks(j.ID, state, cursor, limit)
	if err != nil {
		fail(c, err)
		return
	}
	nextS := ""
	if next >= 0 {
		nextS = strconv.Itoa(next)
	}
	c.JSON(http.StatusOK, wire.TaskList{Tasks: view.Tasks(tasks), Next: nextS})
}

func (a *API) taskIndex(c *gin.Context, j *store.Job) (int, bool) {
	i, err := strconv.Atoi(c.Param("index"))
	if err != nil || i < 0 || i >= j.Total {
		fail(c, store.Errorf(store.ENotFound, "job %s has no task %s", j.ID, c.Param("index")))
		return 0, false
	}
	return i, true
}

// readableTask is the task the path names, of a job the caller may read
// (readableJob); false: the answer is sent.
func (a *API) readableTask(c *gin.Context) (*store.Job, *store.Task, bool) {
	j, ok := a.readableJob(c)
	if !ok {
		return nil, nil, false
	}
	i, ok := a.taskIndex(c, j)
	if !ok {
		return nil, nil, false
	}
	t, err := a.cfg.Store.Task(j.ID, i)
	if err != nil {
		fail(c, err)
		return nil, nil, false
	}
	return j, t, true
}

func (a *API) getTask(c *gin.Context) {
	j, t, ok := a.readableTask(c)
	if !ok {
		return
	}
	i := t.Index
	atts, err := a.cfg.Store.Attempts(j.ID, i)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, wire.TaskDetail{Task: view.Task(t), AttemptList: view.Attempts(atts)})
}

// checkPlaceable refuses a job that would wait queued forever: one task
// needs more than the submitter's quota, or no node of the cluster (in any
// state: a down node may come back) has the constrained labels and the
// capacity for one task.
func (a *API) checkPlaceable(spec *store.JobSpec, user string) error {
	need := spec.Task()
	u, err := a.cfg.Store.User(user)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("read user %s: %w", user, err)
	}
	if err == nil && !u.Quota.Allows(need) {
		q := u.Quota
		switch {
		case q.CPU > 0 && need.CPU > q.CPU:
			return store.Errorf(store.EInvalid, "cpu: %s per task is more than your quota (%s)", store.CPUText(need.CPU), store.CPUText(q.CPU))
		case q.Memory > 0 && need.Memory > q.Memory:
			return store.Errorf(store.EInvalid, "memory: %s per task is more than your quota (%s)", store.MemoryText(need.Memory), store.MemoryText(q.Memory))
		default:
			return store.Errorf(store.EInvalid, "gpus: %d per task is more than your quota (%d)", need.GPUs, q.GPUs)
		}
	}
	nodes, err := a.cfg.Store.Nodes()
	if err != nil {
		return fmt.Errorf("read nodes: %w", err)
	}
	if len(nodes) == 0 {
		return nil // nothing to judge by
	}
	var most store.Resources
	matched := 0
	for _, n := range nodes {
		if !n.Matches(spec.Constraints) {
			continue
		}
		matched++
		if n.Capacity.Holds(need) {
			return nil
		}
		most = store.Resources{CPU: max(most.CPU, n.Capacity.CPU), Memory: max(most.Memory, n.Capacity.Memory), GPUs: max(most.GPUs, n.Capacity.GPUs)}
	}
	which := "any node"
	if len(spec.Constraints) > 0 {
		which = "any node with " + store.LabelsText(spec.Constraints)
	}
	switch {
	case matched == 0:
		return store.Errorf(store.EInvalid, "constraints: no node has %s", store.LabelsText(spec.Constraints))
	case need.GPUs > most.GPUs && most.GPUs == 0:
		return store.Errorf(store.EInvalid, "gpus: no node of this cluster has GPUs")
	case need.GPUs > most.GPUs:
		return store.Errorf(store.EInvalid, "gpus: %d per task is more than %s has (%d)", need.GPUs, which, most.GPUs)
	case need.CPU > most.CPU:
		return store.Errorf(store.EInvalid, "cpu: %s per task is more than %s has (largest: %s)", store.CPUText(need.CPU), which, store.CPUText(most.CPU))
	case need.Memory > most.Memory:
		return store.Errorf(store.EInvalid, "memory: %s per task is more than %s has (largest: %s)", store.MemoryText(need.Memory), which, store.MemoryText(most.Memory))
	}
	return store.Errorf(store.EInvalid, "cpu, memory: no single node has %s and %s together", store.CPUText(need.CPU), store.MemoryText(need.Memory))
}

// taskPage reads a page of tasks from the query: cursor (a task index,
// default 0) and limit (1..MaxArraySize, default def).
func taskPage(c *gin.Context, def int) (cursor, limit int, err error) {
	limit = def
	if v := c.Query("cursor"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return 0, 0, store.Errorf(store.EInvalid, "cursor: want a task index")
		}
		cursor = n
	}
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > store.MaxArraySize {
			return 0, 0, store.Errorf(store.EInvalid, "limit: want 1..%d", store.MaxArraySize)
		}
		limit = n
	}
	return cursor, limit, nil
}
