package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gantry/gantrytest"
)

func fileSHA256(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// TestJobInputs: a dataset pushed with gantry data push is mounted
// read-only at /data in each task of a 20-task array, each checks a
// file's digest, and the node unpacked it once for the 20; submission
// refuses an input that does not exist, one of another user, one over a
// system path, and a published dataset until its licence is accepted;
// a second dataset evicts the first from a small cache once no task uses
// it; a task cannot write to its input.
func TestJobInputs(t *testing.T) {
	t.Parallel()
	gantrytest.RequireDocker(t)
	n := gantrytest.Start(t, gantrytest.Options{Env: []string{"GANTRY_DATA_CACHE_SIZE=24Mi"}})
	alice, _ := n.CreateUser(t, "alice")
	bob, _ := n.CreateUser(t, "bob")
	src := t.TempDir()
	makeDataTree(t, src, 6<<20)
	want := fileSHA256(t, filepath.Join(src, "weights/big.bin"))
	small := fileSHA256(t, filepath.Join(src, "shards/03/012/item-0123.json"))
	gantry := func(token string, args ...string) (string, string, int) { return n.GantryAs(t, token, args...) }
	must := func(token string, args ...string) string { t.Helper(); return n.MustGantry(t, token, args...) }
	must(alice.Token, "data", "push", src, "corpus:v1")

	t.Run("20 tasks read the dataset at /data and the node unpacks it once", func(t *testing.T) {
		must(alice.Token, "run", "--array", "20", "--cpu", "200m", "--input", "corpus:v1=/data", "gantry/toolbox", "--",
			"sha256", "/data/weights/big.bin", want)
		if u := n.Metric(t, "gantry_data_cache_unpacks_total"); u != 1 {
			t.Errorf("%v unpacks for 20 tasks, want 1", u)
		}
		if h := n.Metric(t, "gantry_data_cache_hits_total"); h != 19 {
			t.Errorf("%v cache hits for 20 tasks, want 19", h)
		}
		// A small file of a pack too, and the job shows the pinned digest.
		must(alice.Token, "run", "--input", "alice/corpus:v1=/in", "gantry/toolbox", "--", "sha256", "/in/shards/03/012/item-0123.json", small)
	})
	t.Run("a task cannot write to its input", func(t *testing.T) {
		out, errOut, code := gantry(alice.Token, "run", "--input", "corpus:v1=/data", "gantry/toolbox", "--", "write", "/data/x", "10")
		if code == 0 || !strings.Contains(out+errOut, "read-only file system") {
			t.Errorf("a write to the input: exit %d\n%s%s", code, out, errOut)
		}
	})
	t.Run("submission refuses a missing input, naming it", func(t *testing.T) {
		_, errOut, code := gantry(alice.Token, "run", "--input", "nosuch:v1=/data", "gantry/toolbox", "--", "true")
		if code == 0 || !strings.Contains(errOut, "input nosuch:v1 not found") {
			t.Errorf("exit %d: %s", code, errOut)
		}
	})
	t.Run("submission refuses another user's private input as missing", func(t *testing.T) {
		_, errOut, code := gantry(bob.Token, "run", "--input", "alice/corpus:v1=/data", "gantry/toolbox", "--", "true")
		if code == 0 || !strings.Contains(errOut, "input alice/corpus:v1 not found") {
			t.Errorf("exit %d: %s", code, errOut)
		}
	})
	t.Run("submission refuses mount paths over system paths", func(t *testing.T) {
		for _, p := range []string{"/", "/proc", "/etc", "/sys", "/dev", "/usr/lib", "data"} {
			_, errOut, code := gantry(alice.Token, "run", "--input", "corpus:v1="+p, "gantry/toolbox", "--", "true")
			if code == 0 || !strings.Contains(errOut, "input corpus:v1") {
				t.Errorf("mount at %s: exit %d: %s", p, code, errOut)
			}
		}
	})
	t.Run("a community dataset is refused until its licence is accepted, then mounted", func(t *testing.T) {
		readme := filepath.Join(t.TempDir(), "README.md")
		os.WriteFile(readme, []byte("# Corpus\n\nA test corpus.\n"), 0o644)
		must(alice.Token, "image", "publish", "alice/corpus", "--license", "CC-BY-4.0", "--description", "a corpus", "--readme", readme)
		must(n.AdminToken, "review", "approve", "alice/corpus")
		// The catalog says it is a dataset, and lists it among the datasets.
		if out := must(bob.Token, "catalog", "ls", "--kind", "dataset"); !regexp.MustCompile(`alice/corpus\s+dataset\s+CC-BY-4.0`).MatchString(out) {
			t.Errorf("catalog ls --kind dataset:\n%s", out)
		}
		if out := must(bob.Token, "catalog", "ls", "--kind", "image"); strings.Contains(out, "alice/corpus") {
			t.Errorf("catalog ls --kind image lists the dataset:\n%s", out)
		}
		_, errOut, code := gantry(bob.Token, "run", "--input", "alice/corpus:v1=/data", "gantry/toolbox", "--", "true")
		if code == 0 || !strings.Contains(errOut, "input alice/corpus:v1") || !strings.Contains(errOut, "gantry image accept alice/corpus") {
			t.Fatalf("bob's job before accepting: exit %d: %s", code, errOut)
		}
		must(bob.Token, "image", "accept", "alice/corpus")
		must(bob.Token, "run", "--input", "alice/corpus:v1=/data", "gantry/toolbox", "--", "sha256", "/data/weights/big.bin", want)
	})
	t.Run("a second dataset evicts the first once no task uses it", func(t *testing.T) {
		other := t.TempDir()
		os.WriteFile(filepath.Join(other, "big"), make([]byte, 16<<20), 0o644)
		must(alice.Token, "data", "push", other, "zeros:v1")
		before := n.Metric(t, "gantry_data_cache_evictions_total")
		must(alice.Token, "run", "--input", "zeros:v1=/z", "gantry/toolbox", "--", "sha256", "/z/big", fileSHA256(t, filepath.Join(other, "big")))
		if e := n.Metric(t, "gantry_data_cache_evictions_total"); e != before+1 {
			t.Errorf("evictions %v -> %v, want one (the cap is 24 MiB, the two datasets 32)", before, e)
		}
		if b := n.Metric(t, "gantry_data_cache_bytes"); b > 24<<20 {
			t.Errorf("the cache holds %v bytes, over its 24 MiB cap", b)
		}
	})
}

// TestOrasPushedArtifactIsAJobInput: files and a directory pushed with a
// real `oras push` are mounted by a job and read back with their digests.
func TestOrasPushedArtifactIsAJobInput(t *testing.T) {
	t.Parallel()
	gantrytest.RequireDocker(t)
	oras := gantrytest.Oras(t)
	n := gantrytest.Start(t)
	alice, _ := n.CreateUser(t, "alice")
	work := t.TempDir()
	os.WriteFile(filepath.Join(work, "hello.txt"), []byte("hello from oras\n"), 0o644)
	os.MkdirAll(filepath.Join(work, "docs", "sub"), 0o755)
	os.WriteFile(filepath.Join(work, "docs", "sub", "a.txt"), []byte("a nested file\n"), 0o644)
	cmd := exec.Command(oras, "push", "--plain-http", "-u", "token", "-p", alice.Token,
		n.HTTPAddr+"/alice/from-oras:v1", "hello.txt:text/plain", "docs")
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("oras push: %v\n%s", err, out)
	}
	out, errOut, code := n.GantryAs(t, alice.Token, "run", "--input", "from-oras:v1=/in", "gantry/toolbox", "--",
		"sha256", "/in/hello.txt", fileSHA256(t, filepath.Join(work, "hello.txt")))
	if code != 0 {
		t.Fatalf("job reading the oras file: exit %d\n%s%s", code, out, errOut)
	}
	out, errOut, code = n.GantryAs(t, alice.Token, "run", "--input", "from-oras:v1=/in", "gantry/toolbox", "--",
		"sha256", "/in/docs/sub/a.txt", fileSHA256(t, filepath.Join(work, "docs", "sub", "a.txt")))
	if code != 0 {
		t.Fatalf("job reading the oras directory: exit %d\n%s%s", code, out, errOut)
	}
	// gantry data pull reads it too.
	dst := t.TempDir()
	if _, errOut, code := n.GantryAs(t, alice.Token, "data", "pull", "from-oras:v1", dst); code != 0 {
		t.Fatalf("data pull: %s", errOut)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "docs", "sub", "a.txt")); string(b) != "a nested file\n" {
		t.Errorf("pulled docs/sub/a.txt: %q", b)
	}
}
