package api

import (
	"strings"
	"testing"
	"time"

	"gantry/store"
	"gantry/wire"
)

func TestPublishRefusals(t *testing.T) {
	cases := []struct {
		name   string
		who    role
		body   map[string]any
		status int
		code   string
		want   string
	}{
		{"an invalid SPDX expression", owner, map[string]any{"repo": "alice/tool", "license": "MIT-ish"}, 400, wire.CodeInvalid, "license:"},
		{"no licence", owner, map[string]any{"repo": "alice/tool"}, 400, wire.CodeInvalid, "license:"},
		{"a custom licence without its text", owner, map[string]any{"repo": "alice/tool", "license_name": "Lab"}, 400, wire.CodeInvalid, "license_text:"},
		{"a README over the limit", owner, map[string]any{"repo": "alice/tool", "license": "MIT", "readme": strings.Repeat("x", store.MaxReadme+1)}, 400, wire.CodeInvalid, "readme:"},
		{"an open generative-AI image not filed", owner, map[string]any{"repo": "alice/tool", "license": "MIT", "genai": true}, 400, wire.CodeInvalid, "approval"},
		{"another user's private repository", other, map[string]any{"repo": "alice/model2", "license": "MIT"}, 404, wire.CodeNotFound, "not found"},
		{"a repository that does not exist", owner, map[string]any{"repo": "alice/nothing", "license": "MIT"}, 404, wire.CodeNotFound, "not found"},
		{"an unknown use", owner, map[string]any{"repo": "alice/tool", "license": "MIT", "use": "military"}, 400, wire.CodeInvalid, "use:"},
	}
	for _, tc := range cases {
		t.Run(tc.name+" is refused and nothing changes", func(t *testing.T) {
			f := newFixture(t)
			f.image("alice", "alice/model2", "1")
			before, _ := f.st.Publication("alice/tool")
			wantError(t, f.do(tc.who, "POST", "/api/v1/images/publish", tc.body), tc.status, tc.code, tc.want)
			after, _ := f.st.Publication("alice/tool")
			if before.Licence != after.Licence || before.Updated != after.Updated {
				t.Fatalf("a refused publication changed the catalog: %+v -> %+v", before, after)
			}
			if _, err := f.st.Publication("alice/model2"); err == nil {
				t.Fatal("a refused publication published alice/model2")
			}
		})
	}
}

// TestTheGateOnJobs: a job from a published image is refused until its
// licence is accepted, again after a new licence version, and allowed
// after acceptance; the owner is never asked.
func TestTheGateOnJobs(t *testing.T) {
	f := newFixture(t)
	job := map[string]any{"image": "alice/tool:1"}
	wantError(t, f.do(other, "POST", "/api/v1/jobs", job), 403, wire.CodeLicenceNotAccepted, "gantry image accept alice/tool")
	if w := f.do(owner, "POST", "/api/v1/jobs", job); w.Code != 201 {
		t.Fatalf("the owner's job: %d %s", w.Code, w.Body.String())
	}
	d := decodeAs[wire.CatalogDetail](t, f.do(other, "GET", "/api/v1/catalog/entry?repo=alice/tool", nil))
	if d.Status.State != wire.StatusMustAccept || d.LicenceText == "" || !strings.Contains(d.ReadmeHTML, "<h1") || len(d.Tags) != 1 || d.Licence.Expression != "MIT" {
		t.Fatalf("the entry before accepting: %+v", d)
	}
	if len(d.Terms) == 0 || d.Terms[0].Clause != "2.2.2.2 (1)" || d.Terms[0].ZH == "" || d.Grant.Text == "" {
		t.Fatalf("the entry does not show the terms and the grant: %+v %+v", d.Terms, d.Grant)
	}
	ac := decodeAs[wire.Acceptance](t, f.do(other, "POST", "/api/v1/images/accept", map[string]string{"repo": "alice/tool", "licence": d.Licence.Version}))
	if ac.User != "bob" || ac.Licence.Version != d.Licence.Version {
		t.Fatalf("acceptance %+v", ac)
	}
	if w := f.do(other, "POST", "/api/v1/jobs", job); w.Code != 201 {
		t.Fatalf("bob's job after accepting: %d %s", w.Code, w.Body.String())
	}
	if l := decodeAs[wire.AcceptanceList](t, f.do(other, "GET", "/api/v1/images/accepted", nil)); len(l.Acceptances) != 1 || l.Acceptances[0].Repo != "alice/tool" {
		t.Fatalf("bob's acceptances %+v", l)
	}
	// A new licence version: reviewed again, then bob must accept again.
	if w := f.do(owner, "POST", "/api/v1/images/publish", map[string]any{"repo": "alice/tool", "license": "Apache-2.0"}); w.Code != 200 {
		t.Fatalf("republish: %d %s", w.Code, w.Body.String())
	}
	wantError(t, f.do(other, "POST", "/api/v1/jobs", job), 400, wire.CodeInvalid, "not found") // pending review: private again
	f.approve("alice/tool")
	wantError(t, f.do(other, "POST", "/api/v1/jobs", job), 403, wire.CodeLicenceNotAccepted, "changed")
	// Accepting the version read before is refused: it is not current.
	wantError(t, f.do(other, "POST", "/api/v1/images/accept", map[string]string{"repo": "alice/tool", "licence": d.Licence.Version}), 409, wire.CodeConflict, "changed")
	if r := decodeAs[wire.AccessReport](t, f.do(owner, "GET", "/api/v1/images/access?repo=alice/tool", nil)); len(r.Acceptances) != 1 || r.Acceptances[0].Licence.Expression != "MIT" {
		t.Fatalf("the publisher's report: %+v", r)
	}
}

