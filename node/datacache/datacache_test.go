package datacache

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"

	"gantry/data"
)

// fakeBlobs is a registry in a temp dir: artifacts built from trees.
type fakeBlobs struct {
	dir       string
	manifests map[string][]byte
}

func (f *fakeBlobs) Manifest(_, d string) ([]byte, error) {
	b, ok := f.manifests[d]
	if !ok {
		return nil, fmt.Errorf("manifest %s unknown", d)
	}
	return b, nil
}

func (f *fakeBlobs) Blob(_ context.Context, d digest.Digest) (*os.File, error) {
	return os.Open(filepath.Join(f.dir, d.Encoded()))
}

// add builds an artifact of files (name -> size) and returns its digest.
func (f *fakeBlobs) add(t *testing.T, files map[string]int) string {
	t.Helper()
	src := t.TempDir()
	for name, size := range files {
		p := filepath.Join(src, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		b := make([]byte, size)
		for i := range b {
			b[i] = byte(i*7 + len(name))
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	a, err := data.Build(context.Background(), src, data.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range append([]data.Blob{a.Config}, a.Layers...) {
		rc, _ := b.Open()
		out, _ := os.Create(filepath.Join(f.dir, b.Desc.Digest.Encoded()))
		io.Copy(out, rc)
		rc.Close()
		out.Close()
	}
	f.manifests[a.Digest.String()] = a.Manifest
	return a.Digest.String()
}

func newCache(t *testing.T, max int64) (*Cache, *fakeBlobs) {
	t.Helper()
	fb := &fakeBlobs{dir: t.TempDir(), manifests: map[string][]byte{}}
	c, err := Open(Config{Dir: t.TempDir(), MaxBytes: max, Blobs: fb})
	if err != nil {
		t.Fatal(err)
	}
	return c, fb
}

func TestManyTasksShareOneUnpack(t *testing.T) {
	c, fb := newCache(t, 1<<30)
	d := fb.add(t, map[string]int{"a/x.bin": 5 << 20, "b.txt": 100})
	var wg sync.WaitGroup
	dirs := make([]string, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dir, release, err := c.Acquire(context.Background(), "alice/ds", d)
			if err != nil {
				t.Error(err)
				return
			}
			defer release()
			dirs[i] = dir
			if b, err := os.ReadFile(filepath.Join(dir, "b.txt")); err != nil || len(b) != 100 {
				t.Errorf("b.txt: %d bytes, %v", len(b), err)
			}
		}()
	}
	wg.Wait()
	if s := c.Stats(); s.Unpacks != 1 || s.Hits != 19 || s.Held != 0 {
		t.Errorf("stats %+v, want 1 unpack and 19 hits for 20 tasks", s)
	}
	for _, dir := range dirs[1:] {
		if dir != dirs[0] {
			t.Errorf("tasks got %s and %s", dirs[0], dir)
		}
	}
}

func TestLeastRecentlyUsedArtifactsNotInUseAreEvicted(t *testing.T) {
	c, fb := newCache(t, 3<<20)
	a := fb.add(t, map[string]int{"f": 2 << 20})
	b := fb.add(t, map[string]int{"g": 2 << 20})
	ctx := context.Background()
	dirA, releaseA, err := c.Acquire(ctx, "alice/a", a)
	if err != nil {
		t.Fatal(err)
	}
	// A is held: B's arrival puts the cache over its cap, but A stays.
	dirB, releaseB, err := c.Acquire(ctx, "alice/b", b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dirA, "f")); err != nil {
		t.Fatalf("a held artifact was evicted: %v", err)
	}
	releaseA() // A is now the least recently used and not held: evicted
	if _, err := os.Stat(dirA); !os.IsNotExist(err) {
		t.Errorf("A is still in the cache after its release over the cap: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dirB, "g")); err != nil {
		t.Errorf("B, held, was evicted: %v", err)
	}
	releaseB()
	if s := c.Stats(); s.Artifacts != 1 || s.Bytes > 3<<20 || s.Evictions != 1 {
		t.Errorf("stats %+v", s)
	}
	// A reopened cache takes up what is on disk.
	c2, err := Open(Config{Dir: c.cfg.Dir, MaxBytes: 3 << 20, Blobs: fb})
	if err != nil {
		t.Fatal(err)
	}
	if s := c2.Stats(); s.Artifacts != 1 {
		t.Errorf("after reopening: %+v", s)
	}
	if _, release, err := c2.Acquire(ctx, "alice/b", b); err != nil || c2.Stats().Unpacks != 0 {
		t.Errorf("acquire after reopening: %v, %+v", err, c2.Stats())
	} else {
		release()
	}
}

func TestAnArtifactLargerThanTheCacheIsRefused(t *testing.T) {
	c, fb := newCache(t, 1<<20)
	d := fb.add(t, map[string]int{"big": 5 << 20})
	if _, _, err := c.Acquire(context.Background(), "alice/big", d); err == nil {
		t.Fatal("an artifact over the cap was materialised")
	}
	if s := c.Stats(); s.Artifacts != 0 || s.Bytes != 0 {
		t.Errorf("stats %+v", s)
	}
}
