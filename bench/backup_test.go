//go:build bench

package bench

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"gantry/gantrytest"
)

// TestBenchBackup: an online backup of 1 GiB of images (4 images with a
// 256 MiB layer each) into a directory, against tar copying the same
// registry's blob files on the same disk and syncing them (the floor: the
// same bytes read and written, no hashing, no consistent view); then a second backup into the
// same directory (only what is new: nothing), and a restore onto a fresh
// directory against tar extracting the copy.
func TestBenchBackup(t *testing.T) {
	n := gantrytest.Start(t)
	_, pw := n.CreateUser(t, "alice")
	for i := range 4 {
		pushBigImage(t, n, "alice", pw, "alice/big", fmt.Sprint(i), 256<<20, byte(40+i))
	}
	dir := filepath.Join(t.TempDir(), "backup")
	run := func(name string, args ...string) time.Duration {
		t.Helper()
		start := time.Now()
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
		return time.Since(start)
	}
	bin := gantrytest.Binary(t)
	backup := func() time.Duration {
		t.Helper()
		start := time.Now()
		if out, code := gantryCmd(n, bin, "backup", dir); code != 0 {
			t.Fatalf("gantry backup: %s", out)
		}
		return time.Since(start)
	}
	copyTar := filepath.Join(t.TempDir(), "blobs.tar")
	// tar does not sync; a backup does (it must survive a crash once
	// it says it is done), so the floor is tar and sync.
	base := run("sh", "-c", "tar -cf "+copyTar+" -C "+n.DataDir+" registry/blobs && sync -f "+copyTar)
	first := backup()
	again := backup()
	n.Stop()
	untarDir := t.TempDir()
	untar := run("tar", "-xf", copyTar, "-C", untarDir)
	start := time.Now()
	r := gantrytest.Start(t, gantrytest.Options{Name: "restored", AdminToken: n.AdminToken, Args: []string{"--restore", dir}})
	restore := time.Since(start)
	r.Stop()
	report(t, "backup: 1 GiB of images: gantry backup %s vs tar of the blob files and sync %s: ratio %.2f (goal <= 1.5); again into the same directory %s (%.0f%% of the first); restore incl. start-up %s vs tar -x %s: ratio %.2f",
		first.Round(time.Millisecond), base.Round(time.Millisecond), first.Seconds()/base.Seconds(), again.Round(time.Millisecond),
		100*again.Seconds()/first.Seconds(), restore.Round(time.Millisecond), untar.Round(time.Millisecond), restore.Seconds()/untar.Seconds())
}

// gantryCmd runs the gantry CLI as the node's admin.
func gantryCmd(n *gantrytest.Node, bin string, args ...string) (string, int) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(cmd.Environ(), "GANTRY_ADDR="+n.URL, "GANTRY_TOKEN="+n.AdminToken)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), 1
	}
	return string(out), 0
}
