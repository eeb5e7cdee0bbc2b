package gantrytest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"gantry/client"
)

// Cluster is several gantry server processes on loopback forming one
// cluster: node 1 bootstraps it, the others join with the command it
// printed.
type Cluster struct {
	t     testing.TB
	Nodes []*Node
	// JoinCommand is the command node 1 printed on first start.
	JoinCommand string
	// Join and Token are its --join and --token arguments.
	Join, Token string
}

var joinLine = regexp.MustCompile(`Join command:\s+gantry server --join (\S+) --token`)

// HostPerNode as Options.Host gives node i of a cluster the loopback
// address 127.0.0.(10+i), so a test can cut one node off with firewall rules.
const HostPerNode = "per-node"

// StartCluster starts an n-node cluster and waits until every node is a
// member and registered as ready. Nodes are named node1..nodeN.
func StartCluster(t testing.TB, n int, opts ...Options) *Cluster {
	t.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	o.Name = "node1"
	perNode := o.Host == HostPerNode
	if perNode {
		o.Host = "127.0.0.11"
	}
	first := Start(t, o)
	c := &Cluster{t: t, Nodes: []*Node{first}}
	b, err := os.ReadFile(first.LogPath)
	if err != nil {
		t.Fatalf("read node1 log: %v", err)
	}
	m := joinLine.FindSubmatch(b)
	if m == nil {
		t.Fatalf("node1 printed no join command; its output:\n%s", b)
	}
	// The token itself is never printed: the first start writes it to a
	// file of the data directory.
	tok, err := os.ReadFile(filepath.Join(first.DataDir, "join-token"))
	if err != nil {
		t.Fatalf("node1 wrote no join token: %v", err)
	}
	c.Join, c.Token = string(m[1]), strings.TrimSpace(string(tok))
	c.JoinCommand = "gantry server --join " + c.Join + " --token " + c.Token
	for i := 2; i <= n; i++ {
		jo := o
		jo.Name = fmt.Sprintf("node%d", i)
		jo.DataDir = ""
		if perNode {
			jo.Host = fmt.Sprintf("127.0.0.%d", 10+i)
		}
		jo.Args = append(append([]string(nil), o.Args...), "--join", c.Join, "--token", c.Token)
		c.Nodes = append(c.Nodes, c.StartJoiner(t, jo))
	}
	c.WaitReady(t, n, 60*time.Second)
	want := 3
	for _, e := range o.Env {
		if v, ok := strings.CutPrefix(e, "GANTRY_VOTERS="); ok {
			if x, err := strconv.Atoi(v); err == nil {
				want = x
			}
		}
	}
	c.WaitVoters(t, min(n, want), 60*time.Second)
	return c
}

// WaitVoters waits until the Raft configuration has want voters (new nodes
// join as non-voters and are promoted once caught up).
func (c *Cluster) WaitVoters(t testing.TB, want int, timeout time.Duration) {
	t.Helper()
	Eventually(t, timeout, func() bool {
		var m struct {
			Members []struct {
				Voter bool `json:"voter"`
			} `json:"members"`
		}
		if err := c.Nodes[0].Client().Do(context.Background(), "GET", "/api/v1/cluster/members", nil, &m); err != nil {
			return false
		}
		v := 0
		for _, x := range m.Members {
			if x.Voter {
				v++
			}
		}
		return v == want
	}, "%d voters", want)
}

// JoinThrough starts a fresh node named name that joins the cluster through
// member, with the cluster's join token.
func (c *Cluster) JoinThrough(t testing.TB, member *Node, name string, o Options) *Node {
	t.Helper()
	o.Name, o.DataDir = name, ""
	o.Args = append(append([]string(nil), o.Args...), "--join", member.HTTPAddr, "--token", c.Token)
	n := c.StartJoiner(t, o)
	c.Nodes = append(c.Nodes, n)
	return n
}

// StartJoiner starts one more node with the given options (whose Args carry
// --join and --token) and waits until it serves. It gets node 1's admin token.
func (c *Cluster) StartJoiner(t testing.TB, o Options) *Node {
	t.Helper()
	n := newNode(t, o)
	n.AdminToken, n.ClusterID = c.Nodes[0].AdminToken, c.Nodes[0].ClusterID
	n.Restart(t)
	return n
}

