package store

import (
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Task and job states.
const (
	StateQueued    = "queued"
	StateScheduled = "scheduled"
	StateRunning   = "running"
	StateSucceeded = "succeeded"
	StateFailed    = "failed"
	StateCancelled = "cancelled"
)

// States lists every task/job state in lifecycle order.
var States = []string{StateQueued, StateScheduled, StateRunning, StateSucceeded, StateFailed, StateCancelled}

// Attempt end reasons.
const (
	ReasonExited          = "exited"
	ReasonOOMKilled       = "oom_killed"
	ReasonTimedOut        = "timed_out"
	ReasonNodeLost        = "node_lost"
	ReasonCancelled       = "cancelled"
	ReasonPreempted       = "preempted" // stopped to make room for a task that outranks it; requeued
	ReasonImagePullFailed = "image_pull_failed"
	ReasonDependency      = "dependency_failed"
)

// Node states.
const (
	NodeReady    = "ready"
	NodeDraining = "draining"
	NodeDown     = "down"
)

// Limits on job specs.
const (
	MaxArraySize = 10000
	MaxRetries   = 10
	MaxPriority  = 1000
)

// Terminal reports whether s is a final task or job state.
func Terminal(s string) bool {
	return s == StateSucceeded || s == StateFailed || s == StateCancelled
}

// Duration is a time.Duration that reads and writes as a Go duration string.
type Duration time.Duration

// MarshalJSON writes the duration as a string such as "90s".
func (d Duration) MarshalJSON() ([]byte, error) {
	if d == 0 {
		return []byte(`""`), nil
	}
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON accepts a duration string ("10m") or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		if s == "" {
			*d = 0
			return nil
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%q is not a duration such as \"90s\" or \"10m\"", s)
		}
		*d = Duration(v)
		return nil
	}
	var secs float64
	if err := json.Unmarshal(b, &secs); err != nil {
		return fmt.Errorf("want a duration string such as \"90s\"")
	}
	*d = Duration(secs * float64(time.Second))
	return nil
}

// User is an account.
type User struct {
	Name         string    `json:"name"`
	PasswordHash []byte    `json:"password_hash,omitempty"`
	Admin        bool      `json:"admin"`
	Disabled     bool      `json:"disabled"`
	Created      time.Time `json:"created"`
	// Quota bounds what the user's placed tasks may hold at once; a zero
	// field is no limit on that resource.
	Quota Resources `json:"quota,omitzero"`
	// StorageQuota bounds the bytes of distinct blobs the user's
	// repositories may hold (images, data, outputs; 0: no limit).
	StorageQuota int64 `json:"storage_quota,omitempty"`
	// Weight is the user's fair-share weight between the users of a queue
	// (0: 1).
	Weight float64 `json:"weight,omitempty"`
	// Suspension is set while an admin suspends the account (governance).
	Suspension *Suspension `json:"suspension,omitempty"`
}

// UserUsage is what a user's placed, unended attempts hold: the measure of
// fair share and quotas.
type UserUsage struct {
	Allocated Resources `json:"allocated"`
	Tasks     int       `json:"tasks"`
}

// Token is an API or session token; only the SHA-256 of its secret is kept.
type Token struct {
	ID      string    `json:"id"`
	User    string    `json:"user"`
	Name    string    `json:"name"`
	Hash    string    `json:"-"`
	Session bool      `json:"session,omitempty"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires,omitzero"`
}

