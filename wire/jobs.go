package wire

import "time"

// IdempotencyKeyHeader names the header of a job submission that may be
// sent again (after a timeout or a 503): the server makes one job per key
// and user, and answers a repeat with that job.
const IdempotencyKeyHeader = "Idempotency-Key"

// JobSpec is what a user submits (POST /api/v1/jobs) and what a job shows
// it was submitted with.
type JobSpec struct {
	Name     string            `json:"name,omitempty"`
	Image    string            `json:"image"`
	Command  []string          `json:"command,omitempty"`
	Env      map[string]string `json:"env,omitempty"`
	WorkDir  string            `json:"workdir,omitempty"`
	CPU      int64             `json:"cpu"`    // millicores; 0: 1000
	Memory   int64             `json:"memory"` // bytes; 0: 256 MiB
	GPUs     int               `json:"gpus,omitempty"`
	Array    int               `json:"array"` // tasks; 0: 1
	Retries  int               `json:"retries,omitempty"`
	RetryOn  []int             `json:"retry_on,omitempty"`
	Timeout  Duration          `json:"timeout,omitempty"`
	Priority int               `json:"priority,omitempty"`
	Queue    string            `json:"queue,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
	// Deps are the jobs this one waits for, each with its kind: afterok
	// (it succeeded), afternotok (it failed or was cancelled), afterany (it
	// ended), n-to-n (task i waits for task i of that job, an array of the
	// same size, to succeed). At most 1000, of which 20 n-to-n. A
	// dependency that can never be met fails the waiting tasks with reason
	// dependency_failed.
	Deps []Dependency `json:"deps,omitempty"`
	// After (afterok) and AfterAny (afterany) are the older spelling of
	// Deps: a submission's are folded into Deps.
	After    []string `json:"after,omitempty"`
	AfterAny []string `json:"after_any,omitempty"`
	// Sequential: task i waits for task i-1 of this job to succeed.
	Sequential bool `json:"sequential,omitempty"`
	// Constraints are node labels a task's node must have (key = value).
	Constraints map[string]string `json:"constraints,omitempty"`
	// NoPreempt: the job's tasks are never preempted; they never borrow
	// capacity beyond their queue's guaranteed share either.
	NoPreempt bool `json:"no_preempt,omitempty"`
	// Network: "" puts the tasks on their owner's own network on each node
	// (they reach the owner's other tasks there, never another user's);
	// "none" gives them no network at all.
	Network string `json:"network,omitempty"`
	// Inputs are artifacts of Gantry's registry (datasets, models, any
	// OCI artifact) mounted read-only at their paths in every task.
	Inputs []Input `json:"inputs,omitempty"`
	// Output is a writable directory in every task whose contents are kept
	// as an artifact OWNER/outputs:JOB-NNNN when the attempt ends
	// (succeeded; failed too with KeepFailed).
	Output *Output `json:"output,omitempty"`
}

// Output is JobSpec.Output: the mount path, the bytes a task may write
// there (0: 1 GiB), and whether a failed attempt's output is kept too.
type Output struct {
	Path       string `json:"path"`
	Limit      int64  `json:"limit,omitempty"`
	KeepFailed bool   `json:"keep_failed,omitempty"`
}

// AttemptOutput is the artifact an attempt's output was stored as.
type AttemptOutput struct {
	Repo   string `json:"repo"`
	Tag    string `json:"tag"`
	Digest string `json:"digest"`
	Files  int    `json:"files"`
	Bytes  int64  `json:"bytes"`
}

// Input is one of JobSpec.Inputs. A submission gives Ref (REPO:TAG or
// REPO@DIGEST) and Path; the server pins it, filling Repo and Digest, and
// refuses an input that does not exist, that the owner may not read or has
// not accepted the licence of, or a path over a system directory.
type Input struct {
	Ref    string `json:"ref"`
	Path   string `json:"path"`
	Repo   string `json:"repo,omitempty"`
	Digest string `json:"digest,omitempty"`
	// Job is the job whose task outputs a "job:JOB" input reads (set by
	// the server; such an input is pinned per task when it starts).
	Job string `json:"job,omitempty"`
}

// Dependency kinds.
const (
	DepAfterOK    = "afterok"
	DepAfterNotOK = "afternotok"
	DepAfterAny   = "afterany"
	DepNToN       = "n-to-n"
)

// Dependency is one entry of JobSpec.Deps.
type Dependency struct {
	Job  string `json:"job"`
	Kind string `json:"kind"`
}

// DepEdge is one edge of the graph around a job: the job at its other
// end (Name and State are empty once it was purged) and the kind.
type DepEdge struct {
	Job   string `json:"job"`
	Kind  string `json:"kind"`
	Name  string `json:"name,omitempty"`
	State string `json:"state,omitempty"`
}

// JobGraph is GET /api/v1/jobs/:id/deps: what a job depends on and what
// depends on it, one step each way.
type JobGraph struct {
	Job          string    `json:"job"`
	State        string    `json:"state"`
	Sequential   bool      `json:"sequential,omitempty"`
	Dependencies []DepEdge `json:"dependencies"`
	Dependents   []DepEdge `json:"dependents"`
}

// Job is a submitted job with its aggregate state.
type Job struct {
	ID              string         `json:"id"`
	Owner           string         `json:"owner"`
	Spec            JobSpec        `json:"spec"`
	State           string         `json:"state"`
	Submitted       time.Time      `json:"submitted"`
	Started         time.Time      `json:"started,omitzero"`
	Ended           time.Time      `json:"ended,omitzero"`
	Counts          map[string]int `json:"counts"` // tasks by state
	Total           int            `json:"total"`
	CancelRequested bool           `json:"cancel_requested,omitempty"`
	Held            int            `json:"held,omitempty"` // dependencies not yet satisfied
	Message         string         `json:"message,omitempty"`
	// Waiting says why queued tasks are not running (dependencies, quota,
	// no ready node, labels, room); GET /jobs/:id only.
	Waiting string `json:"waiting,omitempty"`
	// GenAI: the job's image performs generative AI (labelled; its tasks
	// get GANTRY_GENAI=1). Trial: a community image's "Try it" run.
	GenAI bool `json:"genai,omitempty"`
	Trial bool `json:"trial,omitempty"`
	// Preemptions counts the job's attempts stopped to make room for tasks
	// that outrank them (each was requeued, not counted as a retry).
	Preemptions int `json:"preemptions,omitempty"`
}

// JobList is a page of GET /api/v1/jobs; Next is the cursor of the next
// page ("" at the end).
type JobList struct {
	Jobs []Job  `json:"jobs"`
	Next string `json:"next"`
}

// Task is one element of a job's array.
type Task struct {
	JobID    string    `json:"job"`
	Index    int       `json:"index"`
	State    string    `json:"state"`
	Attempts int       `json:"attempts"`
	Node     string    `json:"node,omitempty"`
	ExitCode *int      `json:"exit_code,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	Updated  time.Time `json:"updated"`
	// Reruns counts the times the task was run again after it ended.
	Reruns int `json:"reruns,omitempty"`
	// Preemptions counts its attempts ended by preemption.
	Preemptions int `json:"preemptions,omitempty"`
	// Held counts the task's own unmet dependencies (n-to-n, sequential).
	Held int `json:"held,omitempty"`
	// Output is the newest stored output of the task's attempts.
	Output *AttemptOutput `json:"output,omitempty"`
}

