package wire

import "time"

// Infringement notices and counter-notices (service terms 2.3.2.1 and
// 2.3.2.2; node/governance).

// Notice states.
const (
	NoticeFiled     = "filed"
	NoticeRejected  = "rejected"
	NoticeTakenDown = "taken_down"
	NoticeCountered = "countered"
	NoticeRestored  = "restored"
	NoticeKeptDown  = "kept_down"
)

// NoticeParty is who files a form, or an agent filing for them: a person
// or an organisation, a reference to their identity document (identity
// card or passport number; an organisation's registration), and contact
// (an address, and a phone number or an email address).
type NoticeParty struct {
	Name       string `json:"name"`
	Kind       string `json:"kind"` // person or organisation
	IDDocument string `json:"id_document,omitempty"`
	Address    string `json:"address,omitempty"`
	Phone      string `json:"phone,omitempty"`
	Email      string `json:"email,omitempty"`
}

// Upload is an attachment in a form: its bytes (base64 in JSON).
type Upload struct {
	Name      string `json:"name"`
	MediaType string `json:"media_type,omitempty"`
	Data      []byte `json:"data"`
}

// Attachment is a stored attachment; its bytes are served to the parties
// and admins at /api/v1/notices/ID/attachments/DIGEST.
type Attachment struct {
	Name      string `json:"name"`
	MediaType string `json:"media_type,omitempty"`
	Size      int64  `json:"size"`
	Digest    string `json:"digest"`
}

// NoticeAgentForm is an agent filing for the party, with the scope of the
// authorisation and the authorisation attached.
type NoticeAgentForm struct {
	NoticeParty
	Scope         string   `json:"scope"`
	Authorisation []Upload `json:"authorisation"`
}

// NoticeAgent is an agent as recorded.
type NoticeAgent struct {
	NoticeParty
	Scope         string       `json:"scope"`
	Authorisation []Attachment `json:"authorisation"`
}

// NoticeForm is an infringement notice: who holds the rights (and the
// agent filing for them), the works claimed with proof of the rights, the
// infringing content (image references), the reasons with preliminary
// evidence, and the terms' truthfulness statement (GET
// /api/v1/notices/statements) verbatim in Lang, with a typed signature.
type NoticeForm struct {
	RightsHolder NoticeParty      `json:"rights_holder"`
	Agent        *NoticeAgentForm `json:"agent,omitempty"`
	Works        []string         `json:"works"`
	Proof        []Upload         `json:"proof"`
	Content      []string         `json:"content"`
	Reasons      string           `json:"reasons"`
	Evidence     []Upload         `json:"evidence"`
	Lang         string           `json:"lang"` // zh or en
	Statement    string           `json:"statement"`
	Signature    string           `json:"signature"`
}

// CounterForm is the publisher's counter-notice: the same kinds of
// fields, the content to restore (default: all of the notice's), and the
// counter-notice's own statement.
type CounterForm struct {
	Party     NoticeParty      `json:"party"`
	Agent     *NoticeAgentForm `json:"agent,omitempty"`
	Content   []string         `json:"content,omitempty"`
	Reasons   string           `json:"reasons"`
	Evidence  []Upload         `json:"evidence"`
	Lang      string           `json:"lang"`
	Statement string           `json:"statement"`
	Signature string           `json:"signature"`
}

// SignedStatement is a statement as someone accepted it: its language and
// exact words.
type SignedStatement struct {
	Lang string    `json:"lang"`
	Text string    `json:"text"`
	At   time.Time `json:"at"`
}

// NoticeDecision is an admin's decision on a notice (or, by "gantry", the
// automatic restore).
type NoticeDecision struct {
	Decision  string    `json:"decision"` // takedown, reject, restore, keep_down
	Reason    string    `json:"reason,omitempty"`
	By        string    `json:"by"`
	At        time.Time `json:"at"`
	Takedowns []string  `json:"takedowns,omitempty"`
}

