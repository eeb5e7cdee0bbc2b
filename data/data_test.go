package data

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// fakeRemote is an in-memory registry repository. failAfter, when set,
// cuts every blob read after that many bytes (an interrupted transfer).
type fakeRemote struct {
	mu        sync.Mutex
	blobs     map[digest.Digest][]byte
	manifests map[string][]byte
	puts      int
	reads     map[digest.Digest]int
	failAfter int64
}

func newFakeRemote() *fakeRemote {
	return &fakeRemote{blobs: map[digest.Digest][]byte{}, manifests: map[string][]byte{}, reads: map[digest.Digest]int{}}
}

var errCut = errors.New("connection cut")

type cutReader struct {
	r    io.Reader
	left int64
}

func (c *cutReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, errCut
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

func (f *fakeRemote) Blob(_ context.Context, d digest.Digest, off int64) (io.ReadCloser, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.blobs[d]
	if !ok {
		return nil, fmt.Errorf("blob %s unknown", d)
	}
	f.reads[d]++
	var r io.Reader = bytes.NewReader(b[off:])
	if f.failAfter > 0 {
		r = &cutReader{r: r, left: f.failAfter}
	}
	return io.NopCloser(r), nil
}

func (f *fakeRemote) PushBlob(_ context.Context, d digest.Digest, size int64, open func() (io.ReadCloser, error)) (bool, error) {
	f.mu.Lock()
	_, ok := f.blobs[d]
	f.mu.Unlock()
	if ok {
		return false, nil
	}
	rc, err := open()
	if err != nil {
		return false, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return true, err
	}
	if digest.FromBytes(b) != d || int64(len(b)) != size {
		return true, fmt.Errorf("blob %s: digest or size mismatch", d)
	}
	f.mu.Lock()
	f.blobs[d] = b
	f.puts++
	f.mu.Unlock()
	return true, nil
}

func (f *fakeRemote) Manifest(_ context.Context, ref string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.manifests[ref]
	if !ok {
		return nil, fmt.Errorf("manifest %s unknown", ref)
	}
	return b, nil
}

func (f *fakeRemote) PutManifest(_ context.Context, ref, _ string, body []byte) (digest.Digest, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := digest.FromBytes(body)
	f.manifests[ref] = body
	f.manifests[d.String()] = body
	return d, nil
}

// putArtifact stores a hand-made artifact: layers as given, an empty
// config unless cfg is set.
func (f *fakeRemote) putArtifact(t testing.TB, ref string, cfgType string, cfg []byte, layers []v1.Descriptor, blobs [][]byte) {
	t.Helper()
	if cfg == nil {
		cfg, cfgType = []byte("{}"), v1.MediaTypeEmptyJSON
	}
	f.blobs[digest.FromBytes(cfg)] = cfg
	for i, b := range blobs {
		d := digest.FromBytes(b)
		f.blobs[d] = b
		layers[i].Digest, layers[i].Size = d, int64(len(b))
	}
	m := v1.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: v1.MediaTypeImageManifest,
		Config: v1.Descriptor{MediaType: cfgType, Digest: digest.FromBytes(cfg), Size: int64(len(cfg))}, Layers: layers}
	body, _ := json.Marshal(m)
	f.PutManifest(context.Background(), ref, v1.MediaTypeImageManifest, body)
}

// fileState is what a tree comparison looks at.
type fileState struct {
	typ    string
	mode   fs.FileMode
	mtime  time.Time
	digest string
	target string
}

