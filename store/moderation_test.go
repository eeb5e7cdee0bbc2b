package store

import (
	"strings"
	"testing"
)

var adminMeta = Meta{Actor: "admin", Admin: true}

func TestReportsAreFiledDismissedAndSettledByATakedown(t *testing.T) {
	a := newRegApplier(t)
	a.image("alice", "alice/tool", "sha256:m1", "sha256:l1")
	if err := a.publish("alice", "alice/tool", "MIT", "sha256:v1"); err != nil {
		t.Fatal(err)
	}
	file := func(user, category, reason string) (*Report, error) {
		r, err := a.apply(CmdFileReport, FileReport{Meta: Meta{Actor: user}, Repo: "alice/tool", Category: category, Reason: reason})
		rep, _ := r.(*Report)
		return rep, err
	}
	t.Run("bad reports are refused", func(t *testing.T) {
		if _, err := file("bob", "spam", "x"); ErrorCode(err) != EInvalid || !strings.Contains(err.Error(), "licence_violation") {
			t.Fatalf("unknown category: %v", err)
		}
		if _, err := file("bob", "other", " "); ErrorCode(err) != EInvalid {
			t.Fatalf("no reason: %v", err)
		}
		if _, err := a.apply(CmdFileReport, FileReport{Meta: Meta{Actor: "bob"}, Repo: "alice/none", Category: "other", Reason: "x"}); ErrorCode(err) != ENotFound {
			t.Fatalf("unpublished image: %v", err)
		}
	})
	r1, err := file("bob", "licence_violation", "it ships GPL code as MIT")
	if err != nil {
		t.Fatal(err)
	}
	r2, err := file("carol", "illegal_gambling_cheats", "a game cheat")
	if err != nil {
		t.Fatal(err)
	}
	if r1.ID == r2.ID || r1.State != ReportOpen || r1.Owner != "alice" {
		t.Fatalf("reports %+v %+v", r1, r2)
	}
	if mine, _ := a.st.Reports("bob", false); len(mine) != 1 || mine[0].ID != r1.ID {
		t.Fatalf("bob sees %+v, want only his own", mine)
	}
	if _, err := a.apply(CmdDismissReport, DismissReport{Meta: Meta{Actor: "bob"}, ID: r2.ID, Reason: "no"}); ErrorCode(err) != EForbidden {
		t.Fatalf("a user dismissing: %v", err)
	}
	if _, err := a.apply(CmdDismissReport, DismissReport{Meta: adminMeta, ID: r1.ID, Reason: "the licence is MIT"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.apply(CmdDismissReport, DismissReport{Meta: adminMeta, ID: r1.ID, Reason: "again"}); ErrorCode(err) != EConflict {
		t.Fatalf("dismissing twice: %v", err)
	}
	if in, _ := a.st.Inbox("bob", false); len(in) != 1 || in[0].Kind != "report.dismissed" || !strings.Contains(in[0].Body, "the licence is MIT") {
		t.Fatalf("bob's inbox %+v", in)
	}
	res, err := a.apply(CmdTakeDown, TakeDown{Meta: adminMeta, Repo: "alice/tool", Reason: "a game cheat", Report: r2.ID})
	if err != nil {
		t.Fatal(err)
	}
	td := res.(*Takedown)
	all, _ := a.st.Reports("", false)
	if len(all) != 2 || all[1].State != ReportActioned || all[1].Takedown != td.ID || all[0].State != ReportDismissed {
		t.Fatalf("reports after the takedown %+v", all)
	}
	if in, _ := a.st.Inbox("carol", false); len(in) != 1 || in[0].Kind != "report.actioned" {
		t.Fatalf("carol's inbox %+v", in)
	}
}

func TestATakedownRefusesEveryoneButTheOwnerUntilRestored(t *testing.T) {
	a := newRegApplier(t)
	a.image("alice", "alice/tool", "sha256:m1", "sha256:l1")
	if err := a.publish("alice", "alice/tool", "MIT", "sha256:v1"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.apply(CmdTakeDown, TakeDown{Meta: Meta{Actor: "bob"}, Repo: "alice/tool", Reason: "x"}); ErrorCode(err) != EForbidden {
		t.Fatalf("a user taking down: %v", err)
	}
	if _, err := a.apply(CmdTakeDown, TakeDown{Meta: adminMeta, Repo: "alice/tool"}); ErrorCode(err) != EInvalid {
		t.Fatalf("no reason: %v", err)
	}
	if _, err := a.apply(CmdTakeDown, TakeDown{Meta: adminMeta, Repo: "alice/tool", Reason: "x", Notice: "7"}); ErrorCode(err) != ENotFound {
		t.Fatalf("naming a notice that does not exist: %v", err)
	}
	nres, err := a.apply(CmdFileNotice, FileNotice{Meta: Meta{Actor: "bob"}, Form: testNoticeForm(), Repos: []string{"alice/tool"}})
	if err != nil {
		t.Fatal(err)
	}
	notice := nres.(*Notice).ID
	res, err := a.apply(CmdTakeDown, TakeDown{Meta: adminMeta, Repo: "alice/tool", Reason: "infringes a trademark", Notice: notice})
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := a.st.Notice(notice); n.State != NoticeTakenDown || n.Timeline[len(n.Timeline)-1].Action != "image.takedown" {
		t.Fatalf("the notice the takedown names: %+v", n)
	}
	td := res.(*Takedown)
	if _, err := a.apply(CmdTakeDown, TakeDown{Meta: adminMeta, Repo: "alice/tool", Reason: "again"}); ErrorCode(err) != EConflict {
		t.Fatalf("twice: %v", err)
	}
	shared, err := a.st.PullGate("bob", "alice/tool")
	if !shared || ErrorCode(err) != ETakenDown || !strings.Contains(err.Error(), "infringes a trademark") || !strings.Contains(err.Error(), "decision "+td.ID) {
		t.Fatalf("bob's gate: %v %v", shared, err)
	}
	if _, err := a.st.PullGate("alice", "alice/tool"); err != nil {
		t.Fatalf("the owner's gate: %v", err)
	}
	p, _ := a.st.Publication("alice/tool")
	if p.Listed() || p.TakenDown == nil {
		t.Fatal("a taken-down image is still listed")
	}
	t.Run("unpublishing and publishing again does not lift it", func(t *testing.T) {
		if _, err := a.apply(CmdUnpublishRepo, UnpublishRepo{Repo: "alice/tool", Actor: "alice"}); err != nil {
			t.Fatal(err)
		}
		if err := a.publish("alice", "alice/tool", "MIT", "sha256:v1"); err != nil {
			t.Fatal(err)
		}
		if _, code := a.gate("bob", "alice/tool"); code != ETakenDown {
			t.Fatalf("after publishing again: %s", code)
		}
	})
	if in, _ := a.st.Inbox("alice", false); !hasMessage(in, "image.takedown", "Infringement notice: "+notice) {
		t.Fatalf("alice's inbox %+v", in)
	}
	if _, err := a.apply(CmdRestoreImage, RestoreImage{Meta: adminMeta, Repo: "alice/tool"}); err != nil {
		t.Fatal(err)
	}
	if _, code := a.gate("bob", "alice/tool"); code != ELicenceNotAccepted {
		t.Fatalf("after the restore bob is told %q, want the licence gate again", code)
	}
	if _, err := a.apply(CmdRestoreImage, RestoreImage{Meta: adminMeta, Repo: "alice/tool"}); ErrorCode(err) != ENotFound {
		t.Fatalf("restoring twice: %v", err)
	}
	recs, _, _ := a.st.AuditRecords(AuditFilter{Action: "image.takedown"})
	rest, _, _ := a.st.AuditRecords(AuditFilter{Action: "image.restore"})
	if len(recs) != 1 || len(rest) != 1 || !strings.Contains(recs[0].Detail, "notice "+notice) {
		t.Fatalf("audit %+v %+v", recs, rest)
	}
}

func TestSuspensionCancelsJobsOnlyWhenAskedAndRestoreLiftsIt(t *testing.T) {
	a := newRegApplier(t)
	for _, u := range []string{"alice", "bob"} {
		if _, err := a.apply(CmdCreateUser, CreateUser{User: User{Name: u}}); err != nil {
			t.Fatal(err)
		}
	}
	spec := JobSpec{Image: "gantry/toolbox", Command: []string{"sleep", "60"}}
	spec.Defaults()
	for i, id := range []string{"01JOBA", "01JOBB"} {
		owner := []string{"alice", "bob"}[i]
		if _, err := a.apply(CmdSubmitJob, SubmitJob{ID: id, Owner: owner, Spec: spec}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.apply(CmdSuspendUser, SuspendUser{Meta: adminMeta, User: "alice"}); ErrorCode(err) != EInvalid {
		t.Fatalf("no reason: %v", err)
	}
	if _, err := a.apply(CmdSuspendUser, SuspendUser{Meta: adminMeta, User: "admin", Reason: "x"}); ErrorCode(err) == "" {
		t.Fatal("suspended a missing or admin account")
	}
	if _, err := a.apply(CmdSuspendUser, SuspendUser{Meta: adminMeta, User: "bob", Reason: "spam"}); err != nil {
		t.Fatal(err)
	}
	if j, _ := a.st.Job("01JOBB"); Terminal(j.State) {
		t.Fatal("a suspension without cancel_jobs cancelled a job")
	}
	res, err := a.apply(CmdSuspendUser, SuspendUser{Meta: adminMeta, User: "alice", Reason: "licence violation", CancelJobs: true})
	if err != nil {
		t.Fatal(err)
	}
	if u := res.(*User); u.Suspension == nil || len(u.Suspension.Cancelled) != 1 {
		t.Fatalf("alice %+v", u.Suspension)
	}
	if j, _ := a.st.Job("01JOBA"); j.State != StateCancelled {
		t.Fatalf("alice's job is %s", j.State)
	}
	if err := a.st.Suspended("alice"); ErrorCode(err) != EAccountSuspended || !strings.Contains(err.Error(), "licence violation") {
		t.Fatalf("Suspended: %v", err)
	}
	if _, err := a.apply(CmdSuspendUser, SuspendUser{Meta: adminMeta, User: "alice", Reason: "again"}); ErrorCode(err) != EConflict {
		t.Fatalf("twice: %v", err)
	}
	if _, err := a.apply(CmdRestoreUser, RestoreUser{Meta: adminMeta, User: "alice"}); err != nil {
		t.Fatal(err)
	}
	if err := a.st.Suspended("alice"); err != nil {
		t.Fatalf("after restore: %v", err)
	}
	if in, _ := a.st.Inbox("alice", false); len(in) != 2 || in[0].Kind != "user.restore" || in[1].Kind != "user.suspend" {
		t.Fatalf("alice's inbox %+v", in)
	}
}

// hasMessage reports whether ms holds a message of kind whose body says text.
func hasMessage(ms []Message, kind, text string) bool {
	for _, m := range ms {
		if m.Kind == kind && strings.Contains(m.Body, text) {
			return true
		}
	}
	return false
}
