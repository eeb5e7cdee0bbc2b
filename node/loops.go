package node

import (
	"context"
	"fmt"
	"time"

	"github.com/oklog/ulid/v2"

	"gantry/node/runner"
	"gantry/node/scheduler"
	"gantry/store"
)

// reporter turns the runner's reports into attempt reports, which the
// node's batcher sends as one attempt.report per short interval.
type reporter struct{ n *Node }

func (r reporter) Started(ctx context.Context, k runner.Key, containerID string, at time.Time) error {
	return r.n.reports.Started(ctx, store.AttemptStarted{JobID: k.JobID, Task: k.Task, N: k.Attempt, Container: containerID, At: at})
}

func (r reporter) Finished(ctx context.Context, res runner.Result) error {
	return r.n.reports.Ended(ctx, store.AttemptEnded{
		JobID: res.JobID, Task: res.Task, N: res.Attempt, Container: res.ContainerID,
		ExitCode: res.ExitCode, Reason: res.Reason, Message: res.Message,
		Started: res.StartedAt, Ended: res.EndedAt, ImageDigest: res.ImageDigest,
		Output: storeOutput(res.Output),
	})
}

func storeOutput(o *runner.OutputRef) *store.AttemptOutput {
	if o == nil {
		return nil
	}
	return &store.AttemptOutput{Repo: o.Repo, Tag: o.Tag, Digest: o.Digest, Files: o.Files, Bytes: o.Bytes}
}

func runnerOutput(o *store.Output) *runner.Output {
	if o == nil {
		return nil
	}
	return &runner.Output{Path: o.Path, Limit: o.Limit, KeepFailed: o.KeepFailed}
}

// runnerLoop hands the runner the attempts placed on this node whenever
// they may have changed. The runner's Sync is level-triggered, so a dropped
// subscription only costs a resubscribe.
func (n *Node) runnerLoop(ctx context.Context) {
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for ctx.Err() == nil {
		sub := n.store.Subscribe(4096)
		n.syncRunner(ctx)
		for alive := true; alive; {
			select {
			case <-ctx.Done():
				sub.Close()
				return
			case <-tick.C:
				n.syncRunner(ctx)
			case ev, ok := <-sub.C:
				if !ok {
					alive = false
					break
				}
				if !n.concernsRunner(ev) {
					continue
				}
				// Coalesce a burst of events into one sync.
				drain(sub.C)
				n.syncRunner(ctx)
			}
		}
		sub.Close()
	}
}

func (n *Node) concernsRunner(ev store.Event) bool {
	switch ev.Type {
	case "task":
		return ev.Task.Node == n.cfg.Name
	case "resync":
		return true
	}
	return false
}

func drain(c <-chan store.Event) {
	for {
		select {
		case _, ok := <-c:
			if !ok {
				return
			}
		default:
			return
		}
	}
}

func (n *Node) syncRunner(ctx context.Context) {
	active, err := n.store.NodeAttempts(n.cfg.Name)
	if err != nil {
		n.log.Error("list node attempts", "err", err)
		return
	}
	want := make([]runner.Spec, 0, len(active))
	outs := jobOutputs{st: n.store, all: map[string][]runner.Input{}}
	for _, a := range active {
		s := a.Job.Spec
		want = append(want, runner.Spec{
			Key:   runner.Key{JobID: a.Attempt.JobID, Task: a.Attempt.Task, Attempt: a.Attempt.N},
			Owner: a.Job.Owner, Image: s.Image, Command: s.Command, Env: s.Env, WorkDir: s.WorkDir,
			CPUMillis: s.CPU, MemoryBytes: s.Memory, Timeout: time.Duration(s.Timeout), TaskCount: s.Array,
			GenAI: a.Job.GenAI, Network: s.Network,
			GPUs:    runnerGPUs(n.gpus, a.Attempt.Devices),
			Started: a.Attempt.State == store.StateRunning,
			Cancel:  a.Attempt.CancelRequested || a.Job.CancelRequested,
			Preempt: a.Attempt.Preempt,
			Grace:   time.Duration(a.Attempt.Grace),
			Inputs:  outs.inputs(&s, a.Attempt.Task),
			Output:  runnerOutput(s.Output),
		})
	}
	n.images.PinImages(ctx, want)
	n.runner.Sync(ctx, want)
}

