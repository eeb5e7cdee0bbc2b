package runner

import (
	"context"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/network"
)

// TestUsersTasksAreIsolatedOnTheNetwork: a task reaches a port of another
// task of the same user, not one of another user's, and a task without
// network reaches nothing; containers never join Docker's shared default
// bridge, and a user's network goes once no container uses it.
func TestUsersTasksAreIsolatedOnTheNetwork(t *testing.T) {
	t.Parallel()
	n := newTestNode(t)
	ctx := context.Background()
	srv := n.spec("server", "listen", "8080", "120")
	n.rep.place(srv)
	st := n.waitStarted(srv.Key, 60*time.Second)
	info, err := n.r.docker.ContainerInspect(ctx, st.ContainerID)
	if err != nil {
		t.Fatal(err)
	}
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
	// Docker may hold a removed container's endpoint a moment longer; the
	// runner prunes every minute, the test until the networks are gone.
	deadline = time.Now().Add(20 * time.Second)
	for _, name := range []string{alices, NetworkName(testCluster, n.name, "bob")} {
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
