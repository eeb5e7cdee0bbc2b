package api

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gantry/data"
	"gantry/store"
	"gantry/wire"
)

// storedOutput stores a real output (task.txt and sub/b.txt) of task 0 of
// alice's job in the fixture's registry and records it as the output of
// attempt 1; it returns the output.
func (f *fixture) storedOutput() *store.AttemptOutput {
	f.t.Helper()
	if t, err := f.st.Task(f.job, 0); err == nil && t.Output != nil {
		return t.Output
	}
	dir := f.t.TempDir()
	f.must(os.MkdirAll(filepath.Join(dir, "sub"), 0o755))
	f.must(os.WriteFile(filepath.Join(dir, "task.txt"), []byte("task 0\n"), 0o644))
	f.must(os.WriteFile(filepath.Join(dir, "sub", "b.txt"), []byte("b"), 0o600))
	ctx := context.Background()
	a, err := data.Build(ctx, dir, data.BuildOptions{ArtifactType: data.ArtifactTypeOutput})
	f.must(err)
	out := &store.AttemptOutput{Repo: store.OutputRepo("alice"), Tag: store.OutputTag(f.job, 0), Files: a.Files, Bytes: a.Bytes}
	d, err := data.Push(ctx, a, f.reg.Local(out.Repo, "alice"), out.Tag, 2, nil)
	f.must(err)
	out.Digest = d.String()
	f.must(ignore(store.CmdAttemptEnded.Propose(ctx, f.direct, store.AttemptEnded{JobID: f.job, Task: 0, N: 1, ExitCode: 0,
		Reason: store.ReasonExited, Ended: time.Now(), Output: out})))
	return out
}

func TestDownloadOutputAsTar(t *testing.T) {
	f := newFixture(t)
	wantError(t, f.do(owner, "GET", "/api/v1/jobs/"+f.job+"/tasks/0/output", nil), 404, wire.CodeNotFound, "task 0 of job "+f.job+" has no stored output")
	out := f.storedOutput()
	w := f.do(owner, "GET", "/api/v1/jobs/"+f.job+"/tasks/0/output", nil)
	if w.Code != 200 || w.Header().Get("Content-Type") != "application/x-tar" || w.Header().Get("Docker-Content-Digest") != out.Digest {
		t.Fatalf("download: %d %v", w.Code, w.Header())
	}
	got := map[string]string{}
	tr := tar.NewReader(bytes.NewReader(w.Body.Bytes()))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		got[h.Name] = string(b)
	}
	want := map[string]string{"task.txt": "task 0\n", "sub/b.txt": "b", "sub/": ""}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s in the tar: %q (present %v), want %q; tar holds %v", k, g, ok, v, got)
		}
	}
	wantError(t, f.do(other, "GET", "/api/v1/jobs/"+f.job+"/tasks/0/output", nil), 404, wire.CodeNotFound, "")
	wantError(t, f.do(owner, "GET", "/api/v1/jobs/"+f.job+"/tasks/9/output", nil), 404, wire.CodeNotFound, "has no task 9")
}

func TestListOutputs(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	if l := decodeAs[wire.OutputList](t, f.do(owner, "GET", "/api/v1/jobs/"+f.job+"/outputs", nil)); len(l.Outputs) != 0 || l.Next != "" {
		t.Fatalf("outputs before any task ended: %+v", l)
	}
	out := &store.AttemptOutput{Repo: "alice/outputs", Tag: store.OutputTag(f.job, 0), Digest: "sha256:aa11", Files: 3, Bytes: 42}
	f.must(ignore(store.CmdAttemptEnded.Propose(ctx, f.direct, store.AttemptEnded{JobID: f.job, Task: 0, N: 1, ExitCode: 0,
		Reason: store.ReasonExited, Ended: time.Now(), Output: out})))

	w := f.do(owner, "GET", "/api/v1/jobs/"+f.job+"/outputs", nil)
	l := decodeAs[wire.OutputList](t, w)
	if w.Code != 200 || len(l.Outputs) != 1 {
		t.Fatalf("outputs: %d %+v", w.Code, l)
	}
	got := l.Outputs[0]
	want := wire.TaskOutput{Task: 0, Repo: "alice/outputs", Tag: out.Tag, Digest: out.Digest, Files: 3, Bytes: 42, Ref: "example.com/alice/outputs@" + out.Digest}
	if got != want {
		t.Errorf("output %+v, want %+v", got, want)
	}
	// The task shows it too.
	if d := decodeAs[wire.TaskDetail](t, f.do(owner, "GET", "/api/v1/jobs/"+f.job+"/tasks/0", nil)); d.Output == nil || d.Output.Digest != out.Digest ||
		len(d.AttemptList) != 1 || d.AttemptList[0].Output == nil {
		t.Errorf("task 0 after its output was stored: %+v", d)
	}
	// Paging: one task a page; the second page (task 1, no output) is empty and last.
	if l := decodeAs[wire.OutputList](t, f.do(owner, "GET", "/api/v1/jobs/"+f.job+"/outputs?limit=1", nil)); len(l.Outputs) != 1 || l.Next != "1" {
		t.Errorf("first page %+v", l)
	}
	if l := decodeAs[wire.OutputList](t, f.do(owner, "GET", "/api/v1/jobs/"+f.job+"/outputs?cursor=1", nil)); len(l.Outputs) != 0 || l.Next != "" {
		t.Errorf("second page %+v", l)
	}
	wantError(t, f.do(owner, "GET", "/api/v1/jobs/"+f.job+"/outputs?limit=0", nil), 400, wire.CodeInvalid, "limit")
	// Another user learns nothing of them.
	wantError(t, f.do(other, "GET", "/api/v1/jobs/"+f.job+"/outputs", nil), 404, wire.CodeNotFound, "")
}
