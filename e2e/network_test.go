package e2e

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"gantry/gantrytest"
	hostfw "gantry/node/firewall"
	"gantry/wire"
)

// TestTasksReachOnlyTheirOwnersTasks: through the real server and Docker,
// a task reaches a port of its owner's other task, another user's task
// cannot, and a task submitted with network "none" reaches nothing; no
// container is on Docker's shared default bridge (the runner's own test
// shows a network goes once unused).
func TestTasksReachOnlyTheirOwnersTasks(t *testing.T) {
	t.Parallel()
	n := gantrytest.Start(t)
	alice, _ := n.CreateUser(t, "alice")
	bob, _ := n.CreateUser(t, "bob")
	ctx := context.Background()
	srv := submit(t, alice, wire.JobSpec{Image: "gantry/toolbox", Command: []string{"listen", "8080", "300"}, Memory: 32 << 20, CPU: 100})
	var ip, mode string
	gantrytest.Eventually(t, 60*time.Second, func() bool {
		out, err := exec.Command("docker", "ps", "-q", "--filter", "label=gantry.job="+srv.ID).Output()
		if err != nil || len(strings.Fields(string(out))) != 1 {
			return false
		}
		out, err = exec.Command("docker", "inspect", "-f", "{{.HostConfig.NetworkMode}} {{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", strings.TrimSpace(string(out))).Output()
		f := strings.Fields(string(out))
		if err != nil || len(f) != 2 {
			return false
		}
		mode, ip = f[0], f[1]
		return true
	}, "alice's listening task running with an address")
	if !strings.HasSuffix(mode, "-u-alice") {
		t.Fatalf("alice's task is on network %q, want her own", mode)
	}
	// Her network's bridge has the node's own firewall rules (Docker's
	// open for a moment whenever a network is created on the host).
	out, err := exec.Command("docker", "network", "inspect", "-f", "{{.Id}}", mode).Output()
	if err != nil {
		t.Fatalf("docker network inspect %s: %v", mode, err)
	}
	bridge := hostfw.BridgeName(strings.TrimSpace(string(out)), nil)
	if rules := strings.Join(hostfw.List(), "\n"); !strings.Contains(rules, "-i br-+ -o "+bridge+" -j DROP") {
		t.Errorf("no firewall guard rule for alice's bridge %s; the chain holds:\n%s", bridge, rules)
	}
	dial := func(c interface {
		Submit(context.Context, wire.JobSpec) (*wire.Job, error)
	}, network string) *wire.Job {
		j, err := c.Submit(ctx, wire.JobSpec{Image: "gantry/toolbox", Command: []string{"dial", ip + ":8080", "3"}, Memory: 32 << 20, CPU: 100, Network: network})
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	// Her listener may need a moment after its container started.
	gantrytest.Eventually(t, 60*time.Second, func() bool {
		return waitJob(t, alice, dial(alice, "").ID, time.Minute).State == wire.StateSucceeded
	}, "alice's second task reaching her first")
	if j := waitJob(t, bob, dial(bob, "").ID, time.Minute); j.State != wire.StateFailed || !strings.Contains(logOf(t, bob, j.ID, 0), "unreachable") {
		t.Errorf("bob's task dialling alice's: %s %q, want failed, unreachable", j.State, logOf(t, bob, j.ID, 0))
	}
	if j := waitJob(t, alice, dial(alice, "none").ID, time.Minute); j.State != wire.StateFailed {
		t.Errorf("alice's task without network: %s, want failed", j.State)
	}
	if out, err := exec.Command("docker", "network", "inspect", "bridge", "-f", "{{range .Containers}}{{.Name}} {{end}}").Output(); err != nil || strings.Contains(string(out), "gantry-") {
		t.Errorf("Gantry containers on the default bridge: %q %v", out, err)
	}
	if _, err := alice.Cancel(ctx, srv.ID); err != nil {
		t.Fatal(err)
	}
	waitJob(t, alice, srv.ID, time.Minute)
}
