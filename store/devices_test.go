package store

import (
	"slices"
	"testing"
	"time"
)

// The "GPUs" of these tests are stand-in device ids: no GPU is needed.

func (f *fsm) gpuNode(name string, devices ...Device) {
	f.t.Helper()
	f.must(CmdUpsertNode, UpsertNode{Node: Node{Name: name, Capacity: Resources{CPU: 64000, Memory: 64 << 30}, Devices: devices}})
}

func (f *fsm) devicesOf(job string, task, n int) []string {
	f.t.Helper()
	a, err := f.st.Attempt(job, task, n)
	if err != nil {
		f.t.Fatal(err)
	}
	return a.Devices
}

// holders maps each device id of the node to the attempts holding it.
func (f *fsm) holders(node string) map[string][]string {
	f.t.Helper()
	n, err := f.st.Node(node)
	if err != nil {
		f.t.Fatal(err)
	}
	out := map[string][]string{}
	for _, d := range n.Devices {
		for _, h := range d.Holders {
			out[d.ID] = append(out[d.ID], h.String())
		}
	}
	return out
}

func nvidia(ids ...string) []Device {
	out := make([]Device, len(ids))
	for i, id := range ids {
		out[i] = Device{ID: id, Mode: DeviceNVIDIA}
	}
	return out
}

func TestDevicesAreAssignedLowestFirstAndNeverTwice(t *testing.T) {
	f := newFSM(t)
	f.gpuNode("g", nvidia("GPU-a", "GPU-b", "GPU-c", "GPU-d")...)
	if n, _ := f.st.Node("g"); n.Capacity.GPUs != 4 || n.Free().GPUs != 4 {
		t.Fatalf("a node declaring 4 devices: capacity %d free %d, want 4 and 4", n.Capacity.GPUs, n.Free().GPUs)
	}
	f.submit("two", "alice", JobSpec{Image: "x", GPUs: 2, Array: 3})
	if got := f.placeAll("g"); got != 2 {
		t.Fatalf("placed %d two-GPU tasks on a four-GPU node, want 2", got)
	}
	if got := f.devicesOf("two", 0, 1); !slices.Equal(got, []string{"GPU-a", "GPU-b"}) {
		t.Fatalf("first task got %v, want the two lowest devices", got)
	}
	if got := f.devicesOf("two", 1, 1); !slices.Equal(got, []string{"GPU-c", "GPU-d"}) {
		t.Fatalf("second task got %v, want the other two", got)
	}
	if n, _ := f.st.Node("g"); n.Free().GPUs != 0 || n.Allocated.GPUs != 4 {
		t.Fatalf("after two placements: free %d allocated %d", n.Free().GPUs, n.Allocated.GPUs)
	}
	f.submit("zz-one", "alice", JobSpec{Image: "x", GPUs: 1}) // queued behind "two"
	if got := f.placeAll("g"); got != 0 {
		t.Fatalf("placed %d tasks on a node whose devices are all held", got)
	}
	f.end("two", 0, 1, 0, ReasonExited)
	if got := f.holders("g"); len(got["GPU-a"]) != 0 || len(got["GPU-b"]) != 0 || len(got["GPU-c"]) != 1 {
		t.Fatalf("holders after the first task ended: %v", got)
	}
	// The third task of "two" is ahead in the queue and takes both.
	if got := f.placeAll("g"); got != 1 {
		t.Fatalf("placed %d after two devices came free, want 1", got)
	}
	if got := f.devicesOf("two", 2, 1); !slices.Equal(got, []string{"GPU-a", "GPU-b"}) {
		t.Fatalf("third task got %v, want the freed devices", got)
	}
	f.submit("plain", "alice", JobSpec{Image: "x"})
	if got := f.placeAll("g"); got != 1 {
		q, _ := f.st.Queued(10)
		n, _ := f.st.Node("g")
		t.Fatalf("placed %d tasks asking for no GPU, want 1 (queue %+v, node %+v)", got, q, n)
	}
	if got := f.devicesOf("plain", 0, 1); got != nil {
		t.Fatalf("a task asking for no GPU got devices %v", got)
	}
}

// TestTaskNeedingMoreDevicesThanFreeDoesNotFit: the count of free devices,
// not capacity minus a count, decides; a node with one free device refuses a
// two-GPU task even though its capacity is 4.
func TestTaskNeedingMoreDevicesThanFreeDoesNotFit(t *testing.T) {
	f := newFSM(t)
	f.gpuNode("g", nvidia("0", "1", "2", "3")...)
	f.submit("three", "alice", JobSpec{Image: "x", GPUs: 3})
	f.placeAll("g")
	f.submit("two", "alice", JobSpec{Image: "x", GPUs: 2})
	if got := f.placeAll("g"); got != 0 {
		t.Fatal("a two-GPU task was placed where one device is free")
	}
	f.submit("five", "alice", JobSpec{Image: "x", GPUs: 5})
	if n, _ := f.st.Node("g"); n.Free().Holds(Resources{GPUs: 2}) || !n.Free().Holds(Resources{GPUs: 1}) {
		t.Fatalf("free GPUs %d, want 1", n.Free().GPUs)
	}
}