// CounterNotice is a counter-notice as recorded.
type CounterNotice struct {
	Filer     string          `json:"filer"`
	At        time.Time       `json:"at"`
	Party     NoticeParty     `json:"party"`
	Agent     *NoticeAgent    `json:"agent,omitempty"`
	Content   []string        `json:"content"`
	Reasons   string          `json:"reasons"`
	Evidence  []Attachment    `json:"evidence"`
	Statement SignedStatement `json:"statement"`
	Signature string          `json:"signature"`
}

// CourtAction is the notifier's record that a court action was filed.
type CourtAction struct {
	By     string    `json:"by"`
	At     time.Time `json:"at"`
	Detail string    `json:"detail"`
}

// NoticeStep is one step of a notice's timeline.
type NoticeStep struct {
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
	Action string    `json:"action"`
	Detail string    `json:"detail,omitempty"`
}

// InfringementNotice is an infringement notice and everything that followed it.
// Redacted: the caller is the accused publisher, who is not shown the
// notifier's (or their agent's) identity document or contact.
type InfringementNotice struct {
	ID           string          `json:"id"`
	State        string          `json:"state"`
	Filer        string          `json:"filer,omitempty"`
	Public       bool            `json:"public,omitempty"`
	At           time.Time       `json:"at"`
	RightsHolder NoticeParty     `json:"rights_holder"`
	Agent        *NoticeAgent    `json:"agent,omitempty"`
	Works        []string        `json:"works"`
	Proof        []Attachment    `json:"proof"`
	Content      []string        `json:"content"`
	Repos        []string        `json:"repos"`
	Accused      string          `json:"accused"`
	Reasons      string          `json:"reasons"`
	Evidence     []Attachment    `json:"evidence"`
	Statement    SignedStatement `json:"statement"`
	Signature    string          `json:"signature"`
	Decision     *NoticeDecision `json:"decision,omitempty"`
	Counter      *CounterNotice  `json:"counter,omitempty"`
	RestoreAfter time.Time       `json:"restore_after,omitzero"`
	Court        *CourtAction    `json:"court,omitempty"`
	Resolution   *NoticeDecision `json:"resolution,omitempty"`
	Timeline     []NoticeStep    `json:"timeline"`
	Redacted     bool            `json:"redacted,omitempty"`
}

// InfringementNoticeList is GET /api/v1/notices: an admin's, every notice; a user's,
// those they filed or that accuse them.
type InfringementNoticeList struct {
	Notices []InfringementNotice `json:"notices"`
}

// NoticeDecisionRequest decides a notice (admin): takedown or reject a
// filed one; restore one whose content is down; keep_down a countered one.
type NoticeDecisionRequest struct {
	Decision string `json:"decision"`
	Reason   string `json:"reason"`
	StopJobs bool   `json:"stop_jobs,omitempty"` // takedown: also cancel others' running jobs of the images
}

// CourtActionRequest records that a court action was filed (the notifier).
type CourtActionRequest struct {
	Detail string `json:"detail"`
}

// TermsStatement is a statement of the service terms, verbatim in Chinese
// (the original) and in an English translation.
type TermsStatement struct {
	Clause string `json:"clause"`
	ZH     string `json:"zh"`
	EN     string `json:"en"`
}

// NoticeStatements are the statements a notice and a counter-notice sign,
// and the limits of a form's attachments.
type NoticeStatements struct {
	Notice             TermsStatement `json:"notice"`
	Counter            TermsStatement `json:"counter"`
	MaxAttachment      int            `json:"max_attachment"`
	MaxAttachmentsSize int            `json:"max_attachments_size"`
	MaxAttachments     int            `json:"max_attachments"`
	PublicForm         bool           `json:"public_form"`
}

// NoticeSettings are the notice procedure's settings (admin): the waiting
// period after a counter-notice (business days, default 10; or Wait, a
// duration), and whether the public form is open.
type NoticeSettings struct {
	WaitBusinessDays int      `json:"wait_business_days"`
	Wait             Duration `json:"wait,omitempty"`
	PublicForm       bool     `json:"public_form"`
}
