package store

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The notice procedure's commands (records and queries: notices.go):
// filing, deciding, the counter-notice and the court action. Each
// validates before its first write, puts the step on the notice's
// timeline, tells the parties and appends its audit record.

// FileNotice files an infringement notice: a signed-in user's (Meta.Actor)
// or, with Public, the public form's. Repos are the repositories of
// Form.Content, one each, resolved by the proposer.
type FileNotice struct {
	Meta   Meta       `json:"meta"`
	Public bool       `json:"public,omitempty"`
	Form   NoticeForm `json:"form"`
	Repos  []string   `json:"repos"`
}

// field checks one text field of a form.
func field(name, v string, required bool, limit int) error {
	switch {
	case required && strings.TrimSpace(v) == "":
		return Errorf(EInvalid, "%s: required", name)
	case len(v) > limit:
		return Errorf(EInvalid, "%s: at most %d bytes", name, limit)
	}
	return nil
}

func validParty(name string, p Party) error {
	if err := field(name+".name", p.Name, true, MaxNoticeField); err != nil {
		return err
	}
	if p.Kind != "person" && p.Kind != "organisation" {
		return Errorf(EInvalid, "%s.kind: person or organisation", name)
	}
	for _, f := range []struct {
		n, v string
		req  bool
	}{{"id_document", p.IDDocument, true}, {"address", p.Address, true}, {"phone", p.Phone, false}, {"email", p.Email, false}} {
		if err := field(name+"."+f.n, f.v, f.req, MaxNoticeField); err != nil {
			return err
		}
	}
	if strings.TrimSpace(p.Phone) == "" && strings.TrimSpace(p.Email) == "" {
		return Errorf(EInvalid, "%s: a phone number or an email address is required", name)
	}
	return nil
}

func validList(name string, vs []string, required bool) error {
	if required && len(vs) == 0 {
		return Errorf(EInvalid, "%s: at least one", name)
	}
	if len(vs) > MaxNoticeItems {
		return Errorf(EInvalid, "%s: at most %d", name, MaxNoticeItems)
	}
	for _, v := range vs {
		if err := field(name, v, true, MaxNoticeField); err != nil {
			return err
		}
	}
	return nil
}

// signed checks a form's statement: verbatim s in lang, with a typed
// signature, and returns it as recorded.
func (a *applier) signed(s TermsStatement, lang, text, signature string) (Statement, error) {
	want, ok := s.Text(lang)
	switch {
	case !ok:
		return Statement{}, Errorf(EInvalid, "lang: zh or en (the statement's language)")
	case text != want:
		return Statement{}, Errorf(EInvalid, "statement: must be the service terms' statement (%s) verbatim: %s", s.Clause, want)
	}
	if err := field("signature", signature, true, MaxNoticeField); err != nil {
		return Statement{}, err
	}
	return Statement{Lang: lang, Text: text, At: a.at}, nil
}

// attachments stores a form's uploads content-addressed (an attachment
// stored before is not written again) and returns their references, in
// the order of the groups given.
func (a *applier) attachments(groups map[string][]Upload, order ...string) (map[string][]AttachmentRef, error) {
	n, total := 0, 0
	for _, g := range order {
		for _, u := range groups[g] {
			n++
			total += len(u.Data)
			switch {
			case len(u.Data) == 0:
				return nil, Errorf(EInvalid, "%s: an attachment is empty", g)
			case len(u.Data) > MaxAttachment:
				return nil, Errorf(EInvalid, "%s: an attachment is larger than %d KiB", g, MaxAttachment>>10)
			}
			if err := field(g+".name", u.Name, true, MaxAuditField); err != nil {
				return nil, err
			}
			if err := field(g+".media_type", u.MediaType, false, MaxAuditField); err != nil {
				return nil, err
			}
		}
	}
	if n > MaxAttachments || total > MaxAttachmentsSize {
		return nil, Errorf(EInvalid, "attachments: at most %d, %d KiB together", MaxAttachments, MaxAttachmentsSize>>10)
	}
	out := map[string][]AttachmentRef{}
	for _, g := range order {
		for _, u := range groups[g] {
			sum := sha256.Sum256(u.Data)
			h := hex.EncodeToString(sum[:])
			if ok, err := exists(a.txn, noticeBlobKey(h)); err != nil {
				return nil, err
			} else if !ok {
				if err := a.txn.Set(noticeBlobKey(h), u.Data); err != nil {
					return nil, err
				}
			}
			out[g] = append(out[g], AttachmentRef{Name: u.Name, MediaType: u.MediaType, Size: int64(len(u.Data)), Digest: "sha256:" + h})
		}
	}
	return out, nil
}

