package e2e

import (
	"context"
	"io/fs"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"gantry/gantrytest"
	"gantry/wire"
)

// standInGPUs picks four host device files to declare as the node's
// "GPUs". THEY ARE STAND-INS: no GPU exists on the machines these tests run
// on. Path mode passes a host device to the container at the same path, so
// a container sees a stand-in only if it was given it. That rules out
// /dev/zero, /dev/full, /dev/random and /dev/urandom: Docker gives those to
// every container, so they could not prove anything. The host's virtual
// consoles (/dev/ttyN) are in no container by default; the others are
// fallbacks for hosts without them. The tasks only stat them.
func standInGPUs(t *testing.T) []string {
	t.Helper()
	var candidates []string
	for _, n := range []string{"1", "2", "3", "4", "5", "6", "7", "8"} {
		candidates = append(candidates, "/dev/tty"+n)
	}
	candidates = append(candidates, "/dev/loop-control", "/dev/cpu_dma_latency", "/dev/hwrng", "/dev/kmsg")
	var out []string
	for _, p := range candidates {
		if st, err := os.Stat(p); err == nil && st.Mode()&fs.ModeDevice != 0 {
			out = append(out, p)
			if len(out) == 4 {
				return out
			}
		}
	}
	gantrytest.Require(t, false, "four host device files to stand in for GPUs (tried "+strings.Join(candidates, ", ")+"); found "+strings.Join(out, ", "))
	return nil
}

// TestGPUsAreAssignedByDevice: a node declaring four stand-in GPUs (device
// paths, see standInGPUs) runs two 2-GPU tasks at once, each container
// seeing exactly its two devices (and not the other two) and told them in
// GANTRY_GPUS, as its attempt records; a third 2-GPU task waits until one
// of them ends. node ls and node show say which devices are held.
func TestGPUsAreAssignedByDevice(t *testing.T) {
	t.Parallel()
	gpus := standInGPUs(t)
	n := gantrytest.Start(t, gantrytest.Options{Args: []string{"--gpu", strings.Join(gpus[:2], ","), "--gpu", strings.Join(gpus[2:], ",")}})
	ctx := context.Background()
	alice, _ := n.CreateUser(t, "alice")

	const hold = "8" // seconds each task holds its devices
	spec := wire.JobSpec{Image: "gantry/toolbox", Command: append([]string{"devices", hold}, gpus...), GPUs: 2, CPU: 100, Memory: 32 << 20}
	a := submit(t, alice, spec)
	b := submit(t, alice, spec)
	c := submit(t, alice, spec)

	running := func(id string) bool {
		td, err := alice.Task(ctx, id, 0)
		return err == nil && td.State == wire.StateRunning
	}
	gantrytest.Eventually(t, time.Minute, func() bool { return running(a.ID) && running(b.ID) }, "two 2-GPU tasks running at once on a node with four stand-in GPUs")

	t.Run("while both run, the third waits and every device is held", func(t *testing.T) {
		if td, err := alice.Task(ctx, c.ID, 0); err != nil || td.State != wire.StateQueued {
			t.Fatalf("the third 2-GPU task: %+v %v; want it queued while all four devices are held", td, err)
		}
		out, errOut, code := n.GantryAs(t, alice.Token, "node", "ls")
		if code != 0 || !strings.Contains(out, "GPUS") || !strings.Contains(out, " 4/4 ") {
			t.Fatalf("node ls: code %d\n%s%s", code, out, errOut)
		}
		out, errOut, code = n.GantryAs(t, alice.Token, "node", "show", n.Name)
		if code != 0 || !strings.Contains(out, "GPUs 4/4 in use") || !strings.Contains(out, a.ID) || !strings.Contains(out, b.ID) {
			t.Fatalf("node show: code %d\n%s%s", code, out, errOut)
		}
	})

	for _, j := range []*wire.Job{a, b, c} {
		if j = waitJob(t, alice, j.ID, 2*time.Minute); j.State != wire.StateSucceeded {
			t.Fatalf("job %s %s: %s", j.ID, j.State, j.Message)
		}
	}
	att := map[string]wire.Attempt{}
	for _, j := range []*wire.Job{a, b, c} {
		td, err := alice.Task(ctx, j.ID, 0)
		if err != nil || len(td.AttemptList) != 1 {
			t.Fatalf("task of %s: %+v %v", j.ID, td, err)
		}
		att[j.ID] = td.AttemptList[0]
	}

	t.Run("each container saw exactly the two devices its attempt records", func(t *testing.T) {
		for _, j := range []*wire.Job{a, b, c} {
			got := att[j.ID].Devices
			if len(got) != 2 {
				t.Fatalf("attempt of %s records devices %v, want 2", j.ID, got)
			}
			var want strings.Builder
			for _, p := range gpus {
				state := "absent"
				if slices.Contains(got, p) {
					state = "present"
				}
				want.WriteString(p + " " + state + "\n")
			}
			want.WriteString("GANTRY_GPUS=" + strings.Join(got, ",") + "\n")
			if log := logOf(t, alice, j.ID, 0); !strings.HasPrefix(log, want.String()) {
				t.Fatalf("job %s with devices %v printed\n%s\nwant\n%s", j.ID, got, log, want.String())
			}
		}
	})

	t.Run("the two tasks that ran together had the four devices between them", func(t *testing.T) {
		da, db := att[a.ID].Devices, att[b.ID].Devices
		all := append(slices.Clone(da), db...)
		slices.Sort(all)
		want := slices.Clone(gpus)
		slices.Sort(want)
		if !slices.Equal(all, want) {
			t.Fatalf("devices %v and %v, want the four stand-ins %v each once", da, db, gpus)
		}
		if !slices.Equal(da, gpus[:2]) {
			t.Fatalf("the first task got %v, want the two lowest devices %v", da, gpus[:2])
		}
		ra, rb := att[a.ID], att[b.ID]
		if !ra.Started.Before(rb.Ended) || !rb.Started.Before(ra.Ended) {
			t.Fatalf("the first two did not run at once: %s-%s and %s-%s", ra.Started, ra.Ended, rb.Started, rb.Ended)
		}
	})

	t.Run("the third was placed only once one of them had ended", func(t *testing.T) {
		first := att[a.ID].Ended
		if att[b.ID].Ended.Before(first) {
			first = att[b.ID].Ended
		}
		if rc := att[c.ID]; rc.Scheduled.Before(first) {
			t.Fatalf("third task placed at %s, before either of the first two ended (first end %s)", rc.Scheduled, first)
		}
	})

	t.Run("the devices are free again", func(t *testing.T) {
		nd, err := alice.Node(ctx, n.Name)
		if err != nil || len(nd.Devices) != 4 || nd.DevicesInUse() != 0 {
			t.Fatalf("node %+v %v", nd, err)
		}
	})
}
