package api

import (
	"testing"
	"time"

	"gantry/store"
	"gantry/wire"
)

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
