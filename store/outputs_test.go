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

func TestJobInputsAreChecked(t *testing.T) {
	f := newFSM(t)
	f.node("n1", 8000)
	f.submit("OUT", "alice", JobSpec{Image: "x", Array: 3, Output: &Output{Path: "/out"}})
	f.submit("NOOUT", "alice", JobSpec{Image: "x"})
	f.submit("BOBS", "bob", JobSpec{Image: "x", Output: &Output{Path: "/out"}})
	f.submit("BIG", "alice", JobSpec{Image: "x", Array: MaxJobInputTasks + 1, Output: &Output{Path: "/out"}})
	jin := func(job, p string) Input { return Input{Ref: JobInputPrefix + job, Job: job, Path: p} }
	for _, c := range []struct {
		name string
		spec JobSpec
		want string // "" accepted
	}{
		{"after the job", JobSpec{Image: "x", Inputs: []Input{jin("OUT", "/in")}, Deps: []Dep{{Job: "OUT", Kind: DepAfterOK}}}, ""},
		{"n-to-n", JobSpec{Image: "x", Array: 3, Inputs: []Input{jin("OUT", "/in")}, Deps: []Dep{{Job: "OUT", Kind: DepNToN}}}, ""},
		{"n-to-n over more tasks than every task may mount", JobSpec{Image: "x", Array: MaxJobInputTasks + 1, Inputs: []Input{jin("BIG", "/in")}, Deps: []Dep{{Job: "BIG", Kind: DepNToN}}}, ""},
		{"without a dependency while it runs", JobSpec{Image: "x", Inputs: []Input{jin("OUT", "/in")}}, "add --after OUT"},
		{"a job that keeps no outputs", JobSpec{Image: "x", Inputs: []Input{jin("NOOUT", "/in")}, Deps: []Dep{{Job: "NOOUT", Kind: DepAfterOK}}}, "keeps no outputs"},
		{"another user's job", JobSpec{Image: "x", Inputs: []Input{jin("BOBS", "/in")}}, "job not found"},
		{"a job that does not exist", JobSpec{Image: "x", Inputs: []Input{jin("NOPE", "/in")}}, "job not found"},
		{"every task reading too many outputs", JobSpec{Image: "x", Inputs: []Input{jin("BIG", "/in")}, Deps: []Dep{{Job: "BIG", Kind: DepAfterOK}}}, "at most 256"},
		{"a job input that also names a repository", JobSpec{Image: "x", Inputs: []Input{{Ref: "job:OUT", Job: "OUT", Repo: "alice/x", Digest: "sha256:aa", Path: "/in"}}}, "names the job"},
		{"another input inside it", JobSpec{Image: "x", Inputs: []Input{jin("OUT", "/in"), {Ref: "ds:1", Repo: "alice/ds", Digest: "sha256:aa", Path: "/in/task-0000"}},
			Deps: []Dep{{Job: "OUT", Kind: DepAfterOK}}}, "inside its mount path"},
	} {
		t.Run(c.name, func(t *testing.T) {
			spec := c.spec
			spec.Defaults()
			err := spec.Validate() // as the API does before proposing
			if err == nil {
				_, err = f.do(CmdSubmitJob, SubmitJob{ID: "C-" + strings.ReplaceAll(c.name, " ", "-"), Owner: "alice", Spec: spec})
			}
			switch {
			case c.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Errorf("got %v, want a refusal saying %q", err, c.want)
			}
		})
	}
	// Once the job has ended no dependency is needed.
	f = newFSM(t)
	f.node("n1", 8000)
	f.submit("OUT", "alice", JobSpec{Image: "x", Array: 3, Output: &Output{Path: "/out"}})
	f.placeAll("n1")
	for i := range 3 {
		f.must(CmdAttemptEnded, AttemptEnded{JobID: "OUT", Task: i, N: 1, Reason: ReasonExited, Ended: time.Now()})
	}
	s := JobSpec{Image: "x", Inputs: []Input{jin("OUT", "/in")}}
	s.Defaults()
	if _, err := f.do(CmdSubmitJob, SubmitJob{ID: "LATER", Owner: "alice", Spec: s}); err != nil {
		t.Errorf("a job input of an ended job: %v", err)
	}
	if !(&JobSpec{Deps: []Dep{{Job: "OUT", Kind: DepNToN}}}).NToNInput(jin("OUT", "/in")) || (&JobSpec{}).NToNInput(jin("OUT", "/in")) {
		t.Error("NToNInput")
	}
}
