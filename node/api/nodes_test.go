package api

import (
	"context"
	"slices"
	"testing"

	"gantry/store"
	"gantry/wire"
)

// TestNodeViewListsDevicesAndWhoHoldsThem: GET /nodes/NAME and GET /nodes
// show each GPU of a node with its mode and how many attempts hold it; the
// holding attempts are shown to an admin and to their owner, not to
// another user. The devices are stand-in ids: no GPU is needed.
func TestNodeViewListsDevicesAndWhoHoldsThem(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.must(ignore(store.CmdUpsertNode.Propose(ctx, f.direct, store.UpsertNode{Node: store.Node{Name: "g1", Addr: "127.0.0.1:3", APIAddr: "127.0.0.1:4",
		Capacity: store.Resources{CPU: 4000, Memory: 8 << 30},
		Devices:  []store.Device{{ID: "/dev/zero", Mode: store.DevicePath}, {ID: "/dev/full", Mode: store.DevicePath, Shareable: true}}}})))
	spec := store.JobSpec{Image: "gantry/toolbox", GPUs: 1}
	spec.Defaults()
	j, err := store.CmdSubmitJob.Propose(ctx, f.direct, store.SubmitJob{ID: "01JOBALICEGPU0000000000000", Owner: "alice", Spec: spec})
	f.must(err)
	f.must(ignore(store.CmdPlace.Propose(ctx, f.direct, store.Place{Placements: []store.Placement{{JobID: j.ID, Task: 0, Node: "g1"}}})))
	held := []wire.AttemptRef{{JobID: j.ID, Task: 0, N: 1}}

	for _, tc := range []struct {
		who     role
		holders []wire.AttemptRef
	}{{owner, held}, {admin, held}, {other, nil}} {
		t.Run(string(tc.who)+" sees the devices and the holders it may see", func(t *testing.T) {
			n := decodeAs[wire.Node](t, f.do(tc.who, "GET", "/api/v1/nodes/g1", nil))
			if n.Name != "g1" || n.Capacity.GPUs != 2 || len(n.Devices) != 2 {
				t.Fatalf("node %+v", n)
			}
			d0, d1 := n.Devices[0], n.Devices[1]
			if d0.ID != "/dev/zero" || d0.Mode != wire.DevicePath || d0.InUse != 1 || !slices.Equal(d0.Holders, tc.holders) {
				t.Fatalf("first device %+v, want held by %v", d0, tc.holders)
			}
			if d1.ID != "/dev/full" || !d1.Shareable || d1.InUse != 0 || d1.Holders != nil {
				t.Fatalf("second device %+v", d1)
			}
			if n.DevicesInUse() != 1 {
				t.Fatalf("devices in use %d, want 1", n.DevicesInUse())
			}
			l := decodeAs[wire.NodeList](t, f.do(tc.who, "GET", "/api/v1/nodes", nil))
			i := slices.IndexFunc(l.Nodes, func(n wire.Node) bool { return n.Name == "g1" })
			if i < 0 || !slices.Equal(l.Nodes[i].Devices[0].Holders, tc.holders) || l.Nodes[i].Devices[0].InUse != 1 {
				t.Fatalf("node list %+v", l.Nodes)
			}
		})
	}
	t.Run("the task view shows the attempt's devices", func(t *testing.T) {
		d := decodeAs[wire.TaskDetail](t, f.do(owner, "GET", "/api/v1/jobs/"+j.ID+"/tasks/0", nil))
		if len(d.AttemptList) != 1 || !slices.Equal(d.AttemptList[0].Devices, []string{"/dev/zero"}) {
			t.Fatalf("attempts %+v", d.AttemptList)
		}
	})
	t.Run("a node that does not exist is not found", func(t *testing.T) {
		wantError(t, f.do(owner, "GET", "/api/v1/nodes/zz", nil), 404, wire.CodeNotFound, `node "zz" not found`)
	})
	t.Run("a job asking for more GPUs than any node has is refused", func(t *testing.T) {
		wantError(t, f.do(owner, "POST", "/api/v1/jobs", map[string]any{"image": "gantry/toolbox", "gpus": 3}), 400, wire.CodeInvalid, "gpus: 3 per task")
	})
}