func (a *applier) agent(f *AgentForm, name string) (*AgentForm, error) {
	if f == nil {
		return nil, nil
	}
	if err := validParty(name, f.Party); err != nil {
		return nil, err
	}
	if err := field(name+".scope", f.Scope, true, MaxNoticeText); err != nil {
		return nil, err
	}
	if len(f.Authorisation) == 0 {
		return nil, Errorf(EInvalid, "%s.authorisation: attach the authorisation", name)
	}
	return f, nil
}

func (a *applier) fileNotice(c *FileNotice) (*Notice, error) {
	f := &c.Form
	if c.Public {
		s, err := a.noticeSettings()
		if err != nil {
			return nil, err
		}
		if !s.PublicForm {
			return nil, Errorf(ENotFound, "the public notice form is closed: sign in to file a notice")
		}
	} else if c.Meta.Actor == "" {
		return nil, Errorf(EUnauthorized, "sign in to file a notice")
	}
	if err := validParty("rights_holder", f.RightsHolder); err != nil {
		return nil, err
	}
	if _, err := a.agent(f.Agent, "agent"); err != nil {
		return nil, err
	}
	if err := validList("works", f.Works, true); err != nil {
		return nil, err
	}
	if err := validList("content", f.Content, true); err != nil {
		return nil, err
	}
	if len(c.Repos) != len(f.Content) {
		return nil, Errorf(EInvalid, "content: every reference must name an image of this registry")
	}
	if err := field("reasons", f.Reasons, true, MaxNoticeText); err != nil {
		return nil, err
	}
	switch {
	case len(f.Proof) == 0:
		return nil, Errorf(EInvalid, "proof: attach proof of the rights claimed")
	case len(f.Evidence) == 0:
		return nil, Errorf(EInvalid, "evidence: attach preliminary evidence of the infringement")
	}
	st, err := a.signed(NoticeStatement, f.Lang, f.Statement, f.Signature)
	if err != nil {
		return nil, err
	}
	// The content: published images of one publisher (a notice is
	// forwarded to one publisher; file one per publisher).
	var repos []string
	accused := ""
	for i, repo := range c.Repos {
		var p Publication
		if err := getJSON(a.txn, pubKey(repo), &p); err != nil {
			if errors.Is(err, ErrNotFound) {
				return nil, Errorf(ENotFound, "content: %s is not a published image", f.Content[i])
			}
			return nil, err
		}
		switch {
		case accused != "" && p.Owner != accused:
			return nil, Errorf(EInvalid, "content: the images are of different publishers (%s, %s): file one notice per publisher", accused, p.Owner)
		case p.Owner == c.Meta.Actor:
			return nil, Errorf(EInvalid, "content: %s is your own image", repo)
		}
		accused = p.Owner
		if !slices.Contains(repos, repo) {
			repos = append(repos, repo)
		}
	}
	groups := map[string][]Upload{"proof": f.Proof, "evidence": f.Evidence}
	if f.Agent != nil {
		groups["agent.authorisation"] = f.Agent.Authorisation
	}
	refs, err := a.attachments(groups, "agent.authorisation", "proof", "evidence")
	if err != nil {
		return nil, err
	}
	seq, err := a.nextSeq(kNoticeSeq)
	if err != nil {
		return nil, err
	}
	n := Notice{ID: strconv.FormatUint(seq, 10), State: NoticeFiled, Filer: c.Meta.Actor, Public: c.Public, At: a.at,
		RightsHolder: f.RightsHolder, Works: f.Works, Proof: refs["proof"], Content: f.Content, Repos: repos, Accused: accused,
		Reasons: f.Reasons, Evidence: refs["evidence"], Statement: st, Signature: f.Signature}
	if c.Public {
		n.Filer = ""
	}
	if f.Agent != nil {
		n.Agent = &Agent{Party: f.Agent.Party, Scope: f.Agent.Scope, Authorisation: refs["agent.authorisation"]}
	}
	actor := n.Filer
	if actor == "" {
		actor = "public form"
	}
	n.step(a.at, actor, "notice.file", "against "+strings.Join(repos, ", ")+" of "+accused+", for "+f.RightsHolder.Name)
	if err := putJSON(a.txn, []byte(kNoticeSeq), seq); err != nil {
		return nil, err
	}
	if err := a.putNotice(&n); err != nil {
		return nil, err
	}
	if n.Filer != "" {
		if err := a.notify(n.Filer, "notice.filed", n.ID, "Your infringement notice "+n.ID+" was filed",
			"Against: "+strings.Join(repos, ", ")+"\nAn admin decides; you are told here. Follow it: gantry notice show "+n.ID); err != nil {
			return nil, err
		}
	}
	m := c.Meta
	if c.Public {
		m.Actor = ""
	}
	return &n, a.auditOK(m, "notice.file", strings.Join(repos, " "), "notice "+n.ID+" for "+f.RightsHolder.Name+" against "+accused)
}