func snapshot(t *testing.T, dir string) map[string]fileState {
	t.Helper()
	out := map[string]fileState{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		s := fileState{mode: fi.Mode(), mtime: fi.ModTime()}
		switch {
		case fi.IsDir():
			s.typ = "dir"
		case fi.Mode().IsRegular():
			s.typ = "file"
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			h := sha256.Sum256(b)
			s.digest = hex.EncodeToString(h[:])
		case fi.Mode()&fs.ModeSymlink != 0:
			s.typ, s.mtime, s.mode = "symlink", time.Time{}, 0
			s.target, _ = os.Readlink(p)
		}
		out[filepath.ToSlash(rel)] = s
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameTree(t *testing.T, want, got map[string]fileState) {
	t.Helper()
	for p, w := range want {
		g, ok := got[p]
		switch {
		case !ok:
			t.Errorf("%s: missing", p)
		case g.typ != w.typ || g.digest != w.digest || g.target != w.target:
			t.Errorf("%s: got %+v, want %+v", p, g, w)
		case g.mode != w.mode:
			t.Errorf("%s: mode %v, want %v", p, g.mode, w.mode)
		case !g.mtime.Equal(w.mtime):
			t.Errorf("%s: mtime %v, want %v", p, g.mtime, w.mtime)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: not in the source tree", p)
		}
	}
}

func writeFile(t *testing.T, p string, b []byte, mode fs.FileMode, mtime time.Time) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

// sampleTree makes a tree with nested and empty directories, empty files,
// executable and read-only files, two identical large files, a link and
// a read-only directory; it returns the tree's root.
func sampleTree(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	mt := time.Date(2023, 4, 5, 6, 7, 8, 123456789, time.UTC)
	big := make([]byte, LargeFile+12345)
	for i := range big {
		big[i] = byte(rng.IntN(256))
	}
	writeFile(t, filepath.Join(dir, "big/a.bin"), big, 0o644, mt)
	writeFile(t, filepath.Join(dir, "big/copy-of-a.bin"), big, 0o600, mt.Add(time.Hour))
	for i := range 300 {
		b := make([]byte, rng.IntN(3000))
		for j := range b {
			b[j] = byte(rng.IntN(256))
		}
		writeFile(t, filepath.Join(dir, fmt.Sprintf("small/%02d/f%03d.txt", i%7, i)), b, 0o644, mt.Add(time.Duration(i)*time.Second))
	}
	writeFile(t, filepath.Join(dir, "empty"), nil, 0o644, mt)
	writeFile(t, filepath.Join(dir, "bin/run.sh"), []byte("#!/bin/sh\necho hi\n"), 0o755, mt)
	writeFile(t, filepath.Join(dir, "ro/readme"), []byte("read me"), 0o444, mt)
	if err := os.MkdirAll(filepath.Join(dir, "nested/empty/dir"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../small/00/f000.txt", filepath.Join(dir, "bin/link")); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"nested/empty/dir", "nested/empty", "nested", "bin", "big", "ro"} {
		os.Chtimes(filepath.Join(dir, d), mt, mt)
	}
	os.Chmod(filepath.Join(dir, "ro"), 0o555)
	t.Cleanup(func() { os.Chmod(filepath.Join(dir, "ro"), 0o755) })
	return dir
}

func TestPushThenPullRestoresTheTreeExactly(t *testing.T) {
	ctx := context.Background()
	src := sampleTree(t)
	a, err := Build(ctx, src, BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := newFakeRemote()
	d, err := Push(ctx, a, r, "v1", 3, &Progress{})
	if err != nil {
		t.Fatal(err)
	}
	if d != a.Digest {
		t.Fatalf("pushed %s, built %s", d, a.Digest)
	}
	dst := filepath.Join(t.TempDir(), "out")
	tree, st, err := Pull(ctx, r, "v1", dst, UnpackOptions{Parallel: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(filepath.Join(dst, "ro"), 0o755) })
	sameTree(t, snapshot(t, src), snapshot(t, dst))
	if !tree.Described || st.Written != a.Files || a.Files != 305 {
		t.Errorf("described %v, written %d of %d files (want 305)", tree.Described, st.Written, a.Files)
	}

	t.Run("identical large files are one layer", func(t *testing.T) {
		raw := 0
		for _, l := range a.Layers {
			if l.Desc.MediaType == MediaTypeFile {
				raw++
			}
		}
		if raw != 1 {
			t.Errorf("%d file layers, want 1 for two identical large files", raw)
		}
	})
	t.Run("the same tree builds the same manifest", func(t *testing.T) {
		b, err := Build(ctx, src, BuildOptions{Parallel: 1})
		if err != nil {
			t.Fatal(err)
		}
		if b.Digest != a.Digest {
			t.Errorf("rebuilt %s, first %s", b.Digest, a.Digest)
		}
	})
	t.Run("a second push sends nothing", func(t *testing.T) {
		puts := r.puts
		p := &Progress{}
		if _, err := Push(ctx, a, r, "v2", 3, p); err != nil {
			t.Fatal(err)
		}
		if r.puts != puts || p.Skipped.Load() != p.Blobs.Load() || p.Sent.Load() != 0 {
			t.Errorf("puts %d -> %d, skipped %d of %d, sent %d", puts, r.puts, p.Skipped.Load(), p.Blobs.Load(), p.Sent.Load())
		}
	})
	t.Run("a second pull keeps every file and fetches nothing", func(t *testing.T) {
		st, err := Unpack(ctx, dst, tree, r, UnpackOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if st.Kept != a.Files || st.Written != 0 || st.Fetched != 0 {
			t.Errorf("kept %d written %d fetched %d", st.Kept, st.Written, st.Fetched)
		}
	})
	t.Run("a changed file is fetched again, the rest kept", func(t *testing.T) {
		p := filepath.Join(dst, "small/03/f003.txt")
		os.WriteFile(p, []byte("changed"), 0o644)
		st, err := Unpack(ctx, dst, tree, r, UnpackOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if st.Written != 1 || st.Kept != a.Files-1 {
			t.Errorf("written %d kept %d", st.Written, st.Kept)
		}
		sameTree(t, snapshot(t, src), snapshot(t, dst))
	})
}

func TestAPullInterruptedHalfwayResumes(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	big := bytes.Repeat([]byte("0123456789abcdef"), (3*LargeFile)/16)
	writeFile(t, filepath.Join(src, "big"), big, 0o644, time.Unix(1e9, 0))
	a, err := Build(ctx, src, BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := newFakeRemote()
	if _, err := Push(ctx, a, r, "v1", 2, nil); err != nil {
		t.Fatal(err)
	}
	_, tree, err := Fetch(ctx, r, "v1")
	if err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	r.failAfter = int64(len(big)) / 3
	if _, err := Unpack(ctx, dst, tree, r, UnpackOptions{}); !errors.Is(err, errCut) {
		t.Fatalf("first pull: %v, want the cut", err)
	}
	r.failAfter = int64(len(big)) // more than the rest: this one is not cut
	st, err := Unpack(ctx, dst, tree, r, UnpackOptions{})
	if err != nil {
		t.Fatalf("second pull: %v", err)
	}
	if want := int64(len(big)) - int64(len(big))/3; st.Fetched != want {
		t.Errorf("the second pull fetched %d bytes, want the %d the first did not", st.Fetched, want)
	}
	sameTree(t, snapshot(t, src), snapshot(t, dst))
}

func TestPacksAreBoundedAndStable(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	chunk := bytes.Repeat([]byte{'x'}, 600<<10)
	mt := time.Unix(1e9, 0)
	for i := range 200 { // 120 MiB of small files
		chunk[0] = byte(i)
		writeFile(t, filepath.Join(src, fmt.Sprintf("f%03d", i)), chunk, 0o644, mt)
	}
	a, err := Build(ctx, src, BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range a.Layers {
		if l.Desc.Size > PackMax+(1<<20) {
			t.Errorf("a pack of %d bytes, over PackMax", l.Desc.Size)
		}
	}
	if len(a.Layers) < 4 {
		t.Errorf("%d packs for 120 MiB, want several (parallel transfer)", len(a.Layers))
	}
	// A file added in the middle changes at most two packs.
	chunk[0] = 'n'
	writeFile(t, filepath.Join(src, "f100-new"), chunk, 0o644, mt)
	b, err := Build(ctx, src, BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	old := map[digest.Digest]bool{}
	for _, l := range a.Layers {
		old[l.Desc.Digest] = true
	}
	changed := 0
	for _, l := range b.Layers {
		if !old[l.Desc.Digest] {
			changed++
		}
	}
	if changed > 2 {
		t.Errorf("adding one file changed %d of %d packs", changed, len(b.Layers))
	}
}

func TestModelsUseModelPackMediaTypes(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	mt := time.Unix(1.5e9, 0)
	writeFile(t, filepath.Join(src, "model.safetensors"), bytes.Repeat([]byte{1}, 1000), 0o644, mt)
	writeFile(t, filepath.Join(src, "config.json"), []byte(`{"a":1}`), 0o644, mt)
	writeFile(t, filepath.Join(src, "tokenizer.json"), []byte(`{}`), 0o644, mt)
	writeFile(t, filepath.Join(src, "README.md"), []byte("# m"), 0o644, mt)
	writeFile(t, filepath.Join(src, "infer.py"), []byte("print(1)"), 0o755, mt)
	a, err := Build(ctx, src, BuildOptions{Model: true, Name: "tiny"})
	if err != nil {
		t.Fatal(err)
	}
	var m v1.Manifest
	json.Unmarshal(a.Manifest, &m)
	if m.ArtifactType != ArtifactTypeModel || m.Config.MediaType != MediaTypeModelConfig {
		t.Fatalf("artifactType %q config %q", m.ArtifactType, m.Config.MediaType)
	}
	types := map[string]bool{}
	for _, l := range m.Layers {
		types[l.MediaType] = true
		if l.MediaType == ModelMediaType(KindWeight, true) && l.Annotations[AnnotationModelFilepath] != "model.safetensors" {
			t.Errorf("weight layer annotations %v", l.Annotations)
		}
	}
	for _, want := range []string{"application/vnd.cncf.model.weight.v1.raw", "application/vnd.cncf.model.weight.config.v1.tar",
		"application/vnd.cncf.model.doc.v1.tar", "application/vnd.cncf.model.code.v1.tar"} {
		if !types[want] {
			t.Errorf("no %s layer among %v", want, types)
		}
	}
	var cfg ModelConfig
	rc, _ := a.Config.Open()
	json.NewDecoder(rc).Decode(&cfg)
	if cfg.ModelFS.Type != "layers" || len(cfg.ModelFS.DiffIDs) != len(m.Layers) || cfg.Descriptor.Name != "tiny" {
		t.Errorf("config %+v", cfg)
	}
	r := newFakeRemote()
	if _, err := Push(ctx, a, r, "v1", 2, nil); err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	if _, _, err := Pull(ctx, r, "v1", dst, UnpackOptions{}); err != nil {
		t.Fatal(err)
	}
	// Models keep files' bytes, modes and times (directories are not
	// described in ModelPack).
	want, got := snapshot(t, src), snapshot(t, dst)
	for p, w := range want {
		if g := got[p]; g.digest != w.digest || g.mode != w.mode || !g.mtime.Equal(w.mtime) {
			t.Errorf("%s: got %+v want %+v", p, g, w)
		}
	}
}

func tarOfTB(t testing.TB, entries ...tar.Header) []byte { return tarOf(t, false, entries...) }

func tarOf(t testing.TB, gz bool, entries ...tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.Writer = &buf
	var zw *gzip.Writer
	if gz {
		zw = gzip.NewWriter(&buf)
		w = zw
	}
	tw := tar.NewWriter(w)
	for _, h := range entries {
		body := ""
		if h.Typeflag == tar.TypeReg {
			body = "content of " + h.Name
			h.Size = int64(len(body))
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, body)
	}
	tw.Close()
	if zw != nil {
		zw.Close()
	}
	return buf.Bytes()
}

func TestOrasStyleArtifactsAreReadByTheirAnnotations(t *testing.T) {
	ctx := context.Background()
	r := newFakeRemote()
	dirTar := tarOf(t, true, tar.Header{Typeflag: tar.TypeDir, Name: "docs/"}, tar.Header{Typeflag: tar.TypeReg, Name: "docs/a.txt"})
	r.putArtifact(t, "v1", "", nil, []v1.Descriptor{
		{MediaType: "application/vnd.oci.image.layer.v1.tar", Annotations: map[string]string{AnnotationTitle: "hello.txt"}},
		{MediaType: "application/vnd.oci.image.layer.v1.tar+gzip", Annotations: map[string]string{AnnotationTitle: "docs", AnnotationUnpack: "true"}},
		{MediaType: "application/vnd.example.signature"},
	}, [][]byte{[]byte("hello\n"), dirTar, []byte("sig")})
	dst := t.TempDir()
	if _, _, err := Pull(ctx, r, "v1", dst, UnpackOptions{}); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{"hello.txt": "hello\n", "docs/a.txt": "content of docs/a.txt"} {
		if b, err := os.ReadFile(filepath.Join(dst, p)); err != nil || string(b) != want {
			t.Errorf("%s: %q, %v", p, b, err)
		}
	}
	if got := len(snapshot(t, dst)); got != 3 {
		t.Errorf("%d entries written, want 3 (the signature is not part of the tree)", got)
	}
}

// TestCraftedArchivesCannotWriteOutside: every way out of the target that
// a tar or a manifest can try is refused, and nothing appears outside.
func TestCraftedArchivesCannotWriteOutside(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name    string
		entries []tar.Header
		title   string // a raw layer with this file name instead of a tar
	}{
		{name: "dot-dot in a name", entries: []tar.Header{{Typeflag: tar.TypeReg, Name: "../escaped"}}},
		{name: "dot-dot deeper in a name", entries: []tar.Header{{Typeflag: tar.TypeReg, Name: "a/../../escaped"}}},
		{name: "an absolute name", entries: []tar.Header{{Typeflag: tar.TypeReg, Name: "/tmp/escaped"}}},
		{name: "a link to an absolute path", entries: []tar.Header{{Typeflag: tar.TypeSymlink, Name: "l", Linkname: "/"}}},
		{name: "a link out, then a write through it", entries: []tar.Header{
			{Typeflag: tar.TypeSymlink, Name: "l", Linkname: "../.."}, {Typeflag: tar.TypeReg, Name: "l/escaped"}}},
		{name: "a nested link climbing out", entries: []tar.Header{{Typeflag: tar.TypeSymlink, Name: "a/b/l", Linkname: "../../../escaped"}}},
		{name: "a hard link to a file outside", entries: []tar.Header{{Typeflag: tar.TypeLink, Name: "h", Linkname: "../outside-file"}}},
		{name: "a hard link to an absolute path", entries: []tar.Header{{Typeflag: tar.TypeLink, Name: "h", Linkname: "/etc/passwd"}}},
		{name: "a character device", entries: []tar.Header{{Typeflag: tar.TypeChar, Name: "null", Devmajor: 1, Devminor: 3}}},
		{name: "a block device", entries: []tar.Header{{Typeflag: tar.TypeBlock, Name: "sda", Devmajor: 8}}},
		{name: "a fifo", entries: []tar.Header{{Typeflag: tar.TypeFifo, Name: "pipe"}}},
		{name: "a raw file titled with dot-dot", title: "../escaped"},
		{name: "a raw file with an absolute title", title: "/tmp/escaped"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			parent := t.TempDir()
			os.WriteFile(filepath.Join(parent, "outside-file"), []byte("precious"), 0o644)
			dst := filepath.Join(parent, "a", "target")
			os.MkdirAll(dst, 0o755)
			before := snapshot(t, parent)
			r := newFakeRemote()
			if c.title != "" {
				r.putArtifact(t, "v1", "", nil, []v1.Descriptor{{MediaType: "application/octet-stream",
					Annotations: map[string]string{AnnotationTitle: c.title}}}, [][]byte{[]byte("evil")})
			} else {
				r.putArtifact(t, "v1", "", nil, []v1.Descriptor{{MediaType: v1.MediaTypeImageLayer}}, [][]byte{tarOf(t, false, c.entries...)})
			}
			_, _, err := Pull(ctx, r, "v1", dst, UnpackOptions{})
			var ue *UnsafeError
			if !errors.As(err, &ue) {
				t.Fatalf("pull: %v, want an UnsafeError", err)
			}
			after := snapshot(t, parent)
			for p, s := range after {
				if strings.HasPrefix(p, "a/target/") {
					continue
				}
				if b, ok := before[p]; !ok || b.digest != s.digest {
					t.Errorf("%s appeared or changed outside the target", p)
				}
			}
			if _, err := os.Lstat("/tmp/escaped"); err == nil {
				t.Errorf("/tmp/escaped was written")
			}
		})
	}

	t.Run("a link already in the target does not lead a write out", func(t *testing.T) {
		parent := t.TempDir()
		dst := filepath.Join(parent, "target")
		os.MkdirAll(dst, 0o755)
		os.Symlink(parent, filepath.Join(dst, "out"))
		r := newFakeRemote()
		r.putArtifact(t, "v1", "", nil, []v1.Descriptor{{MediaType: v1.MediaTypeImageLayer}},
			[][]byte{tarOf(t, false, tar.Header{Typeflag: tar.TypeReg, Name: "out/escaped"})})
		if _, _, err := Pull(ctx, r, "v1", dst, UnpackOptions{}); err == nil {
			t.Fatal("the pull wrote through a link out of the target")
		}
		if _, err := os.Lstat(filepath.Join(parent, "escaped")); err == nil {
			t.Error("a file was written outside the target")
		}
	})

	t.Run("a dataset config listing an unsafe path is refused before any fetch", func(t *testing.T) {
		for _, e := range []Entry{
			{Path: "../x", Type: TypeFile, Digest: digest.FromString(""), Layer: 0},
			{Path: "l", Type: TypeSymlink, Target: "../../etc"},
			{Path: "dev", Type: "chardev"},
		} {
			cfg, _ := json.Marshal(Config{Version: ConfigVersion, Entries: []Entry{e}})
			r := newFakeRemote()
			r.putArtifact(t, "v1", MediaTypeConfig, cfg, []v1.Descriptor{{MediaType: MediaTypePack}}, [][]byte{tarOf(t, false)})
			_, _, err := Pull(ctx, r, "v1", t.TempDir(), UnpackOptions{})
			var ue *UnsafeError
			if !errors.As(err, &ue) {
				t.Errorf("%+v: %v, want an UnsafeError", e, err)
			}
			if n := r.reads[digest.FromBytes(tarOf(t, false))]; n != 0 {
				t.Errorf("%+v: the layer was fetched %d times", e, n)
			}
		}
	})

	t.Run("a pack holding a file its config does not list is refused", func(t *testing.T) {
		body := tarOf(t, false, tar.Header{Typeflag: tar.TypeReg, Name: "extra"})
		cfg, _ := json.Marshal(Config{Version: ConfigVersion, Entries: []Entry{{Path: "listed", Type: TypeFile,
			Digest: digest.FromString("x"), Size: 1, Layer: 0}}})
		r := newFakeRemote()
		r.putArtifact(t, "v1", MediaTypeConfig, cfg, []v1.Descriptor{{MediaType: MediaTypePack}}, [][]byte{body})
		dst := t.TempDir()
		_, _, err := Pull(ctx, r, "v1", dst, UnpackOptions{})
		var ue *UnsafeError
		if !errors.As(err, &ue) {
			t.Fatalf("pull: %v, want an UnsafeError", err)
		}
	})

	t.Run("a tar expanding past the limit is refused", func(t *testing.T) {
		r := newFakeRemote()
		r.putArtifact(t, "v1", "", nil, []v1.Descriptor{{MediaType: v1.MediaTypeImageLayer}},
			[][]byte{tarOf(t, false, tar.Header{Typeflag: tar.TypeReg, Name: "a"}, tar.Header{Typeflag: tar.TypeReg, Name: "b"})})
		_, _, err := Pull(ctx, r, "v1", t.TempDir(), UnpackOptions{MaxBytes: 20})
		if !errors.Is(err, ErrTooLarge) {
			t.Fatalf("pull: %v, want ErrTooLarge", err)
		}
	})
}

func TestPushRefusesWhatItCannotStoreSafely(t *testing.T) {
	ctx := context.Background()
	t.Run("a link pointing outside", func(t *testing.T) {
		src := t.TempDir()
		os.Symlink("/etc/passwd", filepath.Join(src, "pw"))
		var ue *UnsafeError
		if _, err := Build(ctx, src, BuildOptions{}); !errors.As(err, &ue) {
			t.Errorf("build: %v, want an UnsafeError", err)
		}
	})
	t.Run("a named pipe", func(t *testing.T) {
		src := t.TempDir()
		if err := mkfifo(filepath.Join(src, "p")); err != nil {
			t.Fatal(err)
		}
		if _, err := Build(ctx, src, BuildOptions{}); err == nil || !strings.Contains(err.Error(), "named pipe") {
			t.Errorf("build: %v, want a refusal naming the pipe", err)
		}
	})
}

func TestCheckPath(t *testing.T) {
	for p, ok := range map[string]bool{
		"a": true, "a/b.txt": true, "..a": true, "a..b/c": true, ".hidden": true,
		"": false, ".": false, "..": false, "../a": false, "a/..": false, "a/../b": false, "/a": false,
		"a//b": false, "a/./b": false, "a/": false, "a\x00b": false, "a\\..\\b": false,
	} {
		if err := CheckPath(p); (err == nil) != ok {
			t.Errorf("CheckPath(%q) = %v, want ok=%v", p, err, ok)
		}
	}
	for c, ok := range map[[2]string]bool{
		{"a", "b"}: true, {"a/b", "../c"}: true, {"a/b", "."}: true,
		{"a", "../b"}: false, {"a/b", "../../c"}: false, {"a", "/etc"}: false, {"a", ""}: false,
	} {
		if err := CheckLink(c[0], c[1]); (err == nil) != ok {
			t.Errorf("CheckLink(%q, %q) = %v, want ok=%v", c[0], c[1], err, ok)
		}
	}
}
