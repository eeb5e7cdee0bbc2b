package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"gantry/node/auth"
	"gantry/store"
	"gantry/wire"
)

// The fixture's infringement notices: carol (an account of her own, with
// no token: she files through the store) files one against alice's
// alice/tool, so alice is the accused publisher and bob a stranger.

var noticeProof = []byte("%PDF-1.4 registration of Acme Render")

func noticeProofDigest() string {
	sum := sha256.Sum256(noticeProof)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func wireNoticeForm(content ...string) wire.NoticeForm {
	if content == nil {
		content = []string{"alice/tool:1"}
	}
	return wire.NoticeForm{
		RightsHolder: wire.NoticeParty{Name: "Acme", Kind: "organisation", IDDocument: "REG-991", Address: "1 Main St", Email: "legal@acme.example"},
		Works:        []string{"Acme Render 3"}, Proof: []wire.Upload{{Name: "registration.pdf", MediaType: "application/pdf", Data: noticeProof}},
		Content: content, Reasons: "the image ships our renderer", Evidence: []wire.Upload{{Name: "page.html", MediaType: "text/html", Data: []byte("<script>alert(1)</script>")}},
		Lang: "en", Statement: store.NoticeStatement.EN, Signature: "Ann Acme"}
}

func wireCounterForm() wire.CounterForm {
	return wire.CounterForm{Party: wire.NoticeParty{Name: "Alice", Kind: "person", IDDocument: "P-1", Address: "2 Side St", Phone: "+1 555 0100"},
		Reasons: "I wrote every line", Evidence: []wire.Upload{{Name: "history.txt", MediaType: "text/plain", Data: []byte("commits since 2019")}},
		Lang: "zh", Statement: store.CounterStatement.ZH, Signature: "Alice"}
}

// noticed files carol's notice against alice/tool once and returns its id.
func (f *fixture) noticed() string {
	f.t.Helper()
	if f.notice != "" {
		return f.notice
	}
	ctx := context.Background()
	f.must(ignore(store.CmdCreateUser.Propose(ctx, f.direct, store.CreateUser{User: store.User{Name: "carol", PasswordHash: hashes()["alice"]}})))
	w := wireNoticeForm()
	n, err := store.CmdFileNotice.Propose(ctx, f.direct, store.FileNotice{Meta: store.Meta{Actor: "carol"}, Repos: []string{"alice/tool"},
		Form: store.NoticeForm{RightsHolder: store.Party(w.RightsHolder), Works: w.Works, Proof: uploads(w.Proof), Content: w.Content,
			Reasons: w.Reasons, Evidence: uploads(w.Evidence), Lang: w.Lang, Statement: w.Statement, Signature: w.Signature}})
	f.must(err)
	f.notice = n.ID
	return n.ID
}

// noticeDown is carol's notice with alice/tool taken down on it.
func (f *fixture) noticeDown() string {
	f.t.Helper()
	id := f.noticed()
	f.must(ignore(store.CmdDecideNotice.Propose(context.Background(), f.direct, store.DecideNotice{Meta: store.Meta{Actor: "admin", Admin: true},
		ID: id, Decision: store.DecideTakedown, Reason: "the symbols match"})))
	return id
}

// noticeCountered is carol's notice, taken down and countered by alice.
func (f *fixture) noticeCountered() string {
	f.t.Helper()
	id := f.noticeDown()
	w := wireCounterForm()
	f.must(ignore(store.CmdFileCounter.Propose(context.Background(), f.direct, store.FileCounter{Meta: store.Meta{Actor: "alice"}, ID: id,
		Form: store.CounterForm{Party: store.Party(w.Party), Reasons: w.Reasons, Evidence: uploads(w.Evidence), Lang: w.Lang, Statement: w.Statement, Signature: w.Signature}})))
	return id
}

// openPublicForm opens the public notice form.
func (f *fixture) openPublicForm() {
	f.t.Helper()
	f.must(ignore(store.CmdNoticeSettings.Propose(context.Background(), f.direct, store.SetNoticeSettings{Meta: store.Meta{Actor: "admin", Admin: true},
		Settings: store.NoticeSettings{PublicForm: true}})))
}

// tokenFor gives user (an account of the fixture's) an API token.
func (f *fixture) tokenFor(user string) string {
	f.t.Helper()
	secret := auth.NewSecret()
	f.must(ignore(store.CmdCreateToken.Propose(context.Background(), f.direct, store.CreateToken{Token: store.Token{ID: "tok-" + user, User: user, Name: "test"}, Hash: auth.HashToken(secret)})))
	return secret
}

// TestNoticeAndCounterNoticeThroughTheAPI: bob files a notice with
// attachments against alice's image; alice, the accused, reads it without
// bob's private contact and downloads its attachments (served so they
// cannot run as a page), a stranger does not find it; the admin takes the
// image down (others' jobs refused with 451 naming the decision); alice
// counters, bob is forwarded her counter-notice, records a court action,
// and the admin keeps the image down; the timeline and the audit log
// carry every step.
func TestNoticeAndCounterNoticeThroughTheAPI(t *testing.T) {
	f := newFixture(t)
	w := f.do(other, "POST", "/api/v1/notices", wireNoticeForm("127.0.0.1:7070/alice/tool:1"))
	if w.Code != 201 {
		t.Fatalf("file: %d %s", w.Code, w.Body.String())
	}
	n := decodeAs[wire.InfringementNotice](t, w)
	if n.State != wire.NoticeFiled || n.Accused != "alice" || n.Filer != "bob" || n.Repos[0] != "alice/tool" || n.Proof[0].Digest != noticeProofDigest() || n.RightsHolder.Email == "" {
		t.Fatalf("filed: %+v", n)
	}
	path := "/api/v1/notices/" + n.ID

	t.Run("the accused reads it without the notifier's private contact", func(t *testing.T) {
		got := decodeAs[wire.InfringementNotice](t, f.do(owner, "GET", path, nil))
		if !got.Redacted || got.RightsHolder.Name != "Acme" || got.RightsHolder.Email != "" || got.RightsHolder.IDDocument != "" || got.RightsHolder.Address != "" || len(got.Proof) != 1 {
			t.Fatalf("alice sees %+v", got.RightsHolder)
		}
		l := decodeAs[wire.InfringementNoticeList](t, f.do(owner, "GET", "/api/v1/notices", nil))
		if len(l.Notices) != 1 || !l.Notices[0].Redacted {
			t.Fatalf("alice's list %+v", l)
		}
		if full := decodeAs[wire.InfringementNotice](t, f.do(admin, "GET", path, nil)); full.Redacted || full.RightsHolder.IDDocument != "REG-991" {
			t.Fatalf("the admin sees %+v", full.RightsHolder)
		}
	})
	t.Run("attachments reach the parties only, and never as a page", func(t *testing.T) {
		w := f.do(owner, "GET", path+"/attachments/"+n.Proof[0].Digest, nil)
		if w.Code != 200 || w.Body.String() != string(noticeProof) || w.Header().Get("Content-Type") != "application/pdf" ||
			!strings.Contains(w.Header().Get("Content-Disposition"), `attachment; filename="registration.pdf"`) || w.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Fatalf("proof: %d %v", w.Code, w.Header())
		}
		if w := f.do(owner, "GET", path+"/attachments/"+n.Evidence[0].Digest, nil); w.Code != 200 || w.Header().Get("Content-Type") != "application/octet-stream" || w.Header().Get("Content-Security-Policy") != "sandbox" {
			t.Fatalf("an HTML attachment is served as %q", w.Header().Get("Content-Type"))
		}
		wantError(t, f.do(owner, "GET", path+"/attachments/sha256:"+strings.Repeat("0", 64), nil), 404, wire.CodeNotFound, "no attachment")
		f.noticed() // carol exists
		carol := f.tokenFor("carol")
		wantError(t, f.doWith(carol, "GET", path, nil), 404, wire.CodeNotFound)
		wantError(t, f.doWith(carol, "GET", path+"/attachments/"+n.Proof[0].Digest, nil), 404, wire.CodeNotFound)
		if l := decodeAs[wire.InfringementNoticeList](t, f.doWith(carol, "GET", "/api/v1/notices", nil)); len(l.Notices) != 1 || l.Notices[0].Filer != "carol" {
			t.Fatalf("carol lists others' notices: %+v", l.Notices)
		}
	})
	t.Run("the admin takes it down; others are refused with 451 naming the decision", func(t *testing.T) {
		wantError(t, f.do(admin, "POST", path+"/decide", map[string]string{"decision": "takedown"}), 400, wire.CodeInvalid, "reason")
		got := decodeAs[wire.InfringementNotice](t, f.do(admin, "POST", path+"/decide", map[string]any{"decision": "takedown", "reason": "the symbols match", "stop_jobs": true}))
		if got.State != wire.NoticeTakenDown || len(got.Decision.Takedowns) != 1 {
			t.Fatalf("decided: %+v", got)
		}
		wantError(t, f.do(other, "POST", "/api/v1/jobs", map[string]any{"image": "alice/tool:1"}), 451, wire.CodeTakenDown,
			"decision "+got.Decision.Takedowns[0], "infringement notice "+n.ID)
		td := decodeAs[wire.TakedownList](t, f.do(admin, "GET", "/api/v1/takedowns", nil))
		if len(td.Takedowns) != 1 || td.Takedowns[0].Notice != n.ID {
			t.Fatalf("takedowns %+v", td)
		}
		in := decodeAs[wire.Inbox](t, f.do(owner, "GET", "/api/v1/inbox", nil))
		if in.Messages[0].Kind != "notice.takedown" || !strings.Contains(in.Messages[0].Body, "Acme Render 3") || strings.Contains(in.Messages[0].Body, "legal@acme.example") {
			t.Fatalf("alice's inbox %+v", in.Messages[0])
		}
	})
	t.Run("alice counters; bob is forwarded it and records a court action", func(t *testing.T) {
		bad := wireCounterForm()
		bad.Statement = store.NoticeStatement.ZH
		wantError(t, f.do(owner, "POST", path+"/counter", bad), 400, wire.CodeInvalid, "verbatim", "2.3.2.2")
		wantError(t, f.do(other, "POST", path+"/counter", wireCounterForm()), 403, wire.CodeForbidden, "publisher")
		got := decodeAs[wire.InfringementNotice](t, f.do(owner, "POST", path+"/counter", wireCounterForm()))
		if got.State != wire.NoticeCountered || got.RestoreAfter.IsZero() || !got.Redacted || got.Counter.Statement.Lang != "zh" {
			t.Fatalf("countered: %+v", got)
		}
		in := decodeAs[wire.Inbox](t, f.do(other, "GET", "/api/v1/inbox", nil))
		if in.Messages[0].Kind != "notice.countered" || !strings.Contains(in.Messages[0].Body, "2 Side St") || !strings.Contains(in.Messages[0].Body, "gantry notice court") {
			t.Fatalf("bob's inbox %+v", in.Messages[0])
		}
		wantError(t, f.do(owner, "POST", path+"/court", map[string]string{"detail": "x"}), 403, wire.CodeForbidden)
		got = decodeAs[wire.InfringementNotice](t, f.do(other, "POST", path+"/court", map[string]string{"detail": "case 26-1, district court"}))
		if got.Court == nil || !got.RestoreAfter.IsZero() {
			t.Fatalf("court: %+v", got)
		}
	})
	t.Run("the admin keeps it down; the timeline and the audit log have every step", func(t *testing.T) {
		got := decodeAs[wire.InfringementNotice](t, f.do(admin, "POST", path+"/decide", map[string]string{"decision": "keep_down", "reason": "the court decides"}))
		var steps []string
		for _, s := range got.Timeline {
			steps = append(steps, s.Action)
		}
		if got.State != wire.NoticeKeptDown || strings.Join(steps, " ") != "notice.file notice.takedown notice.counter notice.court notice.keep_down" {
			t.Fatalf("kept down: %s %v", got.State, steps)
		}
		l := decodeAs[wire.AuditList](t, f.do(admin, "GET", "/api/v1/audit", nil))
		seen := map[string]bool{}
		for _, r := range l.Records {
			seen[r.Action+" "+r.Outcome] = true
		}
		for _, want := range []string{"notice.file ok", "notice.takedown ok", "image.takedown ok", "notice.counter ok", "notice.court ok", "notice.keep_down ok", "notice.counter invalid", "notice.decide invalid"} {
			if !seen[want] {
				t.Fatalf("the audit log lacks %q: %v", want, seen)
			}
		}
	})
}

