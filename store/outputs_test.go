package store

import (
	"strings"
	"testing"
	"time"
)

func TestOutputIsChecked(t *testing.T) {
	base := func(o *Output, ins ...Input) JobSpec {
		s := JobSpec{Image: "gantry/toolbox", Output: o, Inputs: ins}
		s.Defaults()
		return s
	}
	in := func(p string) Input { return Input{Ref: "alice/ds:v1", Repo: "alice/ds", Digest: "sha256:ab", Path: p} }
	for _, c := range []struct {
		name string
		spec JobSpec
		want string // "" accepted, else a part of the refusal
	}{
		{"an output dir", base(&Output{Path: "/out"}), ""},
		{"an output beside an input", base(&Output{Path: "/out"}, in("/data")), ""},
		{"an output inside an input", base(&Output{Path: "/data/out"}, in("/data")), "overlaps input"},
		{"an input inside the output", base(&Output{Path: "/work"}, in("/work/data")), "overlaps input"},
		{"an output at an input's path", base(&Output{Path: "/data"}, in("/data")), "overlaps input"},
		{"a sibling with a common prefix", base(&Output{Path: "/data2"}, in("/data")), ""},
		{"the root", base(&Output{Path: "/"}), "system path"},
		{"/etc", base(&Output{Path: "/etc/x"}), "system path"},
		{"/proc", base(&Output{Path: "/proc"}), "system path"},
		{"a relative path", base(&Output{Path: "out"}), "absolute"},
		{"a limit under 1 MiB", base(&Output{Path: "/out", Limit: 1000}), "between 1 MiB and 1 TiB"},
		{"a limit over 1 TiB", base(&Output{Path: "/out", Limit: 2 << 40}), "between 1 MiB and 1 TiB"},
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
	s := base(&Output{Path: "/out"})
	if s.Output.Limit != DefaultOutputLimit {
		t.Errorf("default limit %d, want %d", s.Output.Limit, DefaultOutputLimit)
	}
}

func TestAttemptEndRecordsItsOutput(t *testing.T) {
	f := newFSM(t)
	f.node("n1", 4000)
	f.submit("J1", "alice", JobSpec{Image: "x", Array: 2, Output: &Output{Path: "/out"}})
	f.placeAll("n1")
	out := &AttemptOutput{Repo: OutputRepo("alice"), Tag: OutputTag("J1", 0), Digest: "sha256:aa", Files: 3, Bytes: 10}
	f.must(CmdAttemptEnded, AttemptEnded{JobID: "J1", Task: 0, N: 1, Reason: ReasonExited, Ended: time.Now(), Output: out})
	// In a node's batched report too.
	out1 := *out
	out1.Tag = OutputTag("J1", 1)
	f.must(CmdReportAttempts, ReportAttempts{Reports: []AttemptReport{{Ended: &AttemptEnded{JobID: "J1", Task: 1, N: 1, Reason: ReasonExited, Ended: time.Now(), Output: &out1}}}})
	for i, want := range []AttemptOutput{*out, out1} {
		at, err := f.st.Attempt("J1", i, 1)
		if err != nil {
			t.Fatal(err)
		}
		if at.Output == nil || *at.Output != want {
			t.Errorf("task %d: output %+v, want %+v", i, at.Output, want)
		}
		// The task names its newest stored output (what its tag points at).
		if tk, err := f.st.Task("J1", i); err != nil || tk.Output == nil || *tk.Output != want {
			t.Errorf("task %d record: output %+v, %v", i, tk, err)
		}
	}
	if got := OutputTag("J1", 1); got != "j1-0001" {
		t.Errorf("tag %q", got)
	}
	// A malformed output is refused and changes nothing.
	f.submit("J2", "alice", JobSpec{Image: "x", Output: &Output{Path: "/out"}})
	f.placeAll("n1")
	if _, err := f.do(CmdAttemptEnded, AttemptEnded{JobID: "J2", Task: 0, N: 1, Reason: ReasonExited, Ended: time.Now(), Output: &AttemptOutput{Repo: "alice/outputs"}}); ErrorCode(err) != EInvalid {
		t.Fatalf("malformed output: %v", err)
	}
	if at, _ := f.st.Attempt("J2", 0, 1); at == nil || Terminal(at.State) {
		t.Fatalf("refused end changed the attempt: %+v", at)
	}
}
