package data

import (
	"archive/tar"
	"context"
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// FuzzUnpackTar: whatever a tar layer holds, unpacking it writes nothing
// beside the target directory.
func FuzzUnpackTar(f *testing.F) {
	f.Add(tarOfF(f, tar.Header{Typeflag: tar.TypeReg, Name: "a/b"}, tar.Header{Typeflag: tar.TypeSymlink, Name: "l", Linkname: "a"}))
	f.Add(tarOfF(f, tar.Header{Typeflag: tar.TypeSymlink, Name: "l", Linkname: ".."}, tar.Header{Typeflag: tar.TypeReg, Name: "l/x"}))
	f.Add(tarOfF(f, tar.Header{Typeflag: tar.TypeReg, Name: "x"}, tar.Header{Typeflag: tar.TypeLink, Name: "h", Linkname: "x"}))
	f.Fuzz(func(t *testing.T, layer []byte) {
		parent := t.TempDir()
		dst := filepath.Join(parent, "t")
		r := newFakeRemote()
		r.putArtifact(t, "v1", "", nil, []v1.Descriptor{{MediaType: v1.MediaTypeImageLayer}}, [][]byte{layer})
		Pull(context.Background(), r, "v1", dst, UnpackOptions{MaxBytes: 1 << 20})
		ents, err := os.ReadDir(parent)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if e.Name() != "t" {
				t.Fatalf("%s written beside the target", e.Name())
			}
		}
		filepath.WalkDir(dst, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				os.Chmod(p, 0o755) // so TempDir's cleanup can remove it
			}
			return nil
		})
	})
}

// FuzzParseConfig: a dataset config never yields an unsafe tree.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(`{"version":1,"entries":[{"path":"a","type":"dir"},{"path":"a/b","type":"file","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}]}`), 1)
	f.Add([]byte(`{"version":1,"entries":[{"path":"l","type":"symlink","target":"../x"}]}`), 0)
	f.Fuzz(func(t *testing.T, b []byte, layers int) {
		c, err := ParseConfig(b, layers%64)
		if err != nil {
			return
		}
		for _, e := range c.Entries {
			if CheckPath(e.Path) != nil {
				t.Fatalf("unsafe path %q accepted", e.Path)
			}
			if e.Type == TypeSymlink && CheckLink(e.Path, e.Target) != nil {
				t.Fatalf("unsafe link %q -> %q accepted", e.Path, e.Target)
			}
		}
	})
}

func tarOfF(f *testing.F, hs ...tar.Header) []byte { return tarOfTB(f, hs...) }