func TestApprovalModeThroughTheAPI(t *testing.T) {
	f := newFixture(t)
	entry := func() wire.CatalogDetail {
		return decodeAs[wire.CatalogDetail](t, f.do(other, "GET", "/api/v1/catalog/entry?repo=alice/model", nil))
	}
	if d := entry(); d.Status.State != wire.StatusPending || !d.GenAI || len(d.Terms) != 2 {
		t.Fatalf("bob has asked: %+v", d.Status)
	}
	f.do(admin, "POST", "/api/v1/images/accept", map[string]string{"repo": "alice/model"})
	wantError(t, f.do(owner, "POST", "/api/v1/images/access/decide", map[string]string{"repo": "alice/model", "user": "bob", "decision": "reject"}), 400, wire.CodeInvalid, "reason:")
	f.do(owner, "POST", "/api/v1/images/access/decide", map[string]string{"repo": "alice/model", "user": "bob", "decision": "reject", "reason": "not for theses"})
	if d := entry(); d.Status.State != wire.StatusRejected || !strings.Contains(d.Status.Message, "not for theses") {
		t.Fatalf("rejected: %+v", d.Status)
	}
	wantError(t, f.do(other, "POST", "/api/v1/jobs", map[string]any{"image": "alice/model:1"}), 403, wire.CodeAccessRejected, "not for theses")
	f.do(other, "POST", "/api/v1/images/request", map[string]any{"repo": "alice/model", "answers": []string{"research"}})
	f.do(owner, "POST", "/api/v1/images/access/decide", map[string]string{"repo": "alice/model", "user": "bob", "decision": "approve"})
	if d := entry(); d.Status.State != wire.StatusMustAccept {
		t.Fatalf("approved, licence not accepted: %+v", d.Status)
	}
	f.do(other, "POST", "/api/v1/images/accept", map[string]string{"repo": "alice/model"})
	if d := entry(); d.Status.State != wire.StatusAccepted {
		t.Fatalf("approved and accepted: %+v", d.Status)
	}
	f.do(owner, "POST", "/api/v1/images/access/decide", map[string]string{"repo": "alice/model", "user": "bob", "decision": "revoke", "reason": "licence violation"})
	wantError(t, f.do(other, "POST", "/api/v1/jobs", map[string]any{"image": "alice/model:1"}), 403, wire.CodeAccessRejected, "licence violation")
	wantError(t, f.do(owner, "POST", "/api/v1/images/access/decide", map[string]string{"repo": "alice/model", "user": "bob", "decision": "ban"}), 400, wire.CodeInvalid, "decision:")
}

func TestLineageThroughTheAPI(t *testing.T) {
	f := newFixture(t)
	if w := f.do(other, "POST", "/api/v1/images/publish", map[string]any{"repo": "bob/app", "license": "BSD-3-Clause"}); w.Code != 200 {
		t.Fatalf("bob publishes bob/app: %d %s", w.Code, w.Body.String())
	}
	d := decodeAs[wire.CatalogDetail](t, f.do(admin, "GET", "/api/v1/catalog/entry?repo=bob/app", nil))
	if len(d.Notices) != 1 || d.Notices[0].Base != "alice/tool" || d.Notices[0].Licence.Expression != "MIT" {
		t.Fatalf("bob/app's notices: %+v", d.Notices)
	}
	wantError(t, f.do(other, "POST", "/api/v1/images/notices/remove", map[string]string{"repo": "bob/app", "base": "alice/tool"}), 403, wire.CodeForbidden, "only the rights holder of alice/tool")
	f.approve("bob/app")
	if l := decodeAs[wire.CatalogList](t, f.do(other, "GET", "/api/v1/catalog?q=app", nil)); len(l.Entries) != 1 || len(l.Entries[0].Notices) != 1 {
		t.Fatalf("search for app: %+v", l)
	}
}

