package e2e

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"gantry/gantrytest"
	"gantry/wire"
)

// firewall adds iptables rules that drop traffic between cluster ports and
// removes them when the test ends (or when Heal is called).
type firewall struct {
	t     *testing.T
	rules [][]string
}

func requireIptables(t *testing.T) {
	t.Helper()
	err := exec.Command("iptables", "-w", "-L", "OUTPUT", "-n").Run()
	gantrytest.Require(t, err == nil, "iptables is not usable (needed to partition the cluster): "+fmt.Sprint(err))
}

func (f *firewall) drop(args ...string) {
	f.t.Helper()
	rule := append([]string{"OUTPUT", "-p", "tcp"}, args...)
	rule = append(rule, "-m", "comment", "--comment", "gantry-e2e-partition", "-j", "DROP")
	if out, err := exec.Command("iptables", append([]string{"-w", "-I"}, rule...)...).CombinedOutput(); err != nil {
		f.t.Fatalf("iptables -I %v: %v\n%s", rule, err, out)
	}
	f.rules = append(f.rules, rule)
}

// Heal removes every rule added.
func (f *firewall) Heal() {
	for _, r := range f.rules {
		_ = exec.Command("iptables", append([]string{"-w", "-D"}, r...)...).Run()
	}
	f.rules = nil
}

func hostPort(t *testing.T, addr string) (string, string) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return h, p
}

// TestClusterPartition cuts one follower off from the other two: the
// minority side accepts no writes, the majority goes on, and after healing
// the state converges with nothing acknowledged lost.
func TestClusterPartition(t *testing.T) {
	requireIptables(t)
	c := gantrytest.StartCluster(t, 3, gantrytest.Options{Host: gantrytest.HostPerNode})
	ctx := context.Background()
	leader := c.Leader(t, 20*time.Second)
	var minority *gantrytest.Node
	var majority []*gantrytest.Node
	for _, n := range c.Nodes {
		if n != leader && minority == nil {
			minority = n
		} else {
			majority = append(majority, n)
		}
	}
	before, err := leader.Client().Submit(ctx, wire.JobSpec{Name: "before", Image: "gantry/toolbox", Command: []string{"true"}})
	if err != nil {
		t.Fatal(err)
	}
	gantrytest.Eventually(t, 20*time.Second, func() bool {
		_, err := minority.Client().Job(ctx, before.ID)
		return err == nil
	}, "the minority node to see the job submitted before the partition")

	fw := &firewall{t: t}
	t.Cleanup(fw.Heal)
	mh, mp := hostPort(t, minority.ClusterAddr)
	fw.drop("-d", mh, "--dport", mp) // peers -> minority
	for _, n := range majority {
		h, p := hostPort(t, n.ClusterAddr)
		fw.drop("-s", mh, "-d", h, "--dport", p) // minority -> peers
	}

	// The minority side accepts no writes.
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	_, err = minority.Client().Submit(wctx, wire.JobSpec{Name: "on-the-minority", Image: "gantry/toolbox", Command: []string{"true"}})
	cancel()
	if err == nil {
		t.Fatal("a write on the cut-off node was acknowledged")
	}
	t.Logf("write on the minority refused: %v", err)

	// The majority keeps a leader and takes writes.
	var during []string
	gantrytest.Eventually(t, 30*time.Second, func() bool {
		for _, n := range majority {
			j, err := n.Client().Submit(ctx, wire.JobSpec{Name: "during", Image: "gantry/toolbox", Command: []string{"true"}})
			if err == nil {
				during = append(during, j.ID)
				return true
			}
		}
		return false
	}, "the majority to accept a write during the partition")
	for i := 0; i < 4; i++ {
		j, err := majority[i%2].Client().Submit(ctx, wire.JobSpec{Name: "during", Image: "gantry/toolbox", Command: []string{"true"}})
		if err != nil {
			t.Fatalf("majority write %d: %v", i, err)
		}
		during = append(during, j.ID)
	}
	if _, err := minority.Client().Job(ctx, during[0]); err == nil {
		t.Fatal("the cut-off node sees a write made during the partition")
	}

	fw.Heal()

	// After healing, the minority converges: it has every acknowledged job,
	// and the refused write exists nowhere.
	for _, id := range append([]string{before.ID}, during...) {
		gantrytest.Eventually(t, 60*time.Second, func() bool {
			_, err := minority.Client().Job(ctx, id)
			return err == nil
		}, "job %s on the healed node", id)
	}
	for _, n := range c.Nodes {
		jobs, _, err := n.Client().Jobs(ctx, map[string][]string{"limit": {"1000"}})
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range jobs {
			if strings.Contains(j.Spec.Name, "minority") {
				t.Fatalf("node %s has the write refused during the partition: %s", n.Name, j.ID)
			}
		}
		if len(jobs) != 1+len(during) {
			t.Fatalf("node %s lists %d jobs, want %d", n.Name, len(jobs), 1+len(during))
		}
	}
	// And it takes writes again.
	gantrytest.Eventually(t, 30*time.Second, func() bool {
		_, err := minority.Client().Submit(ctx, wire.JobSpec{Name: "after", Image: "gantry/toolbox", Command: []string{"true"}})
		return err == nil
	}, "the healed node to accept writes again")
}
