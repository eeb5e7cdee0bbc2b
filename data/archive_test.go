package data

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// TestWriteTarIsTheTreeAsOneArchive: a dataset written as a tar and
// extracted by GNU tar is the tree that was pushed, modes, times, links
// and empty directories included.
func TestWriteTarIsTheTreeAsOneArchive(t *testing.T) {
	tarBin, err := exec.LookPath("tar")
	if err != nil {
		t.Fatal("tar is not installed")
	}
	ctx := context.Background()
	src := sampleTree(t)
	a, err := Build(ctx, src, BuildOptions{ArtifactType: ArtifactTypeOutput})
	if err != nil {
		t.Fatal(err)
	}
	r := newFakeRemote()
	if _, err := Push(ctx, a, r, "v1", 3, nil); err != nil {
		t.Fatal(err)
	}
	_, tree, err := Fetch(ctx, r, "v1")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteTar(ctx, &buf, tree, r); err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	cmd := exec.Command(tarBin, "-x", "-p", "-C", dst)
	cmd.Stdin = &buf
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tar -x: %v\n%s", err, out)
	}
	t.Cleanup(func() { os.Chmod(filepath.Join(dst, "ro"), 0o755) })
	want, got := snapshot(t, src), snapshot(t, dst)
	// GNU tar makes symbolic links last, after every directory's time is
	// set (its guard against link attacks), so the directory holding one
	// has the time of the extraction; the archive's entry has the right one.
	if g, ok := got["bin"]; ok {
		g.mtime = want["bin"].mtime
		got["bin"] = g
	}
	sameTree(t, want, got)

	t.Run("a blob that does not match its digest ends the archive with an error", func(t *testing.T) {
		for d, b := range r.blobs {
			if len(b) > LargeFile {
				bad := bytes.Clone(b)
				bad[len(bad)/2] ^= 1
				r.blobs[d] = bad
			}
		}
		err := WriteTar(ctx, &bytes.Buffer{}, tree, r)
		if err == nil || !strings.Contains(err.Error(), "do not match its digest") {
			t.Fatalf("WriteTar of a corrupt blob: %v", err)
		}
	})
}

// TestVerifiedSourceUnpacksTheSameTree: a source whose blobs were checked
// when stored (a node's registry, whose blobs are files) is unpacked
// without hashing again, to the same tree.
func TestVerifiedSourceUnpacksTheSameTree(t *testing.T) {
	ctx := context.Background()
	src := sampleTree(t)
	a, err := Build(ctx, src, BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := newFakeRemote()
	if _, err := Push(ctx, a, r, "v1", 3, nil); err != nil {
		t.Fatal(err)
	}
	files := fileSource{dir: t.TempDir(), r: r}
	dst := filepath.Join(t.TempDir(), "out")
	if _, _, err := Pull(ctx, files, "v1", dst, UnpackOptions{Verified: true}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(filepath.Join(dst, "ro"), 0o755) })
	sameTree(t, snapshot(t, src), snapshot(t, dst))
}

// fileSource serves a fakeRemote's blobs as files, as a node's registry
// store does.
type fileSource struct {
	dir string
	r   *fakeRemote
}

func (s fileSource) Blob(ctx context.Context, d digest.Digest, off int64) (io.ReadCloser, error) {
	p := filepath.Join(s.dir, d.Encoded())
	if _, err := os.Stat(p); err != nil {
		s.r.mu.Lock()
		b := s.r.blobs[d]
		s.r.mu.Unlock()
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return nil, err
		}
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	_, err = f.Seek(off, io.SeekStart)
	return f, err
}

func (s fileSource) PushBlob(ctx context.Context, d digest.Digest, size int64, open func() (io.ReadCloser, error)) (bool, error) {
	return s.r.PushBlob(ctx, d, size, open)
}
func (s fileSource) Manifest(ctx context.Context, ref string) ([]byte, error) {
	return s.r.Manifest(ctx, ref)
}
func (s fileSource) PutManifest(ctx context.Context, ref, mt string, body []byte) (digest.Digest, error) {
	return s.r.PutManifest(ctx, ref, mt, body)
}
