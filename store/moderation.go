package store

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Moderation (node/governance, DESIGN.md there): users' reports of
// published images, admins' takedowns of images and suspensions of
// accounts. A takedown is kept beside the publication (gt/<repo>), not on
// it, so unpublishing and publishing again does not lift it; the pull gate
// reads it first. A suspension is kept on the account.

const (
	pReport       = "gr/"   // gr/<repo>\x00<seq> -> Report
	pReportID     = "grid/" // grid/<seq> -> repo
	kReportSeq    = "m/report"
	pTakedown     = "gt/" // gt/<repo> -> Takedown (while the image is down)
	kTakedownSeq  = "m/takedown"
	MaxReportPage = 1000
)

func reportKey(repo string, seq uint64) []byte {
	return []byte(pReport + repo + sep + seqText(seq))
}
func reportIDKey(seq uint64) []byte  { return []byte(pReportID + seqText(seq)) }
func takedownKey(repo string) []byte { return []byte(pTakedown + repo) }

// ReportCategory is a kind of forbidden content a user may report: the
// service terms' list (2.1.4.1 (1) a to h), a licence violation, or other.
type ReportCategory struct {
	Code string `json:"code"`
	ZH   string `json:"zh"`
	EN   string `json:"en"`
}

// ReportCategories are the stable codes a report names, in the order of
// the service terms.
var ReportCategories = []ReportCategory{
	{"political_propaganda", "违反国家规定的政治宣传和新闻信息", "Political propaganda or news in breach of state regulations"},
	{"national_security", "涉及国家安全和国防利益的信息", "Content concerning national security or defence interests"},
	{"superstition_obscenity", "封建迷信和淫秽、色情信息", "Feudal superstition, obscene or pornographic content"},
	{"illegal_gambling_cheats", "涉及博彩有奖、赌博游戏、“私服”、“外挂”等非法互联网活动的相关信息", "Gambling, prize lotteries, private game servers, cheats or other illegal online activity"},
	{"ethnic_religious_policy", "违反国家民族和宗教政策的信息", "Content against the state's ethnic or religious policy"},
	{"network_security", "妨碍互联网运行安全的信息", "Content that endangers the secure operation of the Internet"},
	{"rights_or_public_order", "侵害他人合法权益的信息和其他有损于社会秩序、公共道德的信息", "Content infringing others' lawful rights, or harming social order or public morals"},
	{"unlawful", "其他违反法律、法规、部门规章或国家政策的信息", "Other content violating laws, regulations, departmental rules or state policy"},
	{"licence_violation", "违反许可协议", "Licence violation"},
	{"other", "其他", "Other"},
}

// ValidReportCategory reports whether code names a report category.
func ValidReportCategory(code string) bool {
	return slices.ContainsFunc(ReportCategories, func(c ReportCategory) bool { return c.Code == code })
}

func reportCodes() string {
	var cs []string
	for _, c := range ReportCategories {
		cs = append(cs, c.Code)
	}
	return strings.Join(cs, ", ")
}

// Report states.
const (
	ReportOpen      = "open"
	ReportDismissed = "dismissed"
	ReportActioned  = "taken_down" // the image was taken down
)

// Report is a user's report of a published image.
type Report struct {
	ID       string    `json:"id"`
	Repo     string    `json:"repo"`
	Owner    string    `json:"owner"` // the image's publisher
	Reporter string    `json:"reporter"`
	Category string    `json:"category"`
	Reason   string    `json:"reason"`
	At       time.Time `json:"at"`
	State    string    `json:"state"`
	// The decision: who, when, a dismissal's reason or the takedown's id.
	DecidedBy string    `json:"decided_by,omitempty"`
	DecidedAt time.Time `json:"decided_at,omitzero"`
	Decision  string    `json:"decision,omitempty"`
	Takedown  string    `json:"takedown,omitempty"`
}

// FileReport is a signed-in user's report of a published image.
type FileReport struct {
	Meta     Meta   `json:"meta"`
	Repo     string `json:"repo"`
	Category string `json:"category"`
	Reason   string `json:"reason"`
}

