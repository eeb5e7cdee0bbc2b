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
