package store

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// Input is an artifact of the registry mounted read-only at Path in every
// task of a job. Ref is what the user asked for (REPO:TAG); Repo and
// Digest pin it at submission, so a tag moved later changes nothing.
//
// An input "job:JOB" (Job set, Repo and Digest empty) is another job's
// task outputs, pinned when each task starts, after JOB's tasks ended:
// with an n-to-n dependency on JOB, task i reads task i's output at Path;
// otherwise every task reads them all, JOB's task k at Path/task-NNNN (a
// single-task JOB's output at Path itself).
type Input struct {
	Ref    string `json:"ref"`
	Repo   string `json:"repo"`
	Digest string `json:"digest"`
	Path   string `json:"path"`
	Job    string `json:"job,omitempty"`
}

// JobInputPrefix starts an input that names another job's outputs.
const JobInputPrefix = "job:"

// MaxJobInputTasks bounds the outputs of one job every task reads (each is
// a mount); more are read task by task with an n-to-n dependency.
const MaxJobInputTasks = 256

// JobInputPath is where task k's output of a job input at p is mounted
// when every task reads every output.
func JobInputPath(p string, k int) string { return fmt.Sprintf("%s/task-%04d", p, k) }

// ReasonInputFailed ends an attempt whose inputs could not be
// materialised on its node.
const ReasonInputFailed = "input_failed"

// MaxInputs bounds a job's inputs.
const MaxInputs = 16

// systemPaths are the container paths an input may not be mounted on or
// under: the image's own system, what the runtime provides, and what a
// shell needs to work. "/" itself is refused too.
var systemPaths = []string{"/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc",
	"/run", "/sbin", "/sys", "/usr", "/var/run"}

// SystemPath reports whether p is "/" or on or under a system path.
func SystemPath(p string) bool {
	if p == "/" {
		return true
	}
	for _, s := range systemPaths {
		if p == s || strings.HasPrefix(p, s+"/") {
			return true
		}
	}
	return false
}

// validateInputs refuses more than MaxInputs inputs, a mount path that is
// not absolute and clean, one on a system path, two inputs at one path, and
// inputs not pinned to a digest (the API pins them before proposing).
func (s *JobSpec) validateInputs() error {
	if len(s.Inputs) > MaxInputs {
		return Errorf(EInvalid, "inputs: at most %d", MaxInputs)
	}
	seen := map[string]bool{}
	for _, in := range s.Inputs {
		p := in.Path
		if err := checkMountPath("input "+in.Ref, p); err != nil {
			return err
		}
		switch {
		case seen[p]:
			return Errorf(EInvalid, "input %s: two inputs are mounted at %s", in.Ref, p)
		case in.Ref == "" || len(in.Ref) > 512 || strings.ContainsAny(in.Ref, " \t\n\x00"):
			return Errorf(EInvalid, "input %q: not a valid reference", in.Ref)
		}
		seen[p] = true
		if job, ok := strings.CutPrefix(in.Ref, JobInputPrefix); ok || in.Job != "" {
			if !ok || job != in.Job || in.Job == "" || in.Repo != "" || in.Digest != "" {
				return Errorf(EInvalid, "input %s: a job input names the job (job:JOB) and nothing else", in.Ref)
			}
			for _, o := range s.Inputs {
				if o.Path != p && under(o.Path, p) {
					return Errorf(EInvalid, "input %s: input %s at %s is inside its mount path %s: mount it elsewhere", in.Ref, o.Ref, o.Path, p)
				}
			}
			continue
		}
		if in.Repo != "" || in.Digest != "" {
			if _, hex, ok := strings.Cut(in.Digest, ":"); !ok || hex == "" || in.Repo == "" {
				return Errorf(EInvalid, "input %s: pinned to %q@%q, not a repository and digest", in.Ref, in.Repo, in.Digest)
			}
		}
	}
	return nil
}

// checkMountPath refuses a container mount path that is not absolute and
// clean, or is on a system path; what names the mount in the message.
func checkMountPath(what, p string) error {
	switch {
	case p == "" || !path.IsAbs(p) || strings.ContainsRune(p, 0) || len(p) > 1024:
		return Errorf(EInvalid, "%s: mount path %q must be an absolute path inside the container, e.g. /data", what, p)
	case path.Clean(p) != p:
		return Errorf(EInvalid, "%s: mount path %q must be a clean path: %s", what, p, path.Clean(p))
	case SystemPath(p):
		return Errorf(EInvalid, "%s: %s is a system path of the container: mount it elsewhere, e.g. /data", what, p)
	}
	return nil
}

// InputHolders returns the nodes recorded as holding every blob of the
// manifest repo@digest (its config and layers): a node that materialised
// the artifact fetched them all. Nil when the manifest is unknown.
func (s *Store) InputHolders(repo, digest string) ([]string, error) {
	m, err := s.RegManifest(repo, digest)
	if err != nil {
		if ErrorCode(err) == ENotFound {
			return nil, nil
		}
		return nil, err
	}
	var held map[string]int
	for _, b := range m.Blobs {
		nodes, err := s.RegBlobHolders(b)
		if err != nil {
			return nil, err
		}
		if held == nil {
			held = map[string]int{}
		}
		for _, n := range nodes {
			held[n]++
		}
	}
	var out []string
	for n, c := range held {
		if c == len(m.Blobs) {
			out = append(out, n)
		}
	}
	return out, nil
}

// checkJobInputs refuses a job input whose job does not exist or is
// another user's, keeps no outputs, or whose outputs this job could read
// before they are kept (no dependency on it while it runs), and one whose
// outputs would be too many mounts for every task.
func (a *applier) checkJobInputs(owner string, spec *JobSpec) error {
	for _, in := range spec.Inputs {
		if in.Job == "" {
			continue
		}
		d, err := a.job(in.Job)
		if errors.Is(err, ErrNotFound) || (err == nil && d.Owner != owner) {
			return Errorf(EInvalid, "input %s: job not found", in.Ref)
		}
		if err != nil {
			return err
		}
		if d.Spec.Output == nil {
			return Errorf(EInvalid, "input %s: job %s keeps no outputs (submit it with --output PATH)", in.Ref, d.ID)
		}
		kinds := map[string]bool{}
		for _, dep := range spec.Dependencies() {
			if dep.Job == d.ID {
				kinds[dep.Kind] = true
			}
		}
		switch {
		case kinds[DepNToN]:
		case !kinds[DepAfterOK] && !kinds[DepAfterAny] && !Terminal(d.State):
			return Errorf(EInvalid, "input %s: job %s has not ended: add --after %s (or --array-after %s, task i reading task i's output) so the tasks start once its outputs are kept", in.Ref, d.ID, d.ID, d.ID)
		case d.Total > MaxJobInputTasks:
			return Errorf(EInvalid, "input %s: every task would mount the outputs of %d tasks, at most %d: read them task by task with --array-after %s", in.Ref, d.Total, MaxJobInputTasks, d.ID)
		}
	}
	return nil
}

// NToNInput reports whether spec's job input in reads task i's output for
// its task i (an n-to-n dependency on that job), not every task's.
func (s *JobSpec) NToNInput(in Input) bool {
	for _, dep := range s.Deps {
		if dep.Job == in.Job && dep.Kind == DepNToN {
			return true
		}
	}
	return false
}