func (a *applier) nextSeq(key string) (uint64, error) {
	var seq uint64
	if err := getJSON(a.txn, []byte(key), &seq); err != nil && !errors.Is(err, ErrNotFound) {
		return 0, err
	}
	return seq + 1, nil
}

func (a *applier) fileReport(c *FileReport) (*Report, error) {
	switch {
	case !ValidReportCategory(c.Category):
		return nil, Errorf(EInvalid, "category: want one of %s", reportCodes())
	case strings.TrimSpace(c.Reason) == "":
		return nil, Errorf(EInvalid, "reason: say what is wrong with the image")
	case len(c.Reason) > MaxReason:
		return nil, Errorf(EInvalid, "reason: at most %d bytes", MaxReason)
	}
	var p Publication
	if err := getJSON(a.txn, pubKey(c.Repo), &p); err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, Errorf(ENotFound, "%s is not a published image", c.Repo)
		}
		return nil, err
	}
	if !p.Listed() && p.Owner != c.Meta.Actor && !c.Meta.Admin {
		return nil, Errorf(ENotFound, "%s is not a published image", c.Repo)
	}
	seq, err := a.nextSeq(kReportSeq)
	if err != nil {
		return nil, err
	}
	r := Report{ID: strconv.FormatUint(seq, 10), Repo: c.Repo, Owner: p.Owner, Reporter: c.Meta.Actor, Category: c.Category,
		Reason: c.Reason, At: a.at, State: ReportOpen}
	if err := putJSON(a.txn, []byte(kReportSeq), seq); err != nil {
		return nil, err
	}
	if err := putJSON(a.txn, reportKey(c.Repo, seq), r); err != nil {
		return nil, err
	}
	if err := putJSON(a.txn, reportIDKey(seq), c.Repo); err != nil {
		return nil, err
	}
	a.events = append(a.events, Event{Type: "report", Name: r.ID})
	return &r, a.auditOK(c.Meta, "report.file", c.Repo, "report "+r.ID+" ("+c.Category+"): "+c.Reason)
}

// report reads report id (ErrNotFound-coded when there is none).
func (a *applier) report(id string) (*Report, error) {
	seq, err := strconv.ParseUint(id, 10, 64)
	if err != nil {
		return nil, Errorf(ENotFound, "report %q not found", id)
	}
	var repo string
	if err := getJSON(a.txn, reportIDKey(seq), &repo); err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, Errorf(ENotFound, "report %q not found", id)
		}
		return nil, err
	}
	var r Report
	if err := getJSON(a.txn, reportKey(repo, seq), &r); err != nil {
		return nil, err
	}
	return &r, nil
}

func (a *applier) putReport(r *Report) error {
	seq, _ := strconv.ParseUint(r.ID, 10, 64) // written by fileReport: a number
	return putJSON(a.txn, reportKey(r.Repo, seq), r)
}

// DismissReport is an admin's dismissal of a report, with a reason the
// reporter reads.
type DismissReport struct {
	Meta   Meta   `json:"meta"`
	ID     string `json:"id"`
	Reason string `json:"reason"`
}

func (a *applier) dismissReport(c *DismissReport) (*Report, error) {
	if !c.Meta.Admin {
		return nil, Errorf(EForbidden, "only an admin decides reports")
	}
	if strings.TrimSpace(c.Reason) == "" || len(c.Reason) > MaxReason {
		return nil, Errorf(EInvalid, "reason: say why (the reporter reads it), at most %d bytes", MaxReason)
	}
	r, err := a.report(c.ID)
	if err != nil {
		return nil, err
	}
	if r.State != ReportOpen {
		return nil, Errorf(EConflict, "report %s was already decided (%s)", r.ID, r.State)
	}
	r.State, r.DecidedBy, r.DecidedAt, r.Decision = ReportDismissed, c.Meta.Actor, a.at, c.Reason
	if err := a.putReport(r); err != nil {
		return nil, err
	}
	if err := a.notify(r.Reporter, "report.dismissed", r.Repo, "Your report "+r.ID+" of "+r.Repo+" was dismissed", "Reason: "+c.Reason); err != nil {
		return nil, err
	}
	return r, a.auditOK(c.Meta, "report.dismiss", r.Repo, "report "+r.ID+": "+c.Reason)
}

