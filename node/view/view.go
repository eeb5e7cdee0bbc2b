// Package view turns the store's records into the API's wire types
// (package wire), and what users send into what the store records. The
// REST API and the console's live feed both use it, so the two never show
// a record differently, and the store's records can change shape without
// changing what users see. It decides nothing: access checks and
// validation stay with the API and the store.
package view

import (
	"maps"
	"slices"
	"strings"

	"gantry/store"
	"gantry/wire"
)

// Resources is what the API shows of an amount of resources.
func Resources(r store.Resources) wire.Resources {
	return wire.Resources{CPU: r.CPU, Memory: r.Memory, GPUs: r.GPUs}
}

// StoreResources is what the store records of resources a user sent.
func StoreResources(r wire.Resources) store.Resources {
	return store.Resources{CPU: r.CPU, Memory: r.Memory, GPUs: r.GPUs}
}

// Usage is what the API shows of a user's usage.
func Usage(u store.UserUsage) wire.Usage {
	return wire.Usage{Allocated: Resources(u.Allocated), Tasks: u.Tasks}
}

// JobSpec is what the API shows of a job's spec.
func JobSpec(s store.JobSpec) wire.JobSpec {
	return wire.JobSpec{
		Name: s.Name, Image: s.Image, Command: slices.Clone(s.Command), Env: maps.Clone(s.Env), WorkDir: s.WorkDir,
		CPU: s.CPU, Memory: s.Memory, GPUs: s.GPUs, Array: s.Array, Retries: s.Retries, RetryOn: slices.Clone(s.RetryOn),
		Timeout: wire.Duration(s.Timeout), Priority: s.Priority, Queue: s.Queue, Labels: maps.Clone(s.Labels),
		Deps: deps(s.Deps), After: slices.Clone(s.After), AfterAny: slices.Clone(s.AfterAny), Sequential: s.Sequential,
		Constraints: maps.Clone(s.Constraints),
		NoPreempt:   s.NoPreempt, Network: s.Network, Inputs: inputs(s.Inputs), Output: output(s.Output),
	}
}

func output(o *store.Output) *wire.Output {
	if o == nil {
		return nil
	}
	return &wire.Output{Path: o.Path, Limit: o.Limit, KeepFailed: o.KeepFailed}
}

func attemptOutput(o *store.AttemptOutput) *wire.AttemptOutput {
	if o == nil {
		return nil
	}
	return &wire.AttemptOutput{Repo: o.Repo, Tag: o.Tag, Digest: o.Digest, Files: o.Files, Bytes: o.Bytes}
}

func inputs(in []store.Input) []wire.Input {
	if in == nil {
		return nil
	}
	out := make([]wire.Input, len(in))
	for i, x := range in {
		out[i] = wire.Input{Ref: x.Ref, Path: x.Path, Repo: x.Repo, Digest: x.Digest, Job: x.Job}
	}
	return out
}

func storeOutput(o *wire.Output) *store.Output {
	if o == nil {
		return nil
	}
	return &store.Output{Path: o.Path, Limit: o.Limit, KeepFailed: o.KeepFailed}
}

// storeInputs is what a user sent; the API pins Repo and Digest from Ref
// whatever was sent in them.
func storeInputs(in []wire.Input) []store.Input {
	if in == nil {
		return nil
	}
	out := make([]store.Input, len(in))
	for i, x := range in {
		out[i] = store.Input{Ref: x.Ref, Path: x.Path, Repo: x.Repo, Digest: x.Digest, Job: x.Job}
		if job, ok := strings.CutPrefix(x.Ref, store.JobInputPrefix); ok {
			// Another job's outputs: nothing to pin now (store.Input).
			out[i] = store.Input{Ref: x.Ref, Path: x.Path, Job: job}
		}
	}
	return out
}

func deps(ds []store.Dep) []wire.Dependency {
	if ds == nil {
		return nil
	}
	out := make([]wire.Dependency, len(ds))
	for i, d := range ds {
		out[i] = wire.Dependency{Job: d.Job, Kind: d.Kind}
	}
	return out
}

func storeDeps(ds []wire.Dependency) []store.Dep {
	if ds == nil {
		return nil
	}
	out := make([]store.Dep, len(ds))
	for i, d := range ds {
		out[i] = store.Dep{Job: d.Job, Kind: d.Kind}
	}
	return out
}

