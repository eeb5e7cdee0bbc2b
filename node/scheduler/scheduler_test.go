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
	for _, p := range planAll(q, nodes) {
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
	ps := planAll(q, nodes)
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
	ps := planAll(q, nodes)
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

// planAll plans with nothing held and no quotas, the cluster being nodes.
func planAll(q []store.QueuedTask, nodes []*nodeFree) []store.Placement {
	return plan(&view{queued: q, nodes: nodes, total: totalOf(nodes)}).placements
}

func totalOf(nodes []*nodeFree) store.Resources {
	var t store.Resources
	for _, n := range nodes {
		t = t.Plus(n.cap)
	}
	return t
}

func owners(ps []store.Placement, q []store.QueuedTask) []string {
	owner := map[string]string{}
	for _, t := range q {
		owner[t.JobID] = t.Owner
	}
	var out []string
	for _, p := range ps {
		out = append(out, owner[p.JobID])
	}
	return out
}

func TestPlanServesTheUserWithTheSmallestDominantShareFirst(t *testing.T) {
	nodes := []*nodeFree{{name: "a", free: store.Resources{CPU: 2000, Memory: 8 << 30}, cap: store.Resources{CPU: 4000, Memory: 8 << 30}}}
	var q []store.QueuedTask
	// alice submitted first, but already holds half the CPU.
	for i := 0; i < 3; i++ {
		q = append(q, store.QueuedTask{JobID: "alice-job", Task: i, Owner: "alice", CPU: 1000, Memory: 1 << 20})
	}
	for i := 0; i < 3; i++ {
		q = append(q, store.QueuedTask{JobID: "bob-job", Task: i, Owner: "bob", CPU: 1000, Memory: 1 << 20})
	}
	usage := map[string]store.UserUsage{"alice": {Allocated: store.Resources{CPU: 2000, Memory: 2 << 20}, Tasks: 2}}
	ps := plan(&view{queued: q, nodes: nodes, total: totalOf(nodes), usage: usage}).placements
	if got := owners(ps, q); len(got) != 2 || got[0] != "bob" || got[1] != "bob" {
		t.Fatalf("placed for %v, want bob twice (alice holds 50%% already)", got)
	}
}

func TestPlanMeasuresSharesByTheDominantResource(t *testing.T) {
	nodes := []*nodeFree{{name: "a", free: store.Resources{CPU: 1000, Memory: 4 << 30}, cap: store.Resources{CPU: 10000, Memory: 16 << 30}}}
	q := []store.QueuedTask{
		{JobID: "carol-job", Task: 0, Owner: "carol", CPU: 1000, Memory: 1 << 20},
		{JobID: "dave-job", Task: 0, Owner: "dave", CPU: 1000, Memory: 1 << 20},
	}
	// carol holds 30% of the CPU; dave holds 40% of the memory: dave's
	// dominant share is larger, so carol goes first.
	usage := map[string]store.UserUsage{
		"carol": {Allocated: store.Resources{CPU: 3000, Memory: 1 << 30}},
		"dave":  {Allocated: store.Resources{CPU: 1000, Memory: 6553 << 20}},
	}
	ps := plan(&view{queued: q, nodes: nodes, total: totalOf(nodes), usage: usage}).placements
	if got := owners(ps, q); len(got) != 1 || got[0] != "carol" {
		t.Fatalf("placed for %v, want carol only", got)
	}
}

func TestPlanAlternatesUsersWithEqualShares(t *testing.T) {
	nodes := []*nodeFree{{name: "a", free: store.Resources{CPU: 4000, Memory: 8 << 30}, cap: store.Resources{CPU: 4000, Memory: 8 << 30}}}
	var q []store.QueuedTask
	for i := 0; i < 4; i++ {
		q = append(q, store.QueuedTask{JobID: "alice-job", Task: i, Owner: "alice", CPU: 1000, Memory: 1 << 20})
	}
	for i := 0; i < 4; i++ {
		q = append(q, store.QueuedTask{JobID: "bob-job", Task: i, Owner: "bob", CPU: 1000, Memory: 1 << 20})
	}
	got := owners(planAll(q, nodes), q)
	want := []string{"alice", "bob", "alice", "bob"}
	if len(got) != 4 {
		t.Fatalf("placed for %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("placed for %v, want %v", got, want)
		}
	}
}

func TestPlanKeepsUsersWithinTheirQuota(t *testing.T) {
	nodes := []*nodeFree{{name: "a", free: store.Resources{CPU: 8000, Memory: 8 << 30}, cap: store.Resources{CPU: 8000, Memory: 8 << 30}}}
	var q []store.QueuedTask
	for i := 0; i < 4; i++ {
		q = append(q, store.QueuedTask{JobID: "alice-job", Task: i, Owner: "alice", CPU: 1000, Memory: 1 << 20})
	}
	q = append(q, store.QueuedTask{JobID: "bob-job", Task: 0, Owner: "bob", CPU: 1000, Memory: 1 << 20})
	usage := map[string]store.UserUsage{"alice": {Allocated: store.Resources{CPU: 1000, Memory: 1 << 20}, Tasks: 1}}
	quotas := map[string]store.Resources{"alice": {CPU: 2000}}
	got := owners(plan(&view{queued: q, nodes: nodes, total: totalOf(nodes), usage: usage, quotas: quotas}).placements, q)
	alice := 0
	for _, o := range got {
		if o == "alice" {
			alice++
		}
	}
	if alice != 1 || len(got) != 2 {
		t.Fatalf("placed for %v, want one more task of alice (quota 2 CPUs, holds 1) and bob's", got)
	}
}

func TestPlanPlacesOnlyOnNodesWithTheConstrainedLabels(t *testing.T) {
	mk := func(name, zone string) *nodeFree {
		return &nodeFree{name: name, free: store.Resources{CPU: 4000, Memory: 8 << 30}, cap: store.Resources{CPU: 4000, Memory: 8 << 30}, labels: map[string]string{"zone": zone}}
	}
	nodes := []*nodeFree{mk("a", "x"), mk("b", "y")}
	q := []store.QueuedTask{
		{JobID: "to-y", Task: 0, Owner: "u", CPU: 1000, Memory: 1 << 20, Constraints: map[string]string{"zone": "y"}},
		{JobID: "to-y", Task: 1, Owner: "u", CPU: 1000, Memory: 1 << 20, Constraints: map[string]string{"zone": "y"}},
		{JobID: "to-z", Task: 0, Owner: "u", CPU: 1000, Memory: 1 << 20, Constraints: map[string]string{"zone": "z"}},
	}
	ps := planAll(q, nodes)
	if len(ps) != 2 {
		t.Fatalf("placements %+v, want the two zone=y tasks", ps)
	}
	for _, p := range ps {
		if p.JobID != "to-y" || p.Node != "b" {
			t.Fatalf("placement %+v, want to-y on b", p)
		}
	}
}

func TestPlanPrefersANodeHoldingTheTaskInputs(t *testing.T) {
	nodes := []*nodeFree{
		{name: "roomy", free: store.Resources{CPU: 8000, Memory: 16 << 30}, cap: store.Resources{CPU: 8000, Memory: 16 << 30}},
		{name: "holder", free: store.Resources{CPU: 2500, Memory: 4 << 30}, cap: store.Resources{CPU: 4000, Memory: 8 << 30}},
	}
	in := []store.Input{{Ref: "alice/ds:v1", Repo: "alice/ds", Digest: "sha256:aa", Path: "/data"}}
	var q []store.QueuedTask
	for i := range 4 {
		q = append(q, store.QueuedTask{JobID: "j", Task: i, Owner: "u", CPU: 1000, Memory: 1 << 30, Inputs: in})
	}
	q = append(q, store.QueuedTask{JobID: "plain", Task: 0, Owner: "v", CPU: 1000, Memory: 1 << 30})
	v := &view{queued: q, nodes: nodes, total: store.Resources{CPU: 12000, Memory: 24 << 30},
		holders: map[string]map[string]bool{"alice/ds@sha256:aa": {"holder": true}}}
	per := map[string][]string{}
	for _, p := range plan(v).placements {
		per[p.Node] = append(per[p.Node], p.JobID)
	}
	// The holder has room for two of the four: those go there, the rest
	// (and the job without inputs) to the roomier node.
	if len(per["holder"]) != 2 || per["holder"][0] != "j" || per["holder"][1] != "j" || len(per["roomy"]) != 3 {
		t.Fatalf("placements %v, want two input tasks on the holder and the rest on roomy", per)
	}
}
