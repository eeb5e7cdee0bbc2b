// Package version says which release of Gantry this binary is: the
// release number (tagged v<Release> in the repository) and, when the
// binary was built from a Git checkout, the commit it was built from.
package version

import (
	"runtime"
	"runtime/debug"
)

// Release is this source tree's release; a release is tagged v<Release>.
const Release = "0.10.0"

// commit is set by the linker where the build's VCS stamp is off
// (`make build`: -X gantry/version.commit=$(git rev-parse HEAD)).
var commit string

// Info describes the running binary.
type Info struct {
	Release string `json:"release"`
	Commit  string `json:"commit,omitempty"` // the VCS revision, when known
	Dirty   bool   `json:"dirty,omitempty"`  // built from uncommitted changes
	Go      string `json:"go"`               // the Go release that built it
}

// Get returns the running binary's version.
func Get() Info {
	in := Info{Release: Release, Commit: commit, Go: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				in.Commit = s.Value
			case "vcs.modified":
				in.Dirty = s.Value == "true"
			}
		}
	}
	return in
}

// String is the one-line form: "0.10.0 (commit 1a2b3c4d5e6f, go1.25.0)".
func (i Info) String() string {
	s := i.Release + " ("
	if i.Commit != "" {
		c := i.Commit
		if len(c) > 12 {
			c = c[:12]
		}
		s += "commit " + c
		if i.Dirty {
			s += " with local changes"
		}
		s += ", "
	}
	return s + i.Go + ")"
}
