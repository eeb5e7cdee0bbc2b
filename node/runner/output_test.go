package runner

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeOutputs plays the node's output store: it reads what a task left
// (task.txt) and records each collection; fail makes the next fail.
type fakeOutputs struct {
	mu    sync.Mutex
	calls map[Key][]string // the contents of task.txt at each collection
	fail  error
}

var _ Outputs = (*fakeOutputs)(nil)

func (f *fakeOutputs) Collect(ctx context.Context, spec Spec, res Result, dir string) (*OutputRef, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.calls == nil {
		f.calls = map[Key][]string{}
	}
	b, _ := os.ReadFile(filepath.Join(dir, "task.txt"))
	f.calls[spec.Key] = append(f.calls[spec.Key], string(b))
	if f.fail != nil {
		return nil, f.fail
	}
	size, err := outputSize(dir)
	if err != nil {
		return nil, err
	}
	return &OutputRef{Repo: spec.Owner + "/outputs", Tag: "t", Digest: "sha256:ab", Files: 3, Bytes: size}, nil
}

func (f *fakeOutputs) collected(k Key) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[k]
}

func TestOutputsAreCollectedWhenKept(t *testing.T) {
	t.Parallel()
	n := newTestNode(t)
	out := func(keepFailed bool) *Output { return &Output{Path: "/out", Limit: 1 << 20, KeepFailed: keepFailed} }
	for _, c := range []struct {
		name       string
		cmd        []string
		output     *Output
		fail       error
		wantReason string
		wantCode   int // -1: any (the poll may stop a task that was about to end)
		collected  bool
		wantMsg    string
	}{
		{name: "a succeeded task's output is stored", cmd: []string{"task-output", "/out"}, output: out(false), wantReason: ReasonExited, collected: true},
		{name: "a failed task's output is dropped", cmd: []string{"fail-until", "9", "3"}, output: out(false), wantReason: ReasonExited, wantCode: 3},
		{name: "a failed task's output is kept when asked", cmd: []string{"fail-until", "9", "3"}, output: out(true), wantReason: ReasonExited, wantCode: 3, collected: true},
		{name: "an output over its limit keeps nothing", cmd: []string{"write", "/out/big", "3000000"}, output: out(true), wantReason: ReasonOutputLimit, wantCode: -1,
			wantMsg: "wrote more than its output limit of 1.0 MiB to /out (2.9 MiB when it ended); nothing was kept"}, // exited 0, or killed by the poll first under a slow (race) build
		{name: "a task still writing past its limit is stopped", cmd: []string{"write", "/out/big", "3000000", "600"}, output: out(false), wantReason: ReasonOutputLimit, wantCode: 137,
			wantMsg: "output limit of 1.0 MiB"},
		{name: "an output that cannot be stored fails the attempt", cmd: []string{"task-output", "/out"}, output: out(false), fail: errors.New("registry full"),
			wantReason: ReasonOutputFailed, collected: true, wantMsg: "its output could not be stored: registry full"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := n.spec("out", c.cmd...)
			s.Output = c.output
			n.outputs.mu.Lock()
			n.outputs.fail = c.fail
			n.outputs.mu.Unlock()
			start := time.Now()
			n.rep.place(s)
			res := n.waitResult(s.Key, 60*time.Second)
			if res.Reason != c.wantReason || (c.wantCode != -1 && res.ExitCode != c.wantCode) {
				t.Errorf("result %s/%d (%s), want %s/%d", res.Reason, res.ExitCode, res.Message, c.wantReason, c.wantCode)
			}
			if !strings.Contains(res.Message, c.wantMsg) {
				t.Errorf("message %q, want it to say %q", res.Message, c.wantMsg)
			}
			got := n.outputs.collected(s.Key)
			switch {
			case c.collected && len(got) != 1:
				t.Errorf("collected %d times, want once", len(got))
			case !c.collected && len(got) != 0:
				t.Errorf("collected %q, want nothing", got)
			}
			if c.collected && c.cmd[0] == "task-output" && got[0] != "task 0 of 1, job "+s.JobID+", attempt 1\n" {
				t.Errorf("task.txt at collection: %q", got[0])
			}
			if c.collected && c.fail == nil && (res.Output == nil || res.Output.Repo != "alice/outputs") {
				t.Errorf("result output %+v, want the stored artifact", res.Output)
			}
			if (!c.collected || c.fail != nil) && res.Output != nil {
				t.Errorf("result output %+v, want none", res.Output)
			}
			if c.wantCode == 137 && time.Since(start) > 30*time.Second {
				t.Errorf("stopped after %s: the limit should stop it within seconds", time.Since(start))
			}
			waitGone(t, n.r, s.Key, 10*time.Second)
			if _, err := os.Stat(n.r.OutputDir(s.Key)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("output dir still there after the result was recorded: %v", err)
			}
		})
	}
}

func TestOutputDirIsWritableByAnyUserOnly(t *testing.T) {
	t.Parallel()
	n := newTestNode(t)
	dir, err := n.r.prepareOutput(Key{JobID: "J", Task: 1, Attempt: 2})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o777 {
		t.Errorf("output dir mode %v, %v; want 0777 (the container's user writes it)", st.Mode(), err)
	}
	if st, err := os.Stat(filepath.Dir(dir)); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("job dir mode %v, %v; want 0700 (no one else on the host enters it)", st.Mode(), err)
	}
	n.r.removeOutput(Key{JobID: "J", Task: 1, Attempt: 2})
	if _, err := os.Stat(filepath.Dir(dir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the job's output dir stays after its last attempt's: %v", err)
	}
}

func TestOutputDirsOfAttemptsNoLongerHereAreSweptOnce(t *testing.T) {
	t.Parallel()
	requireDocker(t)
	// A runner of its own, with no sync loop: the sweep is what the first
	// Sync after a start does with the attempts placed here.
	r, err := New(Config{Node: "sweep", Cluster: testCluster, LogDir: t.TempDir(), Reporter: newFakeReporter(), OutputDir: t.TempDir(),
		Outputs: &fakeOutputs{}, Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	n := &testNode{r: r}
	gone, kept := Key{JobID: "OLD", Task: 0, Attempt: 1}, Key{JobID: "NOW", Task: 3, Attempt: 2}
	for _, k := range []Key{gone, kept} {
		dir, err := n.r.prepareOutput(k)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	n.r.sweepOutputs(map[Key]bool{kept: true})
	if _, err := os.Stat(filepath.Dir(n.r.OutputDir(gone))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the output dir of an attempt not placed here stays: %v", err)
	}
	if _, err := os.Stat(filepath.Join(n.r.OutputDir(kept), "f")); err != nil {
		t.Errorf("the output of a wanted attempt was removed: %v", err)
	}
}