// Takedown is an admin's decision that an image is down: it leaves the
// catalog, and nobody but its owner (and admins, who decide) pulls it or
// runs new jobs of it, until it is restored.
type Takedown struct {
	ID     string    `json:"id"`
	Repo   string    `json:"repo"`
	Owner  string    `json:"owner"`
	Reason string    `json:"reason"`
	Notice string    `json:"notice,omitempty"` // an infringement notice's id
	Report string    `json:"report,omitempty"` // the report it was decided from
	By     string    `json:"by"`
	At     time.Time `json:"at"`
	// Stopped lists the jobs of others the takedown cancelled.
	Stopped []string `json:"stopped,omitempty"`
}

// Refusal is the error a takedown gives everyone but the owner (451).
func (t *Takedown) Refusal() *Error {
	return Errorf(ETakenDown, "%s was taken down (decision %s): %s", t.Repo, t.ID, t.Reason)
}

// TakeDown takes a published image down (admin). StopJobs are the jobs of
// others running it, chosen by the proposer; each is re-checked (not
// ended, not the owner's) and cancelled.
type TakeDown struct {
	Meta     Meta     `json:"meta"`
	Repo     string   `json:"repo"`
	Reason   string   `json:"reason"`
	Notice   string   `json:"notice,omitempty"`
	Report   string   `json:"report,omitempty"`
	StopJobs []string `json:"stop_jobs,omitempty"`
}

// MaxStopJobs bounds the jobs one takedown cancels.
const MaxStopJobs = 10000

