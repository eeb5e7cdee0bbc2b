package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"gantry/gantrytest"
	"gantry/wire"
)

// nodeList is `gantry node ls --output json` on n.
func nodeList(t *testing.T, n *gantrytest.Node) wire.NodeList {
	t.Helper()
	var l wire.NodeList
	if err := n.Client().Do(context.Background(), "GET", "/api/v1/nodes", nil, &l); err != nil {
		t.Fatalf("node ls on %s: %v", n.Name, err)
	}
	return l
}

func rolesOf(l wire.NodeList) map[string]string {
	out := map[string]string{}
	for _, n := range l.Nodes {
		out[n.Name] = n.Role
	}
	return out
}

// votesInForce counts the leader and the voters node ls shows.
func votesInForce(l wire.NodeList) int {
	v := 0
	for _, n := range l.Nodes {
		if n.Role == "leader" || n.Role == "voter" {
			v++
		}
	}
	return v
}

// TestNodeLsSaysWhoVotesDuringAJoin: node ls (JSON, through the real CLI)
// tells each node's Raft role and the failure tolerance while the cluster
// grows from one server to three, and never claims a tolerance the
// voters in force cannot give: a second server does not get a vote of its
// own (two voters tolerate no more than one), the third's arrival promotes
// both back to back.
func TestNodeLsSaysWhoVotesDuringAJoin(t *testing.T) {
	cl := gantrytest.StartCluster(t, 1)
	n1 := cl.Nodes[0]
	out, errOut, code := n1.Gantry(t, "node", "ls", "--output", "json")
	var one wire.NodeList
	if code != 0 || decodeJSON(out, &one) != nil || one.Voters != 1 || one.FailureTolerance != 0 || rolesOf(one)["node1"] != "leader" {
		t.Fatalf("one node: exit %d %s %s", code, out, errOut)
	}
	cl.JoinThrough(t, n1, "node2", gantrytest.Options{})
	gantrytest.Eventually(t, 30*time.Second, func() bool { return len(nodeList(t, n1).Nodes) == 2 }, "node2 registered")
	two := nodeList(t, n1)
	if r := rolesOf(two); r["node2"] != "nonvoter" || r["node1"] != "leader" || two.Voters != 1 || two.FailureTolerance != 0 {
		t.Fatalf("two servers: roles %v voters %d tolerance %d; want node2 a non-voter (one voter kept)", r, two.Voters, two.FailureTolerance)
	}
	// Watch node ls while the third joins: the tolerance it claims is
	// always what the voters in force give.
	stop := make(chan struct{})
	seen := make(chan []string, 1)
	go func() {
		var steps []string
		last := ""
		for {
			select {
			case <-stop:
				seen <- steps
				return
			default:
			}
			var l wire.NodeList
			if err := n1.Client().Do(context.Background(), "GET", "/api/v1/nodes", nil, &l); err == nil {
				step := fmt.Sprintf("voters=%d tolerance=%d roles=%v", l.Voters, l.FailureTolerance, sortedRoles(l))
				if step != last {
					steps = append(steps, step)
					last = step
				}
				if max(votesInForce(l)-(votesInForce(l)/2+1), 0) < l.FailureTolerance {
					steps = append(steps, "CLAIMED MORE THAN IN FORCE: "+step)
				}
			}
			time.Sleep(20 * time.Millisecond) // the sampling interval, not a wait for a state
		}
	}()
	start := time.Now()
	cl.JoinThrough(t, n1, "node3", gantrytest.Options{})
	var promoted time.Duration
	gantrytest.Eventually(t, 30*time.Second, func() bool {
		l := nodeList(t, n1)
		ok := l.Voters == 3 && l.FailureTolerance == 1 && votesInForce(l) == 3
		if ok && promoted == 0 {
			promoted = time.Since(start)
		}
		return ok
	}, "three voters in force")
	close(stop)
	steps := <-seen
	t.Logf("node ls during the third join:\n  %s", strings.Join(steps, "\n  "))
	t.Logf("third server started and both joiners voting %s later", promoted.Round(time.Millisecond))
	for _, s := range steps {
		if strings.HasPrefix(s, "CLAIMED") {
			t.Fatalf("node ls claimed a failure tolerance the voters in force do not give: %s", s)
		}
		if strings.Contains(s, "voters=2 ") && strings.Contains(s, "tolerance=1") {
			t.Fatalf("two voters never tolerate a failure: %s", s)
		}
	}
	h, err := cl.Nodes[2].Health()
	if err != nil || h.Voters != 3 || h.FailureTolerance != 1 || (h.Role != "voter" && h.Role != "leader") {
		t.Fatalf("node3's /healthz %+v %v", h, err)
	}
	if b := serverLog(t, cl.Nodes[2]); !strings.Contains(b, "Joined the cluster as node node3: role") {
		t.Fatalf("node3 did not say its role when it joined:\n%s", b)
	}
}

