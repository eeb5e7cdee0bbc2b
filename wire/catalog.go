package wire

import "time"

// Refusal codes of the community catalog's licence gate (403).
const (
	CodeLicenceNotAccepted = "licence_not_accepted"
	CodeAccessPending      = "access_pending"
	CodeAccessRejected     = "access_rejected"
)

// Licence is a licence version: an SPDX expression (or LicenseRef-<name>
// for a custom licence) and its version, the digest of its text.
type Licence struct {
	Expression string `json:"expression"`
	Version    string `json:"version"`
	Custom     bool   `json:"custom,omitempty"`
}

// Notice is a licence a repository's images inherit from a published
// image they are built on; only that image's rights holder removes it.
type Notice struct {
	Base         string    `json:"base"`
	BaseOwner    string    `json:"base_owner"`
	BaseManifest string    `json:"base_manifest"`
	Licence      Licence   `json:"licence"`
	GenAI        bool      `json:"genai,omitempty"`
	Recorded     time.Time `json:"recorded"`
}

// Publish is the body of POST /api/v1/images/publish.
type Publish struct {
	Repo string `json:"repo"`
	// License is an SPDX expression; a custom licence instead gives
	// LicenseName and LicenseText (published as LicenseRef-<name>).
	License     string   `json:"license,omitempty"`
	LicenseName string   `json:"license_name,omitempty"`
	LicenseText string   `json:"license_text,omitempty"`
	Description string   `json:"description,omitempty"`
	Readme      string   `json:"readme,omitempty"` // Markdown
	Access      string   `json:"access,omitempty"` // open (default) or approval
	Questions   []string `json:"questions,omitempty"`
	// GenAI says the image performs generative AI or deep synthesis;
	// GenAIFiled that its safety assessment and filing are complete
	// (without it, only approval mode is allowed).
	GenAI      bool     `json:"genai,omitempty"`
	GenAIFiled bool     `json:"genai_filed,omitempty"`
	Use        string   `json:"use,omitempty"`     // research (default) or commercial
	Command    []string `json:"command,omitempty"` // what "Try it" runs
	Lang       string   `json:"lang,omitempty"`    // the language of the agreement shown: en (default) or zh
}

// RepoRef names a repository in a request body.
type RepoRef struct {
	Repo string `json:"repo"`
}

// CatalogEntry is a published repository as the catalog lists it.
type CatalogEntry struct {
	Repo  string `json:"repo"`
	Owner string `json:"owner"`
	// Kind is what the repository holds: image, dataset or model.
	Kind        string    `json:"kind"`
	Licence     Licence   `json:"licence"`
	Description string    `json:"description,omitempty"`
	Use         string    `json:"use"`
	GenAI       bool      `json:"genai,omitempty"`
	GenAIFiled  bool      `json:"genai_filed,omitempty"`
	Access      string    `json:"access"`
	Questions   []string  `json:"questions,omitempty"`
	Command     []string  `json:"command,omitempty"`
	Published   time.Time `json:"published"`
	Updated     time.Time `json:"updated"`
	Pulls       int64     `json:"pulls"`
	Notices     []Notice  `json:"notices,omitempty"`
	// Review is pending, approved or rejected (with ReviewReason: why, or
	// the automatic rules it failed); only an approved entry is listed.
	Review       string `json:"review"`
	ReviewReason string `json:"review_reason,omitempty"`
}

// CatalogList is a page of GET /api/v1/catalog.
type CatalogList struct {
	Entries []CatalogEntry `json:"entries"`
	Next    string         `json:"next"`
}

// Catalog statuses of the caller toward a repository.
const (
	StatusOwner      = "owner"
	StatusMustAccept = "must_accept" // the licence (or a newer version of it, or an inherited one) is not accepted
	StatusMustAsk    = "must_request"
	StatusPending    = "pending"
	StatusRejected   = "rejected"
	StatusAccepted   = "accepted"
)

// CatalogStatus is where the caller stands with a repository.
type CatalogStatus struct {
	State string `json:"state"`
	// Message says what to do next, or why access was refused.
	Message string `json:"message,omitempty"`
	// Accepted is the licence version the caller accepted, if any.
	Accepted *Licence `json:"accepted,omitempty"`
}

