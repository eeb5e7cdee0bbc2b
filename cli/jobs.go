package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"gantry/client"
	"gantry/wire"
)

type runFlags struct {
	name, cpu, memory, timeout                string
	after, afterFailure, afterAny, arrayAfter []string
	sequential                                bool
	gpus, array, retries, priority            int
	retryOn                                   []int
	env, labels, constraints                  []string
	detach                                    bool
	schedule                                  string
	allowOverlap                              bool
	workdir                                   string
	queue                                     string
	noPreempt                                 bool
	network                                   string
	inputs                                    []string
	output, outputLimit                       string
	keepFailedOutput                          bool
}

func runCmd(g *globals) *cobra.Command {
	var f runFlags
	c := &cobra.Command{
		Use:   "run [flags] IMAGE [-- CMD ARG...]",
		Short: "Submit a job, stream its output and exit with its exit code",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			spec, err := f.spec(args)
			if err != nil {
				return err
			}
			cl, err := newClient()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if f.schedule != "" {
				s, err := cl.CreateSchedule(ctx, f.name, f.schedule, spec, f.allowOverlap)
				if err != nil {
					return err
				}
				if g.output == "json" {
					return printJSON(cmd.OutOrStdout(), s)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "schedule %s: submits a job at %q (UTC); next at %s\n", s.ID, s.Cron, s.NextRun.Local().Format("2006-01-02 15:04:05"))
				return nil
			}
			j, err := cl.Submit(ctx, spec)
			if err != nil {
				return err
			}
			if f.detach {
				if g.output == "json" {
					return printJSON(cmd.OutOrStdout(), j)
				}
				fmt.Fprintln(cmd.OutOrStdout(), j.ID)
				return nil
			}
			return follow(ctx, cl, j, cmd.OutOrStdout(), os.Stderr)
		},
	}
	c.Flags().SetInterspersed(false)
	fl := c.Flags()
	fl.StringVar(&f.name, "name", "", "job name")
	fl.StringVar(&f.cpu, "cpu", "", "CPU per task: cores (\"0.5\") or millicores (\"500m\"); default 1")
	fl.StringVar(&f.memory, "memory", "", "memory per task, e.g. 512M, 2G; default 256M")
	fl.IntVar(&f.gpus, "gpus", 0, "GPUs per task")
	fl.StringArrayVarP(&f.env, "env", "e", nil, "environment variable K=V (repeatable)")
	fl.StringVarP(&f.workdir, "workdir", "w", "", "working directory in the container")
	fl.IntVar(&f.array, "array", 1, "number of tasks (each sees GANTRY_TASK_INDEX)")
	fl.IntVar(&f.retries, "retries", 0, "extra attempts for a failed task")
	fl.IntSliceVar(&f.retryOn, "retry-on", nil, "only retry these exit codes")
	fl.StringVar(&f.timeout, "timeout", "", "time limit per attempt, e.g. 10m")
	fl.IntVar(&f.priority, "priority", 0, "priority (-1000..1000, higher runs first)")
	fl.StringArrayVar(&f.after, "after", nil, "start after this job succeeded (afterok; repeatable, or comma-separated ids)")
	fl.StringArrayVar(&f.afterFailure, "after-failure", nil, "start after this job failed or was cancelled (afternotok; repeatable, or comma-separated)")
	fl.StringArrayVar(&f.afterAny, "after-any", nil, "start after this job ended, however it ended (afterany; repeatable, or comma-separated)")
	fl.StringArrayVar(&f.arrayAfter, "array-after", nil, "task i starts after task i of this array job succeeded (n-to-n, same --array; repeatable, or comma-separated)")
	fl.BoolVar(&f.sequential, "sequential", false, "task i starts after task i-1 of this job succeeded")
	fl.StringVar(&f.queue, "queue", "", "queue to submit to (gantry queue ls; default: default)")
	fl.BoolVar(&f.noPreempt, "no-preempt", false, "never preempt this job's tasks (they then never borrow beyond the queue's guaranteed share)")
	fl.StringVar(&f.network, "network", "", "\"none\": the tasks get no network (default: the owner's own network on each node, shared with no other user)")
	fl.StringArrayVar(&f.inputs, "input", nil, "mount an artifact of Gantry's registry read-only in every task, REPO[:TAG|@DIGEST]=/path (repeatable; pinned to its digest now), or job:JOB=/path for another job's outputs (task i's for task i with --array-after JOB; else each task's at /path/task-NNNN)")
	fl.StringVar(&f.output, "output", "", "give every task a writable directory at this path; what a task leaves there is kept as OWNER/outputs:JOB-NNNN (gantry job output JOB)")
	fl.StringVar(&f.outputLimit, "output-limit", "", "with --output: the most a task may write there, e.g. 100M, 5G (default 1G); a task over it fails and nothing is kept")
	fl.BoolVar(&f.keepFailedOutput, "keep-failed-output", false, "with --output: keep a failed attempt's output too (by default only a succeeded one's)")
	fl.StringArrayVar(&f.labels, "label", nil, "label K=V (repeatable)")
	fl.StringArrayVar(&f.constraints, "constraint", nil, "run only on nodes with label K=V (repeatable)")
	fl.BoolVarP(&f.detach, "detach", "d", false, "print the job id and return at once")
	fl.StringVar(&f.schedule, "schedule", "", "instead of running now, submit the job at these times (cron, UTC: \"0 3 * * *\", @hourly, @every 10m)")
	fl.BoolVar(&f.allowOverlap, "allow-overlap", false, "with --schedule: submit even while the previous run's job has not ended")
	return c
}

