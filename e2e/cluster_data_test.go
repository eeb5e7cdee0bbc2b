package e2e

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gantry/gantrytest"
	"gantry/wire"
)

// TestClusterInputs: a dataset pushed to node 1 is on two of the three
// nodes; tasks reading it are placed on a node that holds it; with those
// two drained, a task on the third fetches it from a peer, unpacks it once
// and reads it whole and right.
func TestClusterInputs(t *testing.T) {
	gantrytest.RequireDocker(t)
	cl := gantrytest.StartCluster(t, 3)
	n1 := cl.Nodes[0]
	alice, _ := n1.CreateUser(t, "alice")
	src := t.TempDir()
	big := make([]byte, 6<<20) // a layer of its own
	rand.Read(big)
	os.WriteFile(filepath.Join(src, "big.bin"), big, 0o644)
	os.MkdirAll(filepath.Join(src, "small"), 0o755)
	os.WriteFile(filepath.Join(src, "small", "a.txt"), []byte("a small file\n"), 0o644)
	sum := sha256.Sum256(big)
	want := hex.EncodeToString(sum[:])
	if out, errOut, code := n1.GantryAs(t, alice.Token, "data", "push", src, "ds:v1"); code != 0 {
		t.Fatalf("data push: %s%s", out, errOut)
	}
	var holders []string
	lacking := (*gantrytest.Node)(nil)
	for _, n := range cl.Nodes {
		if hasBlobFile(n, "sha256:"+want) {
			holders = append(holders, n.Name)
		} else {
			lacking = n
		}
	}
	if len(holders) < 2 || lacking == nil {
		t.Fatalf("the dataset's large blob is on %v: want two of the three nodes", holders)
	}
	read := wire.JobSpec{Image: "gantry/toolbox", Command: []string{"sha256", "/data/big.bin", want}, CPU: 100, Memory: 32 << 20,
		Inputs: []wire.Input{{Ref: "ds:v1", Path: "/data"}}}

	t.Run("tasks reading the dataset are placed where it is", func(t *testing.T) {
		for range 6 {
			j := waitJob(t, alice, submit(t, alice, read).ID, 90*time.Second)
			tasks, _ := alice.Tasks(t.Context(), j.ID)
			if j.State != wire.StateSucceeded || len(tasks) != 1 {
				t.Fatalf("job %s ended %s", j.ID, j.State)
			}
			if !slices.Contains(holders, tasks[0].Node) {
				t.Fatalf("a task reading the dataset ran on %s, which does not hold it (%v do)", tasks[0].Node, holders)
			}
		}
	})

	t.Run("a task on the node lacking it fetches it from a peer", func(t *testing.T) {
		for _, h := range holders {
			if _, errOut, code := n1.Gantry(t, "node", "drain", h); code != 0 {
				t.Fatalf("drain %s: %s", h, errOut)
			}
		}
		t.Cleanup(func() {
			for _, h := range holders {
				n1.Gantry(t, "node", "ready", h)
			}
		})
		j := waitJob(t, alice, submit(t, alice, read).ID, 90*time.Second)
		tasks, _ := alice.Tasks(t.Context(), j.ID)
		if j.State != wire.StateSucceeded || len(tasks) != 1 || tasks[0].Node != lacking.Name {
			td, _ := alice.Task(t.Context(), j.ID, 0)
			t.Fatalf("job %s ended %s on %+v: %+v", j.ID, j.State, tasks, td)
		}
		if got := logOf(t, alice, j.ID, 0); !strings.HasPrefix(got, want) {
			t.Errorf("the task read %q, want the digest %s", got, want)
		}
		if !hasBlobFile(lacking, "sha256:"+want) {
			t.Error("the node ran the task but holds no copy of the blob it fetched")
		}
		if u := lacking.Metric(t, "gantry_data_cache_unpacks_total"); u != 1 {
			t.Errorf("%v unpacks on %s, want 1", u, lacking.Name)
		}
	})
}
