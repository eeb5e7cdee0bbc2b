package toolbox

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func runCmd(t *testing.T, vars map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	e := &env{
		stdout: &out,
		stderr: &errOut,
		getenv: func(k string) string { return vars[k] },
		environ: func() []string {
			var l []string
			for k, v := range vars {
				l = append(l, k+"="+v)
			}
			return l
		},
		stat: os.Stat,
	}
	code = run(e, args)
	return code, out.String(), errOut.String()
}

func TestCommands(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	abc := filepath.Join(dir, "abc")
	if err := os.WriteFile(abc, []byte("abc"), 0o644); err != nil {
		t.Fatal(err)
	}
	const abcSum = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	tests := []struct {
		name       string
		vars       map[string]string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string // substring
	}{
		{name: "echo prints its arguments", args: []string{"echo", "hello", "world"}, wantStdout: "hello world\n"},
		{name: "echo with no arguments prints an empty line", args: []string{"echo"}, wantStdout: "\n"},
		{name: "true exits 0", args: []string{"true"}},
		{name: "devices says which paths exist and which GPUs the task got", vars: map[string]string{"GANTRY_GPUS": "/x", "CUDA_VISIBLE_DEVICES": "0"},
			args: []string{"devices", "0", dir, filepath.Join(dir, "none")}, wantStdout: dir + " present\n" + filepath.Join(dir, "none") + " absent\nGANTRY_GPUS=/x\nCUDA_VISIBLE_DEVICES=0\n"},
		{name: "devices wants a path", args: []string{"devices", "1"}, wantCode: 2, wantStderr: "usage: devices SECONDS PATH..."},
		{name: "false exits 1", args: []string{"false"}, wantCode: 1},
		{name: "exit returns its code", args: []string{"exit", "3"}, wantCode: 3},
		{name: "exit rejects a code above 255", args: []string{"exit", "256"}, wantCode: 2, wantStderr: "out of range"},
		{name: "sleep accepts fractions of a second", args: []string{"sleep", "0.01"}},
		{name: "sleep accepts a Go duration", args: []string{"sleep", "10ms"}},
		{name: "sleep rejects garbage", args: []string{"sleep", "soon"}, wantCode: 2, wantStderr: "usage: sleep SECONDS"},
		{name: "env prints the environment sorted", vars: map[string]string{"B": "2", "A": "1", "C": "3"}, args: []string{"env"}, wantStdout: "A=1\nB=2\nC=3\n"},
		{name: "lines prints numbered lines", args: []string{"lines", "3"}, wantStdout: "line 1\nline 2\nline 3\n"},
		{name: "fail-until fails on early attempts", vars: map[string]string{"GANTRY_ATTEMPT": "1"}, args: []string{"fail-until", "3", "7"}, wantCode: 7, wantStderr: "failing"},
		{name: "fail-until succeeds once the attempt is reached", vars: map[string]string{"GANTRY_ATTEMPT": "3"}, args: []string{"fail-until", "3", "7"}, wantStdout: "attempt 3 >= 3: succeeding\n"},
		{name: "fail-until needs GANTRY_ATTEMPT", args: []string{"fail-until", "3", "7"}, wantCode: 1, wantStderr: "GANTRY_ATTEMPT"},
		{name: "write creates a file of that size", args: []string{"write", file, "100000"}, wantStdout: "wrote 100000 bytes to " + file + "\n"},
		{name: "files writes a tree of the given shape", args: []string{"files", filepath.Join(dir, "tree"), "2", "100", "3", "0"}, wantStdout: "wrote 5 files, 200 bytes, to " + filepath.Join(dir, "tree") + "\n"},
		{name: "files wants COUNT BYTES pairs", args: []string{"files", dir, "2"}, wantCode: 2, wantStderr: "COUNT BYTES pairs"},
		{name: "sha256 prints a file's digest", args: []string{"sha256", abc}, wantStdout: abcSum + "  " + abc + "\n"},
		{name: "sha256 with the right digest exits 0", args: []string{"sha256", abc, "sha256:" + abcSum}, wantStdout: abcSum},
		{name: "sha256 with another digest exits 1", args: []string{"sha256", abc, strings.Repeat("0", 64)}, wantStdout: abcSum, wantCode: 1, wantStderr: "want 0000"},
		{name: "cat of a missing file fails", args: []string{"cat", filepath.Join(dir, "missing")}, wantCode: 1, wantStderr: "no such file"},
		{name: "burn runs for the given time", args: []string{"burn", "0.05"}, wantStdout: "burned 50ms"},
		{name: "tick needs a positive interval", args: []string{"tick", "0", "1s"}, wantCode: 2, wantStderr: "positive"},
		{name: "an unknown command exits 127", args: []string{"frobnicate"}, wantCode: 127, wantStderr: `unknown command "frobnicate"`},
		{name: "no command is a usage error", args: nil, wantCode: 2, wantStderr: "no command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCmd(t, tt.vars, tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit code = %d, want %d (stderr %q)", code, tt.wantCode, errOut)
			}
			if tt.wantStdout == "" && out != "" || !strings.HasPrefix(out, tt.wantStdout) {
				t.Errorf("stdout = %q, want %q", out, tt.wantStdout)
			}
			if !strings.Contains(errOut, tt.wantStderr) {
				t.Errorf("stderr = %q, want it to contain %q", errOut, tt.wantStderr)
			}
			if tt.wantStderr != "" && strings.Count(errOut, "\n") != 1 {
				t.Errorf("stderr = %q, want exactly one line", errOut)
			}
		})
	}
}

