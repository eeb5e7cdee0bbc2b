package gantrytest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// OrasVersion is the oras CLI the tests read and write artifacts with.
const OrasVersion = "v1.3.6"

var (
	orasOnce sync.Once
	orasPath string
	orasErr  error
)

// Oras finds the oras CLI on PATH or builds OrasVersion from the Go module
// proxy into a directory of the temp dir (reused by later runs); without
// it the test fails under CI=true and skips otherwise (Require).
func Oras(t testing.TB) string {
	t.Helper()
	orasOnce.Do(func() {
		if p, err := exec.LookPath("oras"); err == nil {
			orasPath = p
			return
		}
		dir := filepath.Join(os.TempDir(), "gantry-oras-"+OrasVersion)
		p := filepath.Join(dir, "oras")
		if _, err := os.Stat(p); err == nil {
			orasPath = p
			return
		}
		cmd := exec.Command("go", "install", "oras.land/oras/cmd/oras@"+OrasVersion)
		cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=-mod=mod", "CGO_ENABLED=0")
		cmd.Dir = os.TempDir()
		if out, err := cmd.CombinedOutput(); err != nil {
			orasErr = fmt.Errorf("go install oras.land/oras/cmd/oras@%s: %v\n%s", OrasVersion, err, out)
			return
		}
		orasPath = p
	})
	Require(t, orasErr == nil, fmt.Sprint(orasErr))
	return orasPath
}