func (n *Notice) step(at time.Time, actor, action, detail string) {
	n.Timeline = append(n.Timeline, NoticeStep{At: at, Actor: actor, Action: action, Detail: detail})
}

func (a *applier) putNotice(n *Notice) error {
	seq, _ := strconv.ParseUint(n.ID, 10, 64) // written by fileNotice: a number
	if err := putJSON(a.txn, noticeKey(seq), n); err != nil {
		return err
	}
	a.events = append(a.events, Event{Type: "notice", Name: n.ID})
	return nil
}

// notice reads notice id (ENotFound-coded when there is none).
func (a *applier) notice(id string) (*Notice, error) {
	seq, err := strconv.ParseUint(id, 10, 64)
	if err != nil {
		return nil, Errorf(ENotFound, "notice %q not found", id)
	}
	var n Notice
	if err := getJSON(a.txn, noticeKey(seq), &n); err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, Errorf(ENotFound, "notice %q not found", id)
		}
		return nil, err
	}
	return &n, nil
}

// forwarded is what the publisher is told of a notice: everything but
// the notifier's (and their agent's) identity document and contact.
func (n *Notice) forwarded() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Infringement notice %s, filed %s\n", n.ID, n.At.UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "Rights holder: %s (%s)\n", n.RightsHolder.Name, n.RightsHolder.Kind)
	if n.Agent != nil {
		fmt.Fprintf(&b, "Filed by an agent: %s (%s); authorisation: %s\n", n.Agent.Name, n.Agent.Kind, n.Agent.Scope)
	}
	fmt.Fprintf(&b, "Works claimed: %s\n", strings.Join(n.Works, "; "))
	fmt.Fprintf(&b, "Infringing content: %s\n", strings.Join(n.Content, ", "))
	fmt.Fprintf(&b, "Reasons: %s\n", n.Reasons)
	fmt.Fprintf(&b, "Attachments: %d proof of rights, %d evidence (gantry notice show %s)\n", len(n.Proof), len(n.Evidence), n.ID)
	fmt.Fprintf(&b, "Statement (%s), signed %q: %s\n", n.Statement.Lang, n.Signature, n.Statement.Text)
	return b.String()
}

