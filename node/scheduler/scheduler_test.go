package scheduler

import (
	"testing"

	"gantry/store"
)

func TestPlanSpreadsByFreeCapacity(t *testing.T) {
	nodes := []*nodeFree{
		{name: "a", free: store.Resources{CPU: 4000, Memory: 8 << 30}, cap: store.Resources{CPU: 4000, Memory: 8 << 30}},
		{name: "b", free: store.Resources{CPU: 4000, Memory: 8 << 30}, cap: store.Resources{CPU: 4000, Memory: 8 << 30}},
	}
	var q []store.QueuedTask
	for i := 0; i < 4; i++ {
		q = append(q, store.QueuedTask{JobID: "j", Task: i, Owner: "u", CPU: 1000, Memory: 1 << 30})
	}
	per := map[string]int{}
	for _, p := range plan(q, nodes) {
		per[p.Node]++
	}
	if per["a"] != 2 || per["b"] != 2 {
		t.Fatalf("placements %v, want 2 on each node", per)
	}
}

func TestPlanSkipsWhatDoesNotFitAndBackfills(t *testing.T) {
	nodes := []*nodeFree{{name: "a", free: store.Resources{CPU: 1500, Memory: 1 << 30}, cap: store.Resources{CPU: 2000, Memory: 1 << 30}}}
	q := []store.QueuedTask{
		{JobID: "big", Task: 0, Owner: "u", Priority: 5, CPU: 2000},
		{JobID: "small", Task: 0, Owner: "u", CPU: 1000},
		{JobID: "small", Task: 1, Owner: "u", CPU: 1000},
	}
	ps := plan(q, nodes)
	if len(ps) != 1 || ps[0].JobID != "small" || ps[0].Task != 0 {
		t.Fatalf("placements %+v, want only small/0", ps)
	}
}

func TestPlanInterleavesOwnersWithinAPriority(t *testing.T) {
	nodes := []*nodeFree{{name: "a", free: store.Resources{CPU: 3000, Memory: 1 << 30}, cap: store.Resources{CPU: 3000, Memory: 1 << 30}}}
	var q []store.QueuedTask
	for i := 0; i < 5; i++ {
		q = append(q, store.QueuedTask{JobID: "alice-array", Task: i, Owner: "alice", CPU: 1000})
	}
	q = append(q, store.QueuedTask{JobID: "bob-job", Task: 0, Owner: "bob", CPU: 1000})
	ps := plan(q, nodes)
	if len(ps) != 3 {
		t.Fatalf("%d placements, want 3", len(ps))
	}
	found := false
	for _, p := range ps {
		if p.JobID == "bob-job" {
			found = true
		}
	}
	if !found {
		t.Fatalf("bob's job waits behind alice's whole array: %+v", ps)
	}
}