// jobOutputs resolves the inputs of the attempts of one sync, reading each
// job input's outputs once however many attempts read them.
type jobOutputs struct {
	st  *store.Store
	all map[string][]runner.Input // job input path -> every task's output
}

// inputs are the artifacts task of a job with spec mounts: its pinned
// inputs, and for a job input the outputs of that job's tasks (task's own
// with an n-to-n dependency, every one kept otherwise), pinned now that
// the tasks they come from have ended.
func (o jobOutputs) inputs(spec *store.JobSpec, task int) []runner.Input {
	if len(spec.Inputs) == 0 {
		return nil
	}
	out := make([]runner.Input, 0, len(spec.Inputs))
	for _, x := range spec.Inputs {
		switch {
		case x.Job == "":
			out = append(out, runner.Input{Repo: x.Repo, Digest: x.Digest, Path: x.Path})
		case spec.NToNInput(x):
			out = append(out, o.taskOutput(x, task, x.Path))
		default:
			out = append(out, o.every(x)...)
		}
	}
	return out
}

// every is each kept output of job input x's tasks: a single task's at
// x.Path, an array's task k's at x.Path/task-NNNN (tasks that kept none,
// e.g. failed ones under afterany, are left out).
func (o jobOutputs) every(x store.Input) []runner.Input {
	key := x.Job + "\x00" + x.Path
	if in, ok := o.all[key]; ok {
		return in
	}
	var in []runner.Input
	j, err := o.st.Job(x.Job)
	switch {
	case err != nil:
		in = []runner.Input{{Path: x.Path, Missing: fmt.Sprintf("input %s: job %s is no longer known", x.Ref, x.Job)}}
	case j.Total == 1:
		in = []runner.Input{o.taskOutput(x, 0, x.Path)}
	default:
		for k := range j.Total {
			if r := o.taskOutput(x, k, store.JobInputPath(x.Path, k)); r.Missing == "" {
				in = append(in, r)
			}
		}
	}
	o.all[key] = in
	return in
}

// taskOutput is task k's output of job input x mounted at p, or why there
// is none.
func (o jobOutputs) taskOutput(x store.Input, k int, p string) runner.Input {
	t, err := o.st.Task(x.Job, k)
	if err != nil || t.Output == nil {
		return runner.Input{Path: p, Missing: fmt.Sprintf("input %s: task %d of job %s kept no output", x.Ref, k, x.Job)}
	}
	return runner.Input{Repo: t.Output.Repo, Digest: t.Output.Digest, Path: p}
}

// leaderLoop runs the scheduler while this node leads.
func (n *Node) leaderLoop(ctx context.Context) {
	sched := scheduler.New(scheduler.Config{State: n.store, Proposer: n.cluster, Logger: n.log, Registerer: n.reg})
	var stop context.CancelFunc
	var done chan struct{}
	stopSched := func() {
		if stop != nil {
			stop()
			<-done
			stop = nil
		}
	}
	defer stopSched()
	check := time.NewTicker(500 * time.Millisecond)
	defer check.Stop()
	for {
		leader := n.raft.IsLeader()
		if leader && stop == nil {
			sctx, cancel := context.WithCancel(ctx)
			stop = cancel // called by stopSched, deferred above
			done = make(chan struct{})
			go func() {
				defer close(done)
				n.runScheduler(sctx, sched)
			}()
			n.log.Info("this node leads the cluster: scheduler started")
		} else if !leader && stop != nil {
			stopSched()
			n.log.Info("leadership lost: scheduler stopped")
		}
		select {
		case <-ctx.Done():
			return
		case <-n.raft.LeaderCh():
		case <-check.C:
		}
	}
}