func (a *applier) takeDown(c *TakeDown) (*Takedown, error) {
	if !c.Meta.Admin {
		return nil, Errorf(EForbidden, "only an admin takes images down")
	}
	switch {
	case strings.TrimSpace(c.Reason) == "" || len(c.Reason) > MaxReason:
		return nil, Errorf(EInvalid, "reason: say why (the owner reads it, and so does everyone refused), at most %d bytes", MaxReason)
	case len(c.Notice) > MaxAuditField:
		return nil, Errorf(EInvalid, "notice: at most %d bytes", MaxAuditField)
	case len(c.StopJobs) > MaxStopJobs:
		return nil, Errorf(EInvalid, "stop_jobs: at most %d", MaxStopJobs)
	}
	var p Publication
	if err := getJSON(a.txn, pubKey(c.Repo), &p); err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, Errorf(ENotFound, "%s is not a published image", c.Repo)
		}
		return nil, err
	}
	if ok, err := exists(a.txn, takedownKey(c.Repo)); err != nil {
		return nil, err
	} else if ok {
		return nil, Errorf(EConflict, "%s is already taken down", c.Repo)
	}
	if c.Report != "" {
		r, err := a.report(c.Report)
		if err != nil {
			return nil, err
		}
		if r.Repo != c.Repo {
			return nil, Errorf(EInvalid, "report %s is about %s, not %s", r.ID, r.Repo, c.Repo)
		}
	}
	var n *Notice
	if c.Notice != "" {
		var err error
		if n, err = a.noticeOf(c.Notice, c.Repo); err != nil {
			return nil, err
		}
	}
	t, err := a.downImage(c.Meta, &p, c.Reason, c.Notice, c.Report, c.StopJobs, true)
	if err != nil {
		return nil, err
	}
	if n != nil {
		// Decided outside the notice's own decision: its timeline says so.
		if err := a.noticeImageDown(c.Meta, n, t); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// downImage takes p down (the caller validated the decision and checked
// it is not down already): a new takedown, others' listed jobs cancelled,
// the image's open reports settled, the owner told (unless tellOwner is
// false: a notice's decision tells them itself), an audit record.
func (a *applier) downImage(m Meta, p *Publication, reason, notice, report string, stopJobs []string, tellOwner bool) (*Takedown, error) {
	seq, err := a.nextSeq(kTakedownSeq)
	if err != nil {
		return nil, err
	}
	t := Takedown{ID: strconv.FormatUint(seq, 10), Repo: p.Repo, Owner: p.Owner, Reason: reason, Notice: notice, Report: report, By: m.Actor, At: a.at}
	if err := putJSON(a.txn, []byte(kTakedownSeq), seq); err != nil {
		return nil, err
	}
	for _, id := range stopJobs {
		j, err := a.job(id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if Terminal(j.State) || j.Owner == p.Owner || slices.Contains(t.Stopped, j.ID) {
			continue
		}
		if err := a.cancelOne(j, fmt.Sprintf("stopped: its image %s was taken down (decision %s): %s", p.Repo, t.ID, reason)); err != nil {
			return nil, err
		}
		t.Stopped = append(t.Stopped, j.ID)
	}
	if err := putJSON(a.txn, takedownKey(p.Repo), t); err != nil {
		return nil, err
	}
	// Every open report of the image is settled by the decision.
	err = scanJSON(a.txn, []byte(pReport+p.Repo+sep), func(r *Report) error {
		if r.State != ReportOpen {
			return nil
		}
		r.State, r.DecidedBy, r.DecidedAt, r.Takedown = ReportActioned, m.Actor, a.at, t.ID
		if err := a.putReport(r); err != nil {
			return err
		}
		return a.notify(r.Reporter, "report.actioned", r.Repo, "Your report "+r.ID+" of "+r.Repo+": the image was taken down", "Decision "+t.ID+": "+reason)
	})
	if err != nil {
		return nil, err
	}
	a.pubs = true
	if tellOwner {
		body := "Reason: " + reason + "\nDecision: " + t.ID
		if notice != "" {
			body += "\nInfringement notice: " + notice
		}
		body += "\nIt is out of the catalog; others can neither pull it nor run new jobs of it. You still can. Answer an admin from your inbox to contest the decision."
		if len(t.Stopped) > 0 {
			body += fmt.Sprintf("\n%d running jobs of others were stopped.", len(t.Stopped))
		}
		if err := a.notify(p.Owner, "image.takedown", p.Repo, "Your image "+p.Repo+" was taken down", body); err != nil {
			return nil, err
		}
	}
	a.events = append(a.events, Event{Type: "catalog", Owner: p.Owner, Name: p.Repo})
	detail := "decision " + t.ID + ": " + reason
	if report != "" {
		detail += "; report " + report
	}
	if notice != "" {
		detail += "; notice " + notice
	}
	if len(t.Stopped) > 0 {
		detail += "; stopped jobs " + strings.Join(t.Stopped, " ")
	}
	return &t, a.auditOK(m, "image.takedown", p.Repo, detail)
}

// RestoreImage lifts a takedown (admin).
type RestoreImage struct {
	Meta   Meta   `json:"meta"`
	Repo   string `json:"repo"`
	Reason string `json:"reason,omitempty"`
}

func (a *applier) restoreImage(c *RestoreImage) (*Takedown, error) {
	if !c.Meta.Admin {
		return nil, Errorf(EForbidden, "only an admin restores images")
	}
	if len(c.Reason) > MaxReason {
		return nil, Errorf(EInvalid, "reason: at most %d bytes", MaxReason)
	}
	t, err := takedownOf(a.txn, c.Repo)
	if err != nil {
		return nil, err
	}
	if t == nil {
		return nil, Errorf(ENotFound, "%s is not taken down", c.Repo)
	}
	if err := a.liftTakedown(c.Meta, t, c.Reason); err != nil {
		return nil, err
	}
	if t.Notice != "" {
		// Restored outside the notice's own decision: its timeline says so.
		if err := a.noticeImageRestored(c.Meta, t, c.Reason); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// liftTakedown removes takedown t, tells the owner and records it.
func (a *applier) liftTakedown(m Meta, t *Takedown, reason string) error {
	if err := a.txn.Delete(takedownKey(t.Repo)); err != nil {
		return err
	}
	a.pubs = true
	body := "Decision " + t.ID + " (" + t.Reason + ") was lifted; the image is shared again as you published it."
	if reason != "" {
		body += "\nReason: " + reason
	}
	if err := a.notify(t.Owner, "image.restore", t.Repo, "Your image "+t.Repo+" was restored", body); err != nil {
		return err
	}
	a.events = append(a.events, Event{Type: "catalog", Owner: t.Owner, Name: t.Repo})
	return a.auditOK(m, "image.restore", t.Repo, "decision "+t.ID+" lifted"+strings.TrimSuffix(": "+reason, ": "))
}

// takedownOf reads repo's takedown (nil: none).
func takedownOf(txn *badger.Txn, repo string) (*Takedown, error) {
	var t Takedown
	if err := getJSON(txn, takedownKey(repo), &t); err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, nil
		}
		return nil, err
	}
	return &t, nil
}

// Suspension is why an account is suspended: it may sign in to read why,
// read its inbox and answer; everything else is refused
// (account_suspended). Its data is kept.
type Suspension struct {
	Reason string    `json:"reason"`
	Notice string    `json:"notice,omitempty"`
	Report string    `json:"report,omitempty"`
	By     string    `json:"by"`
	At     time.Time `json:"at"`
	// Cancelled lists the jobs the suspension cancelled.
	Cancelled []string `json:"cancelled,omitempty"`
}

// Refusal is the error a suspended account gets (403).
func (s *Suspension) Refusal(user string) *Error {
	return Errorf(EAccountSuspended, "the account %s is suspended: %s (see gantry inbox)", user, s.Reason)
}

// SuspendUser suspends an account (admin); with CancelJobs its queued and
// running jobs are cancelled.
type SuspendUser struct {
	Meta       Meta   `json:"meta"`
	User       string `json:"user"`
	Reason     string `json:"reason"`
	Notice     string `json:"notice,omitempty"`
	Report     string `json:"report,omitempty"`
	CancelJobs bool   `json:"cancel_jobs,omitempty"`
}

func (a *applier) suspendUser(c *SuspendUser) (*User, error) {
	if !c.Meta.Admin {
		return nil, Errorf(EForbidden, "only an admin suspends accounts")
	}
	if strings.TrimSpace(c.Reason) == "" || len(c.Reason) > MaxReason {
		return nil, Errorf(EInvalid, "reason: say why (the user reads it), at most %d bytes", MaxReason)
	}
	if len(c.Notice) > MaxAuditField || len(c.Report) > MaxAuditField {
		return nil, Errorf(EInvalid, "notice, report: at most %d bytes", MaxAuditField)
	}
	var u User
	if err := getJSON(a.txn, userKey(c.User), &u); err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, Errorf(ENotFound, "user %q not found", c.User)
		}
		return nil, err
	}
	switch {
	case u.Admin:
		return nil, Errorf(EConflict, "%s is an admin: remove the role before suspending the account", c.User)
	case u.Suspension != nil:
		return nil, Errorf(EConflict, "%s is already suspended", c.User)
	}
	s := &Suspension{Reason: c.Reason, Notice: c.Notice, Report: c.Report, By: c.Meta.Actor, At: a.at}
	if c.CancelJobs {
		var ids []string
		for _, st := range []string{StateQueued, StateScheduled, StateRunning} {
			prefix := string(jobOwnerStateKey(c.User, st, ""))
			if err := a.scanKeys(prefix, func(id string) { ids = append(ids, id) }); err != nil {
				return nil, err
			}
		}
		slices.Sort(ids)
		for _, id := range slices.Compact(ids) {
			j, err := a.job(id)
			if err != nil {
				return nil, err
			}
			if Terminal(j.State) {
				continue
			}
			if err := a.cancelOne(j, "cancelled: the account "+c.User+" was suspended: "+c.Reason); err != nil {
				return nil, err
			}
			s.Cancelled = append(s.Cancelled, j.ID)
		}
	}
	u.Suspension = s
	if err := putJSON(a.txn, userKey(c.User), u); err != nil {
		return nil, err
	}
	body := "Reason: " + c.Reason + "\nYou can still sign in, read this inbox and answer an admin; pushes, pulls, jobs, schedules and publishing are refused until the account is restored. Your data is kept."
	if len(s.Cancelled) > 0 {
		body += fmt.Sprintf("\n%d of your jobs were cancelled.", len(s.Cancelled))
	}
	if err := a.notify(c.User, "user.suspend", c.User, "Your account was suspended", body); err != nil {
		return nil, err
	}
	a.events = append(a.events, Event{Type: "user", Name: c.User})
	detail := c.Reason
	if len(s.Cancelled) > 0 {
		detail += "; cancelled jobs " + strings.Join(s.Cancelled, " ")
	}
	return &u, a.auditOK(c.Meta, "user.suspend", c.User, detail)
}

