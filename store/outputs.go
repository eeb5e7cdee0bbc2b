package store

import (
	"fmt"
	"strings"
)

// Output asks for a writable directory in every task of a job (job.submit
// v5): what a task leaves there when its attempt ends is stored as an
// artifact in the owner's namespace (OutputRepo, OutputTag) and recorded
// on the attempt (AttemptOutput).
type Output struct {
	// Path is where the directory is mounted in the container.
	Path string `json:"path"`
	// Limit bounds what a task may write there, in bytes (0: at
	// submission, DefaultOutputLimit). Over it, the attempt ends
	// ReasonOutputLimit and nothing is kept.
	Limit int64 `json:"limit"`
	// KeepFailed: a failed attempt's output is kept too (by default only a
	// succeeded attempt's is).
	KeepFailed bool `json:"keep_failed,omitempty"`
}

// AttemptOutput is the artifact an attempt's output was stored as.
type AttemptOutput struct {
	Repo   string `json:"repo"`
	Tag    string `json:"tag"`
	Digest string `json:"digest"`
	Files  int    `json:"files"`
	Bytes  int64  `json:"bytes"`
}

// Reasons an attempt with an output can end with.
const (
	// ReasonOutputLimit: the task wrote more than its output limit.
	ReasonOutputLimit = "output_limit"
	// ReasonOutputFailed: the task ended but its output could not be
	// stored (the message says why).
	ReasonOutputFailed = "output_failed"
)

// Bounds of an output's limit.
const (
	DefaultOutputLimit int64 = 1 << 30
	MinOutputLimit     int64 = 1 << 20
	MaxOutputLimit     int64 = 1 << 40
)

// OutputRepo is the repository of owner's task outputs.
func OutputRepo(owner string) string { return owner + "/outputs" }

// OutputTag is the tag of task's output of job: the job id and the task's
// index, so every task has its own and a retried task's newest attempt
// moves it (each attempt's record keeps its own digest).
func OutputTag(job string, task int) string {
	return fmt.Sprintf("%s-%04d", strings.ToLower(job), task)
}

// validateOutput checks the output's mount path as an input's is checked
// (and against the inputs' paths) and its limit.
func (s *JobSpec) validateOutput() error {
	o := s.Output
	if o == nil {
		return nil
	}
	if err := checkMountPath("output", o.Path); err != nil {
		return err
	}
	for _, in := range s.Inputs {
		if under(o.Path, in.Path) || under(in.Path, o.Path) {
			return Errorf(EInvalid, "output %s: overlaps input %s at %s: mount it elsewhere, e.g. /out", o.Path, in.Ref, in.Path)
		}
	}
	if o.Limit < MinOutputLimit || o.Limit > MaxOutputLimit {
		return Errorf(EInvalid, "output limit: %d bytes, it must be between 1 MiB and 1 TiB", o.Limit)
	}
	return nil
}

// under reports whether p is dir or a path inside it.
func under(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}

// validAttemptOutput checks what a runner reports it stored.
func validAttemptOutput(o *AttemptOutput) error {
	if o == nil {
		return nil
	}
	if _, hex, ok := strings.Cut(o.Digest, ":"); !ok || hex == "" || o.Repo == "" || o.Tag == "" || o.Files < 0 || o.Bytes < 0 {
		return Errorf(EInvalid, "output: %q:%q@%q is not a stored artifact", o.Repo, o.Tag, o.Digest)
	}
	return nil
}
