package store

import (
	"strings"
	"testing"
	"time"
)

func testParty(name string) Party {
	return Party{Name: name, Kind: "organisation", IDDocument: "REG-" + name, Address: "1 Main St", Email: name + "@example.com"}
}

func testNoticeForm() NoticeForm {
	return NoticeForm{RightsHolder: testParty("Acme"), Works: []string{"Acme Render 3"},
		Proof:   []Upload{{Name: "registration.pdf", MediaType: "application/pdf", Data: []byte("%PDF proof")}},
		Content: []string{"alice/tool:1"}, Reasons: "it ships our renderer", Evidence: []Upload{{Name: "diff.txt", Data: []byte("same symbols")}},
		Lang: "en", Statement: NoticeStatement.EN, Signature: "Ann Acme"}
}

func testCounterForm() CounterForm {
	return CounterForm{Party: Party{Name: "Alice", Kind: "person", IDDocument: "P123", Address: "2 Side St", Phone: "+1 555"},
		Reasons: "I wrote it", Evidence: []Upload{{Name: "history.txt", Data: []byte("commits since 2019")}},
		Lang: "zh", Statement: CounterStatement.ZH, Signature: "Alice"}
}

func TestANoticeIsFiledOnlyComplete(t *testing.T) {
	a := newRegApplier(t)
	a.image("alice", "alice/tool", "sha256:m1", "sha256:l1")
	a.image("carol", "carol/x", "sha256:m2", "sha256:l2")
	for _, r := range []struct{ owner, repo string }{{"alice", "alice/tool"}, {"carol", "carol/x"}} {
		if err := a.publish(r.owner, r.repo, "MIT", "sha256:v1"); err != nil {
			t.Fatal(err)
		}
	}
	file := func(f NoticeForm, repos ...string) error {
		if repos == nil {
			repos = []string{"alice/tool"}
		}
		_, err := a.apply(CmdFileNotice, FileNotice{Meta: Meta{Actor: "bob"}, Form: f, Repos: repos})
		return err
	}
	cases := []struct {
		name  string
		tweak func(*NoticeForm)
		repos []string
		want  string
	}{
		{"without the rights holder's identity document", func(f *NoticeForm) { f.RightsHolder.IDDocument = "" }, nil, "rights_holder.id_document"},
		{"without any contact", func(f *NoticeForm) { f.RightsHolder.Email = "" }, nil, "phone number or an email"},
		{"with an agent but no authorisation", func(f *NoticeForm) { f.Agent = &AgentForm{Party: testParty("Lawyer"), Scope: "takedowns"} }, nil, "agent.authorisation"},
		{"with an agent but no scope", func(f *NoticeForm) {
			f.Agent = &AgentForm{Party: testParty("Lawyer"), Authorisation: []Upload{{Name: "poa.pdf", Data: []byte("x")}}}
		}, nil, "agent.scope"},
		{"without the works claimed", func(f *NoticeForm) { f.Works = nil }, nil, "works"},
		{"without proof of rights", func(f *NoticeForm) { f.Proof = nil }, nil, "proof"},
		{"without evidence", func(f *NoticeForm) { f.Evidence = nil }, nil, "evidence"},
		{"without reasons", func(f *NoticeForm) { f.Reasons = " " }, nil, "reasons"},
		{"with the statement reworded", func(f *NoticeForm) { f.Statement = strings.Replace(f.Statement, "true", "truthful", 1) }, nil, "verbatim"},
		{"with the Chinese statement marked English", func(f *NoticeForm) { f.Statement = NoticeStatement.ZH }, nil, "verbatim"},
		{"unsigned", func(f *NoticeForm) { f.Signature = "" }, nil, "signature"},
		{"with an oversized attachment", func(f *NoticeForm) { f.Evidence[0].Data = make([]byte, MaxAttachment+1) }, nil, "larger than"},
		{"with too many attachments together", func(f *NoticeForm) {
			f.Evidence = []Upload{{Name: "a", Data: make([]byte, MaxAttachment)}, {Name: "b", Data: []byte("b")}}
		}, nil, "together"},
		{"against an image that is not published", func(f *NoticeForm) {}, []string{"alice/none"}, "not a published image"},
		{"against two publishers", func(f *NoticeForm) { f.Content = []string{"alice/tool:1", "carol/x:1"} }, []string{"alice/tool", "carol/x"}, "one notice per publisher"},
	}
	for _, c := range cases {
		t.Run("refused "+c.name, func(t *testing.T) {
			f := testNoticeForm()
			c.tweak(&f)
			if err := file(f, c.repos...); ErrorCode(err) != EInvalid && ErrorCode(err) != ENotFound || err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want a refusal naming %q", err, c.want)
			}
		})
	}
	t.Run("refused through the public form while it is closed", func(t *testing.T) {
		_, err := a.apply(CmdFileNotice, FileNotice{Public: true, Form: testNoticeForm(), Repos: []string{"alice/tool"}})
		if ErrorCode(err) != ENotFound {
			t.Fatalf("public form closed: %v", err)
		}
	})
	if ns, _ := a.st.Notices("", ""); len(ns) != 0 {
		t.Fatalf("refused notices were recorded: %+v", ns)
	}
	t.Run("attachments are stored once by content", func(t *testing.T) {
		f := testNoticeForm()
		f.Evidence = append(f.Evidence, Upload{Name: "copy.pdf", Data: f.Proof[0].Data})
		res, err := a.apply(CmdFileNotice, FileNotice{Meta: Meta{Actor: "bob"}, Form: f, Repos: []string{"alice/tool"}})
		if err != nil {
			t.Fatal(err)
		}
		n := res.(*Notice)
		if n.Proof[0].Digest != n.Evidence[1].Digest || !strings.HasPrefix(n.Proof[0].Digest, "sha256:") || n.Proof[0].Size != int64(len(f.Proof[0].Data)) {
			t.Fatalf("attachments %+v %+v", n.Proof, n.Evidence)
		}
		if b, err := a.st.NoticeAttachment(n.Proof[0].Digest); err != nil || string(b) != "%PDF proof" {
			t.Fatalf("stored attachment %q %v", b, err)
		}
		if n.Accused != "alice" || n.Filer != "bob" || n.State != NoticeFiled || n.Statement.Text != NoticeStatement.EN || len(n.Timeline) != 1 {
			t.Fatalf("notice %+v", n)
		}
	})
}

