package registry

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"gantry/data"
)

// writeTree writes files (path -> content) under dir.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for p, c := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLocalRepositoryStoresAnArtifactAsItsOwnerWould(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	src := t.TempDir()
	files := map[string]string{"task.txt": "task 1 of 2\n", "nested/deeper/index": "x", "empty": "", "big": string(bytes.Repeat([]byte("b"), 3<<20))}
	writeTree(t, src, files)
	a, err := data.Build(ctx, src, data.BuildOptions{ArtifactType: data.ArtifactTypeOutput, Annotations: map[string]string{"dev.gantry.job": "J1"}})
	if err != nil {
		t.Fatal(err)
	}
	l := e.reg.Local("alice/outputs", "alice")
	var p data.Progress
	d, err := data.Push(ctx, a, l, "j1-0001", 2, &p)
	if err != nil {
		t.Fatal(err)
	}
	if d != a.Digest {
		t.Fatalf("stored digest %s, built %s", d, a.Digest)
	}
	if p.Skipped.Load() != 0 {
		t.Errorf("first push skipped %d blobs", p.Skipped.Load())
	}

	// The owner reads it over the distribution API; another user cannot.
	if r := e.do("alice", "GET", "/v2/alice/outputs/manifests/j1-0001", nil, "Accept", a.MediaType); r.code != http.StatusOK || !bytes.Equal(r.body, a.Manifest) {
		t.Fatalf("owner GET manifest: %d %s", r.code, r.body)
	}
	if r := e.do("bob", "GET", "/v2/alice/outputs/manifests/j1-0001", nil, "Accept", a.MediaType); r.code == http.StatusOK {
		t.Fatalf("another user read alice's output: %d", r.code)
	}

	// Stored again (a runner that restarted collects again): nothing is sent.
	var again data.Progress
	if d2, err := data.Push(ctx, a, l, "j1-0001", 2, &again); err != nil || d2 != d {
		t.Fatalf("second push: %s, %v", d2, err)
	}
	if again.Skipped.Load() != again.Blobs.Load() {
		t.Errorf("second push sent %d of %d blobs again", again.Blobs.Load()-again.Skipped.Load(), again.Blobs.Load())
	}

	// Read back in-process, identical.
	dst := t.TempDir()
	if _, _, err := data.Pull(ctx, l, "j1-0001", dst, data.UnpackOptions{}); err != nil {
		t.Fatal(err)
	}
	for p, c := range files {
		b, err := os.ReadFile(filepath.Join(dst, p))
		if err != nil || string(b) != c {
			t.Errorf("%s read back: %d bytes, %v", p, len(b), err)
		}
	}

	// A bad tag is refused before anything is stored.
	if _, err := l.PutManifest(ctx, "-bad tag", a.MediaType, a.Manifest); err == nil {
		t.Error("a bad tag was accepted")
	}
	// A blob of another repository is not readable through this one.
	if _, err := e.reg.Local("bob/outputs", "bob").Blob(ctx, a.Config.Desc.Digest, 0); err == nil {
		t.Error("bob's repository served a blob linked only into alice's")
	}
}