func (n *Node) runScheduler(ctx context.Context, sched *scheduler.Scheduler) {
	kick := make(chan struct{}, 1)
	go func() {
		for ctx.Err() == nil {
			sub := n.store.Subscribe(4096)
			poke(kick)
			for alive := true; alive; {
				select {
				case <-ctx.Done():
					sub.Close()
					return
				case ev, ok := <-sub.C:
					if !ok {
						alive = false
						break
					}
					if ev.Type == "job" || ev.Type == "node" || (ev.Type == "task" && store.Terminal(ev.Task.State)) || ev.Type == "task" && ev.Task.State == store.StateQueued {
						poke(kick)
					}
				}
			}
			sub.Close()
		}
	}()
	go n.runSchedules(ctx)
	go n.runJobRetention(ctx)
	go n.gov.RunRestores(ctx)
	sched.Run(ctx, kick)
}

// runSchedules submits the jobs of due schedules while this node leads. A
// fire names the due time it is for, so a fire repeated by a new leader
// (or retried here) is a no-op in the store.
func (n *Node) runSchedules(ctx context.Context) {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		due, err := n.store.DueSchedules(time.Now())
		if err != nil {
			n.log.Warn("read schedules", "err", err)
		}
		for _, s := range due {
			fire := store.FireSchedule{ID: s.ID, Due: s.NextRun, JobID: ulid.Make().String(), ResolveInputs: s.ResolvesInputs()}
			r, err := store.CmdFireSchedule.Propose(ctx, n.cluster, fire)
			if err != nil && fire.ResolveInputs && store.ErrorCode(err) == store.EUnavailable {
				// A member of an older release cannot re-resolve input
				// tags (schedule.fire v2): this run reads the inputs as
				// pinned when the schedule was made.
				fire.ResolveInputs = false
				r, err = store.CmdFireSchedule.Propose(ctx, n.cluster, fire)
			}
			if err != nil {
				if ctx.Err() == nil {
					n.log.Warn("fire schedule", "schedule", s.ID, "err", err)
				}
				continue
			}
			switch {
			case r.Job != nil:
				n.log.Info("schedule submitted a job", "schedule", s.ID, "job", r.Job.ID)
			case r.Skipped:
				n.log.Info("schedule skipped a run: its previous job has not ended", "schedule", s.ID)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func poke(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// purgeTasks bounds the tasks (each with its attempts) one purge entry
// deletes: a 10,000-task array fits one transaction, as its submission did.
const purgeTasks = 10000

// runJobRetention removes, while this node leads, the records of jobs that
// ended longer ago than the job retention, in entries of at most
// purgeTasks tasks so no Raft entry or transaction grows too large.
func (n *Node) runJobRetention(ctx context.Context) {
	ret := n.cfg.JobRetention
	if ret <= 0 {
		return
	}
	every := min(max(ret/4, time.Second), time.Hour)
	for {
		before := time.Now().Add(-ret)
		ended, err := n.store.EndedBefore(before, 1000)
		if err != nil {
			n.log.Warn("job retention", "err", err)
		}
		purged := 0
		for len(ended) > 0 && ctx.Err() == nil {
			var batch []string
			tasks := 0
			for len(ended) > 0 && (len(batch) == 0 || tasks+ended[0].Tasks <= purgeTasks) {
				batch = append(batch, ended[0].ID)
				tasks += ended[0].Tasks
				ended = ended[1:]
			}
			r, err := store.CmdPurgeJobs.Propose(ctx, n.cluster, store.PurgeJobs{IDs: batch, Before: before})
			if err != nil {
				if ctx.Err() == nil {
					n.log.Warn("job retention", "err", err)
				}
				break
			}
			purged += r.Purged
		}
		if purged > 0 {
			n.log.Info("job retention: removed jobs that ended long ago", "jobs", purged, "retention", store.FormatRetention(ret))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}
