package wire

import "time"

// Governance bodies (node/governance): the audit log and inboxes.

// AuditRecord is one entry of the audit log: who did what to what, from
// where, when, and how it ended ("ok" or the refusal's code); Prev and
// Hash chain it to the record before it.
type AuditRecord struct {
	Seq     uint64    `json:"seq"`
	At      time.Time `json:"at"`
	Actor   string    `json:"actor"`
	Source  string    `json:"source,omitempty"`
	Action  string    `json:"action"`
	Target  string    `json:"target,omitempty"`
	Outcome string    `json:"outcome"`
	Detail  string    `json:"detail,omitempty"`
	Prev    string    `json:"prev"`
	Hash    string    `json:"hash"`
}

// AuditList is a page of the audit log, oldest first; Next is the cursor
// of the next page (empty: the last page).
type AuditList struct {
	Records []AuditRecord `json:"records"`
	Next    string        `json:"next,omitempty"`
}

// AuditVerification says whether the audit log's hash chain is whole:
// OK, or the first broken record and why.
type AuditVerification struct {
	OK      bool   `json:"ok"`
	Records uint64 `json:"records"`
	Broken  uint64 `json:"broken,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// Message is one message of a user's inbox.
type Message struct {
	ID      string    `json:"id"`
	User    string    `json:"user"`
	At      time.Time `json:"at"`
	Kind    string    `json:"kind"`
	Subject string    `json:"subject"`
	Body    string    `json:"body,omitempty"`
	Ref     string    `json:"ref,omitempty"`
	Read    bool      `json:"read,omitempty"`
}

// Inbox is the signed-in user's messages, newest first.
type Inbox struct {
	Messages []Message `json:"messages"`
	Unread   int       `json:"unread"`
}

// MessageSend is an admin's message to a user.
type MessageSend struct {
	User    string `json:"user"`
	Subject string `json:"subject"`
	Body    string `json:"body,omitempty"`
}

// ReviewDecision approves or rejects a published image (admin).
type ReviewDecision struct {
	Repo     string `json:"repo"`
	Decision string `json:"decision"` // approve or reject
	Reason   string `json:"reason,omitempty"`
}

// ReviewRules are the automatic review rules: with Auto, an image that
// passes them (a description and README when RequireFields; no Deny word
// in its name, description or README) is approved at once.
type ReviewRules struct {
	Auto          bool     `json:"auto"`
	RequireFields bool     `json:"require_fields"`
	Deny          []string `json:"deny,omitempty"`
}

// Refusal codes of governance.
const (
	CodeAccountSuspended = "account_suspended" // 403: the account is suspended; the message says why
	CodeTakenDown        = "taken_down"        // 451 (RFC 7725): the image was taken down; the message names the decision
)

// ReportCategory is a kind of forbidden content a report names: a stable
// code with its labels in Chinese (as the service terms say it) and English.
type ReportCategory struct {
	Code string `json:"code"`
	ZH   string `json:"zh"`
	EN   string `json:"en"`
}

// ReportCategories is GET /api/v1/reports/categories.
type ReportCategories struct {
	Categories []ReportCategory `json:"categories"`
}

// ReportRequest is a signed-in user's report of a published image.
type ReportRequest struct {
	Repo     string `json:"repo"`
	Category string `json:"category"`
	Reason   string `json:"reason"`
}

// Report is a report of a published image and, once decided, the decision.
type Report struct {
	ID        string    `json:"id"`
	Repo      string    `json:"repo"`
	Owner     string    `json:"owner"`
	Reporter  string    `json:"reporter"`
	Category  string    `json:"category"`
	Reason    string    `json:"reason"`
	At        time.Time `json:"at"`
	State     string    `json:"state"` // open, dismissed, taken_down
	DecidedBy string    `json:"decided_by,omitempty"`
	DecidedAt time.Time `json:"decided_at,omitzero"`
	Decision  string    `json:"decision,omitempty"` // a dismissal's reason
	Takedown  string    `json:"takedown,omitempty"` // the takedown's id
}

// ReportGroup is the reports of one image.
type ReportGroup struct {
	Repo      string    `json:"repo"`
	Owner     string    `json:"owner"`
	Open      int       `json:"open"`
	TakenDown *Takedown `json:"taken_down,omitempty"`
	Reports   []Report  `json:"reports"`
}

// ReportList is GET /api/v1/reports: an admin's, every report grouped by
// image; a user's, their own.
type ReportList struct {
	Images []ReportGroup `json:"images"`
}

// ReportDecision dismisses a report (with a reason the reporter reads) or
// takes its image down (admin).
type ReportDecision struct {
	Decision string `json:"decision"` // dismiss or takedown
	Reason   string `json:"reason"`
	StopJobs bool   `json:"stop_jobs,omitempty"`
}

// ReportDecided is the answer to a report's decision.
type ReportDecided struct {
	Report   Report    `json:"report"`
	Takedown *Takedown `json:"takedown,omitempty"`
}

// Takedown is an admin's decision that an image is down: out of the
// catalog, refused (451 taken_down) to everyone but its owner.
type Takedown struct {
	ID      string    `json:"id"`
	Repo    string    `json:"repo"`
	Owner   string    `json:"owner"`
	Reason  string    `json:"reason"`
	Notice  string    `json:"notice,omitempty"`
	Report  string    `json:"report,omitempty"`
	By      string    `json:"by"`
	At      time.Time `json:"at"`
	Stopped []string  `json:"stopped,omitempty"` // others' jobs it cancelled
}

// TakedownRequest takes an image down (admin); StopJobs also cancels the
// running jobs of others.
type TakedownRequest struct {
	Repo     string `json:"repo"`
	Reason   string `json:"reason"`
	Notice   string `json:"notice,omitempty"`
	Report   string `json:"report,omitempty"`
	StopJobs bool   `json:"stop_jobs,omitempty"`
}

// RestoreRequest lifts an image's takedown (admin).
type RestoreRequest struct {
	Repo   string `json:"repo"`
	Reason string `json:"reason,omitempty"`
}

// TakedownList is the images taken down.
type TakedownList struct {
	Takedowns []Takedown `json:"takedowns"`
}

// Suspension says why an account is suspended.
type Suspension struct {
	Reason    string    `json:"reason"`
	Notice    string    `json:"notice,omitempty"`
	Report    string    `json:"report,omitempty"`
	By        string    `json:"by"`
	At        time.Time `json:"at"`
	Cancelled []string  `json:"cancelled,omitempty"`
}

// SuspendRequest suspends an account (admin); CancelJobs also cancels its
// queued and running jobs.
type SuspendRequest struct {
	Reason     string `json:"reason"`
	Notice     string `json:"notice,omitempty"`
	Report     string `json:"report,omitempty"`
	CancelJobs bool   `json:"cancel_jobs,omitempty"`
}
