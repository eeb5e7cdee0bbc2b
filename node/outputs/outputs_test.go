package outputs

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"gantry/data"
	"gantry/node/auth"
	"gantry/node/registry"
	"gantry/node/registry/registrytest"
	"gantry/node/runner"
	"gantry/store"
)

func newRegistry(t *testing.T) *registry.Registry {
	t.Helper()
	st, err := store.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	prop := store.NewDirect(st)
	if err := registrytest.CreateUser(context.Background(), prop, "alice", "alice-pw", false); err != nil {
		t.Fatal(err)
	}
	reg, err := registry.New(registry.Config{Dir: t.TempDir(), Store: st, Proposer: prop,
		Auth:       auth.New(auth.Config{Store: st, Logger: slog.New(slog.DiscardHandler)}),
		NodeSecret: "node-secret", UploadTTL: time.Hour, GCGrace: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	return reg
}

func TestCollectStoresTheOutputWithItsProvenance(t *testing.T) {
	reg := newRegistry(t)
	ctx := context.Background()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "nested", "deeper"), 0o755); err != nil {
		t.Fatal(err)
	}
	for p, c := range map[string]string{"task.txt": "task 2 of 3\n", "nested/deeper/index": "i", "empty": ""} {
		if err := os.WriteFile(filepath.Join(dir, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ended := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	spec := runner.Spec{Key: runner.Key{JobID: "01JOBID", Task: 2, Attempt: 1}, Owner: "alice", Image: "127.0.0.1:7070/alice/gen@sha256:aa",
		GenAI: true, Output: &runner.Output{Path: "/out", Limit: 1 << 30},
		Inputs: []runner.Input{{Repo: "alice/ds", Digest: "sha256:11", Path: "/data"}, {Repo: "bob/m", Digest: "sha256:22", Path: "/model"}}}
	res := runner.Result{Key: spec.Key, Reason: runner.ReasonExited, ImageDigest: "sha256:aa", EndedAt: ended}
	c := New(reg, nil, nil)
	ref, err := c.Collect(ctx, spec, res, dir)
	if err != nil {
		t.Fatal(err)
	}
	if ref.Repo != "alice/outputs" || ref.Tag != "01jobid-0002" || ref.Files != 3 || ref.Bytes != 13 {
		t.Errorf("stored as %+v", ref)
	}
	body, err := reg.Local(ref.Repo, "alice").Manifest(ctx, ref.Tag)
	if err != nil {
		t.Fatal(err)
	}
	var m v1.Manifest
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	if m.ArtifactType != data.ArtifactTypeOutput {
		t.Errorf("artifactType %q", m.ArtifactType)
	}
	want := map[string]string{
		data.AnnotationJob: "01JOBID", data.AnnotationTask: "2", data.AnnotationAttempt: "1", data.AnnotationExitCode: "0",
		data.AnnotationImage: spec.Image, data.AnnotationImageDigest: "sha256:aa",
		data.AnnotationInputs: "alice/ds@sha256:11,bob/m@sha256:22", data.AnnotationGenAI: "true",
		data.AnnotationCreated: "2026-12-03T10:00:00Z",
	}
	for k, v := range want {
		if m.Annotations[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, m.Annotations[k], v)
		}
	}

	// A runner that restarts collects again: the same artifact.
	again, err := c.Collect(ctx, spec, res, dir)
	if err != nil || again.Digest != ref.Digest {
		t.Fatalf("second collection: %+v, %v (first %s)", again, err, ref.Digest)
	}

	// The owner reads it back identical.
	dst := t.TempDir()
	if _, _, err := data.Pull(ctx, reg.Local(ref.Repo, "alice"), ref.Tag, dst, data.UnpackOptions{}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "task.txt")); err != nil || string(b) != "task 2 of 3\n" {
		t.Errorf("task.txt read back: %q, %v", b, err)
	}
}

func TestAnOutputThatCannotBeStoredSaysWhyInTheTasksTerms(t *testing.T) {
	reg := newRegistry(t)
	dir := t.TempDir()
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "escape")); err != nil {
		t.Fatal(err)
	}
	spec := runner.Spec{Key: runner.Key{JobID: "J", Task: 1, Attempt: 1}, Owner: "alice", Output: &runner.Output{Path: "/out", Limit: 1 << 20}}
	_, err := New(reg, nil, nil).Collect(context.Background(), spec, runner.Result{Key: spec.Key}, dir)
	if err == nil {
		t.Fatal("a link out of the output was stored")
	}
	if strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "escape") {
		t.Errorf("error %q: want the entry named as the task saw it, not the host path", err)
	}
	if _, err := reg.Local("alice/outputs", "alice").Manifest(context.Background(), "j-0001"); err == nil {
		t.Error("a manifest was stored for a refused output")
	}
}