// CatalogDetail is GET /api/v1/catalog/entry: a published repository with
// its README, licence text, tags, the caller's status and the notices
// users read before they use it.
type CatalogDetail struct {
	CatalogEntry
	ReadmeHTML  string        `json:"readme_html"`
	LicenceText string        `json:"licence_text"`
	Tags        []ImageTag    `json:"tags"`
	Status      CatalogStatus `json:"status"`
	// Terms are the service terms' statements a user of community images
	// is shown (in English and Chinese), and the publisher's agreement.
	Terms []Statement `json:"terms"`
	Grant Statement   `json:"grant"`
}

// Statement is a text of the service terms, or one someone agreed to.
type Statement struct {
	Clause string    `json:"clause,omitempty"`
	Lang   string    `json:"lang,omitempty"`
	Text   string    `json:"text"`
	EN     string    `json:"en,omitempty"`
	ZH     string    `json:"zh,omitempty"`
	At     time.Time `json:"at,omitzero"`
}

// Accept is the body of POST /api/v1/images/accept: the licence version
// the user read (empty: the current one) and answers to the publisher's
// questions.
type Accept struct {
	Repo    string   `json:"repo"`
	Licence string   `json:"licence,omitempty"`
	Answers []string `json:"answers,omitempty"`
}

// Acceptance records that a user accepted a licence version.
type Acceptance struct {
	Repo    string    `json:"repo"`
	User    string    `json:"user"`
	Licence Licence   `json:"licence"`
	Answers []string  `json:"answers,omitempty"`
	At      time.Time `json:"at"`
}

// AcceptanceList is GET /api/v1/images/accepted.
type AcceptanceList struct {
	Acceptances []Acceptance `json:"acceptances"`
}

// AccessAsk is the body of POST /api/v1/images/request.
type AccessAsk struct {
	Repo    string   `json:"repo"`
	Answers []string `json:"answers,omitempty"`
}

// AccessRequest is a user's request for a repository in approval mode.
type AccessRequest struct {
	Repo      string    `json:"repo"`
	User      string    `json:"user"`
	Answers   []string  `json:"answers,omitempty"`
	State     string    `json:"state"` // pending, approved, rejected, revoked
	Reason    string    `json:"reason,omitempty"`
	Requested time.Time `json:"requested"`
	Decided   time.Time `json:"decided,omitzero"`
	By        string    `json:"by,omitempty"`
}

// AccessDecision is the body of POST /api/v1/images/access/decide.
type AccessDecision struct {
	Repo     string `json:"repo"`
	User     string `json:"user"`
	Decision string `json:"decision"` // approve, reject, revoke
	Reason   string `json:"reason,omitempty"`
}

// AccessReport is GET /api/v1/images/access: who accepted a repository's
// licence and who asked for access, for its publisher (the export, as
// Hugging Face's access report).
type AccessReport struct {
	Repo        string          `json:"repo"`
	Acceptances []Acceptance    `json:"acceptances"`
	Requests    []AccessRequest `json:"requests"`
}

// RemoveNotice is the body of POST /api/v1/images/notices/remove.
type RemoveNotice struct {
	Repo string `json:"repo"`
	Base string `json:"base"`
}

// TrialAllowance is what "Try it" may use: CPU-seconds per user per UTC
// day, the longest run, and each trial task's CPU and memory.
type TrialAllowance struct {
	CPUSecondsPerDay int64    `json:"cpu_seconds_per_day"`
	MaxRunTime       Duration `json:"max_run_time"`
	CPU              int64    `json:"cpu"`
	Memory           int64    `json:"memory"`
}

// Trial is GET /api/v1/catalog/trial: the allowance and what the caller
// has left of it today.
type Trial struct {
	Allowance TrialAllowance `json:"allowance"`
	Used      float64        `json:"used_cpu_seconds"`
	Left      float64        `json:"left_cpu_seconds"`
	Day       string         `json:"day"`
}

// TryResult is the answer to POST /api/v1/catalog/try: the trial job and
// what is left of the allowance.
type TryResult struct {
	Job   Job   `json:"job"`
	Trial Trial `json:"trial"`
}