func TestCatalogSearch(t *testing.T) {
	f := newFixture(t)
	list := func(q string) []string {
		l := decodeAs[wire.CatalogList](t, f.do(other, "GET", "/api/v1/catalog"+q, nil))
		var names []string
		for _, e := range l.Entries {
			names = append(names, e.Repo)
		}
		return names
	}
	if got := list(""); len(got) != 2 {
		t.Fatalf("all: %v", got)
	}
	if got := list("?genai=true"); len(got) != 1 || got[0] != "alice/model" {
		t.Fatalf("genai: %v", got)
	}
	if got := list("?access=open"); len(got) != 1 || got[0] != "alice/tool" {
		t.Fatalf("open: %v", got)
	}
	if got := list("?license=apache"); len(got) != 1 || got[0] != "alice/model" {
		t.Fatalf("licence: %v", got)
	}
	if got := list("?q=TOOL"); len(got) != 1 {
		t.Fatalf("q: %v", got)
	}
	if got := list("?kind=image"); len(got) != 2 {
		t.Fatalf("kind=image: %v", got)
	}
	if got := list("?kind=dataset"); len(got) != 0 {
		t.Fatalf("kind=dataset: %v", got)
	}
	if l := decodeAs[wire.CatalogList](t, f.do(other, "GET", "/api/v1/catalog?limit=1&sort=name", nil)); len(l.Entries) != 1 || l.Next != "1" {
		t.Fatalf("a page of one: %+v", l)
	}
	for _, bad := range []string{"?sort=size", "?genai=maybe", "?access=secret", "?kind=video", "?limit=0", "?cursor=x"} {
		wantError(t, f.do(other, "GET", "/api/v1/catalog"+bad, nil), 400, wire.CodeInvalid)
	}
}

// TestTryIt: a trial runs the image under the trial allowance, one at a
// time, until today's allowance is used up.
func TestTryIt(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	f.do(other, "POST", "/api/v1/images/accept", map[string]string{"repo": "alice/tool"})
	w := f.do(other, "POST", "/api/v1/catalog/try", map[string]string{"repo": "alice/tool"})
	res := decodeAs[wire.TryResult](t, w)
	if w.Code != 201 || !res.Job.Trial || res.Job.Spec.Image != "alice/tool:1" || res.Job.Spec.CPU != 500 || res.Trial.Left != 60 ||
		time.Duration(res.Job.Spec.Timeout) != 2*time.Minute {
		t.Fatalf("try: %d %+v", w.Code, res)
	}
	wantError(t, f.do(other, "POST", "/api/v1/catalog/try", map[string]string{"repo": "alice/tool"}), 409, wire.CodeConflict, "one trial at a time")
	// It runs for two minutes at half a CPU: 60 CPU-seconds, all of today's.
	start := time.Now().Add(-2 * time.Minute)
	f.must(ignore(store.CmdPlace.Propose(ctx, f.direct, store.Place{Placements: []store.Placement{{JobID: res.Job.ID, Task: 0, Node: "n1"}}})))
	f.must(ignore(store.CmdAttemptStarted.Propose(ctx, f.direct, store.AttemptStarted{JobID: res.Job.ID, Task: 0, N: 1, At: start})))
	f.must(ignore(store.CmdAttemptEnded.Propose(ctx, f.direct, store.AttemptEnded{JobID: res.Job.ID, Task: 0, N: 1, Reason: store.ReasonTimedOut, ExitCode: 137, Started: start, Ended: time.Now()})))
	if tr := decodeAs[wire.Trial](t, f.do(other, "GET", "/api/v1/catalog/trial", nil)); tr.Left > 0.5 || tr.Used < 59 {
		t.Fatalf("trial after a full run: %+v", tr)
	}
	wantError(t, f.do(other, "POST", "/api/v1/catalog/try", map[string]string{"repo": "alice/tool"}), 403, wire.CodeForbidden, "used up")
	// Trials off: refused saying so.
	f.do(admin, "PUT", "/api/v1/admin/trial", map[string]any{"cpu_seconds_per_day": 0})
	wantError(t, f.do(owner, "POST", "/api/v1/catalog/try", map[string]string{"repo": "alice/tool"}), 403, wire.CodeForbidden, "trials are off")
	wantError(t, f.do(admin, "PUT", "/api/v1/admin/trial", map[string]any{"cpu_seconds_per_day": -1}), 400, wire.CodeInvalid, "negative")
}

// TestGenAIJobsAreLabelled: a job of a generative-AI image, or of an image
// built on one, says so.
func TestGenAIJobsAreLabelled(t *testing.T) {
	f := newFixture(t)
	w := f.do(owner, "POST", "/api/v1/jobs", map[string]any{"image": "alice/model:1"})
	if j := decodeAs[wire.Job](t, w); w.Code != 201 || !j.GenAI {
		t.Fatalf("a job of alice/model: %d %+v", w.Code, j)
	}
	if j := decodeAs[wire.Job](t, f.do(owner, "POST", "/api/v1/jobs", map[string]any{"image": "alice/tool:1"})); j.GenAI {
		t.Fatalf("a job of alice/tool is labelled generative AI: %+v", j)
	}
}