// TestNoticeFormsAreRefusedIncomplete: a form whose statement is not the
// terms' verbatim, whose content is not an image of this registry, or
// whose body is too large is refused before anything is recorded.
func TestNoticeFormsAreRefusedIncomplete(t *testing.T) {
	f := newFixture(t)
	reworded := wireNoticeForm()
	reworded.Statement = "I promise it is true."
	wantError(t, f.do(other, "POST", "/api/v1/notices", reworded), 400, wire.CodeInvalid, "verbatim", store.NoticeStatement.EN)
	wantError(t, f.do(other, "POST", "/api/v1/notices", wireNoticeForm("docker.io/library/nginx:1")), 400, wire.CodeInvalid, "content")
	wantError(t, f.do(owner, "POST", "/api/v1/notices", wireNoticeForm()), 400, wire.CodeInvalid, "your own image")
	big := wireNoticeForm()
	big.Evidence[0].Data = make([]byte, store.MaxAttachmentsSize+1)
	wantError(t, f.do(other, "POST", "/api/v1/notices", big), 400, wire.CodeInvalid)
	if l := decodeAs[wire.InfringementNoticeList](t, f.do(admin, "GET", "/api/v1/notices", nil)); len(l.Notices) != 0 {
		t.Fatalf("refused forms were recorded: %+v", l)
	}
	s := decodeAs[wire.NoticeStatements](t, f.do(anonymous, "GET", "/api/v1/notices/statements", nil))
	if s.Notice.ZH != store.NoticeStatement.ZH || s.Counter.EN != store.CounterStatement.EN || s.MaxAttachment == 0 || s.PublicForm {
		t.Fatalf("statements %+v", s)
	}
}