// scanKeys calls fn with the last part (after "/") of every key under prefix.
func (a *applier) scanKeys(prefix string, fn func(last string)) error {
	it := a.txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefix)})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		k := string(it.Item().Key())
		fn(k[strings.LastIndex(k, "/")+1:])
	}
	return nil
}

// RestoreUser lifts an account's suspension (admin).
type RestoreUser struct {
	Meta Meta   `json:"meta"`
	User string `json:"user"`
}

func (a *applier) restoreUser(c *RestoreUser) (*User, error) {
	if !c.Meta.Admin {
		return nil, Errorf(EForbidden, "only an admin restores accounts")
	}
	var u User
	if err := getJSON(a.txn, userKey(c.User), &u); err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, Errorf(ENotFound, "user %q not found", c.User)
		}
		return nil, err
	}
	if u.Suspension == nil {
		return nil, Errorf(EConflict, "%s is not suspended", c.User)
	}
	was := u.Suspension.Reason
	u.Suspension = nil
	if err := putJSON(a.txn, userKey(c.User), u); err != nil {
		return nil, err
	}
	if err := a.notify(c.User, "user.restore", c.User, "Your account was restored", "The suspension ("+was+") was lifted."); err != nil {
		return nil, err
	}
	a.events = append(a.events, Event{Type: "user", Name: c.User})
	return &u, a.auditOK(c.Meta, "user.restore", c.User, "suspension lifted: "+was)
}