// Graph is what the API shows of the graph around a job.
func Graph(g *store.JobGraph) wire.JobGraph {
	edges := func(es []store.DepEdge) []wire.DepEdge {
		out := make([]wire.DepEdge, 0, len(es))
		for _, e := range es {
			w := wire.DepEdge{Job: e.Dep.Job, Kind: e.Kind}
			if e.Job != nil {
				w.Name, w.State = e.Job.Spec.Name, e.Job.State
			}
			out = append(out, w)
		}
		return out
	}
	return wire.JobGraph{Job: g.Job.ID, State: g.Job.State, Sequential: g.Job.Spec.Sequential,
		Dependencies: edges(g.Dependencies), Dependents: edges(g.Dependents)}
}

// StoreJobSpec is the spec the store records for what a user submitted
// (not yet defaulted or validated: JobSpec.Defaults and Validate do that).
func StoreJobSpec(s wire.JobSpec) store.JobSpec {
	return store.JobSpec{
		Name: s.Name, Image: s.Image, Command: slices.Clone(s.Command), Env: maps.Clone(s.Env), WorkDir: s.WorkDir,
		CPU: s.CPU, Memory: s.Memory, GPUs: s.GPUs, Array: s.Array, Retries: s.Retries, RetryOn: slices.Clone(s.RetryOn),
		Timeout: store.Duration(s.Timeout), Priority: s.Priority, Queue: s.Queue, Labels: maps.Clone(s.Labels),
		Deps: storeDeps(s.Deps), After: slices.Clone(s.After), AfterAny: slices.Clone(s.AfterAny), Sequential: s.Sequential,
		Constraints: maps.Clone(s.Constraints),
		NoPreempt:   s.NoPreempt, Network: s.Network, Inputs: storeInputs(s.Inputs), Output: storeOutput(s.Output),
	}
}

// Job is what the API shows of a job (Waiting is the API's to fill).
func Job(j *store.Job) wire.Job {
	return wire.Job{
		ID: j.ID, Owner: j.Owner, Spec: JobSpec(j.Spec), State: j.State, Submitted: j.Submitted,
		Started: j.Started, Ended: j.Ended, Counts: maps.Clone(j.Counts), Total: j.Total,
		CancelRequested: j.CancelRequested, Held: j.Held, Message: j.Message, GenAI: j.GenAI, Trial: j.Trial,
		Preemptions: j.Preemptions,
	}
}

// Jobs is Job for each of js.
func Jobs(js []store.Job) []wire.Job {
	out := make([]wire.Job, len(js))
	for i := range js {
		out[i] = Job(&js[i])
	}
	return out
}

// Task is what the API shows of a task.
func Task(t *store.Task) wire.Task {
	return wire.Task{JobID: t.JobID, Index: t.Index, State: t.State, Attempts: t.Attempts, Node: t.Node,
		ExitCode: cloneInt(t.ExitCode), Reason: t.Reason, Updated: t.Updated, Reruns: t.Reruns, Preemptions: t.Preemptions, Held: t.Held,
		Output: attemptOutput(t.Output)}
}

// Tasks is Task for each of ts.
func Tasks(ts []store.Task) []wire.Task {
	out := make([]wire.Task, len(ts))
	for i := range ts {
		out[i] = Task(&ts[i])
	}
	return out
}

// Attempt is what the API shows of an attempt.
func Attempt(a *store.Attempt) wire.Attempt {
	return wire.Attempt{
		JobID: a.JobID, Task: a.Task, N: a.N, Node: a.Node, State: a.State, Container: a.Container,
		Scheduled: a.Scheduled, Started: a.Started, Ended: a.Ended, ExitCode: cloneInt(a.ExitCode),
		Reason: a.Reason, Message: a.Message, ImageDigest: a.ImageDigest, CancelRequested: a.CancelRequested,
		Preempt: a.Preempt, PreemptedBy: a.PreemptedBy, Grace: wire.Duration(a.Grace), PreemptAt: a.PreemptAt,
		CPU: a.CPU, Memory: a.Memory, GPUs: a.GPUs, Devices: slices.Clone(a.Devices), Output: attemptOutput(a.Output),
	}
}

// Attempts is Attempt for each of as.
func Attempts(as []store.Attempt) []wire.Attempt {
	out := make([]wire.Attempt, len(as))
	for i := range as {
		out[i] = Attempt(&as[i])
	}
	return out
}

