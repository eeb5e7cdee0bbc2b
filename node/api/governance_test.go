package api

import (
	"bufio"
	"encoding/json"
	"strings"
	"testing"

	"gantry/store"
	"gantry/wire"
)

// TestAuditRecordsAccountTokenNodeAndImageActions: audited routes leave a
// record with actor, source, target and outcome, refusals included (one
// refused before its handler read the body has no target); the log
// filters, pages, verifies and exports.
func TestAuditRecordsAccountTokenNodeAndImageActions(t *testing.T) {
	f := newFixture(t)
	base := len(decodeAs[wire.AuditList](t, f.do(admin, "GET", "/api/v1/audit", nil)).Records) // the fixture's own
	if w := f.do(admin, "POST", "/api/v1/users", map[string]any{"username": "carol", "password": "carol-password"}); w.Code != 201 {
		t.Fatalf("create carol: %d %s", w.Code, w.Body.String())
	}
	f.do(other, "POST", "/api/v1/users", map[string]any{"username": "eve", "password": "eve-password-1"})
	f.do(admin, "POST", "/api/v1/nodes/n1/drain", nil)
	f.do(owner, "DELETE", "/api/v1/images/alice/tool/tags/1", nil)
	f.do(owner, "POST", "/api/v1/tokens", map[string]string{"name": "ci"})
	f.do(admin, "GET", "/api/v1/users", nil) // reads are not recorded

	l := decodeAs[wire.AuditList](t, f.do(admin, "GET", "/api/v1/audit", nil))
	l.Records = l.Records[base:]
	type rec struct{ actor, action, target, outcome string }
	var got []rec
	for _, r := range l.Records {
		got = append(got, rec{r.Actor, r.Action, r.Target, r.Outcome})
		if r.Source == "" || r.At.IsZero() || r.Hash == "" {
			t.Fatalf("record without source, time or hash: %+v", r)
		}
	}
	want := []rec{{"admin", "user.create", "carol", "ok"}, {"bob", "user.create", "", wire.CodeForbidden},
		{"admin", "node.drain", "n1", "ok"}, {"alice", "image.delete", "alice/tool/tags/1", "ok"}}
	if len(got) != 5 || !equalRecs(got[:4], want) || got[4].action != "token.create" || !strings.HasPrefix(got[4].target, "alice ") {
		t.Fatalf("audit log %+v, want %+v and alice's token.create", got, want)
	}
	if l.Records[1].Prev != l.Records[0].Hash {
		t.Fatal("records are not chained")
	}

	t.Run("filters by actor and action", func(t *testing.T) {
		l := decodeAs[wire.AuditList](t, f.do(admin, "GET", "/api/v1/audit?actor=bob", nil))
		if len(l.Records) != 1 || l.Records[0].Outcome != wire.CodeForbidden {
			t.Fatalf("bob's records: %+v", l.Records)
		}
		l = decodeAs[wire.AuditList](t, f.do(admin, "GET", "/api/v1/audit?action=node.drain&since=1h", nil))
		if len(l.Records) != 1 || l.Records[0].Target != "n1" {
			t.Fatalf("node.drain records: %+v", l.Records)
		}
	})
	t.Run("pages with a cursor", func(t *testing.T) {
		p1 := decodeAs[wire.AuditList](t, f.do(admin, "GET", "/api/v1/audit?limit=2", nil))
		p2 := decodeAs[wire.AuditList](t, f.do(admin, "GET", "/api/v1/audit?limit=2&cursor="+p1.Next, nil))
		if len(p1.Records) != 2 || p1.Next == "" || len(p2.Records) != 2 || p2.Records[0].Seq != p1.Records[1].Seq+1 {
			t.Fatalf("pages %+v / %+v", p1, p2)
		}
	})
	t.Run("bad filters are refused", func(t *testing.T) {
		wantError(t, f.do(admin, "GET", "/api/v1/audit?since=yesterday", nil), 400, wire.CodeInvalid, "since")
		wantError(t, f.do(admin, "GET", "/api/v1/audit?cursor=x", nil), 400, wire.CodeInvalid, "cursor")
		wantError(t, f.do(admin, "GET", "/api/v1/audit?limit=0", nil), 400, wire.CodeInvalid, "limit")
	})
	t.Run("verify says ok", func(t *testing.T) {
		v := decodeAs[wire.AuditVerification](t, f.do(admin, "GET", "/api/v1/audit/verify", nil))
		if !v.OK || v.Records != uint64(base+5) {
			t.Fatalf("verify %+v", v)
		}
	})
	t.Run("export is JSON lines", func(t *testing.T) {
		w := f.do(admin, "GET", "/api/v1/audit/export", nil)
		if w.Code != 200 || w.Header().Get("Content-Type") != "application/x-ndjson" {
			t.Fatalf("export: %d %s", w.Code, w.Header().Get("Content-Type"))
		}
		n := 0
		for sc := bufio.NewScanner(w.Body); sc.Scan(); n++ {
			var r wire.AuditRecord
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil || r.Seq != uint64(n+1) {
				t.Fatalf("line %d: %q %v", n, sc.Text(), err)
			}
		}
		if n != base+5 {
			t.Fatalf("exported %d records, want %d", n, base+5)
		}
	})
}

