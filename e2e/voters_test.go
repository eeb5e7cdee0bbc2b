package e2e

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"gantry/gantrytest"
	"gantry/wire"
)

// voters returns the Raft configuration as name → voter, read through via.
func voters(via *gantrytest.Node) (map[string]bool, error) {
	var m struct {
		Members []struct {
			ID    string `json:"id"`
			Voter bool   `json:"voter"`
		} `json:"members"`
	}
	if err := via.Client().Do(context.Background(), "GET", "/api/v1/cluster/members", nil, &m); err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, x := range m.Members {
		out[x.ID] = x.Voter
	}
	return out, nil
}

func voterNames(cfg map[string]bool) []string {
	var v []string
	for id, ok := range cfg {
		if ok {
			v = append(v, id)
		}
	}
	sort.Strings(v)
	return v
}

// waitConfig waits until the configuration read through via satisfies cond.
func waitConfig(t *testing.T, via *gantrytest.Node, timeout time.Duration, what string, cond func(map[string]bool) bool) {
	t.Helper()
	var last map[string]bool
	gantrytest.Eventually(t, timeout, func() bool {
		cfg, err := voters(via)
		if err != nil {
			return false
		}
		last = cfg
		return cond(cfg)
	}, "%s (last configuration: %v)", what, lazy(func() string { return fmt.Sprint(last) }))
}

// lazy is formatted when the message is, so it can show the last state seen.
type lazy func() string

func (l lazy) String() string { return l() }

// acceptsWrites submits a job through n and fails the test unless it is
// acknowledged (committed by a quorum) within timeout.
func acceptsWrites(t *testing.T, n *gantrytest.Node, timeout time.Duration, label string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var err error
	for ctx.Err() == nil {
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		_, err = n.Client().Submit(cctx, wire.JobSpec{Image: "gantry/toolbox", Command: []string{"echo", label}, CPU: 100, Memory: 32 << 20})
		ccancel()
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond): // between attempts, not a wait for a state
		}
	}
	t.Fatalf("%s: no write acknowledged through %s within %s: %v", label, n.Name, timeout, err)
}

// TestClusterReplacesDeadVoters: with three voters and a caught-up spare, a
// voter that dies is demoted and the spare promoted, so the cluster still
// takes writes after losing two of its three original voters one after the
// other (without the replacement the second loss would cost the quorum); a
// dead node that comes back is promoted again in place of the next dead
// voter.
func TestClusterReplacesDeadVoters(t *testing.T) {
	cl := gantrytest.StartCluster(t, 4)
	leader := cl.Leader(t, 10*time.Second)
	cfg, err := voters(leader)
	if err != nil {
		t.Fatal(err)
	}
	var spare string
	var followers []*gantrytest.Node
	for _, n := range cl.Nodes {
		switch {
		case !cfg[n.Name]:
			spare = n.Name
		case n.Name != leader.Name:
			followers = append(followers, n)
		}
	}
	if spare == "" || len(followers) != 2 {
		t.Fatalf("want 3 voters and a spare, got %v", cfg)
	}
	first, second := followers[0], followers[1]

	first.Kill9(t)
	waitConfig(t, leader, 60*time.Second, fmt.Sprintf("%s demoted and %s promoted", first.Name, spare), func(c map[string]bool) bool {
		return !c[first.Name] && c[spare] && len(voterNames(c)) == 3
	})
	acceptsWrites(t, leader, 10*time.Second, "after the first voter died")

	second.Kill9(t)
	// Leader and spare are two of the three voters: still a quorum.
	acceptsWrites(t, leader, 10*time.Second, "after the second voter died")

	first.Restart(t)
	waitConfig(t, leader, 90*time.Second, fmt.Sprintf("%s promoted again in place of %s", first.Name, second.Name), func(c map[string]bool) bool {
		return c[first.Name] && !c[second.Name] && len(voterNames(c)) == 3
	})
	acceptsWrites(t, first, 10*time.Second, "through the returned node")
}

// TestClusterFiveVoters: GANTRY_VOTERS=5 keeps five voters, and the cluster
// keeps taking writes with two of them dead.
func TestClusterFiveVoters(t *testing.T) {
	cl := gantrytest.StartCluster(t, 5, gantrytest.Options{Env: []string{"GANTRY_VOTERS=5"}})
	cl.WaitVoters(t, 5, 60*time.Second)
	leader := cl.Leader(t, 10*time.Second)
	killed := 0
	for _, n := range cl.Nodes {
		if n.Name != leader.Name && killed < 2 {
			n.Kill9(t)
			killed++
		}
	}
	acceptsWrites(t, leader, 15*time.Second, "with two of five voters dead")
	cfg, err := voters(leader)
	if err != nil {
		t.Fatal(err)
	}
	// No spare to promote: the dead stay voters (demoting them would not
	// make the cluster any safer).
	if got := voterNames(cfg); len(got) != 5 {
		t.Fatalf("voters = %v, want all five", got)
	}
}