func TestANoticeTakesContentDownAndACounterNoticeRestoresIt(t *testing.T) {
	a := newRegApplier(t)
	a.image("alice", "alice/tool", "sha256:m1", "sha256:l1")
	if err := a.publish("alice", "alice/tool", "MIT", "sha256:v1"); err != nil {
		t.Fatal(err)
	}
	fileAt := func(at time.Time) *Notice {
		t.Helper()
		res, err := a.applyAt(CmdFileNotice, at, FileNotice{Meta: Meta{Actor: "bob", Source: "10.0.0.2"}, Form: testNoticeForm(), Repos: []string{"alice/tool"}})
		if err != nil {
			t.Fatal(err)
		}
		return res.(*Notice)
	}
	// Friday noon: ten business days later is two weeks on.
	friday := time.Date(2026, 1, 2, 12, 0, 0, 0, time.UTC)
	n := fileAt(friday)
	decide := func(at time.Time, m Meta, decision, reason string) (*Notice, error) {
		res, err := a.applyAt(CmdDecideNotice, at, DecideNotice{Meta: m, ID: n.ID, Decision: decision, Reason: reason})
		nn, _ := res.(*Notice)
		return nn, err
	}
	if _, err := decide(friday, Meta{Actor: "bob"}, DecideTakedown, "x"); ErrorCode(err) != EForbidden {
		t.Fatalf("a user deciding: %v", err)
	}
	if _, err := decide(friday, adminMeta, DecideKeepDown, "x"); ErrorCode(err) != EConflict {
		t.Fatalf("keep_down before a counter-notice: %v", err)
	}
	if _, err := decide(friday, adminMeta, DecideTakedown, ""); ErrorCode(err) != EInvalid {
		t.Fatalf("a decision without a reason: %v", err)
	}
	got, err := decide(friday, adminMeta, DecideTakedown, "the renderer's symbols match")
	if err != nil {
		t.Fatal(err)
	}
	if got.State != NoticeTakenDown || len(got.Decision.Takedowns) != 1 {
		t.Fatalf("after the takedown: %+v", got)
	}
	td, err := a.st.Takedown("alice/tool")
	if err != nil || td.Notice != n.ID {
		t.Fatalf("the takedown %+v %v does not name the notice", td, err)
	}
	if shared, code := a.gate("carol", "alice/tool"); code != ETakenDown || !shared {
		t.Fatalf("carol's pull of an image down on a notice: %v %s", shared, code)
	}
	in, _ := a.st.Inbox("alice", false)
	if len(in) != 2 || in[0].Kind != "notice.takedown" || !strings.Contains(in[0].Body, "Acme Render 3") || !strings.Contains(in[0].Body, NoticeStatement.EN) {
		t.Fatalf("alice's inbox %+v", in)
	}
	for _, private := range []string{"REG-Acme", "Acme@example.com", "1 Main St"} {
		if strings.Contains(in[0].Body, private) {
			t.Fatalf("the forwarded notice shows the notifier's private %q:\n%s", private, in[0].Body)
		}
	}

	counter := func(at time.Time, user string, f CounterForm) (*Notice, error) {
		res, err := a.applyAt(CmdFileCounter, at, FileCounter{Meta: Meta{Actor: user}, ID: n.ID, Form: f})
		nn, _ := res.(*Notice)
		return nn, err
	}
	if _, err := counter(friday, "bob", testCounterForm()); ErrorCode(err) != EForbidden {
		t.Fatalf("the notifier countering: %v", err)
	}
	if _, err := counter(friday, "carol", testCounterForm()); ErrorCode(err) != ENotFound {
		t.Fatalf("a stranger countering: %v", err)
	}
	bad := testCounterForm()
	bad.Statement = NoticeStatement.ZH
	if _, err := counter(friday, "alice", bad); ErrorCode(err) != EInvalid || !strings.Contains(err.Error(), "2.3.2.2") {
		t.Fatalf("a counter-notice with the notice's statement: %v", err)
	}
	got, err = counter(friday, "alice", testCounterForm())
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 1, 16, 12, 0, 0, 0, time.UTC); got.State != NoticeCountered || !got.RestoreAfter.Equal(want) {
		t.Fatalf("after the counter-notice: %s, restore after %s, want %s", got.State, got.RestoreAfter, want)
	}
	if in, _ := a.st.Inbox("bob", false); len(in) < 2 || in[0].Kind != "notice.countered" || !strings.Contains(in[0].Body, "2 Side St") {
		t.Fatalf("bob is not forwarded the counter-notice with its contact: %+v", in)
	}

	t.Run("the leader's restore waits for the waiting period", func(t *testing.T) {
		auto := DecideNotice{Meta: Meta{Admin: true}, ID: n.ID, Auto: true}
		if _, err := a.applyAt(CmdDecideNotice, got.RestoreAfter.Add(-time.Second), auto); ErrorCode(err) != EConflict {
			t.Fatalf("an automatic restore before the period passed: %v", err)
		}
		if due, _ := a.st.NoticesDue(got.RestoreAfter.Add(-time.Second)); len(due) != 0 {
			t.Fatalf("due early: %+v", due)
		}
		if due, _ := a.st.NoticesDue(got.RestoreAfter); len(due) != 1 {
			t.Fatalf("not due on time: %+v", due)
		}
		res, err := a.applyAt(CmdDecideNotice, got.RestoreAfter, auto)
		if err != nil {
			t.Fatal(err)
		}
		r := res.(*Notice)
		if r.State != NoticeRestored || r.Resolution.By != "gantry" {
			t.Fatalf("after the automatic restore: %+v", r)
		}
		if _, err := a.st.Takedown("alice/tool"); ErrorCode(err) != ENotFound {
			t.Fatalf("still down: %v", err)
		}
		steps := []string{}
		for _, s := range r.Timeline {
			steps = append(steps, s.Action)
		}
		if strings.Join(steps, " ") != "notice.file notice.takedown notice.counter notice.restore" {
			t.Fatalf("timeline %v", steps)
		}
		recs, _, _ := a.st.AuditRecords(AuditFilter{})
		actions := map[string]int{}
		for _, rec := range recs {
			actions[rec.Action]++
		}
		for _, want := range []string{"notice.file", "notice.takedown", "image.takedown", "notice.counter", "notice.restore", "image.restore"} {
			if actions[want] != 1 {
				t.Fatalf("audit log %v lacks %s", actions, want)
			}
		}
		if v, _ := a.st.VerifyAudit(); !v.OK {
			t.Fatalf("audit chain %+v", v)
		}
	})

	t.Run("a court action keeps it down until the admin decides", func(t *testing.T) {
		n = fileAt(friday)
		if _, err := decide(friday, adminMeta, DecideTakedown, "again"); err != nil {
			t.Fatal(err)
		}
		got, err := counter(friday, "alice", testCounterForm())
		if err != nil {
			t.Fatal(err)
		}
		court := func(user string) error {
			_, err := a.applyAt(CmdRecordCourtAction, friday, RecordCourtAction{Meta: Meta{Actor: user}, ID: n.ID, Detail: "case 2026-123, district court"})
			return err
		}
		if err := court("alice"); ErrorCode(err) != EForbidden {
			t.Fatalf("the publisher recording a court action: %v", err)
		}
		if err := court("bob"); err != nil {
			t.Fatal(err)
		}
		if due, _ := a.st.NoticesDue(got.RestoreAfter.Add(time.Hour)); len(due) != 0 {
			t.Fatalf("due despite the court action: %+v", due)
		}
		if _, err := a.applyAt(CmdDecideNotice, got.RestoreAfter.Add(time.Hour), DecideNotice{Meta: Meta{Admin: true}, ID: n.ID, Auto: true}); ErrorCode(err) != EConflict {
			t.Fatalf("automatic restore despite the court action: %v", err)
		}
		kept, err := decide(friday, adminMeta, DecideKeepDown, "the court decides")
		if err != nil || kept.State != NoticeKeptDown {
			t.Fatalf("keep down: %+v %v", kept, err)
		}
		if td, err := a.st.Takedown("alice/tool"); err != nil || td.Notice != n.ID {
			t.Fatalf("kept down: %+v %v", td, err)
		}
	})

	t.Run("a rejected notice takes nothing down", func(t *testing.T) {
		a.image("alice", "alice/other", "sha256:m3", "sha256:l3")
		if err := a.publish("alice", "alice/other", "MIT", "sha256:v1"); err != nil {
			t.Fatal(err)
		}
		f := testNoticeForm()
		f.Content = []string{"alice/other"}
		res, err := a.apply(CmdFileNotice, FileNotice{Meta: Meta{Actor: "bob"}, Form: f, Repos: []string{"alice/other"}})
		if err != nil {
			t.Fatal(err)
		}
		n = res.(*Notice)
		r, err := decide(friday, adminMeta, DecideReject, "a licence dispute, not infringement")
		if err != nil || r.State != NoticeRejected {
			t.Fatalf("reject: %+v %v", r, err)
		}
		if _, err := a.st.Takedown("alice/other"); ErrorCode(err) != ENotFound {
			t.Fatalf("a rejected notice took the image down: %v", err)
		}
		if in, _ := a.st.Inbox("bob", false); in[0].Kind != "notice.rejected" || !strings.Contains(in[0].Body, "licence dispute") {
			t.Fatalf("bob's inbox %+v", in[0])
		}
		if ns, _ := a.st.Notices("", ""); len(ns) != 3 || ns[0].ID != n.ID {
			t.Fatalf("notices are not listed newest first: %+v", ns)
		}
		if ns, _ := a.st.Notices("carol", ""); len(ns) != 0 {
			t.Fatalf("carol, no party, lists %+v", ns)
		}
	})
}

func TestBusinessDaysSkipWeekends(t *testing.T) {
	fri := time.Date(2026, 1, 2, 9, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		n    int
		want time.Time
	}{{1, fri.AddDate(0, 0, 3)}, {5, fri.AddDate(0, 0, 7)}, {10, fri.AddDate(0, 0, 14)}} {
		if got := AddBusinessDays(fri, c.n); !got.Equal(c.want) {
			t.Errorf("%d business days after %s: %s, want %s", c.n, fri, got, c.want)
		}
	}
}
