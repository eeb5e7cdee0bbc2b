package cluster

import "testing"

func TestLimitsAreWhatTheOldestMemberApplies(t *testing.T) {
	c := &Cluster{}
	// Every member says this binary's versions: no limit.
	if l := c.limitsFor(map[string]map[string]int{"node2": ownVersions, "node3": ownVersions}); len(l) != 0 {
		t.Errorf("limits of an upgraded cluster: %v", l)
	}
	// A member of the previous release limits what changed since.
	l := c.limitsFor(map[string]map[string]int{"node2": ownVersions, "node3": previousRelease})
	if got := l["job.submit"]; got.V != previousRelease["job.submit"] || got.Member != "node3" {
		t.Errorf("job.submit limit %+v, want v%d from node3", got, previousRelease["job.submit"])
	}
	if _, ok := l["job.cancel"]; ok {
		t.Errorf("job.cancel did not change and is limited: %+v", l["job.cancel"])
	}
	// A follower of a newer release writes no newer than the leader applies.
	older := map[string]int{}
	for k, v := range ownVersions {
		older[k] = v
	}
	older["job.submit"] = ownVersions["job.submit"] - 1
	delete(older, "attempt.report")
	f := followerLimits(heartbeatReply{Limits: map[string]limit{}, Leader: older}, "node1")
	if f["job.submit"].V != older["job.submit"] || f["job.submit"].Member != "node1 (the leader)" || f["attempt.report"].V != 0 {
		t.Errorf("a newer follower's limits: %+v", f)
	}
	if len(f) != 2 {
		t.Errorf("a newer follower is limited in %d commands, want 2: %v", len(f), f)
	}
	// A member the leader names limits the follower too.
	f = followerLimits(heartbeatReply{Limits: map[string]limit{"job.submit": {V: 4, Member: "node3"}}, Leader: ownVersions}, "node1")
	if f["job.submit"] != (limit{V: 4, Member: "node3"}) || len(f) != 1 {
		t.Errorf("limits from the leader's reply: %+v", f)
	}
}