// TryStart runs `gantry server` with args (plus fresh ports and data dir)
// and reports whether it exited within timeout, with its output. It is for
// joins that must fail; a process still running at the deadline is killed.
func TryStart(t testing.TB, timeout time.Duration, args ...string) (exited bool, output string) {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	full := append([]string{"server", "--data", dir, "--name", "intruder",
		"--http", fmt.Sprintf("127.0.0.1:%d", FreePort(t)), "--cluster", fmt.Sprintf("127.0.0.1:%d", FreePort(t))}, args...)
	cmd := exec.CommandContext(ctx, Binary(t), full...)
	cmd.Env = append(os.Environ(), "GANTRY_ADMIN_PASSWORD=admin-password-123")
	out, err := cmd.CombinedOutput()
	return ctx.Err() == nil && err != nil, string(out)
}

// Node returns the node with this name.
func (c *Cluster) Node(name string) *Node {
	for _, n := range c.Nodes {
		if n.Name == name {
			return n
		}
	}
	c.t.Fatalf("no node %s in the cluster", name)
	return nil
}

// Leader finds the current leader among the running nodes, waiting up to
// timeout for one that all running nodes agree on.
func (c *Cluster) Leader(t testing.TB, timeout time.Duration) *Node {
	t.Helper()
	var leader *Node
	Eventually(t, timeout, func() bool {
		leader = nil
		names := map[string]bool{}
		for _, n := range c.Nodes {
			if !n.Running() {
				continue
			}
			h, err := n.Health()
			if err != nil {
				return false
			}
			names[h.LeaderName] = true
			if h.Leader {
				leader = n
			}
		}
		return leader != nil && len(names) == 1
	}, "the running nodes agree on a leader")
	return leader
}

// Followers are the running nodes other than the leader.
func (c *Cluster) Followers(t testing.TB) []*Node {
	t.Helper()
	l := c.Leader(t, 20*time.Second)
	var out []*Node
	for _, n := range c.Nodes {
		if n != l && n.Running() {
			out = append(out, n)
		}
	}
	return out
}

// WaitReady waits until node 1's view (or any running node's) lists want
// nodes in state ready.
func (c *Cluster) WaitReady(t testing.TB, want int, timeout time.Duration) {
	t.Helper()
	Eventually(t, timeout, func() bool {
		for _, n := range c.Nodes {
			if !n.Running() {
				continue
			}
			nodes, err := n.Client().Nodes(context.Background())
			if err != nil {
				return false
			}
			ready := 0
			for _, x := range nodes {
				if x.State == "ready" {
					ready++
				}
			}
			return ready == want
		}
		return false
	}, "%d ready nodes", want)
}

// NodeStates returns name -> state as a running node sees them.
func (c *Cluster) NodeStates(t testing.TB, via *Node) map[string]string {
	t.Helper()
	nodes, err := via.Client().Nodes(context.Background())
	if err != nil {
		t.Fatalf("list nodes: %v", err)
	}
	out := map[string]string{}
	for _, x := range nodes {
		out[x.Name] = x.State
	}
	return out
}

// Health is a node's /healthz answer.
type Health struct {
	Leader           bool   `json:"leader"`
	LeaderName       string `json:"leader_name"`
	Role             string `json:"role"`
	Voters           int    `json:"voters"`
	FailureTolerance int    `json:"failure_tolerance"`
}

// Health asks a node who leads.
func (n *Node) Health() (Health, error) {
	var h Health
	hc := &http.Client{Timeout: 2 * time.Second}
	resp, err := hc.Get(n.URL + "/healthz")
	if err != nil {
		return h, err
	}
	defer resp.Body.Close()
	err = json.NewDecoder(resp.Body).Decode(&h)
	return h, err
}

// ClientAs is a client for this node with another token.
func (n *Node) ClientAs(token string) *client.Client { return client.New(n.URL, token) }

// Metric is the value of the first series named name on the node's
// /metrics (read as admin); the test fails when there is none.
func (n *Node) Metric(t testing.TB, name string) float64 {
	t.Helper()
	req, _ := http.NewRequest("GET", n.URL+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+n.AdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return v
		}
	}
	t.Fatalf("/metrics of %s has no %s", n.Name, name)
	return 0
}
