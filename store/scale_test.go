// The race detector makes filling the store with 100,000 jobs take a
// minute and measures nothing of the indexes: make test runs this file in
// its own run without it (the package's other tests run under it).

//go:build !race

package store

import (
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// TestListJobsStaysFastWith100kJobs fills the store with 100,000 jobs of
// three owners and checks that a page of the job list, at any depth and with
// any filter, is read through the indexes rather than by scanning.
func TestListJobsStaysFastWith100kJobs(t *testing.T) {
	f := newFSM(t)
	const total = 100000
	owners := []string{"alice", "bob", "carol"}
	var batch []*raft.Log
	for i := 0; i < total; i++ {
		spec := JobSpec{Image: "x", Name: fmt.Sprintf("job-%d", i)}
		spec.Defaults()
		batch = append(batch, f.entry(CmdSubmitJob, SubmitJob{ID: fmt.Sprintf("J%08d", i), Owner: owners[i%3], Spec: spec}))
		if len(batch) == 2000 {
			f.st.ApplyBatch(batch)
			batch = batch[:0]
		}
	}
	f.st.ApplyBatch(batch)

	cases := []struct {
		name string
		f    JobFilter
	}{
		{"all, newest first", JobFilter{Limit: 50}},
		{"all, deep cursor", JobFilter{Limit: 50, Cursor: "J00050000"}},
		{"one owner, deep cursor", JobFilter{Owner: "bob", Limit: 50, Cursor: "J00030001"}},
		{"one owner and state", JobFilter{Owner: "carol", State: StateQueued, Limit: 50}},
		{"one state", JobFilter{State: StateQueued, Limit: 50}},
	}
	for _, tc := range cases {
		start := time.Now()
		jobs, next, err := f.st.ListJobs(tc.f)
		d := time.Since(start)
		if err != nil || len(jobs) != 50 || next == "" {
			t.Fatalf("%s: %d jobs, next %q, err %v", tc.name, len(jobs), next, err)
		}
		if tc.f.Cursor != "" && jobs[0].ID >= tc.f.Cursor {
			t.Fatalf("%s: page starts at %s, not after the cursor %s", tc.name, jobs[0].ID, tc.f.Cursor)
		}
		t.Logf("%s: %s", tc.name, d)
		// A scan of 100,000 jobs takes seconds; a page through the index
		// takes about a millisecond. The bound leaves room for a slow machine
		// and the race detector.
		if d > 250*time.Millisecond {
			t.Errorf("%s took %s with 100,000 jobs", tc.name, d)
		}
	}
	counts, err := f.st.CountJobs()
	if err != nil || counts[StateQueued] != total {
		t.Fatalf("counts %v %v", counts, err)
	}
}
