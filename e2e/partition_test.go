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

	// The minority side acknowledges no writes. The first, sent before the
	// node notices it is cut off, goes to the old leader and gets no
	// answer: its outcome is unknown (the request may arrive when the
	// network heals), and the error must say so, not that it was refused.
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	_, err = minority.Client().Submit(wctx, wire.JobSpec{Name: "in-flight-on-the-minority", Image: "gantry/toolbox", Command: []string{"true"}})
	cancel()
	if err == nil {
		t.Fatal("a write on the cut-off node was acknowledged")
	}
	inFlightUnknown := strings.Contains(err.Error(), "may still take effect")
	t.Logf("first write on the minority: %v", err)
	// Once the node knows it has no leader, a write is refused without
	// leaving it: it must exist nowhere, ever.
	gantrytest.Eventually(t, 30*time.Second, func() bool {
		h, err := minority.Health()
		return err == nil && h.LeaderName == ""
	}, "the cut-off node to notice it has no leader")
	wctx, cancel = context.WithTimeout(ctx, 60*time.Second)
	_, err = minority.Client().Submit(wctx, wire.JobSpec{Name: "refused-on-the-minority", Image: "gantry/toolbox", Command: []string{"true"}})
	cancel()
	if err == nil {
		t.Fatal("a write on the cut-off node was acknowledged")
	}
	if strings.Contains(err.Error(), "may still take effect") {
		t.Fatalf("a write that never left the cut-off node is reported as unknown: %v", err)
	}
	t.Logf("write on the leaderless minority refused: %v", err)

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
	// the refused write exists nowhere, and the one whose outcome was
	// unknown exists at most once. (Its request can still be on its way,
	// retransmitted by TCP, so nodes may for a moment differ on it.)
	for _, id := range append([]string{before.ID}, during...) {
		gantrytest.Eventually(t, 60*time.Second, func() bool {
			_, err := minority.Client().Job(ctx, id)
			return err == nil
		}, "job %s on the healed node", id)
	}
	// The minority has caught up once it has a write made after healing.
	var after string
	gantrytest.Eventually(t, 30*time.Second, func() bool {
		j, err := leader.Client().Submit(ctx, wire.JobSpec{Name: "after-heal", Image: "gantry/toolbox", Command: []string{"true"}})
		if err == nil {
			after = j.ID
		}
		return err == nil
	}, "a write after healing")
	gantrytest.Eventually(t, 60*time.Second, func() bool {
		_, err := minority.Client().Job(ctx, after)
		return err == nil
	}, "the healed node to see a write made after healing")
	inFlight := -1
	for _, n := range c.Nodes {
		jobs, _, err := n.Client().Jobs(ctx, map[string][]string{"limit": {"1000"}})
		if err != nil {
			t.Fatal(err)
		}
		seen := 0
		for _, j := range jobs {
			switch j.Spec.Name {
			case "refused-on-the-minority":
				t.Fatalf("node %s has the write refused during the partition: %s", n.Name, j.ID)
			case "in-flight-on-the-minority":
				if !inFlightUnknown {
					t.Fatalf("node %s has a write that was reported refused: %s", n.Name, j.ID)
				}
				seen++
			}
		}
		if seen > 1 {
			t.Fatalf("node %s has the in-flight write %d times", n.Name, seen)
		}
		inFlight = max(inFlight, seen)
		if want := 2 + len(during) + seen; len(jobs) != want {
			t.Fatalf("node %s lists %d jobs, want %d", n.Name, len(jobs), want)
		}
	}
	t.Logf("the write whose outcome was unknown took effect: %v", inFlight == 1)
	// And it takes writes again.
	gantrytest.Eventually(t, 30*time.Second, func() bool {
		_, err := minority.Client().Submit(ctx, wire.JobSpec{Name: "after", Image: "gantry/toolbox", Command: []string{"true"}})
		return err == nil
	}, "the healed node to accept writes again")
}