// countered is what the notifier is told of a counter-notice: all of it,
// the counter-notifier's contact included, so the notifier can take the
// matter to court (the DMCA 512(g) practice).
func (c *Counter) countered(id string, restore time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Counter-notice to infringement notice %s, filed %s by %s\n", id, c.At.UTC().Format(time.RFC3339), c.Filer)
	p := c.Party
	fmt.Fprintf(&b, "Publisher: %s (%s), %s; %s %s\n", p.Name, p.Kind, p.Address, p.Phone, p.Email)
	if c.Agent != nil {
		fmt.Fprintf(&b, "Filed by an agent: %s (%s), %s; %s %s; authorisation: %s\n", c.Agent.Name, c.Agent.Kind, c.Agent.Address, c.Agent.Phone, c.Agent.Email, c.Agent.Scope)
	}
	fmt.Fprintf(&b, "Content: %s\n", strings.Join(c.Content, ", "))
	fmt.Fprintf(&b, "Reasons: %s\n", c.Reasons)
	fmt.Fprintf(&b, "Statement (%s), signed %q: %s\n", c.Statement.Lang, c.Signature, c.Statement.Text)
	if !restore.IsZero() {
		fmt.Fprintf(&b, "The content is restored on %s unless an admin decides otherwise or you record a court action first: gantry notice court %s --detail TEXT\n",
			restore.UTC().Format(time.RFC3339), id)
	}
	return b.String()
}

// DecideNotice is an admin's decision on a notice: takedown or reject
// (a filed notice), restore (a notice whose content is down) or keep_down
// (a countered notice). Auto is the leader's restore once the waiting
// period passed: Apply re-checks that it has and that no court action was
// recorded.
type DecideNotice struct {
	Meta     Meta     `json:"meta"`
	ID       string   `json:"id"`
	Decision string   `json:"decision"`
	Reason   string   `json:"reason"`
	StopJobs []string `json:"stop_jobs,omitempty"`
	Auto     bool     `json:"auto,omitempty"`
}

func (a *applier) decideNotice(c *DecideNotice) (*Notice, error) {
	if !c.Meta.Admin {
		return nil, Errorf(EForbidden, "only an admin decides notices")
	}
	if c.Auto {
		c.Meta.Actor, c.Decision = noticeSystemUser, DecideRestore
	}
	if !c.Auto && (strings.TrimSpace(c.Reason) == "" || len(c.Reason) > MaxNoticeDetail) {
		return nil, Errorf(EInvalid, "reason: say why (the parties read it), at most %d bytes", MaxNoticeDetail)
	}
	if len(c.StopJobs) > MaxStopJobs {
		return nil, Errorf(EInvalid, "stop_jobs: at most %d", MaxStopJobs)
	}
	n, err := a.notice(c.ID)
	if err != nil {
		return nil, err
	}
	allowed := map[string][]string{
		DecideTakedown: {NoticeFiled},
		DecideReject:   {NoticeFiled},
		DecideRestore:  {NoticeTakenDown, NoticeCountered},
		DecideKeepDown: {NoticeCountered},
	}
	states, ok := allowed[c.Decision]
	switch {
	case !ok:
		return nil, Errorf(EInvalid, "decision: takedown, reject, restore or keep_down")
	case !slices.Contains(states, n.State):
		return nil, Errorf(EConflict, "notice %s is %s: %s applies to a notice that is %s", n.ID, n.State, c.Decision, strings.Join(states, " or "))
	case c.Auto && (n.State != NoticeCountered || n.Court != nil || n.RestoreAfter.IsZero() || a.at.Before(n.RestoreAfter)):
		return nil, Errorf(EConflict, "notice %s is not due for an automatic restore", n.ID)
	}
	d := &NoticeDecision{Decision: c.Decision, Reason: c.Reason, By: c.Meta.Actor, At: a.at}
	switch c.Decision {
	case DecideTakedown:
		err = a.noticeTakedown(c, n, d)
	case DecideReject:
		n.State, n.Decision = NoticeRejected, d
		n.step(a.at, c.Meta.Actor, "notice.reject", c.Reason)
		if n.Filer != "" {
			err = a.notify(n.Filer, "notice.rejected", n.ID, "Your infringement notice "+n.ID+" was not acted on", "Reason: "+c.Reason)
		}
	case DecideRestore:
		err = a.noticeRestore(c, n, d)
	case DecideKeepDown:
		n.State, n.Resolution, n.RestoreAfter = NoticeKeptDown, d, time.Time{}
		n.step(a.at, c.Meta.Actor, "notice.keep_down", c.Reason)
		err = a.tellParties(n, "notice.kept_down", "The content of infringement notice "+n.ID+" stays down", "Decided after the counter-notice.\nReason: "+c.Reason)
	}
	if err != nil {
		return nil, err
	}
	if err := a.putNotice(n); err != nil {
		return nil, err
	}
	detail := "notice " + n.ID
	if c.Reason != "" {
		detail += ": " + c.Reason
	}
	if c.Auto {
		detail += " (the waiting period after the counter-notice passed)"
	}
	if len(d.Takedowns) > 0 {
		detail += "; decisions " + strings.Join(d.Takedowns, " ")
	}
	return n, a.auditOK(c.Meta, "notice."+c.Decision, strings.Join(n.Repos, " "), detail)
}

// tellParties puts a message in the inboxes of the notice's filer (if it
// has an account) and publisher.
func (a *applier) tellParties(n *Notice, kind, subject, body string) error {
	for _, u := range []string{n.Filer, n.Accused} {
		if u == "" {
			continue
		}
		if err := a.notify(u, kind, n.ID, subject, body); err != nil {
			return err
		}
	}
	return nil
}

// noticeTakedown takes the notice's images down, each a takedown naming
// the notice (one already down stays as it is), and forwards the notice to
// the publisher.
func (a *applier) noticeTakedown(c *DecideNotice, n *Notice, d *NoticeDecision) error {
	reason := "infringement notice " + n.ID + ": " + c.Reason
	var already []string
	for _, repo := range n.Repos {
		var p Publication
		if err := getJSON(a.txn, pubKey(repo), &p); err != nil {
			if errors.Is(err, ErrNotFound) {
				continue // unpublished since: nothing is shared to take down
			}
			return err
		}
		if t, err := takedownOf(a.txn, repo); err != nil {
			return err
		} else if t != nil {
			already = append(already, repo+" (decision "+t.ID+")")
			continue
		}
		t, err := a.downImage(c.Meta, &p, reason, n.ID, "", c.StopJobs, false)
		if err != nil {
			return err
		}
		d.Takedowns = append(d.Takedowns, t.ID)
	}
	n.State, n.Decision = NoticeTakenDown, d
	detail := c.Reason
	if len(d.Takedowns) > 0 {
		detail += "; decisions " + strings.Join(d.Takedowns, " ")
	}
	if len(already) > 0 {
		detail += "; already down: " + strings.Join(already, ", ")
	}
	n.step(a.at, c.Meta.Actor, "notice.takedown", detail)
	body := "Decision: " + c.Reason + "\nIt is out of the catalog; others can neither pull it nor run new jobs of it. You still can.\n\n" + n.forwarded() +
		"\nIf you believe it does not infringe, file a counter-notice: gantry notice counter " + n.ID + " --from-file FORM.json (gantry notice template --counter)."
	if err := a.notify(n.Accused, "notice.takedown", n.ID, "Your image "+strings.Join(n.Repos, ", ")+" was taken down on an infringement notice", body); err != nil {
		return err
	}
	if n.Filer != "" {
		return a.notify(n.Filer, "notice.actioned", n.ID, "Your infringement notice "+n.ID+": the content was taken down", "Decision: "+c.Reason)
	}
	return nil
}

// noticeRestore lifts every takedown naming the notice.
func (a *applier) noticeRestore(c *DecideNotice, n *Notice, d *NoticeDecision) error {
	for _, repo := range n.Repos {
		t, err := takedownOf(a.txn, repo)
		if err != nil {
			return err
		}
		if t == nil || t.Notice != n.ID {
			continue
		}
		reason := "infringement notice " + n.ID + ": " + c.Reason
		if c.Auto {
			reason = "infringement notice " + n.ID + ": the waiting period after the counter-notice passed without a court action"
		}
		if err := a.liftTakedown(c.Meta, t, reason); err != nil {
			return err
		}
		d.Takedowns = append(d.Takedowns, t.ID)
	}
	n.State, n.Resolution, n.RestoreAfter = NoticeRestored, d, time.Time{}
	detail := c.Reason
	if c.Auto {
		detail = "the waiting period after the counter-notice passed without a court action"
	}
	n.step(a.at, c.Meta.Actor, "notice.restore", detail)
	return a.tellParties(n, "notice.restored", "The content of infringement notice "+n.ID+" was restored", detail)
}