func (f *runFlags) spec(args []string) (wire.JobSpec, error) {
	s := wire.JobSpec{Name: f.name, Image: args[0], GPUs: f.gpus, Array: f.array, Retries: f.retries,
		RetryOn: f.retryOn, Priority: f.priority, WorkDir: f.workdir, Queue: f.queue, NoPreempt: f.noPreempt, Network: f.network}
	rest := args[1:]
	if len(rest) > 0 && rest[0] == "--" {
		rest = rest[1:]
	}
	s.Command = rest
	var err error
	if f.cpu != "" {
		if s.CPU, err = parseCPU(f.cpu); err != nil {
			return s, err
		}
	}
	if f.memory != "" {
		if s.Memory, err = parseBytes(f.memory); err != nil {
			return s, fmt.Errorf("--memory: %w", err)
		}
	}
	if f.timeout != "" {
		d, err := time.ParseDuration(f.timeout)
		if err != nil {
			return s, fmt.Errorf("--timeout: %q is not a duration such as 90s or 10m", f.timeout)
		}
		s.Timeout = wire.Duration(d)
	}
	s.Sequential = f.sequential
	for _, v := range f.inputs {
		ref, p, ok := strings.Cut(v, "=")
		if !ok || ref == "" || p == "" {
			return s, fmt.Errorf("--input %q: want REPO[:TAG]=/path", v)
		}
		s.Inputs = append(s.Inputs, wire.Input{Ref: ref, Path: p})
	}
	if f.output == "" && (f.outputLimit != "" || f.keepFailedOutput) {
		return s, fmt.Errorf("--output-limit and --keep-failed-output go with --output PATH")
	}
	if f.output != "" {
		s.Output = &wire.Output{Path: f.output, KeepFailed: f.keepFailedOutput}
		if f.outputLimit != "" {
			if s.Output.Limit, err = parseBytes(f.outputLimit); err != nil {
				return s, fmt.Errorf("--output-limit: %w", err)
			}
		}
	}
	for _, l := range []struct {
		flag, kind string
		vals       []string
	}{{"--after", wire.DepAfterOK, f.after}, {"--after-failure", wire.DepAfterNotOK, f.afterFailure},
		{"--after-any", wire.DepAfterAny, f.afterAny}, {"--array-after", wire.DepNToN, f.arrayAfter}} {
		for _, v := range l.vals {
			for _, id := range strings.Split(v, ",") {
				id = strings.TrimSpace(id)
				if id == "" {
					return s, fmt.Errorf("%s: a job id is empty in %q", l.flag, v)
				}
				s.Deps = append(s.Deps, wire.Dependency{Job: id, Kind: l.kind})
			}
		}
	}
	if s.Env, err = parseKV("--env", f.env); err != nil {
		return s, err
	}
	if s.Labels, err = parseKV("--label", f.labels); err != nil {
		return s, err
	}
	if s.Constraints, err = parseKV("--constraint", f.constraints); err != nil {
		return s, err
	}
	return s, nil
}

