package api

import (
	"net/http"
	"testing"

	"gantry/wire"
)

// TestReportTakedownAndRestoreThroughTheAPI: bob reports alice/tool and
// sees only his own report; the admin sees reports grouped by image and
// takes it down from one; then the catalog leaves it out, bob's job of it
// is refused with 451 taken_down naming the decision, alice's is not, and
// alice's image listing says why; a restore lifts it.
func TestReportTakedownAndRestoreThroughTheAPI(t *testing.T) {
	f := newFixture(t)
	cats := decodeAs[wire.ReportCategories](t, f.do(other, "GET", "/api/v1/reports/categories", nil))
	if len(cats.Categories) != 10 || cats.Categories[8].Code != "licence_violation" || cats.Categories[0].ZH == "" {
		t.Fatalf("categories %+v", cats)
	}
	wantError(t, f.do(other, "POST", "/api/v1/reports", map[string]string{"repo": "alice/tool", "category": "spam", "reason": "x"}), 400, wire.CodeInvalid, "licence_violation")
	wantError(t, f.do(other, "POST", "/api/v1/reports", map[string]string{"repo": "alice/none", "category": "other", "reason": "x"}), 404, wire.CodeNotFound)
	r := decodeAs[wire.Report](t, f.do(other, "POST", "/api/v1/reports", map[string]string{"repo": "alice/tool", "category": "licence_violation", "reason": "GPL code"}))
	f.do(admin, "POST", "/api/v1/reports", map[string]string{"repo": "alice/tool", "category": "other", "reason": "the admin's own"})
	if l := decodeAs[wire.ReportList](t, f.do(other, "GET", "/api/v1/reports", nil)); len(l.Images) != 1 || len(l.Images[0].Reports) != 1 || l.Images[0].Reports[0].ID != r.ID {
		t.Fatalf("bob sees %+v, want his report only", l)
	}
	if l := decodeAs[wire.ReportList](t, f.do(admin, "GET", "/api/v1/reports", nil)); len(l.Images) != 1 || l.Images[0].Open != 2 || l.Images[0].Repo != "alice/tool" {
		t.Fatalf("the admin sees %+v", l)
	}
	wantError(t, f.do(admin, "POST", "/api/v1/reports/"+r.ID+"/decide", map[string]string{"decision": "ban"}), 400, wire.CodeInvalid, "dismiss or takedown")
	wantError(t, f.do(admin, "POST", "/api/v1/reports/99/decide", map[string]string{"decision": "dismiss", "reason": "x"}), 404, wire.CodeNotFound)
	d := decodeAs[wire.ReportDecided](t, f.do(admin, "POST", "/api/v1/reports/"+r.ID+"/decide", map[string]any{"decision": "takedown", "reason": "ships GPL code as MIT"}))
	if d.Takedown == nil || d.Report.State != "taken_down" || d.Report.Takedown != d.Takedown.ID {
		t.Fatalf("decided %+v", d)
	}
	wantError(t, f.do(admin, "POST", "/api/v1/takedowns", map[string]string{"repo": "alice/tool", "reason": "again"}), 409, wire.CodeConflict)

	w := f.do(other, "POST", "/api/v1/jobs", map[string]any{"image": "alice/tool:1"})
	wantError(t, w, http.StatusUnavailableForLegalReasons, wire.CodeTakenDown, "decision "+d.Takedown.ID, "ships GPL code as MIT")
	if w := f.do(owner, "POST", "/api/v1/jobs", map[string]any{"image": "alice/tool:1"}); w.Code != http.StatusCreated {
		t.Fatalf("the owner's job: %d %s", w.Code, w.Body.String())
	}
	for _, e := range decodeAs[wire.CatalogList](t, f.do(other, "GET", "/api/v1/catalog", nil)).Entries {
		if e.Repo == "alice/tool" {
			t.Fatal("a taken-down image is in the catalog")
		}
	}
	imgs := decodeAs[wire.ImageList](t, f.do(owner, "GET", "/api/v1/images", nil))
	found := false
	for _, r := range imgs.Repositories {
		if r.Name == "alice/tool" {
			found = r.TakenDown != nil && r.TakenDown.Reason == "ships GPL code as MIT"
		}
	}
	if !found {
		t.Fatalf("alice's image list does not say alice/tool is down: %+v", imgs.Repositories)
	}
	if l := decodeAs[wire.TakedownList](t, f.do(admin, "GET", "/api/v1/takedowns", nil)); len(l.Takedowns) != 1 {
		t.Fatalf("takedowns %+v", l)
	}
	if w := f.do(admin, "POST", "/api/v1/takedowns/restore", map[string]string{"repo": "alice/tool"}); w.Code != 200 {
		t.Fatalf("restore: %d %s", w.Code, w.Body.String())
	}
	wantError(t, f.do(other, "POST", "/api/v1/jobs", map[string]any{"image": "alice/tool:1"}), 403, wire.CodeLicenceNotAccepted)
	wantError(t, f.do(admin, "POST", "/api/v1/takedowns/restore", map[string]string{"repo": "alice/tool"}), 404, wire.CodeNotFound)
}

// TestSuspensionThroughTheAPI: a suspended account reads why (GET /me)
// and its inbox, and is refused everything else with 403
// account_suspended; the admin cannot be suspended; restore lifts it.
func TestSuspensionThroughTheAPI(t *testing.T) {
	f := newFixture(t)
	wantError(t, f.do(admin, "POST", "/api/v1/users/bob/suspend", map[string]string{}), 400, wire.CodeInvalid, "reason")
	wantError(t, f.do(admin, "POST", "/api/v1/users/admin/suspend", map[string]string{"reason": "x"}), 409, wire.CodeConflict)
	wantError(t, f.do(admin, "POST", "/api/v1/users/nobody/suspend", map[string]string{"reason": "x"}), 404, wire.CodeNotFound)
	u := decodeAs[wire.User](t, f.do(admin, "POST", "/api/v1/users/bob/suspend", map[string]string{"reason": "spamming the catalog"}))
	if u.Suspension == nil || u.Suspension.By != "admin" {
		t.Fatalf("suspended %+v", u)
	}
	if me := decodeAs[wire.User](t, f.do(other, "GET", "/api/v1/me", nil)); me.Suspension == nil || me.Suspension.Reason != "spamming the catalog" {
		t.Fatalf("bob's /me %+v", me)
	}
	if in := decodeAs[wire.Inbox](t, f.do(other, "GET", "/api/v1/inbox", nil)); len(in.Messages) != 1 || in.Messages[0].Kind != "user.suspend" {
		t.Fatalf("bob's inbox %+v", in)
	}
	for _, rq := range []struct{ method, path string }{{"POST", "/api/v1/jobs"}, {"POST", "/api/v1/schedules"}, {"GET", "/api/v1/jobs"},
		{"POST", "/api/v1/images/publish"}, {"POST", "/api/v1/reports"}} {
		wantError(t, f.do(other, rq.method, rq.path, jobBody(f, other)), 403, wire.CodeAccountSuspended, "spamming the catalog")
	}
	if w := f.do(admin, "POST", "/api/v1/users/bob/restore", nil); w.Code != 200 {
		t.Fatalf("restore: %d %s", w.Code, w.Body.String())
	}
	wantError(t, f.do(admin, "POST", "/api/v1/users/bob/restore", nil), 409, wire.CodeConflict)
	if w := f.do(other, "POST", "/api/v1/jobs", jobBody(f, other)); w.Code != http.StatusCreated {
		t.Fatalf("after restore: %d %s", w.Code, w.Body.String())
	}
}