// TestThePublicNoticeForm: closed by default; once the admin opens it a
// rights holder without an account files a notice, a few per address
// before 429 with Retry-After, and again once the window passed.
func TestThePublicNoticeForm(t *testing.T) {
	f := newFixture(t)
	wantError(t, f.do(anonymous, "POST", "/api/v1/notices/public", wireNoticeForm()), 404, wire.CodeNotFound, "closed")
	wantError(t, f.do(admin, "PUT", "/api/v1/notices/settings", map[string]any{"wait_business_days": 1000}), 400, wire.CodeInvalid, "wait")
	set := decodeAs[wire.NoticeSettings](t, f.do(admin, "PUT", "/api/v1/notices/settings", map[string]any{"public_form": true}))
	if !set.PublicForm || set.WaitBusinessDays != store.DefaultWaitBusinessDays {
		t.Fatalf("settings %+v", set)
	}
	for i := 0; i < publicNoticeAddressBurst; i++ {
		w := f.do(anonymous, "POST", "/api/v1/notices/public", wireNoticeForm())
		if w.Code != 201 {
			t.Fatalf("public filing %d: %d %s", i, w.Code, w.Body.String())
		}
		if n := decodeAs[wire.InfringementNotice](t, w); !n.Public || n.Filer != "" {
			t.Fatalf("public notice %+v", n)
		}
	}
	w := f.do(anonymous, "POST", "/api/v1/notices/public", wireNoticeForm())
	wantError(t, w, 429, wire.CodeRateLimited, "public form")
	if w.Header().Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}
	f.clock.Advance(11 * time.Minute)
	if w := f.do(anonymous, "POST", "/api/v1/notices/public", wireNoticeForm()); w.Code != 201 {
		t.Fatalf("after the window: %d %s", w.Code, w.Body.String())
	}
	l := decodeAs[wire.AuditList](t, f.do(admin, "GET", "/api/v1/audit?action=notice.file", nil))
	if len(l.Records) != publicNoticeAddressBurst+1 || l.Records[0].Actor != "" || l.Records[0].Source == "" {
		t.Fatalf("public filings in the audit log: %+v", l.Records)
	}
}

// TestASuspendedPublisherStillAnswersANotice: an account suspended over a
// notice reads it and files its counter-notice; it files no new notice.
func TestASuspendedPublisherStillAnswersANotice(t *testing.T) {
	f := newFixture(t)
	id := f.noticeDown()
	f.must(ignore(store.CmdSuspendUser.Propose(context.Background(), f.direct, store.SuspendUser{Meta: store.Meta{Actor: "admin", Admin: true},
		User: "alice", Reason: "infringement notice " + id, Notice: id})))
	if w := f.do(owner, "GET", "/api/v1/notices/"+id, nil); w.Code != 200 {
		t.Fatalf("a suspended publisher reading the notice: %d %s", w.Code, w.Body.String())
	}
	if w := f.do(owner, "POST", "/api/v1/notices/"+id+"/counter", wireCounterForm()); w.Code != 200 {
		t.Fatalf("a suspended publisher's counter-notice: %d %s", w.Code, w.Body.String())
	}
	wantError(t, f.do(owner, "POST", "/api/v1/notices", wireNoticeForm("bob/app:1")), 403, wire.CodeAccountSuspended)
}