func parseKV(flag string, kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	m := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%s: %q is not K=V", flag, kv)
		}
		m[k] = v
	}
	return m, nil
}

func parseCPU(s string) (int64, error) {
	if m, ok := strings.CutSuffix(s, "m"); ok {
		n, err := strconv.ParseInt(m, 10, 64)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("--cpu: %q is not a number of millicores", s)
		}
		return n, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	m := f * 1000
	// At least one millicore (0 would mean the default), and few enough
	// that the millicores fit an int64 (NaN fails both tests).
	if err != nil || !(m >= 1) || !(m < 1<<63) {
		return 0, fmt.Errorf("--cpu: %q is not a number of cores", s)
	}
	return int64(m), nil
}

func parseBytes(s string) (int64, error) {
	units := map[string]int64{"": 1, "B": 1, "K": 1 << 10, "KB": 1 << 10, "KI": 1 << 10, "KIB": 1 << 10,
		"M": 1 << 20, "MB": 1 << 20, "MI": 1 << 20, "MIB": 1 << 20, "G": 1 << 30, "GB": 1 << 30, "GI": 1 << 30, "GIB": 1 << 30,
		"T": 1 << 40, "TB": 1 << 40, "TI": 1 << 40, "TIB": 1 << 40}
	u := strings.ToUpper(strings.TrimSpace(s))
	i := strings.IndexFunc(u, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := u, ""
	if i >= 0 {
		num, unit = u[:i], u[i:]
	}
	mult, ok := units[unit]
	f, err := strconv.ParseFloat(num, 64)
	if !ok || err != nil || f < 0 || f*float64(mult) >= 1<<63 {
		return 0, fmt.Errorf("%q is not a size such as 512M or 2G", s)
	}
	return int64(f * float64(mult)), nil
}

// follow streams a single-task job's output, or shows progress of an array
// job, until the job ends; it returns an exitError with the job's code.
func follow(ctx context.Context, cl *client.Client, j *wire.Job, stdout, stderr io.Writer) error {
	if j.Total == 1 {
		// While the task waits for a node, say why (on stderr) instead of
		// hanging silently; the notices stop once it has been placed.
		nctx, stopNotices := context.WithCancel(ctx)
		defer stopNotices()
		go queuedNotices(nctx, cl, j.ID, stderr)
		attempt := 1
		for {
			rc, n, err := cl.Logs(ctx, j.ID, 0, attempt, true)
			var ce *client.Error
			if errors.As(err, &ce) && ce.Status == 404 {
				break // no such attempt: the task ended without it
			}
			if err != nil {
				return err
			}
			stopNotices()
			_, err = io.Copy(stdout, rc)
			rc.Close()
			if err != nil && ctx.Err() == nil {
				return fmt.Errorf("read log: %w", err)
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			t, err := cl.Task(ctx, j.ID, 0)
			if err != nil {
				return err
			}
			if wire.Terminal(t.State) || n == 0 {
				break
			}
			// The task will run again: follow its next attempt (the server
			// waits until it exists).
			attempt = n + 1
		}
	}
	progress := newProgress(stderr, j.Total > 1)
	var asked time.Time
	for {
		cur, err := cl.Wait(ctx, j.ID, time.Second)
		if err != nil {
			return err
		}
		// Nothing running and tasks queued: ask now and then why.
		if progress.enabled && cur.Counts[wire.StateQueued] > 0 && cur.Counts[wire.StateRunning]+cur.Counts[wire.StateScheduled] == 0 {
			if time.Since(asked) > 3*time.Second {
				asked = time.Now()
				if full, err := cl.Job(ctx, j.ID); err == nil {
					progress.why = full.Waiting
				}
			}
		} else {
			progress.why = ""
		}
		progress.show(cur)
		if wire.Terminal(cur.State) {
			progress.done()
			return jobExit(ctx, cl, cur, stderr)
		}
	}
}

func jobExit(ctx context.Context, cl *client.Client, j *wire.Job, stderr io.Writer) error {
	if j.State == wire.StateSucceeded {
		return nil
	}
	if j.Total > 1 {
		fmt.Fprintf(stderr, "gantry: job %s %s: %d succeeded, %d failed, %d cancelled\n", j.ID, j.State,
			j.Counts[wire.StateSucceeded], j.Counts[wire.StateFailed], j.Counts[wire.StateCancelled])
		return exitError{1}
	}
	t, err := cl.Task(ctx, j.ID, 0)
	if err != nil {
		return err
	}
	code := 1
	switch t.Reason {
	case wire.ReasonExited:
		if t.ExitCode != nil && *t.ExitCode > 0 {
			code = *t.ExitCode
		}
		return exitError{code}
	case wire.ReasonOOMKilled:
		code = 137
	case wire.ReasonTimedOut:
		code = 124
	case wire.ReasonCancelled:
		code = 130
	}
	msg := t.Reason
	if n := len(t.AttemptList); n > 0 && t.AttemptList[n-1].Message != "" {
		msg += ": " + t.AttemptList[n-1].Message
	}
	if msg == "" {
		msg = j.Message
	}
	fmt.Fprintf(stderr, "gantry: job %s %s (%s)\n", j.ID, j.State, msg)
	return exitError{code}
}

type progress struct {
	w       io.Writer
	enabled bool
	tty     bool
	last    string
	why     string // why tasks wait, while none runs
}

// queuedNotices prints, once a second has passed and then whenever it
// changes, why job id's task is still queued, until ctx ends or the task
// leaves the queue.
func queuedNotices(ctx context.Context, cl *client.Client, id string, w io.Writer) {
	last := ""
	t := time.NewTimer(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		j, err := cl.Job(ctx, id)
		if err != nil || wire.Terminal(j.State) || j.Counts[wire.StateQueued] == 0 {
			return
		}
		if j.Waiting != "" && j.Waiting != last && ctx.Err() == nil {
			fmt.Fprintf(w, "gantry: job %s is queued because %s\n", id, j.Waiting)
			last = j.Waiting
		}
		t.Reset(2 * time.Second)
	}
}

func newProgress(w io.Writer, enabled bool) *progress {
	tty := false
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	return &progress{w: w, enabled: enabled, tty: tty}
}

func (p *progress) show(j *wire.Job) {
	if !p.enabled {
		return
	}
	c := j.Counts
	done := c[wire.StateSucceeded] + c[wire.StateFailed] + c[wire.StateCancelled]
	width := 30
	fill := 0
	if j.Total > 0 {
		fill = done * width / j.Total
	}
	line := fmt.Sprintf("[%s%s] %d/%d done  %d running  %d queued  %d failed",
		strings.Repeat("#", fill), strings.Repeat(".", width-fill), done, j.Total,
		c[wire.StateRunning]+c[wire.StateScheduled], c[wire.StateQueued], c[wire.StateFailed])
	if p.why != "" {
		line += "  (queued because " + p.why + ")"
	}
	if line == p.last {
		return
	}
	p.last = line
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
	} else {
		fmt.Fprintln(p.w, line)
	}
}

func (p *progress) done() {
	if p.enabled && p.tty {
		fmt.Fprintln(p.w)
	}
}

func jobCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "job", Short: "List, inspect, follow and cancel jobs"}
	var state, owner, query string
	var limit int
	var watch bool
	ls := &cobra.Command{
		Use: "ls", Short: "List jobs, newest first (--watch: again whenever one changes)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := newClient()
			if err != nil {
				return err
			}
			list := func() ([]wire.Job, error) {
				q := url.Values{}
				for k, v := range map[string]string{"state": state, "owner": owner, "q": query, "limit": strconv.Itoa(limit)} {
					if v != "" {
						q.Set(k, v)
					}
				}
				jobs, next, err := cl.Jobs(cmd.Context(), q)
				if err != nil {
					return nil, err
				}
				// A text search examines a bounded number of jobs per request:
				// go on from where it stopped until the list is full or done.
				for query != "" && len(jobs) < limit && next != "" {
					q.Set("cursor", next)
					q.Set("limit", strconv.Itoa(limit-len(jobs)))
					var more []wire.Job
					if more, next, err = cl.Jobs(cmd.Context(), q); err != nil {
						return nil, err
					}
					jobs = append(jobs, more...)
				}
				return jobs, nil
			}
			out := cmd.OutOrStdout()
			show := func(jobs []wire.Job) error {
				if g.output == "json" {
					return printJSON(out, jobs)
				}
				tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tNAME\tOWNER\tSTATE\tTASKS\tIMAGE\tAGE")
				for _, j := range jobs {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d/%d\t%s\t%s\n", j.ID, dash(j.Spec.Name), j.Owner, j.State,
						j.Counts[wire.StateSucceeded], j.Total, j.Spec.Image, age(j.Submitted))
				}
				return tw.Flush()
			}
			if !watch {
				jobs, err := list()
				if err != nil {
					return err
				}
				return show(jobs)
			}
			return watchJobs(cmd, cl, list, show)
		},
	}
	ls.Flags().BoolVarP(&watch, "watch", "w", false, "keep listing: the list again (on a terminal: redrawn) each time a job changes, until interrupted")
	ls.Flags().StringVar(&state, "state", "", "only jobs in this state")
	ls.Flags().StringVar(&owner, "owner", "", "only jobs of this owner (admin)")
	ls.Flags().StringVarP(&query, "query", "q", "", "text to look for in id, name, image, owner")
	ls.Flags().IntVar(&limit, "limit", 50, "at most this many jobs")

	show := &cobra.Command{
		Use: "show ID", Short: "Show a job and its tasks", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := newClient()
			if err != nil {
				return err
			}
			j, err := cl.Job(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			tasks, err := cl.Tasks(cmd.Context(), j.ID)
			if err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(cmd.OutOrStdout(), map[string]any{"job": j, "tasks": tasks})
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "Job %s  %s\n  owner %s  image %s  command %q\n  submitted %s", j.ID, strings.ToUpper(j.State), j.Owner, j.Spec.Image, j.Spec.Command, j.Submitted.Local().Format(time.DateTime))
			if !j.Ended.IsZero() {
				fmt.Fprintf(w, "  ended %s (%s)", j.Ended.Local().Format(time.DateTime), j.Ended.Sub(j.Submitted).Round(time.Millisecond))
			}
			fmt.Fprintln(w)
			for _, in := range j.Spec.Inputs {
				if in.Job != "" {
					fmt.Fprintf(w, "  input %s at %s (the outputs of job %s's tasks, read-only)\n", in.Ref, in.Path, in.Job)
					continue
				}
				fmt.Fprintf(w, "  input %s at %s (%s@%s, read-only)\n", in.Ref, in.Path, in.Repo, shortDigest(in.Digest))
			}
			if o := j.Spec.Output; o != nil {
				kept := "succeeded attempts' kept"
				if o.KeepFailed {
					kept = "every ended attempt's kept"
				}
				fmt.Fprintf(w, "  output at %s (up to %s a task, %s; gantry job output %s)\n", o.Path, human(o.Limit), kept, j.ID)
			}
			keys := make([]string, 0, len(j.Counts))
			for k := range j.Counts {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			parts := []string{}
			for _, k := range keys {
				parts = append(parts, fmt.Sprintf("%s %d", k, j.Counts[k]))
			}
			fmt.Fprintf(w, "  tasks %d: %s\n", j.Total, strings.Join(parts, ", "))
			fmt.Fprintf(w, "  queue %s  priority %d", j.Spec.Queue, j.Spec.Priority)
			if j.Spec.NoPreempt {
				fmt.Fprint(w, "  never preempted")
			}
			fmt.Fprintln(w)
			if j.Preemptions > 0 {
				times := fmt.Sprintf("%d times", j.Preemptions)
				if j.Preemptions == 1 {
					times = "once"
				}
				fmt.Fprintf(w, "  preempted %s (each preempted attempt was requeued and did not use a retry)\n", times)
			}
			if j.Message != "" {
				fmt.Fprintf(w, "  %s\n", j.Message)
			}
			if j.Waiting != "" {
				fmt.Fprintf(w, "  queued because %s\n", j.Waiting)
			}
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			gpus := j.Spec.GPUs > 0
			if gpus {
				fmt.Fprintln(tw, "TASK\tSTATE\tATTEMPTS\tPREEMPTED\tNODE\tEXIT\tREASON\tGPUS")
			} else {
				fmt.Fprintln(tw, "TASK\tSTATE\tATTEMPTS\tPREEMPTED\tNODE\tEXIT\tREASON")
			}
			for i, t := range tasks {
				if i == 100 {
					fmt.Fprintf(tw, "...\t(%d more; use --output json)\n", len(tasks)-100)
					break
				}
				exit := "-"
				if t.ExitCode != nil {
					exit = strconv.Itoa(*t.ExitCode)
				}
				fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%s\t%s\t%s", t.Index, t.State, t.Attempts, t.Preemptions, dash(t.Node), exit, dash(t.Reason))
				if gpus {
					// The devices of the task's latest attempt.
					devices := "-"
					if t.Attempts > 0 {
						d, err := cl.Task(cmd.Context(), j.ID, t.Index)
						if err != nil {
							return err
						}
						if n := len(d.AttemptList); n > 0 && len(d.AttemptList[n-1].Devices) > 0 {
							devices = strings.Join(d.AttemptList[n-1].Devices, ",")
						}
					}
					fmt.Fprintf(tw, "\t%s", devices)
				}
				fmt.Fprintln(tw)
			}
			return tw.Flush()
		},
	}

	var task, attempt int
	var followLog bool
	logs := &cobra.Command{
		Use: "logs ID", Short: "Print a task's log (-f to follow)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := newClient()
			if err != nil {
				return err
			}
			rc, _, err := cl.Logs(cmd.Context(), args[0], task, attempt, followLog)
			if err != nil {
				return err
			}
			defer rc.Close()
			_, err = io.Copy(cmd.OutOrStdout(), rc)
			if cmd.Context().Err() != nil {
				return nil
			}
			return err
		},
	}
	logs.Flags().IntVar(&task, "task", 0, "task index")
	logs.Flags().IntVar(&attempt, "attempt", 0, "attempt number (default: latest)")
	logs.Flags().BoolVarP(&followLog, "follow", "f", false, "stream new output until the attempt ends")

	wait := &cobra.Command{
		Use: "wait ID", Short: "Wait for a job to end; exit 0 only if it succeeded", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := newClient()
			if err != nil {
				return err
			}
			for {
				j, err := cl.Wait(cmd.Context(), args[0], 30*time.Second)
				if err != nil {
					return err
				}
				if wire.Terminal(j.State) {
					if g.output == "json" {
						_ = printJSON(cmd.OutOrStdout(), j)
					} else {
						fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", j.ID, j.State)
					}
					if j.State != wire.StateSucceeded {
						return exitError{1}
					}
					return nil
				}
			}
		},
	}
	var dependents bool
	cancel := &cobra.Command{
		Use: "cancel ID...", Short: "Cancel jobs (--dependents: and the jobs waiting on them)", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := newClient()
			if err != nil {
				return err
			}
			for _, id := range args {
				cancel := cl.Cancel
				if dependents {
					cancel = cl.CancelDependents
				}
				j, err := cancel(cmd.Context(), id)
				if err != nil {
					return fmt.Errorf("cancel %s: %w", id, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", j.ID, map[bool]string{true: "cancelled", false: "cancelling"}[wire.Terminal(j.State)])
			}
			return nil
		},
	}
	cancel.Flags().BoolVar(&dependents, "dependents", false, "also cancel, transitively, the jobs depending on it that have not started (otherwise each settles as its dependency kind says)")
	c.AddCommand(ls, show, logs, wait, cancel, retryCmd(g), depsCmd(g), outputCmd(g))
	return c
}

