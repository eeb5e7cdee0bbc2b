package store

import (
	"strings"
	"testing"
	"time"
)

// image stores an image manifest of repo owned by owner with the given
// layers (and a config).
func (a *regApplier) image(owner, repo, digest string, layers ...string) {
	a.t.Helper()
	blobs := append([]string{"sha256:c0" + repo[:1]}, layers...)
	for _, b := range blobs {
		if _, err := a.apply(CmdRegLinkBlob, RegLinkBlob{Repo: repo, Owner: owner, Digest: b, Size: 10}); err != nil {
			a.t.Fatal(err)
		}
	}
	if _, err := a.apply(CmdRegPutManifest, RegPutManifest{Owner: owner, Tags: []string{"1"}, Manifest: RegManifest{Repo: repo, Digest: digest,
		MediaType: "application/vnd.oci.image.manifest.v1+json", Content: []byte("{}"), Blobs: blobs, Layers: layers}}); err != nil {
		a.t.Fatal(err)
	}
}

func (a *regApplier) publish(owner, repo, licence, digest string, tweak ...func(*Publication)) error {
	p := Publication{Repo: repo, Licence: LicenceRef{Expression: licence, Digest: digest}, Use: UseResearch, Access: AccessOpen}
	for _, f := range tweak {
		f(&p)
	}
	if _, err := a.apply(CmdPublishRepo, PublishRepo{Publication: p, LicenceText: licence + " text", Actor: owner}); err != nil {
		return err
	}
	// Approved by review (governance_test.go tests review itself).
	_, err := a.apply(CmdReview, DecideReview{Meta: Meta{Actor: "admin", Admin: true}, Repo: repo, Decision: ReviewApproved})
	return err
}

func (a *regApplier) gate(user, repo string) (bool, string) {
	a.t.Helper()
	shared, err := a.st.PullGate(user, repo)
	return shared, ErrorCode(err)
}

func TestPublishAndTheLicenceGate(t *testing.T) {
	a := newRegApplier(t)
	a.image("alice", "alice/tool", "sha256:m1", "sha256:l1", "sha256:l2")
	if err := a.publish("bob", "alice/tool", "MIT", "sha256:v1"); ErrorCode(err) != EForbidden {
		t.Fatalf("bob publishing alice's repository: %v", err)
	}
	if err := a.publish("alice", "alice/nothing", "MIT", "sha256:v1"); ErrorCode(err) != ENotFound {
		t.Fatalf("publishing a repository that does not exist: %v", err)
	}
	if shared, _ := a.gate("bob", "alice/tool"); shared {
		t.Fatal("an unpublished repository is shared")
	}
	if err := a.publish("alice", "alice/tool", "MIT", "sha256:v1"); err != nil {
		t.Fatal(err)
	}
	if shared, code := a.gate("bob", "alice/tool"); !shared || code != ELicenceNotAccepted {
		t.Fatalf("before accepting: shared %v code %s", shared, code)
	}
	if _, err := a.apply(CmdAcceptLicence, AcceptLicence{Repo: "alice/tool", User: "bob", Licence: "sha256:v0"}); ErrorCode(err) != EConflict {
		t.Fatalf("accepting a licence version that is not the current one: %v", err)
	}
	if _, err := a.apply(CmdAcceptLicence, AcceptLicence{Repo: "alice/tool", User: "bob", Licence: "sha256:v1"}); err != nil {
		t.Fatal(err)
	}
	if shared, err := a.st.PullGate("bob", "alice/tool"); !shared || err != nil {
		t.Fatalf("after accepting: %v", err)
	}
	// A new licence version needs a new acceptance.
	if err := a.publish("alice", "alice/tool", "Apache-2.0", "sha256:v2"); err != nil {
		t.Fatal(err)
	}
	_, err := a.st.PullGate("bob", "alice/tool")
	if ErrorCode(err) != ELicenceNotAccepted || !strings.Contains(err.Error(), "changed") {
		t.Fatalf("after a new licence version: %v", err)
	}
	if p, _ := a.st.Publication("alice/tool"); p.Published.IsZero() || p.Licence.Digest != "sha256:v2" {
		t.Fatalf("publication %+v", p)
	}
	// Unpublished: private again, acceptances kept.
	if _, err := a.apply(CmdUnpublishRepo, UnpublishRepo{Repo: "alice/tool", Actor: "alice"}); err != nil {
		t.Fatal(err)
	}
	if shared, _ := a.gate("bob", "alice/tool"); shared {
		t.Fatal("an unpublished repository is still shared")
	}
	if acs, _ := a.st.UserAcceptances("bob"); len(acs) != 1 || acs[0].Licence.Digest != "sha256:v1" {
		t.Fatalf("bob's acceptances %+v", acs)
	}
}

