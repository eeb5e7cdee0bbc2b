package store

import (
	"strings"
	"testing"
)

func TestInputMountPathsAreChecked(t *testing.T) {
	base := func(ins ...Input) JobSpec {
		s := JobSpec{Image: "gantry/toolbox", Inputs: ins}
		s.Defaults()
		return s
	}
	in := func(p string) Input { return Input{Ref: "alice/ds:v1", Repo: "alice/ds", Digest: "sha256:ab", Path: p} }
	for _, c := range []struct {
		name string
		spec JobSpec
		want string // "" accepted, else a part of the refusal
	}{
		{"a data path", base(in("/data")), ""},
		{"two inputs at two paths", base(in("/data"), in("/models/m")), ""},
		{"a path under /usr/local is still a system path", base(in("/usr/local/data")), "system path"},
		{"the root", base(in("/")), "system path"},
		{"/proc", base(in("/proc")), "system path"},
		{"/etc", base(in("/etc")), "system path"},
		{"under /sys", base(in("/sys/fs")), "system path"},
		{"/dev", base(in("/dev")), "system path"},
		{"a relative path", base(in("data")), "absolute"},
		{"an unclean path", base(in("/data/../etc")), "clean"},
		{"two inputs at one path", base(in("/data"), in("/data")), "two inputs"},
		{"a reference with a space", base(Input{Ref: "a b", Path: "/x"}), "not a valid reference"},
		{"a half-pinned input", base(Input{Ref: "a:b", Repo: "a", Path: "/x"}), "pinned"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.spec.Validate()
			switch {
			case c.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Errorf("got %v, want a refusal saying %q", err, c.want)
			}
		})
	}
}