// depsCmd is `gantry job deps ID`: the graph around a job.
func depsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "deps ID", Short: "Show what a job depends on and what depends on it, with kinds and states", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := newClient()
			if err != nil {
				return err
			}
			gr, err := cl.Deps(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if g.output == "json" {
				return printJSON(w, gr)
			}
			seq := ""
			if gr.Sequential {
				seq = "  (sequential: task i after task i-1)"
			}
			fmt.Fprintf(w, "Job %s  %s%s\n", gr.Job, strings.ToUpper(gr.State), seq)
			for _, part := range []struct {
				title string
				edges []wire.DepEdge
			}{{"Depends on", gr.Dependencies}, {"Dependents", gr.Dependents}} {
				fmt.Fprintf(w, "%s:\n", part.title)
				if len(part.edges) == 0 {
					fmt.Fprintln(w, "  (none)")
					continue
				}
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "  KIND\tJOB\tNAME\tSTATE")
				for _, e := range part.edges {
					fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", e.Kind, e.Job, dash(e.Name), dashIfEmpty(e.State, "purged"))
				}
				if err := tw.Flush(); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

func dashIfEmpty(s, instead string) string {
	if s == "" {
		return instead
	}
	return s
}

// retryCmd is `gantry job retry JOB --failed | --tasks 3,17,40-45`.
func retryCmd(g *globals) *cobra.Command {
	var failed, detach bool
	var tasks string
	c := &cobra.Command{
		Use:   "retry ID (--failed | --tasks LIST)",
		Short: "Run ended tasks of a job again in the same job (its earlier attempts and logs stay)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var list []int
			if tasks != "" {
				var err error
				if list, err = parseTaskList(tasks); err != nil {
					return usageErr(cmd, "--tasks: %v", err)
				}
			}
			if failed == (list != nil) {
				return usageErr(cmd, "give --failed or --tasks LIST (one of them)")
			}
			cl, err := newClient()
			if err != nil {
				return err
			}
			res, err := cl.Rerun(cmd.Context(), args[0], failed, list)
			if err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(cmd.OutOrStdout(), res)
			}
			fmt.Fprintf(os.Stderr, "job %s: running %d task(s) again: %s\n", res.Job.ID, len(res.Tasks), taskRanges(res.Tasks))
			if detach {
				fmt.Fprintln(cmd.OutOrStdout(), res.Job.ID)
				return nil
			}
			return follow(cmd.Context(), cl, &res.Job, cmd.OutOrStdout(), os.Stderr)
		},
	}
	c.Flags().BoolVar(&failed, "failed", false, "run every failed task again")
	c.Flags().StringVar(&tasks, "tasks", "", "run these ended tasks again: indexes and ranges, e.g. 3,17,40-45")
	c.Flags().BoolVarP(&detach, "detach", "d", false, "print the job id and return at once")
	return c
}

