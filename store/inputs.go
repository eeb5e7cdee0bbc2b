package store

import (
	"path"
	"strings"
)

// Input is an artifact of the registry mounted read-only at Path in every
// task of a job. Ref is what the user asked for (REPO:TAG); Repo and
// Digest pin it at submission, so a tag moved later changes nothing.
type Input struct {
	Ref    string `json:"ref"`
	Repo   string `json:"repo"`
	Digest string `json:"digest"`
	Path   string `json:"path"`
}

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
