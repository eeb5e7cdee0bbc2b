package runner

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"

	"gantry/node/firewall"
)

// TestUsersTasksAreIsolatedOnTheNetwork: a task reaches a port of another
// task of the same user, not one of another user's, and a task without
// network reaches nothing; containers never join Docker's shared default
// bridge, and a user's network goes once no container uses it.
func TestUsersTasksAreIsolatedOnTheNetwork(t *testing.T) {
	t.Parallel()
	n := newTestNode(t)
	srv, info := n.startListener()
	alices := NetworkName(testCluster, n.name, "alice")
	if string(info.HostConfig.NetworkMode) != alices || len(info.NetworkSettings.Networks) != 1 || info.NetworkSettings.Networks[alices] == nil {
		t.Fatalf("the server's networks: mode %s, %v; want only %s", info.HostConfig.NetworkMode, info.NetworkSettings.Networks, alices)
	}
	addr := info.NetworkSettings.Networks[alices].IPAddress + ":8080"

	dial := func(owner, net string) Result {
		s := n.spec("dial-"+owner+net, "dial", addr, "3")
		s.Owner, s.Network = owner, net
		n.rep.place(s)
		return n.waitResult(s.Key, 60*time.Second)
	}
	// The listener may need a moment after its container started.
	deadline := time.Now().Add(30 * time.Second)
	for r := dial("alice", ""); r.ExitCode != 0; r = dial("alice", "") {
		if time.Now().After(deadline) {
			t.Fatalf("alice's second task never reached her first: %+v", r)
		}
	}
	if r := dial("bob", ""); r.ExitCode != 1 {
		t.Errorf("bob's task dialling alice's: %+v, want exit 1 (unreachable)", r)
	}
	if r := dial("alice", NetworkNone); r.ExitCode != 1 {
		t.Errorf("a task without network dialling: %+v, want exit 1", r)
	}

	n.rep.cancel(srv.Key)
	n.waitResult(srv.Key, 30*time.Second)
	waitGone(t, n.r, srv.Key, 30*time.Second)
	waitNetworksGone(t, n, "alice", "bob")
}

// startListener starts alice's task listening on port 8080 for two
// minutes and returns its spec and its container.
func (n *testNode) startListener() (Spec, container.InspectResponse) {
	n.t.Helper()
	srv := n.spec("server", "listen", "8080", "120")
	n.rep.place(srv)
	st := n.waitStarted(srv.Key, 60*time.Second)
	info, err := n.r.docker.ContainerInspect(context.Background(), st.ContainerID)
	if err != nil {
		n.t.Fatal(err)
	}
	return srv, info
}

// waitNetworksGone prunes until the networks of owners on n are gone
// (Docker may hold a removed container's endpoint a moment longer; the
// runner prunes every minute, the test until the networks are gone) and
// checks their firewall guard rules went with them.
func waitNetworksGone(t *testing.T, n *testNode, owners ...string) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(20 * time.Second)
	for _, owner := range owners {
		name := NetworkName(testCluster, n.name, owner)
		nw, err := n.r.docker.NetworkInspect(ctx, name, network.InspectOptions{})
		if cerrdefs.IsNotFound(err) {
			continue // pruned already
		} else if err != nil {
			t.Fatalf("network %s: %v", name, err)
		}
		bridge := firewall.BridgeName(nw.ID, nw.Options)
		for {
			n.r.pruneNetworks(ctx, nil, true)
			_, err := n.r.docker.NetworkInspect(ctx, name, network.InspectOptions{})
			if cerrdefs.IsNotFound(err) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("network %s after its tasks ended and prunes: %v, want gone", name, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if n.r.guard.On() {
			for _, r := range firewall.List() {
				if strings.Contains(r, bridge+" ") {
					t.Errorf("firewall rule of the removed network %s's bridge left: %s", name, r)
				}
			}
		}
	}
}

// Two clusters made in the same minute have ids with the same time prefix
// (ULIDs); nodes of both on one Docker daemon, with the same node and user
// names, must still get networks of different names (a shared name made
// two networks of that name and failed every container start with
// "network ... is ambiguous").
func TestNetworkNamesOfClustersMadeAtOnceDiffer(t *testing.T) {
	a := NetworkName("01M8XDDC8Q0QY3W6GNB7Z1J5KA", "node1", "admin")
	b := NetworkName("01M8XDDC9R7T2V0XFJ4P8M3C6D", "node1", "admin")
	if a == b {
		t.Fatalf("clusters made at once share the network name %s", a)
	}
	if NetworkName("01M8XDDC8Q0QY3W6GNB7Z1J5KA", "node1", "admin") != a {
		t.Fatal("NetworkName is not stable")
	}
}

// TestUsersStayApartWhileBridgesAreCreated: Docker (20.10 and other
// releases with its DOCKER-ISOLATION chains) deletes and re-inserts the
// FORWARD chain's jump to its isolation rules whenever any bridge network
// is created on the host, by anyone; in between, the per-bridge "accept
// what leaves this bridge" rule lets one user's task connect to another's.
// With networks being created and removed all the while, bob's task tries
// alice's listener for eight seconds, a hundred tries a second, and must
// never get through; alice's own probe does.
func TestUsersStayApartWhileBridgesAreCreated(t *testing.T) {
	t.Parallel()
	n := newTestNode(t)
	ctx := context.Background()
	srv, info := n.startListener()
	addr := info.NetworkSettings.Networks[NetworkName(testCluster, n.name, "alice")].IPAddress + ":8080"
	probe := func(owner string) Result {
		s := n.spec("probe-"+owner, "probe", addr, "8")
		s.Owner = owner
		n.rep.place(s)
		return n.waitResult(s.Key, 90*time.Second)
	}
	if r := probe("alice"); r.ExitCode != 0 {
		t.Fatalf("alice's probe of her own listener: %+v, want exit 0", r)
	}

	// Bridges come and go on the host, as other users' first tasks, other
	// nodes on the same Docker and other software make them.
	stop := make(chan struct{})
	churned := make(chan int)
	go func() {
		made := 0
		defer func() { churned <- made }()
		labels := map[string]string{LabelManaged: "true", LabelCluster: testCluster, LabelNode: n.name}
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			c, err := n.r.docker.NetworkCreate(ctx, fmt.Sprintf("gantry-churn-%s-%d", n.name, i), network.CreateOptions{Driver: "bridge", Labels: labels})
			if err != nil {
				t.Errorf("create a bridge: %v", err)
				return
			}
			made++
			if err := n.r.docker.NetworkRemove(ctx, c.ID); err != nil {
				t.Errorf("remove a bridge: %v", err)
				return
			}
		}
	}()
	r := probe("bob")
	close(stop)
	made := <-churned
	t.Logf("%d bridges created and removed during bob's probe", made)
	if !n.r.guard.On() && os.Getenv("CI") == "true" {
		t.Errorf("the firewall guard is off (see the runner's log): the test needs iptables and root")
	}
	if r.ExitCode != 1 {
		t.Errorf("bob's probe of alice's listener while bridges were created: %+v, want exit 1 (never reached)", r)
	}
	if made < 5 {
		t.Errorf("only %d bridges were created during the probe; the test shows nothing", made)
	}
	n.rep.cancel(srv.Key)
	n.waitResult(srv.Key, 30*time.Second)
	waitGone(t, n.r, srv.Key, 30*time.Second)
	waitNetworksGone(t, n, "alice", "bob")
}