func equalRecs[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestInbox: a user sees their own messages only, newest first, and marks
// one read; another user's message id is not found.
func TestInbox(t *testing.T) {
	f := newFixture(t)
	if l := decodeAs[wire.Inbox](t, f.do(other, "GET", "/api/v1/inbox", nil)); len(l.Messages) != 0 {
		t.Fatalf("bob's new inbox: %+v", l)
	}
	for _, m := range decodeAs[wire.Inbox](t, f.do(owner, "GET", "/api/v1/inbox", nil)).Messages {
		f.do(owner, "POST", "/api/v1/inbox/"+m.ID+"/read", nil) // the fixture's
	}
	base := len(decodeAs[wire.Inbox](t, f.do(owner, "GET", "/api/v1/inbox", nil)).Messages)
	f.notify("alice", "first")
	f.notify("bob", "for bob")
	f.notify("alice", "second")
	l := decodeAs[wire.Inbox](t, f.do(owner, "GET", "/api/v1/inbox", nil))
	if len(l.Messages) != base+2 || l.Unread != 2 || l.Messages[0].Subject != "second" || l.Messages[1].Subject != "first" {
		t.Fatalf("alice's inbox: %+v", l)
	}
	m := decodeAs[wire.Message](t, f.do(owner, "POST", "/api/v1/inbox/"+l.Messages[1].ID+"/read", nil))
	if !m.Read {
		t.Fatalf("marked read: %+v", m)
	}
	if l := decodeAs[wire.Inbox](t, f.do(owner, "GET", "/api/v1/inbox?unread=true", nil)); len(l.Messages) != 1 || l.Unread != 1 {
		t.Fatalf("unread only: %+v", l)
	}
	bobs := decodeAs[wire.Inbox](t, f.do(other, "GET", "/api/v1/inbox", nil))
	wantError(t, f.do(owner, "POST", "/api/v1/inbox/"+bobs.Messages[0].ID+"/read", nil), 404, wire.CodeNotFound, "not found")
	wantError(t, f.do(owner, "POST", "/api/v1/inbox/nope/read", nil), 404, wire.CodeNotFound, "not found")
}

// notify puts an admin's message in user's inbox.
func (f *fixture) notify(user, subject string) {
	f.t.Helper()
	f.must(ignore(store.CmdSendMessage.Propose(f.t.Context(), f.direct, store.SendMessage{Meta: store.Meta{Actor: "admin", Admin: true}, User: user, Subject: subject})))
}

// TestReview: a user's new publication is pending (not listed, not
// pullable by others, not found by them), in the review queue; a
// rejection's reason reaches the publisher's inbox; an approval lists it;
// a changed README makes it pending again. The automatic rules approve an
// image that passes them and hold one that fails, saying why.
func TestReview(t *testing.T) {
	f := newFixture(t)
	f.image("alice", "alice/new", "1")
	e := decodeAs[wire.CatalogEntry](t, f.do(owner, "POST", "/api/v1/images/publish", map[string]any{"repo": "alice/new", "license": "MIT", "description": "new"}))
	if e.Review != "pending" {
		t.Fatalf("a new publication: review %q", e.Review)
	}
	listed := func() bool {
		l := decodeAs[wire.CatalogList](t, f.do(other, "GET", "/api/v1/catalog?q=alice/new", nil))
		return len(l.Entries) == 1
	}
	if listed() {
		t.Fatal("a pending image is listed")
	}
	wantError(t, f.do(other, "GET", "/api/v1/catalog/entry?repo=alice/new", nil), 404, wire.CodeNotFound, "not in the catalog")
	wantError(t, f.do(other, "POST", "/api/v1/jobs", map[string]any{"image": "alice/new:1"}), 400, wire.CodeInvalid, "not found")
	if w := f.do(owner, "GET", "/api/v1/catalog/entry?repo=alice/new", nil); w.Code != 200 {
		t.Fatalf("the owner reads their pending entry: %d", w.Code)
	}
	q := decodeAs[wire.CatalogList](t, f.do(admin, "GET", "/api/v1/review", nil))
	if len(q.Entries) != 1 || q.Entries[0].Repo != "alice/new" {
		t.Fatalf("review queue %+v", q.Entries)
	}

	wantError(t, f.do(admin, "POST", "/api/v1/review/decide", map[string]string{"repo": "alice/new", "decision": "reject"}), 400, wire.CodeInvalid, "reason")
	wantError(t, f.do(admin, "POST", "/api/v1/review/decide", map[string]string{"repo": "alice/new", "decision": "maybe"}), 400, wire.CodeInvalid, "decision")
	wantError(t, f.do(admin, "POST", "/api/v1/review/decide", map[string]string{"repo": "alice/none", "decision": "approve"}), 404, wire.CodeNotFound, "not published")
	r := decodeAs[wire.CatalogEntry](t, f.do(admin, "POST", "/api/v1/review/decide", map[string]string{"repo": "alice/new", "decision": "reject", "reason": "the README is missing"}))
	if r.Review != "rejected" || r.ReviewReason != "the README is missing" || listed() {
		t.Fatalf("rejected: %+v", r)
	}
	in := decodeAs[wire.Inbox](t, f.do(owner, "GET", "/api/v1/inbox?unread=true", nil))
	if len(in.Messages) == 0 || in.Messages[0].Kind != "review.rejected" || !strings.Contains(in.Messages[0].Body, "the README is missing") {
		t.Fatalf("alice's inbox after the rejection: %+v", in.Messages)
	}
	f.do(admin, "POST", "/api/v1/review/decide", map[string]string{"repo": "alice/new", "decision": "approve"})
	if !listed() {
		t.Fatal("an approved image is not listed")
	}
	f.do(owner, "POST", "/api/v1/images/publish", map[string]any{"repo": "alice/new", "license": "MIT", "description": "new", "readme": "# changed"})
	if listed() {
		t.Fatal("an image whose README changed stays listed before review")
	}
	recs := decodeAs[wire.AuditList](t, f.do(admin, "GET", "/api/v1/audit?action=review.reject", nil)).Records
	if len(recs) != 1 || recs[0].Target != "alice/new" || recs[0].Detail != "the README is missing" {
		t.Fatalf("audit of the rejection: %+v", recs)
	}

	t.Run("the automatic rules approve what passes and hold what fails", func(t *testing.T) {
		wantError(t, f.do(owner, "PUT", "/api/v1/review/rules", map[string]any{"auto": true}), 403, wire.CodeForbidden, "admin")
		rules := decodeAs[wire.ReviewRules](t, f.do(admin, "PUT", "/api/v1/review/rules", map[string]any{"auto": true, "require_fields": true, "deny": []string{"Casino", " casino "}}))
		if !rules.Auto || len(rules.Deny) != 1 || rules.Deny[0] != "casino" {
			t.Fatalf("rules %+v", rules)
		}
		f.image("alice", "alice/good", "1")
		f.image("alice", "alice/bad", "1")
		good := decodeAs[wire.CatalogEntry](t, f.do(owner, "POST", "/api/v1/images/publish", map[string]any{"repo": "alice/good", "license": "MIT", "description": "a solver", "readme": "# Solver"}))
		bad := decodeAs[wire.CatalogEntry](t, f.do(owner, "POST", "/api/v1/images/publish", map[string]any{"repo": "alice/bad", "license": "MIT", "description": "online CASINO bot"}))
		if good.Review != "approved" || bad.Review != "pending" || !strings.Contains(bad.ReviewReason, "no README") || !strings.Contains(bad.ReviewReason, `"casino"`) {
			t.Fatalf("good %s %q, bad %s %q", good.Review, good.ReviewReason, bad.Review, bad.ReviewReason)
		}
	})
}

// TestAuditedActionsRecordInTheirOwnEntry: an audited route's success is
// recorded by the very Raft entry that performs it (one entry applied, the
// record in it), so a crash between an action and its record cannot
// happen; an action that proposes no command (a dry-run collection) is
// recorded in an entry of its own, as a refusal is (after the refused
// entry). A publication takes several entries (its licence artifacts
// first): its record rides on the publication's.
func TestAuditedActionsRecordInTheirOwnEntry(t *testing.T) {
	f := newFixture(t)
	cases := []struct {
		name, method, path string
		body               any
		role               role
		status             int
		action, target     string
		entries            uint64
	}{
		{"an account created", "POST", "/api/v1/users", map[string]any{"username": "carol", "password": "carol-password"}, admin, 201, "user.create", "carol", 1},
		{"an account changed", "PATCH", "/api/v1/users/carol", map[string]any{"disabled": true}, admin, 200, "user.update", "carol", 1},
		{"a node drained", "POST", "/api/v1/nodes/n1/drain", nil, admin, 200, "node.drain", "n1", 1},
		{"a token created", "POST", "/api/v1/tokens", map[string]string{"name": "ci"}, owner, 201, "token.create", "", 1},
		{"a tag deleted", "DELETE", "/api/v1/images/alice/tool/tags/1", nil, owner, 200, "image.delete", "alice/tool/tags/1", 1},
		{"a publication updated", "POST", "/api/v1/images/publish", map[string]string{"repo": "alice/tool", "license": "MIT", "description": "changed"}, owner, 200, "image.publish", "alice/tool", 0},
		{"a collection that proposes nothing", "POST", "/api/v1/admin/gc?dry_run=1", nil, admin, 200, "image.gc", "", 1},
		{"a refusal", "POST", "/api/v1/users", map[string]any{"username": "carol", "password": "carol-password"}, admin, 409, "user.create", "carol", 2},
	}
	for _, c := range cases {
		before := f.st.AppliedIndex()
		was, _, _ := f.st.AuditRecords(store.AuditFilter{})
		if w := f.do(c.role, c.method, c.path, c.body); w.Code != c.status {
			t.Fatalf("%s: %d %s", c.name, w.Code, w.Body.String())
		}
		if got := f.st.AppliedIndex() - before; c.entries > 0 && got != c.entries {
			t.Errorf("%s: %d entries applied, want %d (the action and its record in one)", c.name, got, c.entries)
		}
		recs, _, _ := f.st.AuditRecords(store.AuditFilter{})
		if len(recs) != len(was)+1 {
			t.Errorf("%s: %d records added, want 1", c.name, len(recs)-len(was))
		}
		last := recs[len(recs)-1]
		if last.Action != c.action || (c.target != "" && last.Target != c.target) || last.Source == "" {
			t.Errorf("%s: the last record is %+v", c.name, last)
		}
		if c.action == "image.publish" && !strings.HasPrefix(last.Detail, "review: pending") {
			t.Errorf("the publication's record does not say its review: %q", last.Detail)
		}
	}
	if v := decodeAs[wire.AuditVerification](t, f.do(admin, "GET", "/api/v1/audit/verify", nil)); !v.OK {
		t.Fatalf("verify %+v", v)
	}
}
