package store

import (
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func TestGateWritesWhatEveryMemberApplies(t *testing.T) {
	at := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	limit := func(v int) Limit { return func(string) (int, string) { return v, "node2" } }
	plain, _ := CmdSubmitJob.Encode(at, SubmitJob{ID: "J", Owner: "alice", Spec: JobSpec{Image: "x"}})
	withOutput, _ := CmdSubmitJob.Encode(at, SubmitJob{ID: "J", Owner: "alice", Spec: JobSpec{Image: "x", Output: &Output{Path: "/out"}}})
	withJobInput, _ := CmdSubmitJob.Encode(at, SubmitJob{ID: "J", Owner: "alice", Spec: JobSpec{Image: "x", Inputs: []Input{{Ref: "job:A", Job: "A", Path: "/in"}}}})

	// Every member applies v6: nothing changes.
	if got, err := Gate(plain, limit(6)); err != nil || string(got) != string(plain) {
		t.Fatalf("within the limit: %s %v", got, err)
	}
	// A member of 0.9.0 applies v4: a plain submission is written at v4,
	// payload unchanged.
	got, err := Gate(plain, limit(4))
	if err != nil {
		t.Fatal(err)
	}
	d, err := DecodeCommand(got)
	if err != nil || d.Version != 4 || d.Payload.(SubmitJob).ID != "J" || !d.Time.Equal(at) {
		t.Fatalf("downgraded: %+v %v", d, err)
	}
	// An output or a job input needs what that member cannot apply.
	for _, c := range []struct {
		cmd  []byte
		need string
	}{{withOutput, "needs v5"}, {withJobInput, "needs v6"}} {
		if _, err := Gate(c.cmd, limit(4)); ErrorCode(err) != EUnavailable || !strings.Contains(err.Error(), "node node2 applies job.submit only up to v4 and this write "+c.need) {
			t.Errorf("refusal: %v", err)
		}
	}
	if got, err := Gate(withOutput, limit(5)); err != nil || mustVersion(t, got) != 5 {
		t.Errorf("an output with every member at v5: %v", err)
	}
	// A command the member does not know at all is refused.
	if _, err := Gate(plain, limit(0)); ErrorCode(err) != EUnavailable {
		t.Errorf("an unknown command: %v", err)
	}
	// The downgraded entry applies here as the newest would.
	f := newFSM(t)
	if res, isErr := f.st.Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: got}).(error); isErr {
		t.Fatalf("apply the v4 entry: %v", res)
	}
	if j, err := f.st.Job("J"); err != nil || j.Spec.Image != "x" {
		t.Errorf("the job of the v4 entry: %+v %v", j, err)
	}
}

func mustVersion(t *testing.T, cmd []byte) int {
	t.Helper()
	d, err := DecodeCommand(cmd)
	if err != nil {
		t.Fatal(err)
	}
	return d.Version
}

// TestPreviousReleaseVersionsAreOlderOrEqual: the previous release's table
// names commands this binary has, at versions it applies; every command
// newer here either says which payloads an older member can apply
// (lowestFor) or is refused while one remains.
func TestPreviousReleaseVersionsAreOlderOrEqual(t *testing.T) {
	own := CommandVersions()
	for typ, v := range PreviousReleaseVersions() {
		if own[typ] < v {
			t.Errorf("%s: v%d in the previous release, v%d here", typ, v, own[typ])
		}
	}
	// The commands changed since: an empty payload is writable for a
	// member of the previous release (what changed is optional).
	for typ, v := range own {
		if p := previousReleaseVersions[typ]; p != 0 && p < v {
			if n, err := commands[typ].lowest([]byte("{}")); err != nil || n > p {
				t.Errorf("%s v%d (v%d in the previous release): an empty payload needs v%d (%v); declare lowestFor", typ, v, p, n, err)
			}
		}
	}
}