// OutputList is GET /api/v1/jobs/:id/outputs: the stored outputs of a
// job's tasks, a page of tasks at a time (a page may list fewer outputs
// than tasks; Next is the task index to continue from, "" at the end).
type OutputList struct {
	Outputs []TaskOutput `json:"outputs"`
	Next    string       `json:"next"`
}

// TaskOutput is one task's stored output. Ref is a reference docker, oras
// and `gantry data pull` read it by: HOST/OWNER/outputs@DIGEST.
type TaskOutput struct {
	Task   int    `json:"task"`
	Repo   string `json:"repo"`
	Tag    string `json:"tag"`
	Digest string `json:"digest"`
	Files  int    `json:"files"`
	Bytes  int64  `json:"bytes"`
	Ref    string `json:"ref"`
}

// TaskList is a page of GET /api/v1/jobs/:id/tasks; Next is the index to
// continue from ("" at the end).
type TaskList struct {
	Tasks []Task `json:"tasks"`
	Next  string `json:"next"`
}

// TaskDetail is GET /api/v1/jobs/:id/tasks/:index: a task and its attempts.
type TaskDetail struct {
	Task
	AttemptList []Attempt `json:"attempt_list"`
}

// Attempt is one run of a task on a node.
type Attempt struct {
	JobID           string    `json:"job"`
	Task            int       `json:"task"`
	N               int       `json:"attempt"`
	Node            string    `json:"node"`
	State           string    `json:"state"`
	Container       string    `json:"container,omitempty"`
	Scheduled       time.Time `json:"scheduled"`
	Started         time.Time `json:"started,omitzero"`
	Ended           time.Time `json:"ended,omitzero"`
	ExitCode        *int      `json:"exit_code,omitempty"`
	Reason          string    `json:"reason,omitempty"`
	Message         string    `json:"message,omitempty"`
	ImageDigest     string    `json:"image_digest,omitempty"`
	CancelRequested bool      `json:"cancel_requested,omitempty"`
	// Preempt: the attempt is being (or was) stopped for PreemptedBy, the
	// task ("job/index") that outranks it; Grace is its time between
	// SIGTERM and SIGKILL, from PreemptAt.
	Preempt     bool      `json:"preempt,omitempty"`
	PreemptedBy string    `json:"preempted_by,omitempty"`
	Grace       Duration  `json:"grace,omitempty"`
	PreemptAt   time.Time `json:"preempt_at,omitzero"`
	// Output is where the attempt's output was stored, if it was.
	Output *AttemptOutput `json:"output,omitempty"`
	CPU    int64          `json:"cpu"`
	Memory int64          `json:"memory"`
	GPUs   int            `json:"gpus,omitempty"`
	// Devices are the ids of the node's GPUs this attempt was given.
	Devices []string `json:"devices,omitempty"`
}