// parseTaskList reads task indexes and ranges: "3,17,40-45".
func parseTaskList(s string) ([]int, error) {
	const most = 1000000
	var out []int
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("%q is not a task index", part)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("%q is not a range LOW-HIGH of task indexes", part)
			}
		}
		// b-a cannot overflow (0 <= a <= b); b-a+1 can.
		if b-a >= most-len(out) {
			return nil, fmt.Errorf("at most %d tasks", most)
		}
		// Counting up to b would overflow when b is the largest int.
		for i := range b - a + 1 {
			out = append(out, a+i)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no task index in %q", s)
	}
	return out, nil
}

// taskRanges prints sorted task indexes compactly: "1-3, 7".
func taskRanges(ts []int) string {
	var parts []string
	for i := 0; i < len(ts); {
		j := i
		for j+1 < len(ts) && ts[j+1] == ts[j]+1 {
			j++
		}
		if j > i {
			parts = append(parts, fmt.Sprintf("%d-%d", ts[i], ts[j]))
		} else {
			parts = append(parts, strconv.Itoa(ts[i]))
		}
		i = j + 1
	}
	return strings.Join(parts, ", ")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func age(t time.Time) string {
	d := time.Since(t)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// watchJobs lists jobs, then again each time the change feed reports a job
// change (several changes within a moment make one listing), until the
// command's context ends. On a terminal each listing replaces the last.
func watchJobs(cmd *cobra.Command, cl *client.Client, list func() ([]wire.Job, error), show func([]wire.Job) error) error {
	ctx := cmd.Context()
	// Subscribe before the first listing, so no change after it is missed.
	s, err := cl.Events(ctx, "")
	if err != nil {
		return err
	}
	defer s.Close()
	changed := make(chan struct{}, 1)
	feedErr := make(chan error, 1)
	go func() {
		for {
			ev, err := s.Next()
			if err != nil {
				feedErr <- err
				return
			}
			if ev.Type == "job" || ev.Type == "resync" {
				select {
				case changed <- struct{}{}:
				default:
				}
			}
		}
	}()
	out := cmd.OutOrStdout()
	tty := false
	if f, ok := out.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	for {
		jobs, err := list()
		if err != nil {
			return err
		}
		if tty {
			fmt.Fprint(out, "\033[H\033[2J")
		}
		if err := show(jobs); err != nil {
			return err
		}
		if !tty {
			fmt.Fprintln(out)
		}
		select {
		case <-ctx.Done():
			return nil
		case err := <-feedErr:
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("the event feed ended: %w", err)
		case <-changed:
		}
		// Coalesce a burst (an array job's tasks end together).
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(200 * time.Millisecond):
		}
	}
}