// TestDevicesAreFreedOnEveryEnd: whichever way an attempt ends (exit,
// failure with a retry, cancel, node lost, eviction, node removal), its
// devices are free again and a new attempt can have them.
func TestDevicesAreFreedOnEveryEnd(t *testing.T) {
	ends := []struct {
		name string
		end  func(f *fsm)
	}{
		{"it succeeds", func(f *fsm) { f.end("j", 0, 1, 0, ReasonExited) }},
		{"it fails and is retried", func(f *fsm) { f.end("j", 0, 1, 1, ReasonExited) }},
		{"it is cancelled", func(f *fsm) {
			f.must(CmdCancelJob, CancelJob{ID: "j", Actor: "alice"})
			f.end("j", 0, 1, -1, ReasonCancelled)
		}},
		{"its node is lost", func(f *fsm) { f.must(CmdNodeLost, NodeLost{Name: "g"}) }},
		{"its node's drain deadline passes", func(f *fsm) {
			f.must(CmdSetNodeState, SetNodeState{Name: "g", State: NodeDraining, Deadline: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)})
			f.must(CmdEvictNode, EvictNode{Name: "g"})
		}},
		{"its node is removed and joins again", func(f *fsm) {
			f.must(CmdRemoveNode, RemoveNode{Name: "g"})
			f.gpuNode("g", nvidia("0", "1")...)
		}},
	}
	for _, tc := range ends {
		t.Run("when "+tc.name, func(t *testing.T) {
			f := newFSM(t)
			f.gpuNode("g", nvidia("0", "1")...)
			f.submit("j", "alice", JobSpec{Image: "x", GPUs: 2, Retries: 1})
			f.placeAll("g")
			if got := f.holders("g"); len(got["0"]) != 1 || len(got["1"]) != 1 {
				t.Fatalf("holders while placed: %v", got)
			}
			tc.end(f)
			if got := f.holders("g"); len(got) != 0 {
				t.Fatalf("devices still held after the attempt ended: %v", got)
			}
			n, _ := f.st.Node("g")
			if n.Free().GPUs != 2 || n.Allocated.GPUs != 0 {
				t.Fatalf("free %d allocated %d, want 2 and 0", n.Free().GPUs, n.Allocated.GPUs)
			}
			f.must(CmdSetNodeState, SetNodeState{Name: "g", State: NodeReady})
			f.submit("next", "alice", JobSpec{Image: "x", GPUs: 2})
			q, _ := f.st.Queued(10)
			var ps []Placement
			for _, qt := range q {
				ps = append(ps, Placement{JobID: qt.JobID, Task: qt.Task, Node: "g"})
			}
			if r := f.must(CmdPlace, Place{Placements: ps}).(*PlaceResult); r.Accepted != 1 {
				t.Fatalf("accepted %d placements after the devices came free, want 1", r.Accepted)
			}
		})
	}
}

// TestShareableDevicesAreShared: only a device the operator marked
// shareable is held by two tasks at once; a task never gets one device
// twice, and unheld devices go first.
func TestShareableDevicesAreShared(t *testing.T) {
	f := newFSM(t)
	f.gpuNode("g", Device{ID: "0", Mode: DeviceNVIDIA}, Device{ID: "1", Mode: DeviceNVIDIA, Shareable: true})
	f.submit("a", "alice", JobSpec{Image: "x", GPUs: 1, Array: 3})
	if got := f.placeAll("g"); got != 3 {
		t.Fatalf("placed %d one-GPU tasks on one exclusive and one shareable device, want 3", got)
	}
	for i, want := range [][]string{{"0"}, {"1"}, {"1"}} {
		if got := f.devicesOf("a", i, 1); !slices.Equal(got, want) {
			t.Fatalf("task %d got %v, want %v", i, got, want)
		}
	}
	if got := f.holders("g"); len(got["0"]) != 1 || len(got["1"]) != 2 {
		t.Fatalf("holders: %v", got)
	}
	f.submit("b", "alice", JobSpec{Image: "x", GPUs: 2})
	if got := f.placeAll("g"); got != 0 {
		t.Fatal("a two-GPU task got one shareable device twice, or the held exclusive one")
	}
	f.end("a", 0, 1, 0, ReasonExited)
	if got := f.placeAll("g"); got != 1 {
		t.Fatal("a two-GPU task did not fit once the exclusive device was free")
	}
	if got := f.devicesOf("b", 0, 1); !slices.Equal(got, []string{"0", "1"}) {
		t.Fatalf("two-GPU task got %v", got)
	}
}

// TestRedeclaringKeepsHolders: a node registering again (a restart) keeps
// who holds its devices, and a bad declaration is refused whole.
func TestRedeclaringKeepsHolders(t *testing.T) {
	f := newFSM(t)
	f.gpuNode("g", nvidia("0", "1")...)
	f.submit("j", "alice", JobSpec{Image: "x", GPUs: 1})
	f.placeAll("g")
	f.gpuNode("g", nvidia("0", "1", "2")...)
	if got := f.holders("g"); len(got["0"]) != 1 {
		t.Fatalf("holders after re-registering: %v", got)
	}
	if n, _ := f.st.Node("g"); n.Capacity.GPUs != 3 || n.Free().GPUs != 2 {
		t.Fatalf("capacity %d free %d, want 3 and 2", n.Capacity.GPUs, n.Free().GPUs)
	}
	for _, bad := range [][]Device{
		{{ID: "0", Mode: DeviceNVIDIA}, {ID: "0", Mode: DeviceNVIDIA}},
		{{ID: "dev/zero", Mode: DevicePath}},
		{{ID: "0", Mode: "magic"}},
		{{ID: "", Mode: DeviceNVIDIA}},
	} {
		_, err := f.do(CmdUpsertNode, UpsertNode{Node: Node{Name: "g", Devices: bad}})
		if ErrorCode(err) != EInvalid {
			t.Fatalf("declaring %+v: %v, want invalid", bad, err)
		}
	}
	if n, _ := f.st.Node("g"); n.Capacity.GPUs != 3 {
		t.Fatalf("a refused declaration changed the node: %d GPUs", n.Capacity.GPUs)
	}
}