// Node is what the API shows of a node (Leader and Used are the API's to
// fill).
func Node(n *store.Node) wire.Node {
	return wire.Node{
		Name: n.Name, Addr: n.Addr, APIAddr: n.APIAddr, State: n.State, Capacity: Resources(n.Capacity),
		Allocated: Resources(n.Allocated), Running: n.Running, Labels: maps.Clone(n.Labels), Devices: Devices(n.Devices),
		DrainDeadline: n.DrainDeadline, Joined: n.Joined, Updated: n.Updated,
	}
}

// Devices is what the API shows of a node's GPUs: each with the attempts
// holding it.
func Devices(ds []store.Device) []wire.Device {
	if ds == nil {
		return nil
	}
	out := make([]wire.Device, len(ds))
	for i, d := range ds {
		out[i] = wire.Device{ID: d.ID, Mode: d.Mode, Shareable: d.Shareable, InUse: len(d.Holders)}
		if d.Holders != nil {
			out[i].Holders = make([]wire.AttemptRef, len(d.Holders))
			for j, h := range d.Holders {
				out[i].Holders[j] = wire.AttemptRef{JobID: h.JobID, Task: h.Task, N: h.N}
			}
		}
	}
	return out
}

// User is what the API shows of an account: never its password hash; the
// quota only when one is set (Usage is the API's to fill).
func User(u *store.User) wire.User {
	v := wire.User{Name: u.Name, Admin: u.Admin, Disabled: u.Disabled, Created: u.Created, Weight: u.Weight, StorageQuota: u.StorageQuota}
	if v.Weight <= 0 {
		v.Weight = 1
	}
	if !u.Quota.IsZero() {
		q := Resources(u.Quota)
		v.Quota = &q
	}
	if s := u.Suspension; s != nil {
		v.Suspension = &wire.Suspension{Reason: s.Reason, Notice: s.Notice, Report: s.Report, By: s.By, At: s.At, Cancelled: s.Cancelled}
	}
	return v
}

// Report is what the API shows of a report.
func Report(r *store.Report) wire.Report {
	return wire.Report{ID: r.ID, Repo: r.Repo, Owner: r.Owner, Reporter: r.Reporter, Category: r.Category, Reason: r.Reason, At: r.At,
		State: r.State, DecidedBy: r.DecidedBy, DecidedAt: r.DecidedAt, Decision: r.Decision, Takedown: r.Takedown}
}

// Takedown is what the API shows of a takedown (nil: none).
func Takedown(t *store.Takedown) *wire.Takedown {
	if t == nil {
		return nil
	}
	return &wire.Takedown{ID: t.ID, Repo: t.Repo, Owner: t.Owner, Reason: t.Reason, Notice: t.Notice, Report: t.Report, By: t.By, At: t.At, Stopped: t.Stopped}
}

// Token is what the API shows of a token: never its secret or hash.
func Token(t *store.Token) wire.Token {
	return wire.Token{ID: t.ID, User: t.User, Name: t.Name, Session: t.Session, Created: t.Created, Expires: t.Expires}
}

// Schedule is what the API shows of a schedule.
func Schedule(s *store.Schedule) wire.Schedule {
	return wire.Schedule{
		ID: s.ID, Owner: s.Owner, Name: s.Name, Cron: s.Cron, Spec: JobSpec(s.Spec), AllowOverlap: s.AllowOverlap,
		Paused: s.Paused, Created: s.Created, NextRun: s.NextRun, LastRun: s.LastRun, LastJob: s.LastJob,
		Runs: s.Runs, Skipped: s.Skipped, SkipReason: s.SkipReason, ImageRepo: s.ImageRepo, GenAI: s.GenAI,
	}
}

// Schedules is Schedule for each of ss.
func Schedules(ss []store.Schedule) []wire.Schedule {
	out := make([]wire.Schedule, len(ss))
	for i := range ss {
		out[i] = Schedule(&ss[i])
	}
	return out
}

func cloneInt(p *int) *int {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// Queue is what the API shows of a queue (Guaranteed, Usage and Queued are
// the API's to fill).
func Queue(q *store.Queue) wire.Queue {
	v := wire.Queue{
		Name: q.Name, Weight: q.Weight, Borrow: q.Borrow, Users: slices.Clone(q.Users), Priority: q.Priority,
		MaxRunTime: wire.Duration(q.MaxRunTime), Constraints: maps.Clone(q.Constraints),
		Grace: wire.Duration(q.GraceOrDefault()), Placement: q.Placement, Created: q.Created,
	}
	if v.Placement == "" {
		v.Placement = store.PlaceSpread
	}
	if !q.Limit.IsZero() {
		l := Resources(q.Limit)
		v.Limit = &l
	}
	return v
}
