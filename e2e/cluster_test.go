package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"gantry/gantrytest"
	"gantry/store"
)

// TestCluster shares one three-node cluster across the behaviours that do
// not kill nodes.
func TestCluster(t *testing.T) {
	cl := gantrytest.StartCluster(t, 3)
	ctx := context.Background()

	t.Run("node ls on any node shows three ready nodes", func(t *testing.T) {
		for _, n := range cl.Nodes {
			out, errOut, code := n.Gantry(t, "node", "ls")
			if code != 0 {
				t.Fatalf("%s: node ls exit %d: %s", n.Name, code, errOut)
			}
			if got := strings.Count(out, " ready "); got != 3 {
				t.Fatalf("%s: node ls shows %d ready nodes, want 3:\n%s", n.Name, got, out)
			}
		}
	})

	t.Run("jobs submitted to a follower run and spread over the nodes", func(t *testing.T) {
		f := cl.Followers(t)[0]
		c := f.Client()
		j := submit(t, c, store.JobSpec{Image: "gantry/toolbox", Command: []string{"sleep", "1"}, Array: 12, CPU: 500, Memory: 16 << 20})
		j = waitJob(t, c, j.ID, 2*time.Minute)
		if j.State != store.StateSucceeded {
			t.Fatalf("job %s ended %s, counts %v", j.ID, j.State, j.Counts)
		}
		tasks, err := c.Tasks(ctx, j.ID)
		if err != nil {
			t.Fatal(err)
		}
		used := map[string]int{}
		for _, tk := range tasks {
			used[tk.Node]++
		}
		if len(used) < 2 {
			t.Fatalf("tasks ran on %v, want at least 2 nodes", used)
		}
		t.Logf("placement: %v", used)
	})
}