// JobSpec is what a user submits.
type JobSpec struct {
	Name     string            `json:"name,omitempty"`
	Image    string            `json:"image"`
	Command  []string          `json:"command,omitempty"`
	Env      map[string]string `json:"env,omitempty"`
	WorkDir  string            `json:"workdir,omitempty"`
	CPU      int64             `json:"cpu"`
	Memory   int64             `json:"memory"`
	GPUs     int               `json:"gpus,omitempty"`
	Array    int               `json:"array"`
	Retries  int               `json:"retries,omitempty"`
	RetryOn  []int             `json:"retry_on,omitempty"`
	Timeout  Duration          `json:"timeout,omitempty"`
	Priority int               `json:"priority,omitempty"`
	Queue    string            `json:"queue,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
	// Deps are the jobs this one waits for, each with its kind (see
	// Dependencies). After and AfterAny are the older spelling of afterok
	// and afterany dependencies, still read from records and logs written
	// before Deps existed; new submissions fold them into Deps.
	Deps     []Dep    `json:"deps,omitempty"`
	After    []string `json:"after,omitempty"`
	AfterAny []string `json:"after_any,omitempty"`
	// Sequential: task i waits for task i-1 of this job to succeed.
	Sequential bool `json:"sequential,omitempty"`
	// Constraints are node labels a task's node must have (key = value).
	Constraints map[string]string `json:"constraints,omitempty"`
	// NoPreempt: the job's tasks are never preempted (and so never borrow
	// beyond their queue's guaranteed share).
	NoPreempt bool `json:"no_preempt,omitempty"`
	// Network is "" (the owner's own network on each node: tasks of one
	// user reach each other, no one else's) or NetworkNone (job.submit v3).
	Network string `json:"network,omitempty"`
	// Inputs are artifacts mounted read-only in every task, pinned to a
	// manifest digest at submission (job.submit v4; inputs.go).
	Inputs []Input `json:"inputs,omitempty"`
	// Output is the writable directory of every task, kept as an artifact
	// when the attempt ends (job.submit v5; outputs.go).
	Output *Output `json:"output,omitempty"`
}

// NetworkNone is JobSpec.Network for tasks without any network.
const NetworkNone = "none"

// Dependency kinds.
const (
	DepAfterOK    = "afterok"    // the dependency succeeded
	DepAfterNotOK = "afternotok" // the dependency ended failed or cancelled
	DepAfterAny   = "afterany"   // the dependency ended, in any state
	DepNToN       = "n-to-n"     // task i waits for task i of the dependency (same array size) to succeed
)

// DepKinds lists the dependency kinds.
var DepKinds = []string{DepAfterOK, DepAfterNotOK, DepAfterAny, DepNToN}

// Limits on dependencies. An n-to-n dependency is checked task by task at
// submission (and each of its tasks' ends visits its dependents), so fewer
// of them are allowed.
const (
	MaxDependencies      = 1000
	MaxArrayDependencies = 20
)

// Dep is one dependency of a job: the job it waits for and how.
type Dep struct {
	Job  string `json:"job"`
	Kind string `json:"kind"`
}

// Dependencies returns every dependency of the spec: Deps, then After
// (afterok) and AfterAny (afterany) of older records.
func (s *JobSpec) Dependencies() []Dep {
	out := make([]Dep, 0, len(s.Deps)+len(s.After)+len(s.AfterAny))
	out = append(out, s.Deps...)
	for _, id := range s.After {
		out = append(out, Dep{Job: id, Kind: DepAfterOK})
	}
	for _, id := range s.AfterAny {
		out = append(out, Dep{Job: id, Kind: DepAfterAny})
	}
	return out
}

// FoldDependencies moves After and AfterAny into Deps, so a new record
// says its dependencies one way.
func (s *JobSpec) FoldDependencies() {
	if len(s.After) == 0 && len(s.AfterAny) == 0 {
		return
	}
	s.Deps = s.Dependencies()
	s.After, s.AfterAny = nil, nil
}

// HasDependencies reports whether the spec waits for anything.
func (s *JobSpec) HasDependencies() bool {
	return len(s.Deps) > 0 || len(s.After) > 0 || len(s.AfterAny) > 0 || s.Sequential
}

// Defaults fills unset fields with their defaults.
func (s *JobSpec) Defaults() {
	if s.CPU == 0 {
		s.CPU = 1000
	}
	if s.Memory == 0 {
		s.Memory = 256 << 20
	}
	if s.Array == 0 {
		s.Array = 1
	}
	if s.Queue == "" {
		s.Queue = "default"
	}
	if s.Output != nil && s.Output.Limit == 0 {
		s.Output.Limit = DefaultOutputLimit
	}
}

// Bounds of what a job passes to its container as arguments and
// environment: Linux refuses an exec with a string over 128 KiB
// (MAX_ARG_STRLEN). Together they are bounded by MaxSpecBytes.
const (
	MaxArgString = 128 << 10 // one argument, or one NAME=value
	MaxEnvVars   = 1000
)

// Bounds of a job's spec as the store keeps it (its own record, written
// once; store/DESIGN.md says why 256 KiB): the whole spec, JSON-encoded,
// and its labels, which are for finding jobs, not for data.
const (
	MaxSpecBytes  = 256 << 10
	MaxLabels     = 64
	MaxLabelKey   = 100
	MaxLabelValue = 1024
)

// maxSpecSizeTxt is MaxSpecBytes for people.
const maxSpecSizeTxt = "256 KiB"

// EncodedSize is the size of the spec as the store keeps it: its JSON
// encoding, which MaxSpecBytes bounds.
func (s *JobSpec) EncodedSize() int {
	b, err := json.Marshal(s)
	if err != nil {
		return 0 // a spec of strings, numbers and maps always encodes
	}
	return len(b)
}

// Validate reports the first problem with the spec, naming the field.
func (s *JobSpec) Validate() error {
	bad := func(format string, args ...any) error { return Errorf(EInvalid, format, args...) }
	switch {
	case strings.TrimSpace(s.Image) == "":
		return bad("image: must not be empty")
	case len(s.Image) > 512 || strings.ContainsAny(s.Image, " \t\n"):
		return bad("image: %q is not a valid image reference", s.Image)
	case s.CPU < 0:
		return bad("cpu: must not be negative (millicores, 1000 = one CPU)")
	case s.CPU > 0 && s.CPU < 10:
		return bad("cpu: at least 10 millicores")
	case s.Memory < 0:
		return bad("memory: must not be negative (bytes)")
	case s.Memory > 0 && s.Memory < 6<<20:
		return bad("memory: at least 6 MiB (Docker's minimum)")
	case s.GPUs < 0:
		return bad("gpus: must not be negative")
	case s.Array < 1 || s.Array > MaxArraySize:
		return bad("array: must be between 1 and %d, got %d", MaxArraySize, s.Array)
	case s.Retries < 0 || s.Retries > MaxRetries:
		return bad("retries: must be between 0 and %d, got %d", MaxRetries, s.Retries)
	case s.Timeout < 0:
		return bad("timeout: must not be negative")
	case s.Priority < -MaxPriority || s.Priority > MaxPriority:
		return bad("priority: must be between %d and %d", -MaxPriority, MaxPriority)
	case len(s.Name) > 200:
		return bad("name: at most 200 characters")
	case len(s.Command) > 1000:
		return bad("command: at most 1000 arguments")
	}
	if err := s.validateDeps(); err != nil {
		return err
	}
	// What the container runtime would only refuse when the attempt
	// starts is refused now, naming the field.
	for i, a := range s.Command {
		if strings.ContainsRune(a, 0) {
			return bad("command: argument %d holds a NUL byte", i)
		}
		if len(a) >= MaxArgString {
			return bad("command: argument %d is %d bytes, at most %d (pass data as a file, not as an argument)", i, len(a), MaxArgString-1)
		}
	}
	if len(s.Env) > MaxEnvVars {
		return bad("env: at most %d variables", MaxEnvVars)
	}
	for k, v := range s.Env {
		if k == "" || len(k) > 256 || strings.ContainsAny(k, "=\x00") {
			return bad("env: %q is not a valid variable name", k)
		}
		if strings.HasPrefix(k, "GANTRY_") {
			return bad("env: %s is reserved (GANTRY_* is set by Gantry)", k)
		}
		if strings.ContainsRune(v, 0) {
			return bad("env: the value of %s holds a NUL byte", k)
		}
		if len(k)+1+len(v) >= MaxArgString {
			return bad("env: %s is %d bytes, at most %d", k, len(k)+1+len(v), MaxArgString-1)
		}
	}
	if s.Network != "" && s.Network != NetworkNone {
		return bad("network: %q is not a network a job can ask for: leave it out (the owner's own network) or say %q", s.Network, NetworkNone)
	}
	if w := s.WorkDir; w != "" {
		switch {
		case !path.IsAbs(w):
			return bad("workdir: %q must be an absolute path inside the container, e.g. /work", w)
		case strings.ContainsRune(w, 0) || len(w) > 1024:
			return bad("workdir: %q is not a valid path", w)
		case path.Clean(w) != w && path.Clean(w)+"/" != w:
			return bad("workdir: %q must be a clean path (no . or .. parts, no doubled /): %s", w, path.Clean(w))
		}
	}
	if len(s.Labels) > MaxLabels {
		return bad("labels: %d labels, at most %d", len(s.Labels), MaxLabels)
	}
	for k, v := range s.Labels {
		if k == "" || len(k) > MaxLabelKey {
			return bad("labels: %q is not a valid label key (1 to %d bytes)", k, MaxLabelKey)
		}
		if len(v) > MaxLabelValue {
			return bad("labels: the value of %s is %d bytes, at most %d", k, len(v), MaxLabelValue)
		}
	}
	if len(s.Constraints) > 20 {
		return bad("constraints: at most 20")
	}
	for k, v := range s.Constraints {
		if err := ValidNodeLabel(k, v); err != nil {
			return bad("constraints: %v", err)
		}
	}
	if err := s.validateInputs(); err != nil {
		return err
	}
	if err := s.validateOutput(); err != nil {
		return err
	}
	// Last, so a single field over its own bound is named first.
	if n := s.EncodedSize(); n > MaxSpecBytes {
		return bad("spec: %d bytes encoded, at most %d (%s) for command, env, labels and the rest together: pass large data as a file or a data input", n, MaxSpecBytes, maxSpecSizeTxt)
	}
	return nil
}

// validateDeps checks the dependency list: how many, known kinds, well
// formed ids, each job once.
func (s *JobSpec) validateDeps() error {
	deps := s.Dependencies()
	if len(deps) > MaxDependencies {
		return Errorf(EInvalid, "deps: %d dependencies, at most %d", len(deps), MaxDependencies)
	}
	seen := map[string]string{}
	arrays := 0
	for _, d := range deps {
		if !slices.Contains(DepKinds, d.Kind) {
			return Errorf(EInvalid, "deps: job %s: kind %q is not one of %s", d.Job, d.Kind, strings.Join(DepKinds, ", "))
		}
		if d.Job == "" || len(d.Job) > 64 || strings.ContainsAny(d.Job, "/ \t\n\x00") {
			return Errorf(EInvalid, "deps: %q is not a job id", d.Job)
		}
		if prev, dup := seen[d.Job]; dup {
			return Errorf(EInvalid, "deps: job %s is listed twice (%s and %s)", d.Job, prev, d.Kind)
		}
		seen[d.Job] = d.Kind
		if d.Kind == DepNToN {
			arrays++
		}
	}
	if arrays > MaxArrayDependencies {
		return Errorf(EInvalid, "deps: %d n-to-n dependencies, at most %d", arrays, MaxArrayDependencies)
	}
	return nil
}

// ValidNodeLabel checks a node label (or a constraint on one): a key of
// letters, digits and ".-_/" up to 63 characters, a value of letters,
// digits and ".-_" up to 63.
func ValidNodeLabel(k, v string) error {
	ok := func(s string, extra string) bool {
		if len(s) > 63 {
			return false
		}
		for _, c := range s {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune(extra, c)) {
				return false
			}
		}
		return true
	}
	if k == "" || !ok(k, ".-_/") {
		return fmt.Errorf("%q is not a valid label key (letters, digits, . - _ /; at most 63)", k)
	}
	if !ok(v, ".-_") {
		return fmt.Errorf("%s=%q: not a valid label value (letters, digits, . - _; at most 63)", k, v)
	}
	return nil
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
	Counts          map[string]int `json:"counts"`
	Total           int            `json:"total"`
	CancelRequested bool           `json:"cancel_requested,omitempty"`
	Held            int            `json:"held,omitempty"` // dependencies not yet satisfied
	Message         string         `json:"message,omitempty"`
	// Key is the submission's idempotency key ("" without one).
	Key string `json:"key,omitempty"`
	// GenAI: the image performs generative AI (from the catalog, at
	// submission); Trial: a "Try it" run (outside the owner's quota).
	GenAI bool `json:"genai,omitempty"`
	Trial bool `json:"trial,omitempty"`
	// Queue is the queue the job was admitted to ("" is the default
	// queue); its tasks are indexed there.
	Queue string `json:"queue,omitempty"`
	// Preemptions counts the job's attempts ended by preemption.
	Preemptions int `json:"preemptions,omitempty"`
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
	// Reruns counts the times the task was run again after it ended
	// (job.rerun); AttemptBase is how many attempts it had then, so the
	// retry budget starts again.
	Reruns      int `json:"reruns,omitempty"`
	AttemptBase int `json:"attempt_base,omitempty"`
	// Preemptions counts the task's attempts ended by preemption (they do
	// not count against its retries).
	Preemptions int `json:"preemptions,omitempty"`
	// Held counts the task's own unmet dependencies: the same task of each
	// n-to-n dependency that has not succeeded, and, in a sequential job,
	// the previous task. A queued task is placed only at zero (and its
	// job's Held at zero).
	Held int `json:"held,omitempty"`
	// Output is the newest output stored of the task's attempts, the one
	// its tag OutputTag names.
	Output *AttemptOutput `json:"output,omitempty"`
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
	// Preempt asks the attempt's runner to stop it (SIGTERM, then SIGKILL
	// after Grace) for PreemptedBy (job/task) and report it preempted.
	Preempt     bool      `json:"preempt,omitempty"`
	PreemptedBy string    `json:"preempted_by,omitempty"`
	Grace       Duration  `json:"grace,omitempty"`
	PreemptAt   time.Time `json:"preempt_at,omitzero"`
	CPU         int64     `json:"cpu"`
	Memory      int64     `json:"memory"`
	GPUs        int       `json:"gpus,omitempty"`
	// Devices are the ids of the node's GPUs the store gave this attempt
	// (GPUs of them), in the node's order.
	Devices []string `json:"devices,omitempty"`
	// Output is the artifact the attempt's output was stored as (a job
	// with an Output; attempt.ended v2).
	Output *AttemptOutput `json:"output,omitempty"`
}

// Resources is an amount of CPU (millicores) and memory (bytes).
type Resources struct {
	CPU    int64 `json:"cpu"`
	Memory int64 `json:"memory"`
	GPUs   int   `json:"gpus,omitempty"`
}

// Node is a member of the cluster that can run tasks.
type Node struct {
	Name      string            `json:"name"`
	Addr      string            `json:"addr"`
	APIAddr   string            `json:"api_addr"`
	State     string            `json:"state"`
	Capacity  Resources         `json:"capacity"`
	Allocated Resources         `json:"allocated"`
	Running   int               `json:"running"`
	Labels    map[string]string `json:"labels,omitempty"`
	// Devices are the GPUs the node declared, in its order, with the
	// attempts holding each; Capacity.GPUs is how many there are.
	Devices []Device `json:"devices,omitempty"`
	// DrainDeadline is when a draining node's remaining tasks are moved to
	// other nodes; zero lets them finish.
	DrainDeadline time.Time `json:"drain_deadline,omitzero"`
	Joined        time.Time `json:"joined"`
	Updated       time.Time `json:"updated"`
}

// Matches reports whether the node has every label of constraints.
func (n *Node) Matches(constraints map[string]string) bool { return LabelsMatch(n.Labels, constraints) }

// LabelsMatch reports whether labels hold every key=value of constraints.
func LabelsMatch(labels, constraints map[string]string) bool {
	for k, v := range constraints {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// Holds reports whether r fits within the node's free resources.
func (r Resources) Holds(need Resources) bool {
	return r.CPU >= need.CPU && r.Memory >= need.Memory && r.GPUs >= need.GPUs
}

// Plus returns r + o.
func (r Resources) Plus(o Resources) Resources {
	return Resources{CPU: r.CPU + o.CPU, Memory: r.Memory + o.Memory, GPUs: r.GPUs + o.GPUs}
}

// Minus returns r - o, floored at zero.
func (r Resources) Minus(o Resources) Resources {
	return Resources{CPU: max(r.CPU-o.CPU, 0), Memory: max(r.Memory-o.Memory, 0), GPUs: max(r.GPUs-o.GPUs, 0)}
}

// Allows reports whether holding use stays within quota q (a zero
// field of q is no limit).
func (q Resources) Allows(use Resources) bool {
	return (q.CPU == 0 || use.CPU <= q.CPU) && (q.Memory == 0 || use.Memory <= q.Memory) && (q.GPUs == 0 || use.GPUs <= q.GPUs)
}

// IsZero reports whether r is all zero.
func (r Resources) IsZero() bool { return r == Resources{} }

// Task returns the resources one task of the spec needs.
func (s *JobSpec) Task() Resources { return Resources{CPU: s.CPU, Memory: s.Memory, GPUs: s.GPUs} }

// Free returns the node's unallocated resources. Its GPUs are the devices
// that can take one more task (FreeDevices), not a count left over: a
// shareable device in use still counts, a held one does not.
func (n *Node) Free() Resources {
	gpus := n.Capacity.GPUs - n.Allocated.GPUs
	if len(n.Devices) > 0 {
		gpus = n.FreeDevices()
	}
	return Resources{CPU: n.Capacity.CPU - n.Allocated.CPU, Memory: n.Capacity.Memory - n.Allocated.Memory, GPUs: gpus}
}

// ClusterInfo is the cluster's identity, written once at bootstrap.
type ClusterInfo struct {
	ID      string    `json:"id"`
	Created time.Time `json:"created"`
}

// LogsExpired reports whether a log retention policy of retention (0: keep
// forever) has removed the logs of j by now: j has ended, longer ago than
// retention.
func (j *Job) LogsExpired(retention time.Duration, now time.Time) bool {
	return retention > 0 && !j.Ended.IsZero() && now.Sub(j.Ended) > retention
}

// LogsGoneError is the error for a log the retention policy removed.
func LogsGoneError(j *Job, retention time.Duration) *Error {
	return Errorf(EGone, "the logs of job %s were removed: it ended more than %s ago (log retention)", j.ID, FormatRetention(retention))
}

// FormatRetention prints a retention in whole days when it is one ("30d").
func FormatRetention(d time.Duration) string {
	if d >= 24*time.Hour && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}

// WaitReason says why j's queued tasks are not running now, in words for
// its owner; "" when nothing holds them back beyond the next scheduling
// pass (or other queued work ahead of them). pending lists the jobs it
// still depends on; nodes are the cluster's; quota and use are the owner's.
func WaitReason(j *Job, pending []string, nodes []Node, quota Resources, use UserUsage) string {
	if Terminal(j.State) || j.Counts[StateQueued] == 0 {
		return ""
	}
	if j.Held > 0 {
		if len(pending) > 0 {
			return "waiting for " + strings.Join(pending, ", ") + " to end (dependencies)"
		}
		return "waiting for the jobs it depends on"
	}
	need := j.Spec.Task()
	if !quota.Allows(use.Allocated.Plus(need)) {
		return fmt.Sprintf("quota: your running tasks hold %s; one more task would exceed your quota of %s", ResourcesText(use.Allocated), ResourcesText(quota))
	}
	ready, matching := 0, 0
	for i := range nodes {
		n := &nodes[i]
		if n.State != NodeReady {
			continue
		}
		ready++
		if !n.Matches(j.Spec.Constraints) {
			continue
		}
		matching++
		if n.Free().Holds(need) {
			return ""
		}
	}
	switch {
	case ready == 0:
		return "no node is ready (every node is draining or down)"
	case matching == 0:
		return "no ready node has " + LabelsText(j.Spec.Constraints)
	}
	return fmt.Sprintf("resources: no ready node has %s free for one task now", ResourcesText(need))
}

// ResourcesText prints resources for people: "1.5 CPUs, 512 MiB".
func ResourcesText(r Resources) string {
	var parts []string
	if r.CPU > 0 {
		parts = append(parts, CPUText(r.CPU))
	}
	if r.Memory > 0 {
		parts = append(parts, MemoryText(r.Memory))
	}
	if r.GPUs > 0 {
		parts = append(parts, strconv.Itoa(r.GPUs)+" GPU")
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, ", ")
}

// CPUText prints millicores for people: "1 CPU", "2 CPUs", "0.5 CPUs".
func CPUText(m int64) string {
	if m == 1000 {
		return "1 CPU"
	}
	return strconv.FormatFloat(float64(m)/1000, 'f', -1, 64) + " CPUs"
}

// MemoryText prints bytes for people: "512 MiB", "4 GiB", "1.5 GiB".
func MemoryText(b int64) string {
	switch {
	case b >= 1<<30 && b%(1<<30) == 0:
		return strconv.FormatInt(b>>30, 10) + " GiB"
	case b >= 1<<30:
		return strconv.FormatFloat(float64(b)/(1<<30), 'f', 1, 64) + " GiB"
	default:
		return strconv.FormatInt(b>>20, 10) + " MiB"
	}
}

// LabelsText prints labels or constraints sorted: "disk=ssd, zone=lab".
func LabelsText(m map[string]string) string {
	kv := make([]string, 0, len(m))
	for k, v := range m {
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)
	return strings.Join(kv, ", ")
}
