//go:build bench

package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gantry/gantrytest"
)

// The dataset of the data benchmarks: 4 files of 192 MiB and 10,000 of
// 26 KiB, 1 GiB in all.
var datasetShape = []int64{4, 192 << 20, 10000, 26 << 10}

// TestBenchDataPushPull: `gantry data push` and `pull` of a 1 GiB tree
// against `oras push` and `pull` of the same tree to the same registry
// (oras packs a directory into one gzipped tar, as its users push a
// tree), alternating, a fresh tree each round so neither finds its blobs
// stored. Ratio = oras / gantry (goal >= 1.0).
func TestBenchDataPushPull(t *testing.T) {
	oras := gantrytest.Oras(t)
	n := gantrytest.Start(t)
	alice, _ := n.CreateUser(t, "alice")
	bin := gantrytest.Binary(t)
	env := []string{"GANTRY_ADDR=" + n.URL, "GANTRY_TOKEN=" + alice.Token}
	var gp, gl, op, ol []time.Duration
	for round := range 2 {
		src := filepath.Join(t.TempDir(), "tree")
		writeShape(t, src, datasetShape, uint64(100+round))
		tag := fmt.Sprintf("v%d", round)
		gp = append(gp, timeCmd(t, env, bin, "data", "push", src, "alice/ds:"+tag))
		op = append(op, timeIn(t, src, oras, "push", "--plain-http", "-u", "token", "-p", alice.Token, n.HTTPAddr+"/alice/ds-oras:"+tag, "."))
		gl = append(gl, timeCmd(t, env, bin, "data", "pull", "alice/ds:"+tag, filepath.Join(t.TempDir(), "g")))
		ol = append(ol, timeIn(t, t.TempDir(), oras, "pull", "--plain-http", "-u", "token", "-p", alice.Token, "-o", "out", n.HTTPAddr+"/alice/ds-oras:"+tag))
		os.RemoveAll(src)
	}
	report(t, "data push of 1 GiB (4 x 192 MiB + 10,000 x 26 KiB): gantry %s vs oras %s: ratio %.2f (goal >= 1.0); pull: gantry %s vs oras %s: ratio %.2f (goal >= 1.0); rounds push %v / %v, pull %v / %v",
		median(gp).Round(time.Millisecond), median(op).Round(time.Millisecond), median(op).Seconds()/median(gp).Seconds(),
		median(gl).Round(time.Millisecond), median(ol).Round(time.Millisecond), median(ol).Seconds()/median(gl).Seconds(), gp, op, gl, ol)
}

// TestBenchDatasetFirstTask: a task reading every file of a 1 GiB dataset
// of 10,004 files mounted with --input, the first on the node (the node
// fetches nothing, but unpacks the artifact into its cache) and a later
// one (from the cache), against `docker run -v` of the same tree from
// local disk with the same image, everything in the page cache. Goals:
// first <= 1.5x, later <= 1.05x.
func TestBenchDatasetFirstTask(t *testing.T) {
	gantrytest.RequireDocker(t)
	n := gantrytest.Start(t)
	bin := gantrytest.Binary(t)
	env := []string{"GANTRY_ADDR=" + n.URL, "GANTRY_TOKEN=" + n.AdminToken}
	timeCmd(t, env, bin, "run", "gantry/toolbox", "--", "true") // the toolbox pulled
	img := toolboxImageID(t, n)
	var first, later, bare []time.Duration
	for round := range 2 {
		src := filepath.Join(t.TempDir(), "tree")
		writeShape(t, src, datasetShape, uint64(200+round))
		tag := fmt.Sprintf("admin/set:v%d", round)
		timeCmd(t, env, bin, "data", "push", src, tag)
		bare = append(bare, timeCmd(t, nil, "docker", "run", "--rm", "-v", src+":/data:ro", img, "read-all", "/data"))
		first = append(first, timeCmd(t, env, bin, "run", "--input", tag+"=/data", "gantry/toolbox", "--", "read-all", "/data"))
		later = append(later, timeCmd(t, env, bin, "run", "--input", tag+"=/data", "gantry/toolbox", "--", "read-all", "/data"))
		bare = append(bare, timeCmd(t, nil, "docker", "run", "--rm", "-v", src+":/data:ro", img, "read-all", "/data"))
		later = append(later, timeCmd(t, env, bin, "run", "--input", tag+"=/data", "gantry/toolbox", "--", "read-all", "/data"))
	}
	b := median(bare)
	report(t, "dataset of 1 GiB, 10,004 files, read whole by a task: first task on the node (unpack included) %s, later tasks %s, docker run -v of the same tree %s: ratios %.2f (goal <= 1.5) and %.2f (goal <= 1.05); rounds first %v, later %v, docker %v",
		median(first).Round(time.Millisecond), median(later).Round(time.Millisecond), b.Round(time.Millisecond),
		median(first).Seconds()/b.Seconds(), median(later).Seconds()/b.Seconds(), first, later, bare)
}

// timeIn runs a command in dir and returns how long it took.
func timeIn(t *testing.T, dir, name string, args ...string) time.Duration {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return time.Since(start)
}