// Schedule submits a job from Spec at the times Cron names.
type Schedule struct {
	ID           string    `json:"id"`
	Owner        string    `json:"owner"`
	Name         string    `json:"name,omitempty"`
	Cron         string    `json:"cron"`
	Spec         JobSpec   `json:"spec"`
	AllowOverlap bool      `json:"allow_overlap,omitempty"`
	Paused       bool      `json:"paused,omitempty"`
	Created      time.Time `json:"created"`
	NextRun      time.Time `json:"next_run,omitzero"` // zero while paused
	LastRun      time.Time `json:"last_run,omitzero"`
	LastJob      string    `json:"last_job,omitempty"`
	Runs         int       `json:"runs"`
	// Skipped counts runs not submitted because the previous job was still
	// going (AllowOverlap unset), or the image could not be used.
	Skipped int `json:"skipped,omitempty"`
	// SkipReason says why the last run was skipped.
	SkipReason string `json:"skip_reason,omitempty"`
	ImageRepo  string `json:"image_repo,omitempty"`
	GenAI      bool   `json:"genai,omitempty"`
}

// ScheduleRequest is the body of POST /api/v1/schedules.
type ScheduleRequest struct {
	Name         string  `json:"name"`
	Cron         string  `json:"cron"`
	Spec         JobSpec `json:"spec"`
	AllowOverlap bool    `json:"allow_overlap"`
}

// ScheduleList is GET /api/v1/schedules.
type ScheduleList struct {
	Schedules []Schedule `json:"schedules"`
}

// Rerun is the body of POST /api/v1/jobs/:id/rerun: the ended tasks to run
// again in the same job, by index, or every failed one.
type Rerun struct {
	Failed bool  `json:"failed,omitempty"`
	Tasks  []int `json:"tasks,omitempty"`
}

// RerunResult is the answer to a rerun: the job, running again, and the
// tasks queued again.
type RerunResult struct {
	Job   Job   `json:"job"`
	Tasks []int `json:"tasks"`
}
