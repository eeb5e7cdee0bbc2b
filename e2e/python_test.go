package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"gantry/gantrytest"
)

// TestPythonClient installs clients/python with pip into a new virtual
// environment, offline (no package index: what a fresh air-gapped machine
// has), and runs its unittest suite (clients/python/tests, the quickstart
// example among them) against a real node as an ordinary user.
func TestPythonClient(t *testing.T) {
	t.Parallel()
	root, err := gantrytest.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	vpy := installPythonClient(t, filepath.Join(root, "clients", "python"))
	n := gantrytest.Start(t)
	c, pw := n.CreateUser(t, "pyuser")

	// The installed package, not the source tree, is what the tests import.
	out, err := exec.Command(vpy, "-c", "import gantry; print(gantry.__file__)").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), filepath.Dir(filepath.Dir(vpy))) {
		t.Fatalf("import gantry in the virtual environment: %v\n%s", err, out)
	}

	tests := filepath.Join(root, "clients", "python", "tests")
	cmd := exec.Command(vpy, "-m", "unittest", "discover", "-v", "-s", tests, "-t", tests)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "GANTRY_ADDR="+n.URL, "GANTRY_TOKEN="+c.Token,
		"GANTRY_TEST_USER=pyuser", "GANTRY_TEST_PASSWORD="+pw, "PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1")
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	start := time.Now()
	err = cmd.Run()
	t.Logf("python -m unittest (%s):\n%s", time.Since(start).Round(time.Millisecond), buf.String())
	if err != nil {
		t.Fatalf("the Python client's tests failed: %v", err)
	}
	m := regexp.MustCompile(`(?m)^Ran (\d+) tests? in`).FindStringSubmatch(buf.String())
	if m == nil {
		t.Fatalf("no 'Ran N tests' line in the unittest output")
	}
	if ran, _ := strconv.Atoi(m[1]); ran < 20 {
		t.Fatalf("unittest ran %d tests, want at least 20", ran)
	}
	if strings.Contains(buf.String(), "skipped") {
		t.Fatalf("unittest skipped tests; every test must run here")
	}
}

// installPythonClient makes a virtual environment, installs the client
// into it from a copy of dir (pip builds in place, and the work tree
// stays clean) with no package index, and returns the environment's
// python. GANTRY_PYTHON names the interpreter; otherwise Debian's
// /usr/bin/python3 (whose python3-venv, -setuptools and -wheel
// scripts/test-deps.sh installs) is tried before the python3 on PATH.
func installPythonClient(t *testing.T, dir string) string {
	t.Helper()
	var cands []string
	if p := os.Getenv("GANTRY_PYTHON"); p != "" {
		cands = []string{p}
	} else {
		if _, err := os.Stat("/usr/bin/python3"); err == nil {
			cands = append(cands, "/usr/bin/python3")
		}
		if p, err := exec.LookPath("python3"); err == nil && p != "/usr/bin/python3" {
			cands = append(cands, p)
		}
	}
	gantrytest.Require(t, len(cands) > 0, "python3 is not installed (apt-get install python3 python3-venv python3-setuptools python3-wheel)")
	src := filepath.Join(t.TempDir(), "python")
	if err := os.CopyFS(src, os.DirFS(dir)); err != nil {
		t.Fatalf("copy %s: %v", dir, err)
	}
	var why []string
	for _, py := range cands {
		venv := filepath.Join(t.TempDir(), "venv")
		vpy := filepath.Join(venv, "bin", "python")
		steps := [][]string{
			// System site packages: the interpreter's own setuptools
			// (and wheel) build the package, as nothing can be downloaded.
			{py, "-m", "venv", "--system-site-packages", venv},
			{vpy, "-m", "pip", "install", "--no-index", "--no-build-isolation", "--no-deps", "--no-cache-dir",
				"--disable-pip-version-check", "-q", src},
		}
		ok := true
		for _, s := range steps {
			cmd := exec.Command(s[0], s[1:]...)
			cmd.Env = append(os.Environ(), "PIP_NO_INPUT=1")
			if out, err := cmd.CombinedOutput(); err != nil {
				why = append(why, fmt.Sprintf("%s: %v\n%s", strings.Join(s, " "), err, lastBytes(out, 2000)))
				ok = false
				break
			}
		}
		if ok {
			return vpy
		}
	}
	gantrytest.Require(t, false, "no python3 here can install clients/python offline:\n"+strings.Join(why, "\n"))
	return ""
}

func lastBytes(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