func decodeJSON(s string, v any) error { return json.Unmarshal([]byte(s), v) }

func serverLog(t *testing.T, n *gantrytest.Node) string {
	t.Helper()
	b, err := os.ReadFile(n.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func sortedRoles(l wire.NodeList) []string {
	var out []string
	for _, n := range l.Nodes {
		out = append(out, n.Name+":"+n.Role)
	}
	sort.Strings(out)
	return out
}

// TestLeaderKilledRightAfterJoin: 20 times in a row, a fresh server joins
// (the cluster promotes it), and the moment node ls shows three voters
// the leader is killed with SIGKILL; every time a write sent to a
// survivor is accepted within the bound. The dead leader is then removed
// and the next round's fresh server takes its place.
func TestLeaderKilledRightAfterJoin(t *testing.T) {
	const rounds, bound = 20, 3 * time.Second
	cl := gantrytest.StartCluster(t, 3)
	var times []time.Duration
	next := 4
	for round := 1; round <= rounds; round++ {
		leader := cl.Leader(t, 20*time.Second)
		var survivor *gantrytest.Node
		for _, n := range cl.Nodes {
			if n != leader && n.Running() {
				survivor = n
				break
			}
		}
		leader.Kill9(t)
		killed := time.Now()
		c := survivor.Client()
		for {
			ctx, cancel := context.WithTimeout(context.Background(), bound)
			_, err := c.Submit(ctx, wire.JobSpec{Image: "gantry/toolbox", Command: []string{"true"}, CPU: 10, Memory: 32 << 20})
			cancel()
			if err == nil {
				break
			}
			if time.Since(killed) > bound {
				t.Fatalf("round %d: no write accepted %s after leader %s was killed: %v", round, bound, leader.Name, err)
			}
		}
		d := time.Since(killed)
		times = append(times, d)
		t.Logf("round %d: leader %s killed, a write accepted on %s after %s", round, leader.Name, survivor.Name, d.Round(time.Millisecond))
		if round == rounds {
			break
		}
		if _, errOut, code := survivor.Gantry(t, "node", "remove", leader.Name); code != 0 {
			t.Fatalf("remove %s: %s", leader.Name, errOut)
		}
		cl.Nodes = without(cl.Nodes, leader)
		fresh := cl.JoinThrough(t, survivor, fmt.Sprintf("node%d", next), gantrytest.Options{})
		next++
		gantrytest.Eventually(t, 60*time.Second, func() bool {
			l := nodeList(t, fresh)
			return votesInForce(l) == 3 && l.FailureTolerance == 1
		}, "three voters in force after %s joined", fresh.Name)
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	t.Logf("leader kill -> write accepted, %d rounds: median %s, max %s", len(times), times[len(times)/2].Round(time.Millisecond), times[len(times)-1].Round(time.Millisecond))
}

func without(ns []*gantrytest.Node, x *gantrytest.Node) []*gantrytest.Node {
	var out []*gantrytest.Node
	for _, n := range ns {
		if n != x {
			out = append(out, n)
		}
	}
	return out
}
