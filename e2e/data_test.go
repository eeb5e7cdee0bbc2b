package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gantry/gantrytest"
)

// treeEntry is what the data tests compare of each entry of a tree.
type treeEntry struct {
	Type   string
	Mode   fs.FileMode
	MTime  time.Time
	Digest string
	Target string
}

// snapshotTree reads every entry under dir: type, mode, mtime (not for
// links), content digest, link target.
func snapshotTree(t *testing.T, dir string) map[string]treeEntry {
	t.Helper()
	out := map[string]treeEntry{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		e := treeEntry{Mode: fi.Mode(), MTime: fi.ModTime()}
		switch {
		case fi.IsDir():
			e.Type = "dir"
		case fi.Mode().IsRegular():
			e.Type = "file"
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			h := sha256.New()
			_, err = io.Copy(h, f)
			f.Close()
			if err != nil {
				return err
			}
			e.Digest = hex.EncodeToString(h.Sum(nil))
		default:
			e.Type, e.MTime, e.Mode = "symlink", time.Time{}, 0
			e.Target, _ = os.Readlink(p)
		}
		out[filepath.ToSlash(rel)] = e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func compareTrees(t *testing.T, want, got map[string]treeEntry) {
	t.Helper()
	bad := 0
	for p, w := range want {
		g, ok := got[p]
		if !ok || g.Type != w.Type || g.Digest != w.Digest || g.Target != w.Target || g.Mode != w.Mode || !g.MTime.Equal(w.MTime) {
			if bad++; bad <= 10 {
				t.Errorf("%s: got %+v (present %v), want %+v", p, g, ok, w)
			}
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			if bad++; bad <= 10 {
				t.Errorf("%s: pulled but not pushed", p)
			}
		}
	}
	if bad > 10 {
		t.Errorf("... %d entries differ in all", bad)
	}
}

// makeDataTree writes the tree issue 12 asks for: nested directories,
// empty files and directories, a 200 MiB file and 5,000 small files, with
// modes other than the default and times to the nanosecond.
func makeDataTree(t *testing.T, dir string, bigSize int) {
	t.Helper()
	cc := rand.NewChaCha8([32]byte{12})
	rng := rand.New(cc)
	base := time.Date(2024, 2, 29, 12, 0, 0, 987654321, time.UTC)
	write := func(rel string, size int, mode fs.FileMode, mt time.Time) {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, min(size, 1<<20))
		for left := size; left > 0; left -= len(buf) {
			buf = buf[:min(left, len(buf))]
			cc.Read(buf)
			if _, err := f.Write(buf); err != nil {
				t.Fatal(err)
			}
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
		os.Chtimes(p, mt, mt)
	}
	write("weights/big.bin", bigSize, 0o644, base)
	for i := range 5000 {
		write(fmt.Sprintf("shards/%02d/%03d/item-%04d.json", i%10, i%37, i), rng.IntN(4096), 0o644, base.Add(time.Duration(i)*time.Millisecond+time.Duration(i)))
	}
	write("empty-file", 0, 0o600, base)
	write("shards/00/empty.txt", 0, 0o644, base)
	write("bin/tool", 1234, 0o755, base)
	write("readonly.txt", 99, 0o444, base)
	if err := os.MkdirAll(filepath.Join(dir, "a/deeply/nested/empty/dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../weights/big.bin", filepath.Join(dir, "bin/big-link")); err != nil {
		t.Fatal(err)
	}
	// Directories' times last: writing in them changed them.
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && p != dir {
			os.Chtimes(p, base.Add(-time.Hour), base.Add(-time.Hour))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(dir, "a/deeply"), 0o750)
}

type dataResult struct {
	Reference   string `json:"reference"`
	Digest      string `json:"digest"`
	Files       int    `json:"files"`
	Written     int    `json:"written"`
	Kept        int    `json:"kept"`
	Blobs       int    `json:"blobs"`
	Skipped     int    `json:"skipped"`
	Transferred int64  `json:"transferred"`
}

// TestDataPushAndPullRestoreATreeExactly: issue 12's tree (nested dirs,
// empty files, a 200 MiB file, 5,000 small files) pushed with `gantry data
// push` and pulled back with `gantry data pull` is identical: contents,
// modes and times. A second push sends no blob, a second pull writes no
// file, another user cannot pull it (data is private), and a pull into a
// directory where some files are missing or changed writes only those.
func TestDataPushAndPullRestoreATreeExactly(t *testing.T) {
	t.Parallel()
	n := gantrytest.Start(t)
	alice, _ := n.CreateUser(t, "alice")
	bob, _ := n.CreateUser(t, "bob")
	src := t.TempDir()
	makeDataTree(t, src, 200<<20)
	want := snapshotTree(t, src)

	run := func(token string, args ...string) dataResult {
		t.Helper()
		out, errOut, code := n.GantryAs(t, token, append([]string{"-o", "json"}, args...)...)
		if code != 0 {
			t.Fatalf("gantry %v: exit %d: %s", args, code, errOut)
		}
		var r dataResult
		gantrytest.JSON(t, []byte(out), &r)
		return r
	}
	start := time.Now()
	pushed := run(alice.Token, "data", "push", src, "alice/corpus:v1")
	t.Logf("push: %d files in %d blobs, %v", pushed.Files, pushed.Blobs, time.Since(start))
	if pushed.Files != 5005 || pushed.Skipped != 0 {
		t.Errorf("push: %+v, want 5005 files and nothing skipped", pushed)
	}

	dst := filepath.Join(t.TempDir(), "out")
	start = time.Now()
	pulled := run(alice.Token, "data", "pull", "corpus:v1", dst)
	t.Logf("pull: %v", time.Since(start))
	compareTrees(t, want, snapshotTree(t, dst))
	if pulled.Written != 5005 {
		t.Errorf("pull: %+v, want 5005 files written", pulled)
	}

	t.Run("a second push of the same tree sends no blob", func(t *testing.T) {
		again := run(alice.Token, "data", "push", src, "alice/corpus:v2")
		if again.Digest != pushed.Digest || again.Skipped != again.Blobs || again.Transferred != 0 {
			t.Errorf("second push: %+v, first %+v", again, pushed)
		}
	})
	t.Run("a pull by digest into the same directory keeps every file", func(t *testing.T) {
		again := run(alice.Token, "data", "pull", "alice/corpus@"+pushed.Digest, dst)
		if again.Kept != 5005 || again.Written != 0 || again.Transferred != 0 {
			t.Errorf("second pull: %+v", again)
		}
	})
	t.Run("a pull after an interruption writes only what is missing or wrong", func(t *testing.T) {
		os.Remove(filepath.Join(dst, "weights/big.bin"))
		os.WriteFile(filepath.Join(dst, "shards/01/001/item-0001.json"), []byte("damaged"), 0o644)
		again := run(alice.Token, "data", "pull", "alice/corpus:v1", dst)
		if again.Written != 2 || again.Kept != 5003 {
			t.Errorf("resumed pull: %+v, want 2 written and 5003 kept", again)
		}
		compareTrees(t, want, snapshotTree(t, dst))
	})
	t.Run("another user cannot pull it: data is private by default", func(t *testing.T) {
		_, errOut, code := n.GantryAs(t, bob.Token, "data", "pull", "alice/corpus:v1", t.TempDir())
		if code == 0 || !strings.Contains(strings.ToLower(errOut), "denied") {
			t.Errorf("bob's pull: exit %d, %s", code, errOut)
		}
	})
	t.Run("nobody pushes into another user's namespace", func(t *testing.T) {
		small := t.TempDir()
		os.WriteFile(filepath.Join(small, "f"), []byte("x"), 0o644)
		_, errOut, code := n.GantryAs(t, bob.Token, "data", "push", small, "alice/corpus:bob")
		if code == 0 || !strings.Contains(strings.ToLower(errOut), "denied") {
			t.Errorf("bob's push: exit %d, %s", code, errOut)
		}
	})
	t.Run("a model is stored in the ModelPack format and pulled back", func(t *testing.T) {
		m := t.TempDir()
		os.WriteFile(filepath.Join(m, "model.safetensors"), []byte(strings.Repeat("w", 5000)), 0o644)
		os.WriteFile(filepath.Join(m, "config.json"), []byte(`{"hidden":8}`), 0o644)
		os.WriteFile(filepath.Join(m, "README.md"), []byte("# tiny"), 0o644)
		run(alice.Token, "data", "push", "--model", m, "tiny-model:v1")
		body, err := alice.Repository("alice/tiny-model").Manifest(t.Context(), "v1")
		if err != nil {
			t.Fatal(err)
		}
		var man struct {
			ArtifactType string `json:"artifactType"`
			Config       struct {
				MediaType string `json:"mediaType"`
			} `json:"config"`
		}
		json.Unmarshal(body, &man)
		if man.ArtifactType != "application/vnd.cncf.model.manifest.v1+json" || man.Config.MediaType != "application/vnd.cncf.model.config.v1+json" {
			t.Errorf("model manifest: %s", body)
		}
		out := t.TempDir()
		run(alice.Token, "data", "pull", "tiny-model:v1", out)
		for _, f := range []string{"model.safetensors", "config.json", "README.md"} {
			a, _ := os.ReadFile(filepath.Join(m, f))
			b, _ := os.ReadFile(filepath.Join(out, f))
			if string(a) != string(b) {
				t.Errorf("%s differs after the round trip", f)
			}
		}
	})
}