func TestGenerativeAIImagesNeedApprovalUnlessFiled(t *testing.T) {
	a := newRegApplier(t)
	a.image("alice", "alice/gen", "sha256:m1", "sha256:l1")
	err := a.publish("alice", "alice/gen", "MIT", "sha256:v1", func(p *Publication) { p.GenAI = true })
	if ErrorCode(err) != EInvalid || !strings.Contains(err.Error(), "approval") {
		t.Fatalf("an open generative-AI image without filing: %v", err)
	}
	if err := a.publish("alice", "alice/gen", "MIT", "sha256:v1", func(p *Publication) { p.GenAI, p.Access = true, AccessApproval }); err != nil {
		t.Fatal(err)
	}
	if err := a.publish("alice", "alice/gen", "MIT", "sha256:v1", func(p *Publication) { p.GenAI, p.GenAIFiled = true, true }); err != nil {
		t.Fatalf("open with the filing declared: %v", err)
	}
}

func TestApprovalMode(t *testing.T) {
	a := newRegApplier(t)
	a.image("alice", "alice/model", "sha256:m1", "sha256:l1")
	if err := a.publish("alice", "alice/model", "MIT", "sha256:v1", func(p *Publication) {
		p.Access, p.Questions = AccessApproval, []string{"What will you use it for?"}
	}); err != nil {
		t.Fatal(err)
	}
	if _, code := a.gate("bob", "alice/model"); code != EAccessPending {
		t.Fatalf("never asked: %s", code)
	}
	if _, err := a.apply(CmdRequestAccess, RequestAccess{Repo: "alice/model", User: "bob"}); ErrorCode(err) != EInvalid {
		t.Fatalf("a request without answers: %v", err)
	}
	if _, err := a.apply(CmdRequestAccess, RequestAccess{Repo: "alice/model", User: "bob", Answers: []string{"my thesis"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.apply(CmdDecideAccess, DecideAccess{Repo: "alice/model", User: "bob", Decision: AccessApproved, Actor: "carol"}); ErrorCode(err) != EForbidden {
		t.Fatalf("someone else deciding: %v", err)
	}
	if _, err := a.apply(CmdDecideAccess, DecideAccess{Repo: "alice/model", User: "bob", Decision: AccessRejected, Actor: "alice"}); ErrorCode(err) != EInvalid {
		t.Fatalf("a rejection without a reason: %v", err)
	}
	a.apply(CmdDecideAccess, DecideAccess{Repo: "alice/model", User: "bob", Decision: AccessRejected, Reason: "not for theses", Actor: "alice"})
	if _, err := a.st.PullGate("bob", "alice/model"); ErrorCode(err) != EAccessRejected || !strings.Contains(err.Error(), "not for theses") {
		t.Fatalf("rejected: %v", err)
	}
	a.apply(CmdRequestAccess, RequestAccess{Repo: "alice/model", User: "bob", Answers: []string{"research after all"}})
	a.apply(CmdDecideAccess, DecideAccess{Repo: "alice/model", User: "bob", Decision: AccessApproved, Actor: "alice"})
	if _, code := a.gate("bob", "alice/model"); code != ELicenceNotAccepted {
		t.Fatalf("approved, licence not accepted: %s", code)
	}
	a.apply(CmdAcceptLicence, AcceptLicence{Repo: "alice/model", User: "bob", Licence: "sha256:v1"})
	if _, err := a.st.PullGate("bob", "alice/model"); err != nil {
		t.Fatalf("approved and accepted: %v", err)
	}
	a.apply(CmdDecideAccess, DecideAccess{Repo: "alice/model", User: "bob", Decision: AccessRevoked, Reason: "licence violation", Actor: "alice"})
	if _, err := a.st.PullGate("bob", "alice/model"); ErrorCode(err) != EAccessRejected || !strings.Contains(err.Error(), "licence violation") {
		t.Fatalf("revoked: %v", err)
	}
	acs, reqs, _ := a.st.RepoAccess("alice/model")
	if len(acs) != 0 || len(reqs) != 1 || reqs[0].State != AccessRevoked || reqs[0].By != "alice" {
		t.Fatalf("records after revoking: %+v %+v", acs, reqs)
	}
}

func TestLineage(t *testing.T) {
	a := newRegApplier(t)
	a.image("alice", "alice/base", "sha256:mb", "sha256:l1", "sha256:l2")
	if err := a.publish("alice", "alice/base", "MIT", "sha256:v1"); err != nil {
		t.Fatal(err)
	}
	// bob builds FROM alice/base: his layers begin with hers.
	a.image("bob", "bob/app", "sha256:ma", "sha256:l1", "sha256:l2", "sha256:l3")
	// An image sharing only the first layer is not built on it.
	a.image("bob", "bob/other", "sha256:mo", "sha256:l1", "sha256:lx")
	ds, _ := a.st.Derivations("bob/app")
	if len(ds) != 1 || ds[0].Base != "alice/base" || ds[0].BaseOwner != "alice" || ds[0].Licence.Digest != "sha256:v1" {
		t.Fatalf("derivations of bob/app %+v", ds)
	}
	if ds, _ := a.st.Derivations("bob/other"); len(ds) != 0 {
		t.Fatalf("bob/other inherited %+v", ds)
	}
	// alice's own image on her base inherits nothing: she holds both.
	a.image("alice", "alice/tuned", "sha256:mt", "sha256:l1", "sha256:l2", "sha256:l9")
	if ds, _ := a.st.Derivations("alice/tuned"); len(ds) != 0 {
		t.Fatalf("alice/tuned inherited her own notice %+v", ds)
	}
	if err := a.publish("bob", "bob/app", "Apache-2.0", "sha256:b1"); err != nil {
		t.Fatal(err)
	}
	a.apply(CmdAcceptLicence, AcceptLicence{Repo: "bob/app", User: "carol", Licence: "sha256:b1"})
	_, err := a.st.PullGate("carol", "bob/app")
	if ErrorCode(err) != ELicenceNotAccepted || !strings.Contains(err.Error(), "built on alice/base") || !strings.Contains(err.Error(), "gantry image accept alice/base") {
		t.Fatalf("carol pulling bob/app without alice's licence: %v", err)
	}
	a.apply(CmdAcceptLicence, AcceptLicence{Repo: "alice/base", User: "carol", Licence: "sha256:v1"})
	if _, err := a.st.PullGate("carol", "bob/app"); err != nil {
		t.Fatalf("with both licences accepted: %v", err)
	}
	if _, err := a.apply(CmdRemoveNotice, RemoveNotice{Repo: "bob/app", Base: "alice/base", Actor: "bob"}); ErrorCode(err) != EForbidden {
		t.Fatalf("bob removing alice's notice: %v", err)
	}
	if _, err := a.apply(CmdRemoveNotice, RemoveNotice{Repo: "bob/app", Base: "alice/base", Actor: "alice"}); err != nil {
		t.Fatalf("alice removing her notice: %v", err)
	}
	if ds, _ := a.st.Derivations("bob/app"); len(ds) != 0 {
		t.Fatalf("notice still there: %+v", ds)
	}
}

func TestPullCounts(t *testing.T) {
	a := newRegApplier(t)
	a.image("alice", "alice/tool", "sha256:m1", "sha256:l1")
	a.publish("alice", "alice/tool", "MIT", "sha256:v1")
	a.apply(CmdCountPulls, CountPulls{Counts: map[string]int64{"alice/tool": 3, "nobody/x": 9}})
	a.apply(CmdCountPulls, CountPulls{Counts: map[string]int64{"alice/tool": 2}})
	if p, _ := a.st.Publication("alice/tool"); p.Pulls != 5 {
		t.Fatalf("pulls %d", p.Pulls)
	}
	a.publish("alice", "alice/tool", "MIT", "sha256:v1")
	if p, _ := a.st.Publication("alice/tool"); p.Pulls != 5 {
		t.Fatalf("pulls after an update %d", p.Pulls)
	}
}

// TestScheduleSkipsWhenTheLicenceLapses: a schedule of bob's running
// alice's published image skips its runs, saying why, once a new licence
// version needs his acceptance, and runs again after it.
func TestScheduleSkipsWhenTheLicenceLapses(t *testing.T) {
	a := newRegApplier(t)
	a.image("alice", "alice/tool", "sha256:m1", "sha256:l1")
	a.publish("alice", "alice/tool", "MIT", "sha256:v1")
	a.apply(CmdAcceptLicence, AcceptLicence{Repo: "alice/tool", User: "bob", Licence: "sha256:v1"})
	spec := JobSpec{Image: "alice/tool:1"}
	spec.Defaults()
	_, err := a.apply(CmdCreateSchedule, CreateSchedule{Schedule: Schedule{ID: "s1", Owner: "bob", Cron: "@every 1s", Spec: spec, ImageRepo: "alice/tool"}})
	if err != nil {
		t.Fatal(err)
	}
	fire := func(n int) *FireResult {
		s, _ := a.st.Schedule("s1")
		r, err := a.apply(CmdFireSchedule, FireSchedule{ID: "s1", Due: s.NextRun, JobID: "j" + string(rune('0'+n))})
		if err != nil {
			t.Fatal(err)
		}
		return r.(*FireResult)
	}
	if r := fire(1); r.Job == nil {
		t.Fatalf("first run: %+v", r)
	}
	a.publish("alice", "alice/tool", "Apache-2.0", "sha256:v2")
	a.apply(CmdCancelJob, CancelJob{ID: "j1", Actor: "bob"}) // the previous run is over
	if r := fire(2); !r.Skipped || r.Job != nil {
		t.Fatalf("a run after the licence changed: %+v", r)
	}
	if s, _ := a.st.Schedule("s1"); !strings.Contains(s.SkipReason, "changed") || s.Skipped != 1 {
		t.Fatalf("schedule after the skip: %+v", s)
	}
	a.apply(CmdAcceptLicence, AcceptLicence{Repo: "alice/tool", User: "bob", Licence: "sha256:v2"})
	if r := fire(3); r.Job == nil {
		t.Fatalf("a run after accepting again: %+v", r)
	}
	if s, _ := a.st.Schedule("s1"); s.SkipReason != "" || s.Runs != 2 {
		t.Fatalf("schedule after the run: %+v", s)
	}
}

// TestTrialsUseTheAllowanceNotTheQuota: a trial job is placed beyond its
// owner's quota, holds nothing of it, and its CPU time is charged to the
// owner's trial use of the day.
func TestTrialsUseTheAllowanceNotTheQuota(t *testing.T) {
	f := newFSM(t)
	f.node("n1", 8000)
	f.must(CmdCreateUser, CreateUser{User: User{Name: "bob"}})
	q := Resources{CPU: 100}
	f.must(CmdUpdateUser, UpdateUser{Name: "bob", Quota: &q})
	spec := JobSpec{Image: "x", CPU: 500, Memory: 64 << 20}
	spec.Defaults()
	f.must(CmdSubmitJob, SubmitJob{ID: "trial", Owner: "bob", Spec: spec, Trial: true})
	if n := f.placeAll("n1"); n != 1 {
		t.Fatalf("the trial was not placed beyond the quota: %d", n)
	}
	if u, _ := f.st.Usage("bob"); u.Allocated.CPU != 0 {
		t.Fatalf("the trial holds bob's quota: %+v", u)
	}
	start := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	f.must(CmdAttemptStarted, AttemptStarted{JobID: "trial", Task: 0, N: 1, At: start})
	f.must(CmdAttemptEnded, AttemptEnded{JobID: "trial", Task: 0, N: 1, Reason: ReasonExited, Started: start, Ended: start.Add(10 * time.Second)})
	u, _ := f.st.TrialUse("bob", "2026-03-01")
	if u.Runs != 1 || u.CPUSeconds < 4.9 || u.CPUSeconds > 5.1 {
		t.Fatalf("trial use %+v, want 5 CPU-seconds (0.5 CPU for 10 s)", u)
	}
}
