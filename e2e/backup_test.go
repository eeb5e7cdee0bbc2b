package e2e

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gantry/gantrytest"
	"gantry/wire"
)

// TestBackupWhileJobsRunAndRestore: an online backup taken while a
// 200-task array runs and an image is being pushed; a second backup into
// the same directory copies only what is new; `gantry server --restore`
// onto a fresh directory, from the directory and from a .tar file, brings
// back users, images (byte-identical), jobs as they were when the backup
// was taken, and an audit log that verifies, as a new cluster.
func TestBackupWhileJobsRunAndRestore(t *testing.T) {
	t.Parallel()
	n := gantrytest.Start(t)
	ctx := context.Background()
	alice, alicePW := n.CreateUser(t, "alice")
	img := pushToolImage(t, n, "alice", alicePW, "alice/tool", "1", "before the backup", 1<<20)
	arr := submit(t, alice, wire.JobSpec{Image: "gantry/toolbox", Command: []string{"sleep", "60"}, Array: 200, CPU: 100, Memory: 32 << 20})
	gantrytest.Eventually(t, 60*time.Second, func() bool {
		j, err := alice.Job(ctx, arr.ID)
		return err == nil && j.Counts[wire.StateRunning] >= 2
	}, "tasks of the array running")

	dir := filepath.Join(t.TempDir(), "backups")
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // pushed while the backup is taken: in it whole, or not at all
		defer wg.Done()
		pushToolImage(t, n, "alice", alicePW, "alice/tool", "2", "during the backup", 1<<20)
	}()
	out, errOut, code := n.Gantry(t, "backup", dir)
	if code != 0 {
		t.Fatalf("gantry backup %s: exit %d %s %s", dir, code, out, errOut)
	}
	t.Logf("gantry backup %s: %s", dir, strings.TrimSpace(out))
	first := regexp.MustCompile(`(\d+) blobs \((\d+) new`).FindStringSubmatch(out)
	if first == nil || first[1] != first[2] {
		t.Fatalf("first backup: %q, want every blob new", out)
	}
	wg.Wait()
	atBackup, err := alice.Job(ctx, arr.ID)
	if err != nil {
		t.Fatal(err)
	}
	out2, errOut, code := n.Gantry(t, "backup", dir)
	t.Logf("again: %s", strings.TrimSpace(out2))
	second := regexp.MustCompile(`(\d+) blobs \((\d+) new`).FindStringSubmatch(out2)
	if code != 0 || second == nil {
		t.Fatalf("second backup: exit %d %s %s", code, out2, errOut)
	}
	if all, fresh := atoi(second[1]), atoi(second[2]); fresh >= atoi(first[2]) || fresh > all-atoi(first[1])+1 {
		t.Fatalf("second backup into the same directory copied %d blobs of %d (the first had %d): want only what is new", fresh, all, atoi(first[1]))
	}
	file := filepath.Join(t.TempDir(), "gantry.tar")
	if out, errOut, code := n.Gantry(t, "backup", file); code != 0 || !strings.Contains(out, file) {
		t.Fatalf("gantry backup %s: exit %d %s %s", file, code, out, errOut)
	}
	// A backup needs an admin.
	if _, errOut, code := n.GantryAs(t, alice.Token, "backup", t.TempDir()); code == 0 || !strings.Contains(errOut, "admin") {
		t.Fatalf("alice's backup: exit %d %s", code, errOut)
	}

	var last string
	for _, src := range []string{dir, file} {
		r := gantrytest.Start(t, gantrytest.Options{Name: "restored", AdminToken: n.AdminToken, Args: []string{"--restore", src}})
		rc := r.Client()
		if r.ClusterID == n.ClusterID || r.ClusterID == "" {
			t.Fatalf("restored from %s: cluster id %q, want a new one (the old is %s)", src, r.ClusterID, n.ClusterID)
		}
		// The image pushed before the backup, byte for byte; the one
		// pushed during it whole if its tag is there.
		pullAndCompare(t, r, "alice", alicePW, "alice/tool", "1", img)
		// Jobs as they were: the array, with tasks running on node1.
		j, err := rc.Job(ctx, arr.ID)
		if err != nil || j.Total != 200 || j.Owner != "alice" {
			t.Fatalf("restored from %s: the array %+v %v", src, j, err)
		}
		if j.Counts[wire.StateRunning] == 0 && j.Counts[wire.StateQueued] == 0 {
			t.Fatalf("restored from %s: counts %v, want the running and queued tasks of the backup's moment (then %v)", src, j.Counts, atBackup.Counts)
		}
		ra, err := n.Client().Nodes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		nodes, err := rc.Nodes(ctx)
		if err != nil || len(nodes) < 2 {
			t.Fatalf("restored from %s: nodes %+v %v, want node1 of the old cluster and restored (old: %d)", src, nodes, err, len(ra))
		}
		if out, errOut, code := r.Gantry(t, "audit", "verify"); code != 0 {
			t.Fatalf("restored from %s: audit verify: exit %d %s %s", src, code, out, errOut)
		}
		// Alice signs in with her password and sees her job.
		if out, errOut, code := r.GantryAs(t, alice.Token, "job", "show", arr.ID); code != 0 || !strings.Contains(out, arr.ID) {
			t.Fatalf("restored from %s: alice's job show: exit %d %s %s", src, code, out, errOut)
		}
		if src == dir {
			// Another node joins the restored cluster and receives the
			// restored state with it (Raft sends the seed snapshot).
			var jc wire.JoinCommand
			if err := rc.Do(ctx, "GET", "/api/v1/cluster/join-command", nil, &jc); err != nil {
				t.Fatal(err)
			}
			joiner := gantrytest.Start(t, gantrytest.Options{Name: "joiner", AdminToken: n.AdminToken, Args: []string{"--join", r.HTTPAddr, "--token", jc.Token}})
			gantrytest.Eventually(t, 60*time.Second, func() bool {
				j, err := joiner.Client().Job(ctx, arr.ID)
				return err == nil && j.Total == 200
			}, "the restored array on a node that joined the restored cluster")
			pullAndCompare(t, joiner, "alice", alicePW, "alice/tool", "1", img)
			joiner.Stop()
		}
		if _, err := rc.Cancel(ctx, arr.ID); err != nil {
			t.Fatal(err)
		}
		r.Stop()
		last = r.DataDir
	}
	// A restore refuses a data directory that holds a node (restarting
	// with --restore of the backup it came from is a normal start).
	cmd := n.GantryCmd(t, "", "server", "--data", last, "--http", "127.0.0.1:0", "--cluster", "127.0.0.1:0", "--restore", dir)
	b, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(b), "needs a fresh data directory") {
		t.Fatalf("restore onto a used data directory: %v %s", err, b)
	}
	if _, err := os.Stat(filepath.Join(dir, "backup.json")); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Cancel(ctx, arr.ID); err != nil {
		t.Fatal(err)
	}
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }
