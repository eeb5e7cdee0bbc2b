package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Infringement notices and counter-notices (service terms 2.3.2.1 and
// 2.3.2.2; node/governance/DESIGN.md). A rights holder files a notice
// naming published images; an admin takes them down (each takedown names
// the notice) or rejects it with a reason; the publisher is told, without
// the notifier's private contact, and may answer with a counter-notice,
// forwarded to the notifier; the admin restores or keeps the images down,
// and without a decision they are restored once the waiting period after
// the counter-notice has passed, unless the notifier recorded a court
// action. Every step is on the notice's timeline and in the audit log.
// Attachments are stored content-addressed beside the notices
// (gnb/<sha256>), bounded by the limits below so a form is one Raft entry.

const (
	pNotice          = "gn/"  // gn/<seq> -> Notice
	pNoticeBlob      = "gnb/" // gnb/<sha256 hex> -> an attachment's bytes
	kNoticeSeq       = "m/notice"
	kNoticeSettings  = "m/notices"
	noticeSystemUser = "gantry" // the actor of an automatic restore
)

func noticeKey(seq uint64) []byte        { return []byte(pNotice + seqText(seq)) }
func noticeBlobKey(digest string) []byte { return []byte(pNoticeBlob + digest) }

// Limits of a notice or counter-notice form. All of a form's attachments
// travel in one command, so they are bounded together: a Raft entry stays
// well under the log store's batch bound.
const (
	MaxAttachment      = 512 << 10 // one attachment's bytes
	MaxAttachmentsSize = 512 << 10 // all of one form's attachments
	MaxAttachments     = 8         // attachments per form
	MaxNoticeField     = 500       // a name, an address, a signature, a reference
	MaxNoticeText      = 10000     // reasons, the scope of an authorisation
	MaxNoticeItems     = 50        // works claimed, image references
	MaxNoticeDetail    = MaxReason // a decision's reason, a court action
	MaxNoticePage      = 1000
)

// Notice states.
const (
	NoticeFiled     = "filed"      // waits for an admin's decision
	NoticeRejected  = "rejected"   // the admin decided not to take the content down
	NoticeTakenDown = "taken_down" // the content is down; the publisher may counter
	NoticeCountered = "countered"  // a counter-notice was filed; restored after the waiting period unless decided otherwise
	NoticeRestored  = "restored"   // the content is back
	NoticeKeptDown  = "kept_down"  // the admin kept it down after the counter-notice
)

// Decisions on a notice.
const (
	DecideTakedown = "takedown"
	DecideReject   = "reject"
	DecideRestore  = "restore"
	DecideKeepDown = "keep_down"
)

// TermsStatement is a statement a filer accepts verbatim: the service
// terms' words (Chinese, the original) and an English translation.
type TermsStatement struct {
	Clause string `json:"clause"`
	ZH     string `json:"zh"`
	EN     string `json:"en"`
}

// Text is the statement in lang ("zh" or "en"), false for another language.
func (s TermsStatement) Text(lang string) (string, bool) {
	switch lang {
	case "zh":
		return s.ZH, true
	case "en":
		return s.EN, true
	}
	return "", false
}

// The truthfulness statements of the service terms, verbatim.
var (
	// NoticeStatement is what a notifier signs (2.3.2.1 (1)).
	NoticeStatement = TermsStatement{Clause: "2.3.2.1 (1)",
		ZH: "本人保证，本通知中所述信息是充分、真实、准确的，我是所投诉内容的合法权利人，或，我已获授权，有权行使上述列明内容的权益。本人确认，在我举报的产品内可获取的内容侵犯了本人相应的合法权益。本人承诺，因该通知内容不实所引发的法律责任，由本人自行承担。",
		EN: "I warrant that the information in this notice is complete, true and accurate, and that I am the lawful rights holder of the content complained of, or that I am authorised and entitled to exercise the rights in it listed above. I confirm that content available in the product I report infringes my corresponding lawful rights. I undertake to bear myself the legal liability arising from anything untrue in this notice."}
	// CounterStatement is what the publisher signs in a counter-notice
	// (2.3.2.2 (1)).
	CounterStatement = TermsStatement{Clause: "2.3.2.2 (1)",
		ZH: "本人保证，本反通知中所述信息是充分、真实、准确的，我是被投诉侵权内容的合法权利人，或，我已获授权，有权行使上述列明内容的权益。本人确认，我被投诉举报的产品内可获取的内容未侵犯他人合法权益。本人承诺，因该反通知内容不实所引发的法律责任，由本人自行承担。",
		EN: "I warrant that the information in this counter-notice is complete, true and accurate, and that I am the lawful rights holder of the content complained of as infringing, or that I am authorised and entitled to exercise the rights in it listed above. I confirm that the content available in the product that was complained of and reported does not infringe anyone's lawful rights. I undertake to bear myself the legal liability arising from anything untrue in this counter-notice."}
)

// Party is who files a form, or the agent filing for them: a person or an
// organisation, with a reference to an identity document (an identity
// card or passport number; an organisation's registration) and contact.
type Party struct {
	Name       string `json:"name"`
	Kind       string `json:"kind"` // person or organisation
	IDDocument string `json:"id_document,omitempty"`
	Address    string `json:"address,omitempty"`
	Phone      string `json:"phone,omitempty"`
	Email      string `json:"email,omitempty"`
}

// AttachmentRef is a stored attachment: its bytes are at gnb/<Digest>.
type AttachmentRef struct {
	Name      string `json:"name"`
	MediaType string `json:"media_type,omitempty"`
	Size      int64  `json:"size"`
	Digest    string `json:"digest"` // sha256:<hex>
}

// Upload is an attachment as a form carries it.
type Upload struct {
	Name      string `json:"name"`
	MediaType string `json:"media_type,omitempty"`
	Data      []byte `json:"data"`
}

// Agent is someone filing for the party, with the scope of their
// authorisation and the authorisation itself.
type Agent struct {
	Party
	Scope         string          `json:"scope"`
	Authorisation []AttachmentRef `json:"authorisation"`
}

// AgentForm is an agent as a form carries it.
type AgentForm struct {
	Party
	Scope         string   `json:"scope"`
	Authorisation []Upload `json:"authorisation"`
}

// NoticeForm is a rights holder's infringement notice as filed.
type NoticeForm struct {
	RightsHolder Party      `json:"rights_holder"`
	Agent        *AgentForm `json:"agent,omitempty"`
	Works        []string   `json:"works"`    // the works (or marks) claimed
	Proof        []Upload   `json:"proof"`    // proof of the rights
	Content      []string   `json:"content"`  // image references of the infringing content
	Reasons      string     `json:"reasons"`  // why it infringes
	Evidence     []Upload   `json:"evidence"` // preliminary evidence
	Lang         string     `json:"lang"`     // the statement's language: zh or en
	Statement    string     `json:"statement"`
	Signature    string     `json:"signature"` // typed
}

// CounterForm is the publisher's counter-notice as filed.
type CounterForm struct {
	Party     Party      `json:"party"`
	Agent     *AgentForm `json:"agent,omitempty"`
	Content   []string   `json:"content"` // the content to restore (default: the notice's)
	Reasons   string     `json:"reasons"` // why it does not infringe
	Evidence  []Upload   `json:"evidence"`
	Lang      string     `json:"lang"`
	Statement string     `json:"statement"`
	Signature string     `json:"signature"`
}

// NoticeStep is one step of a notice's timeline.
type NoticeStep struct {
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
	Action string    `json:"action"` // notice.file, notice.takedown, ...
	Detail string    `json:"detail,omitempty"`
}

// NoticeDecision is an admin's decision on a notice.
type NoticeDecision struct {
	Decision  string    `json:"decision"` // takedown, reject, restore, keep_down
	Reason    string    `json:"reason"`
	By        string    `json:"by"`
	At        time.Time `json:"at"`
	Takedowns []string  `json:"takedowns,omitempty"` // the takedowns it made or lifted
}

// Counter is a counter-notice as recorded.
type Counter struct {
	Filer     string          `json:"filer"`
	At        time.Time       `json:"at"`
	Party     Party           `json:"party"`
	Agent     *Agent          `json:"agent,omitempty"`
	Content   []string        `json:"content"`
	Reasons   string          `json:"reasons"`
	Evidence  []AttachmentRef `json:"evidence"`
	Statement Statement       `json:"statement"`
	Signature string          `json:"signature"`
}

// CourtAction is the notifier's record that they went to court over the
// content: the images stay down until an admin decides.
type CourtAction struct {
	By     string    `json:"by"`
	At     time.Time `json:"at"`
	Detail string    `json:"detail"`
}

// Notice is an infringement notice and everything that followed it.
type Notice struct {
	ID     string    `json:"id"`
	State  string    `json:"state"`
	Filer  string    `json:"filer,omitempty"` // the account that filed it; empty through the public form
	Public bool      `json:"public,omitempty"`
	At     time.Time `json:"at"`

	RightsHolder Party           `json:"rights_holder"`
	Agent        *Agent          `json:"agent,omitempty"`
	Works        []string        `json:"works"`
	Proof        []AttachmentRef `json:"proof"`
	Content      []string        `json:"content"`
	Repos        []string        `json:"repos"`   // the content's repositories
	Accused      string          `json:"accused"` // their publisher
	Reasons      string          `json:"reasons"`
	Evidence     []AttachmentRef `json:"evidence"`
	Statement    Statement       `json:"statement"`
	Signature    string          `json:"signature"`

	Decision     *NoticeDecision `json:"decision,omitempty"`
	Counter      *Counter        `json:"counter,omitempty"`
	RestoreAfter time.Time       `json:"restore_after,omitzero"` // the automatic restore, unless Court
	Court        *CourtAction    `json:"court,omitempty"`
	Resolution   *NoticeDecision `json:"resolution,omitempty"` // restore or keep down, after the counter-notice
	Timeline     []NoticeStep    `json:"timeline"`
}

// Attachments lists every attachment of the notice and its counter-notice.
func (n *Notice) Attachments() []AttachmentRef {
	var out []AttachmentRef
	if n.Agent != nil {
		out = append(out, n.Agent.Authorisation...)
	}
	out = append(append(out, n.Proof...), n.Evidence...)
	if c := n.Counter; c != nil {
		if c.Agent != nil {
			out = append(out, c.Agent.Authorisation...)
		}
		out = append(out, c.Evidence...)
	}
	return out
}

// Party reports whether user is a party to the notice: its filer or the
// publisher it accuses.
func (n *Notice) Party(user string) bool {
	return user != "" && (user == n.Filer || user == n.Accused)
}

// NoticeSettings are the admin's settings of the notice procedure.
type NoticeSettings struct {
	// WaitBusinessDays is the waiting period after a counter-notice before
	// the content is restored (0: the default, 10, as US law sets).
	WaitBusinessDays int `json:"wait_business_days,omitempty"`
	// Wait, when set, is the waiting period as a duration instead.
	Wait time.Duration `json:"wait,omitempty"`
	// PublicForm opens the notice form to rights holders without an
	// account (rate-limited by the API).
	PublicForm bool `json:"public_form,omitempty"`
}

// DefaultWaitBusinessDays is the waiting period after a counter-notice.
const DefaultWaitBusinessDays = 10

// MaxWaitBusinessDays bounds the waiting period.
const MaxWaitBusinessDays = 90

// restoreAfter is when content countered at t is restored.
func (s NoticeSettings) restoreAfter(t time.Time) time.Time {
	if s.Wait > 0 {
		return t.Add(s.Wait)
	}
	days := s.WaitBusinessDays
	if days <= 0 {
		days = DefaultWaitBusinessDays
	}
	return AddBusinessDays(t, days)
}

// AddBusinessDays is t moved on by n days that are not Saturday or Sunday
// (UTC); public holidays are not known.
func AddBusinessDays(t time.Time, n int) time.Time {
	for n > 0 {
		t = t.AddDate(0, 0, 1)
		if wd := t.UTC().Weekday(); wd != time.Saturday && wd != time.Sunday {
			n--
		}
	}
	return t
}

// SetNoticeSettings replaces the notice settings (admin).
type SetNoticeSettings struct {
	Meta     Meta           `json:"meta"`
	Settings NoticeSettings `json:"settings"`
}

func (a *applier) setNoticeSettings(c *SetNoticeSettings) (*NoticeSettings, error) {
	if !c.Meta.Admin {
		return nil, Errorf(EForbidden, "only an admin sets the notice procedure")
	}
	s := c.Settings
	if s.WaitBusinessDays < 0 || s.WaitBusinessDays > MaxWaitBusinessDays || s.Wait < 0 || s.Wait > MaxWaitBusinessDays*24*time.Hour {
		return nil, Errorf(EInvalid, "wait: 0 (the default, %d business days) to %d business days", DefaultWaitBusinessDays, MaxWaitBusinessDays)
	}
	if err := putJSON(a.txn, []byte(kNoticeSettings), s); err != nil {
		return nil, err
	}
	detail := fmt.Sprintf("wait=%d business days public_form=%t", s.WaitBusinessDays, s.PublicForm)
	if s.Wait > 0 {
		detail = fmt.Sprintf("wait=%s public_form=%t", s.Wait, s.PublicForm)
	}
	return &s, a.auditOK(c.Meta, "notice.settings", "", detail)
}

func (a *applier) noticeSettings() (NoticeSettings, error) {
	var s NoticeSettings
	if err := getJSON(a.txn, []byte(kNoticeSettings), &s); err != nil && !errors.Is(err, ErrNotFound) {
		return s, err
	}
	return s, nil
}

// Notice queries.

// Notice returns notice id, or an ENotFound error.
func (s *Store) Notice(id string) (*Notice, error) {
	var n *Notice
	err := s.view(func(txn *badger.Txn) error {
		var err error
		n, err = (&applier{txn: txn}).notice(id)
		return err
	})
	return n, err
}

// Notices lists the notices, newest first, at most MaxNoticePage: all of
// them (party empty), or those party filed or is accused by; only in
// state if given.
func (s *Store) Notices(party, state string) ([]Notice, error) {
	var out []Notice
	err := s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pNotice), Reverse: true, PrefetchValues: true, PrefetchSize: 64})
		defer it.Close()
		for it.Seek([]byte(pNotice + "\xff")); it.Valid() && len(out) < MaxNoticePage; it.Next() {
			var n Notice
			if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &n) }); err != nil {
				return fmt.Errorf("decode %s: %w", it.Item().Key(), err)
			}
			if (party == "" || n.Party(party)) && (state == "" || n.State == state) {
				out = append(out, n)
			}
		}
		return nil
	})
	return out, err
}

// NoticesDue lists the countered notices whose waiting period passed
// before now without a court action, oldest first.
func (s *Store) NoticesDue(now time.Time) ([]Notice, error) {
	var out []Notice
	err := s.view(func(txn *badger.Txn) error {
		return scanJSON(txn, []byte(pNotice), func(n *Notice) error {
			if n.State == NoticeCountered && n.Court == nil && !n.RestoreAfter.IsZero() && !now.Before(n.RestoreAfter) {
				out = append(out, *n)
			}
			return nil
		})
	})
	return out, err
}

// NoticeAttachment returns the bytes of a stored attachment ("sha256:<hex>").
func (s *Store) NoticeAttachment(digest string) ([]byte, error) {
	h, ok := strings.CutPrefix(digest, "sha256:")
	if !ok {
		return nil, Errorf(ENotFound, "attachment %q not found", digest)
	}
	var b []byte
	err := s.view(func(txn *badger.Txn) error {
		item, err := txn.Get(noticeBlobKey(h))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return Errorf(ENotFound, "attachment %q not found", digest)
		}
		if err != nil {
			return err
		}
		b, err = item.ValueCopy(nil)
		return err
	})
	return b, err
}

// NoticeSettings returns the notice settings (zero: the defaults).
func (s *Store) NoticeSettings() (NoticeSettings, error) {
	var ns NoticeSettings
	err := s.view(func(txn *badger.Txn) error { return getJSON(txn, []byte(kNoticeSettings), &ns) })
	if errors.Is(err, ErrNotFound) {
		return NoticeSettings{}, nil
	}
	return ns, err
}