// Moderation queries.

// Reports lists reports, by image then number: all of them (admin), or
// only reporter's (reporter not empty); open only if asked.
func (s *Store) Reports(reporter string, openOnly bool) ([]Report, error) {
	var out []Report
	err := s.view(func(txn *badger.Txn) error {
		return scanJSON(txn, []byte(pReport), func(r *Report) error {
			if (reporter != "" && r.Reporter != reporter) || (openOnly && r.State != ReportOpen) {
				return nil
			}
			out = append(out, *r)
			return nil
		})
	})
	return out, err
}

// Takedown returns repo's takedown, or ErrNotFound when it is not down.
func (s *Store) Takedown(repo string) (*Takedown, error) {
	var t Takedown
	if err := s.view(func(txn *badger.Txn) error { return getJSON(txn, takedownKey(repo), &t) }); err != nil {
		return nil, err
	}
	return &t, nil
}

// Takedowns lists the images taken down, by repository.
func (s *Store) Takedowns() ([]Takedown, error) {
	var out []Takedown
	err := s.view(func(txn *badger.Txn) error {
		return scanJSON(txn, []byte(pTakedown), func(t *Takedown) error {
			out = append(out, *t)
			return nil
		})
	})
	return out, err
}

// Suspended returns the refusal for a suspended account, nil for one that
// is not suspended (or does not exist: authentication refuses those).
func (s *Store) Suspended(user string) error {
	var u User
	err := s.view(func(txn *badger.Txn) error { return getJSON(txn, userKey(user), &u) })
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read account %s: %w", user, err)
	}
	if u.Suspension != nil {
		return u.Suspension.Refusal(user)
	}
	return nil
}