// noticeImageRestored notes on a notice that one of its images was
// restored outside its decision (gantry restore); once none is down the
// notice is restored.
func (a *applier) noticeImageRestored(m Meta, t *Takedown, reason string) error {
	n, err := a.notice(t.Notice)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	n.step(a.at, m.Actor, "image.restore", t.Repo+" (decision "+t.ID+")"+strings.TrimSuffix(": "+reason, ": "))
	down := false
	for _, repo := range n.Repos {
		if x, err := takedownOf(a.txn, repo); err != nil {
			return err
		} else if x != nil && x.Notice == n.ID && x.Repo != t.Repo {
			down = true
		}
	}
	if !down && (n.State == NoticeTakenDown || n.State == NoticeCountered || n.State == NoticeKeptDown) {
		n.State, n.RestoreAfter = NoticeRestored, time.Time{}
		n.Resolution = &NoticeDecision{Decision: DecideRestore, Reason: reason, By: m.Actor, At: a.at, Takedowns: []string{t.ID}}
	}
	return a.putNotice(n)
}

// noticeOf reads notice id, which must be about repo.
func (a *applier) noticeOf(id, repo string) (*Notice, error) {
	n, err := a.notice(id)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(n.Repos, repo) {
		return nil, Errorf(EInvalid, "notice %s is not about %s", id, repo)
	}
	return n, nil
}

// noticeImageDown notes on notice n that one of its images was taken down
// by takedown t naming it (gantry takedown --notice): a filed notice is
// then decided.
func (a *applier) noticeImageDown(m Meta, n *Notice, t *Takedown) error {
	n.step(a.at, m.Actor, "image.takedown", t.Repo+" (decision "+t.ID+"): "+t.Reason)
	if n.State == NoticeFiled {
		n.State = NoticeTakenDown
		n.Decision = &NoticeDecision{Decision: DecideTakedown, Reason: t.Reason, By: m.Actor, At: a.at, Takedowns: []string{t.ID}}
	}
	return a.putNotice(n)
}

// FileCounter is the publisher's counter-notice to notice ID.
type FileCounter struct {
	Meta  Meta        `json:"meta"`
	ID    string      `json:"id"`
	Form  CounterForm `json:"form"`
	Repos []string    `json:"repos"` // the repositories of Form.Content, resolved by the proposer
}