func TestWriteThenCat(t *testing.T) {
	file := filepath.Join(t.TempDir(), "data")
	if code, _, errOut := runCmd(t, nil, "write", file, "70000"); code != 0 {
		t.Fatalf("write: exit %d: %s", code, errOut)
	}
	code, out, errOut := runCmd(t, nil, "cat", file)
	if code != 0 {
		t.Fatalf("cat: exit %d: %s", code, errOut)
	}
	if len(out) != 70000 {
		t.Fatalf("cat printed %d bytes, want 70000", len(out))
	}
	st, err := os.Stat(file)
	if err != nil || st.Size() != 70000 {
		t.Fatalf("file size: %v %v", st, err)
	}
}

func TestTickPrintsAtTheInterval(t *testing.T) {
	start := time.Now()
	code, out, errOut := runCmd(t, nil, "tick", "20ms", "110ms")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.HasPrefix(out, "tick 1\ntick 2\ntick 3\n") {
		t.Fatalf("output = %q, want tick 1..", out)
	}
	if n := strings.Count(out, "\n"); n < 4 || n > 6 {
		t.Errorf("printed %d ticks in 110ms at 20ms, want about 5", n)
	}
	if el := time.Since(start); el < 100*time.Millisecond {
		t.Errorf("returned after %s, want at least the duration", el)
	}
}

func TestAllocHoldsMemory(t *testing.T) {
	old := allocHold
	allocHold = 0
	t.Cleanup(func() { allocHold = old })
	code, out, errOut := runCmd(t, nil, "alloc", "8")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.HasPrefix(out, "allocated 8 MB\n") {
		t.Fatalf("output = %q", out)
	}
}

func TestFilesAreEachTheirOwn(t *testing.T) {
	dir := t.TempDir()
	if code, _, errOut := runCmd(t, nil, "files", dir, "2", "4096", "1", "10"); code != 0 {
		t.Fatalf("files: %d %s", code, errOut)
	}
	a, _ := os.ReadFile(filepath.Join(dir, "g0", "f000000"))
	b, _ := os.ReadFile(filepath.Join(dir, "g0", "f000001"))
	c, _ := os.ReadFile(filepath.Join(dir, "g1", "f000000"))
	if len(a) != 4096 || len(b) != 4096 || len(c) != 10 || string(a) == string(b) {
		t.Errorf("sizes %d %d %d, two first files alike: %v", len(a), len(b), len(c), string(a) == string(b))
	}
	if code, out, errOut := runCmd(t, nil, "read-all", dir); code != 0 || out != "read 3 files, 8202 bytes\n" {
		t.Errorf("read-all: %d %q %s", code, out, errOut)
	}
}