func (a *applier) fileCounter(c *FileCounter) (*Notice, error) {
	n, err := a.notice(c.ID)
	if err != nil {
		return nil, err
	}
	f := &c.Form
	switch {
	case c.Meta.Actor != n.Accused:
		if n.Party(c.Meta.Actor) || c.Meta.Admin {
			return nil, Errorf(EForbidden, "only the publisher of the content (%s) files a counter-notice", n.Accused)
		}
		return nil, Errorf(ENotFound, "notice %q not found", c.ID)
	case n.State == NoticeCountered:
		return nil, Errorf(EConflict, "notice %s already has a counter-notice", n.ID)
	case n.State != NoticeTakenDown:
		return nil, Errorf(EConflict, "notice %s is %s: a counter-notice answers a notice whose content was taken down", n.ID, n.State)
	}
	if err := validParty("party", f.Party); err != nil {
		return nil, err
	}
	if _, err := a.agent(f.Agent, "agent"); err != nil {
		return nil, err
	}
	content := f.Content
	if len(content) == 0 {
		content = n.Content
	} else {
		if err := validList("content", f.Content, true); err != nil {
			return nil, err
		}
		if len(c.Repos) != len(f.Content) {
			return nil, Errorf(EInvalid, "content: every reference must name an image of this registry")
		}
		for i, repo := range c.Repos {
			if !slices.Contains(n.Repos, repo) {
				return nil, Errorf(EInvalid, "content: %s is not among the notice's content", f.Content[i])
			}
		}
	}
	if err := field("reasons", f.Reasons, true, MaxNoticeText); err != nil {
		return nil, err
	}
	if len(f.Evidence) == 0 {
		return nil, Errorf(EInvalid, "evidence: attach preliminary evidence that the content does not infringe")
	}
	st, err := a.signed(CounterStatement, f.Lang, f.Statement, f.Signature)
	if err != nil {
		return nil, err
	}
	groups := map[string][]Upload{"evidence": f.Evidence}
	if f.Agent != nil {
		groups["agent.authorisation"] = f.Agent.Authorisation
	}
	refs, err := a.attachments(groups, "agent.authorisation", "evidence")
	if err != nil {
		return nil, err
	}
	settings, err := a.noticeSettings()
	if err != nil {
		return nil, err
	}
	ct := &Counter{Filer: c.Meta.Actor, At: a.at, Party: f.Party, Content: content, Reasons: f.Reasons, Evidence: refs["evidence"], Statement: st, Signature: f.Signature}
	if f.Agent != nil {
		ct.Agent = &Agent{Party: f.Agent.Party, Scope: f.Agent.Scope, Authorisation: refs["agent.authorisation"]}
	}
	n.State, n.Counter, n.RestoreAfter = NoticeCountered, ct, settings.restoreAfter(a.at)
	n.step(a.at, c.Meta.Actor, "notice.counter", "restore after "+n.RestoreAfter.UTC().Format(time.RFC3339)+" unless a court action is recorded")
	if err := a.putNotice(n); err != nil {
		return nil, err
	}
	if n.Filer != "" {
		if err := a.notify(n.Filer, "notice.countered", n.ID, "A counter-notice answers your infringement notice "+n.ID, ct.countered(n.ID, n.RestoreAfter)); err != nil {
			return nil, err
		}
	}
	if err := a.notify(n.Accused, "notice.counter.filed", n.ID, "Your counter-notice to infringement notice "+n.ID+" was filed",
		"It was forwarded to the notifier. Unless an admin decides otherwise or the notifier records a court action, the content is restored after "+n.RestoreAfter.UTC().Format(time.RFC3339)+"."); err != nil {
		return nil, err
	}
	return n, a.auditOK(c.Meta, "notice.counter", strings.Join(n.Repos, " "), "notice "+n.ID+"; restore after "+n.RestoreAfter.UTC().Format(time.RFC3339))
}

// RecordCourtAction is the notifier's record (or an admin's for them) that
// a court action was filed over a countered notice's content: it stays
// down until an admin decides.
type RecordCourtAction struct {
	Meta   Meta   `json:"meta"`
	ID     string `json:"id"`
	Detail string `json:"detail"`
}

func (a *applier) recordCourtAction(c *RecordCourtAction) (*Notice, error) {
	n, err := a.notice(c.ID)
	if err != nil {
		return nil, err
	}
	switch {
	case !c.Meta.Admin && c.Meta.Actor != n.Filer:
		if n.Party(c.Meta.Actor) {
			return nil, Errorf(EForbidden, "only the notifier (or an admin) records a court action")
		}
		return nil, Errorf(ENotFound, "notice %q not found", c.ID)
	case n.State != NoticeCountered:
		return nil, Errorf(EConflict, "notice %s is %s: a court action is recorded against a counter-notice", n.ID, n.State)
	case n.Court != nil:
		return nil, Errorf(EConflict, "notice %s already records a court action", n.ID)
	}
	if err := field("detail", c.Detail, true, MaxNoticeDetail); err != nil {
		return nil, err
	}
	n.Court, n.RestoreAfter = &CourtAction{By: c.Meta.Actor, At: a.at, Detail: c.Detail}, time.Time{}
	n.step(a.at, c.Meta.Actor, "notice.court", c.Detail)
	if err := a.putNotice(n); err != nil {
		return nil, err
	}
	if err := a.tellParties(n, "notice.court", "A court action was recorded on infringement notice "+n.ID,
		"The content stays down until an admin decides.\n"+c.Detail); err != nil {
		return nil, err
	}
	return n, a.auditOK(c.Meta, "notice.court", strings.Join(n.Repos, " "), "notice "+n.ID+": "+c.Detail)
}
