package api

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/time/rate"

	"gantry/node/view"
	"gantry/store"
	"gantry/wire"
)

// Infringement notice routes (store/notices.go, node/governance): filing,
// reading (the parties and admins only; the accused publisher without the
// notifier's private contact), the attachments, decisions, the
// counter-notice, a court action, the settings and the public form. A
// suspended account still reads the notices it is party to and answers
// one with a counter-notice (a suspension may have come from one).

// NoticeState is what the notice routes read (*store.Store implements it).
type NoticeState interface {
	Notice(id string) (*store.Notice, error)
	Notices(party, state string) ([]store.Notice, error)
	NoticeAttachment(digest string) ([]byte, error)
	NoticeSettings() (store.NoticeSettings, error)
}

var _ NoticeState = (*store.Store)(nil)

var pNoticeState = Param{"state", "string", "only notices in this state: filed, rejected, taken_down, countered, restored, kept_down"}

func (a *API) noticeRoutes() []Route {
	if a.cfg.Notices == nil {
		return nil
	}
	return []Route{
		route("GET", "/api/v1/notices/statements", Public, a.noticeStatements, "The truthfulness statements a notice and a counter-notice sign, verbatim from the service terms, and the limits of attachments").answers(200, wire.NoticeStatements{}),
		route("GET", "/api/v1/notices/settings", Admin, a.noticeSettings, "The notice procedure's settings: the waiting period after a counter-notice, the public form").answers(200, wire.NoticeSettings{}),
		route("PUT", "/api/v1/notices/settings", Admin, a.setNoticeSettings, "Set the waiting period after a counter-notice and open or close the public form").takes(wire.NoticeSettings{}).answers(200, wire.NoticeSettings{}).auditsRefusals("notice.settings"),
		route("POST", "/api/v1/notices", Signed, a.fileNotice, "File an infringement notice against published images (attachments inline, size-capped)").takes(wire.NoticeForm{}).answers(201, wire.InfringementNotice{}).auditsRefusals("notice.file"),
		route("POST", "/api/v1/notices/public", Public, a.filePublicNotice, "File an infringement notice without an account, while an admin keeps the public form open (rate-limited)").takes(wire.NoticeForm{}).answers(201, wire.InfringementNotice{}),
		route("GET", "/api/v1/notices", Signed, a.listNotices, "Infringement notices: an admin's, all of them; a user's, those they filed or that accuse their images").answers(200, wire.InfringementNoticeList{}).reads(pNoticeState).whileSuspended(),
		route("GET", "/api/v1/notices/:id", Signed, a.getNotice, "A notice with its whole timeline (the accused publisher does not see the notifier's private contact)").answers(200, wire.InfringementNotice{}).whileSuspended(),
		route("GET", "/api/v1/notices/:id/attachments/:digest", Signed, a.noticeAttachment, "An attachment of a notice or its counter-notice (the parties and admins only), as a download: application/pdf, image/png, image/jpeg, image/gif or text/plain as filed, anything else application/octet-stream").produces("*/*").whileSuspended(),
		route("POST", "/api/v1/notices/:id/decide", Admin, a.decideNotice, "Decide a notice: takedown or reject (with a reason), or after a counter-notice restore or keep_down").takes(wire.NoticeDecisionRequest{}).answers(200, wire.InfringementNotice{}).auditsRefusals("notice.decide"),
		route("POST", "/api/v1/notices/:id/counter", Signed, a.fileCounter, "The accused publisher's counter-notice; forwarded to the notifier, it starts the waiting period before the content is restored").takes(wire.CounterForm{}).answers(200, wire.InfringementNotice{}).auditsRefusals("notice.counter").whileSuspended(),
		route("POST", "/api/v1/notices/:id/court", Signed, a.recordCourtAction, "The notifier records that a court action was filed: no automatic restore").takes(wire.CourtActionRequest{}).answers(200, wire.InfringementNotice{}).auditsRefusals("notice.court"),
	}
}

func termsStatement(s store.TermsStatement) wire.TermsStatement { return wire.TermsStatement(s) }

func (a *API) noticeStatements(c *gin.Context) {
	s, err := a.cfg.Notices.NoticeSettings()
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, wire.NoticeStatements{Notice: termsStatement(store.NoticeStatement), Counter: termsStatement(store.CounterStatement),
		MaxAttachment: store.MaxAttachment, MaxAttachmentsSize: store.MaxAttachmentsSize, MaxAttachments: store.MaxAttachments, PublicForm: s.PublicForm})
}

func (a *API) noticeSettings(c *gin.Context) {
	s, err := a.cfg.Notices.NoticeSettings()
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, view.NoticeSettings(s))
}

func (a *API) setNoticeSettings(c *gin.Context) {
	var req wire.NoticeSettings
	if err := decode(c, &req); err != nil {
		fail(c, err)
		return
	}
	s, ok := propose(c, a, store.CmdNoticeSettings, store.SetNoticeSettings{Meta: meta(c),
		Settings: store.NoticeSettings{WaitBusinessDays: req.WaitBusinessDays, Wait: time.Duration(req.Wait), PublicForm: req.PublicForm}})
	if ok {
		c.JSON(http.StatusOK, view.NoticeSettings(*s))
	}
}

// contentRepos resolves a form's image references to this registry's
// repositories.
func (a *API) contentRepos(refs []string) ([]string, error) {
	var repos []string
	for _, ref := range refs {
		repo := a.imageRepo(strings.TrimSpace(ref))
		if repo == "" {
			return nil, store.Errorf(store.EInvalid, "content: %q is not a reference to an image of this registry", ref)
		}
		repos = append(repos, repo)
	}
	return repos, nil
}

func uploads(us []wire.Upload) []store.Upload {
	var out []store.Upload
	for _, u := range us {
		out = append(out, view.Upload(u))
	}
	return out
}

func agentForm(f *wire.NoticeAgentForm) *store.AgentForm {
	if f == nil {
		return nil
	}
	return &store.AgentForm{Party: store.Party(f.NoticeParty), Scope: f.Scope, Authorisation: uploads(f.Authorisation)}
}

// noticePayload is the command for a filed form.
func (a *API) noticePayload(c *gin.Context, public bool) (store.FileNotice, bool) {
	var req wire.NoticeForm
	if err := decode(c, &req); err != nil {
		fail(c, err)
		return store.FileNotice{}, false
	}
	repos, err := a.contentRepos(req.Content)
	if err != nil {
		fail(c, err)
		return store.FileNotice{}, false
	}
	auditTarget(c, strings.Join(repos, " "))
	m := meta(c)
	if public {
		m = store.Meta{Source: c.RemoteIP()}
	}
	return store.FileNotice{Meta: m, Public: public, Repos: repos, Form: store.NoticeForm{
		RightsHolder: store.Party(req.RightsHolder), Agent: agentForm(req.Agent), Works: req.Works, Proof: uploads(req.Proof),
		Content: req.Content, Reasons: req.Reasons, Evidence: uploads(req.Evidence), Lang: req.Lang, Statement: req.Statement, Signature: req.Signature}}, true
}

func (a *API) fileNotice(c *gin.Context) {
	p, ok := a.noticePayload(c, false)
	if !ok {
		return
	}
	if n, ok := propose(c, a, store.CmdFileNotice, p); ok {
		c.JSON(http.StatusCreated, view.InfringementNotice(n, false))
	}
}

// The public form's limits: per source address, and for everyone
// together, so a flood from many addresses is bounded too.
var (
	publicNoticePerAddress = rate.Every(10 * time.Minute) // burst below
	publicNoticeOverall    = rate.Every(10 * time.Second)
)

const (
	publicNoticeAddressBurst = 3
	publicNoticeOverallBurst = 20
	publicNoticeAddresses    = 10000 // addresses remembered; past it every address starts afresh (the overall limit still holds)
)

// noticeLimiter rate-limits the public notice form on this node.
type noticeLimiter struct {
	mu      sync.Mutex
	overall *rate.Limiter
	byAddr  map[string]*rate.Limiter
	now     func() time.Time
}

func newNoticeLimiter(now func() time.Time) *noticeLimiter {
	return &noticeLimiter{overall: rate.NewLimiter(publicNoticeOverall, publicNoticeOverallBurst), byAddr: map[string]*rate.Limiter{}, now: now}
}

// rateLimited is the public form's refusal, with when to come back.
type rateLimited struct {
	wait time.Duration
	err  *store.Error
}

func (e *rateLimited) Error() string             { return e.err.Message }
func (e *rateLimited) Unwrap() error             { return e.err }
func (e *rateLimited) RetryAfter() time.Duration { return e.wait }

// allow takes one filing from addr, or says how long to wait.
func (l *noticeLimiter) allow(addr string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	al, ok := l.byAddr[addr]
	if !ok {
		if len(l.byAddr) >= publicNoticeAddresses {
			clear(l.byAddr)
		}
		al = rate.NewLimiter(publicNoticePerAddress, publicNoticeAddressBurst)
		l.byAddr[addr] = al
	}
	refused := func(d time.Duration) error {
		return &rateLimited{wait: d, err: store.Errorf(store.ERateLimited, "too many notices filed through the public form: try again in %s", d.Round(time.Second))}
	}
	ra := al.ReserveN(now, 1)
	if d := ra.DelayFrom(now); d > 0 {
		ra.CancelAt(now)
		return refused(d)
	}
	ro := l.overall.ReserveN(now, 1)
	if d := ro.DelayFrom(now); d > 0 {
		ro.CancelAt(now)
		ra.CancelAt(now) // the address is not charged for a filing refused overall
		return refused(d)
	}
	return nil
}

func (a *API) filePublicNotice(c *gin.Context) {
	s, err := a.cfg.Notices.NoticeSettings()
	if err != nil {
		fail(c, err)
		return
	}
	if !s.PublicForm {
		fail(c, store.Errorf(store.ENotFound, "the public notice form is closed: sign in to file a notice"))
		return
	}
	if err := a.notices.allow(c.RemoteIP()); err != nil {
		fail(c, err)
		return
	}
	p, ok := a.noticePayload(c, true)
	if !ok {
		return
	}
	if n, ok := propose(c, a, store.CmdFileNotice, p); ok {
		// The filer has no account: they are shown what they filed (their
		// receipt) and are answered at the contact they gave.
		c.JSON(http.StatusCreated, view.InfringementNotice(n, false))
	}
}

// noticeFor reads notice id as the caller may see it: admins and its
// filer in full, the accused publisher redacted, anyone else not found.
func (a *API) noticeFor(c *gin.Context, id string) (*store.Notice, bool, bool) {
	n, err := a.cfg.Notices.Notice(id)
	if err != nil {
		fail(c, err)
		return nil, false, false
	}
	if who := identity(c); who.Admin || n.Party(who.User) {
		return n, redacted(c, n), true
	}
	fail(c, store.Errorf(store.ENotFound, "notice %q not found", id))
	return nil, false, false
}

// redacted reports whether the caller sees n without the notifier's
// private contact: everyone but admins and its filer.
func redacted(c *gin.Context, n *store.Notice) bool {
	who := identity(c)
	return !who.Admin && who.User != n.Filer
}

func (a *API) listNotices(c *gin.Context) {
	state := c.Query("state")
	if state != "" && !slices.Contains([]string{store.NoticeFiled, store.NoticeRejected, store.NoticeTakenDown, store.NoticeCountered, store.NoticeRestored, store.NoticeKeptDown}, state) {
		fail(c, store.Errorf(store.EInvalid, "state: filed, rejected, taken_down, countered, restored or kept_down"))
		return
	}
	who := identity(c)
	party := who.User
	if who.Admin {
		party = ""
	}
	ns, err := a.cfg.Notices.Notices(party, state)
	if err != nil {
		fail(c, err)
		return
	}
	out := wire.InfringementNoticeList{Notices: []wire.InfringementNotice{}}
	for i := range ns {
		out.Notices = append(out.Notices, view.InfringementNotice(&ns[i], redacted(c, &ns[i])))
	}
	c.JSON(http.StatusOK, out)
}

func (a *API) getNotice(c *gin.Context) {
	if n, redact, ok := a.noticeFor(c, c.Param("id")); ok {
		c.JSON(http.StatusOK, view.InfringementNotice(n, redact))
	}
}

// safeAttachmentTypes are the media types an attachment is served as;
// any other is served as application/octet-stream, so nothing a filer
// uploads runs as a page of the console's origin.
var safeAttachmentTypes = []string{"application/pdf", "image/png", "image/jpeg", "image/gif", "text/plain"}

func (a *API) noticeAttachment(c *gin.Context) {
	n, _, ok := a.noticeFor(c, c.Param("id"))
	if !ok {
		return
	}
	digest := c.Param("digest")
	i := slices.IndexFunc(n.Attachments(), func(r store.AttachmentRef) bool { return r.Digest == digest })
	if i < 0 {
		fail(c, store.Errorf(store.ENotFound, "notice %s has no attachment %s", n.ID, digest))
		return
	}
	ref := n.Attachments()[i]
	b, err := a.cfg.Notices.NoticeAttachment(digest)
	if err != nil {
		fail(c, err)
		return
	}
	ct := "application/octet-stream"
	if slices.Contains(safeAttachmentTypes, ref.MediaType) {
		ct = ref.MediaType
	}
	c.Header("X-Content-Type-Options", "nosniff")
	c.Header("Content-Security-Policy", "sandbox")
	c.Header("Content-Disposition", fmt.Sprintf("attachment; filename=%q", strings.Map(func(r rune) rune {
		if r < 0x20 || r == '"' || r == '\\' || r == '/' {
			return '_'
		}
		return r
	}, ref.Name)))
	c.Data(http.StatusOK, ct, b)
}

func (a *API) decideNotice(c *gin.Context) {
	var req wire.NoticeDecisionRequest
	if err := decode(c, &req); err != nil {
		fail(c, err)
		return
	}
	n, err := a.cfg.Notices.Notice(c.Param("id"))
	if err != nil {
		fail(c, err)
		return
	}
	auditTarget(c, strings.Join(n.Repos, " "))
	var stop []string
	if req.StopJobs && req.Decision == store.DecideTakedown {
		if stop, err = a.othersJobsOf(n.Repos); err != nil {
			fail(c, err)
			return
		}
	}
	if n, ok := propose(c, a, store.CmdDecideNotice, store.DecideNotice{Meta: meta(c), ID: n.ID, Decision: req.Decision, Reason: req.Reason, StopJobs: stop}); ok {
		c.JSON(http.StatusOK, view.InfringementNotice(n, false))
	}
}

func (a *API) fileCounter(c *gin.Context) {
	var req wire.CounterForm
	if err := decode(c, &req); err != nil {
		fail(c, err)
		return
	}
	var repos []string
	if len(req.Content) > 0 {
		var err error
		if repos, err = a.contentRepos(req.Content); err != nil {
			fail(c, err)
			return
		}
	}
	auditTarget(c, "notice "+c.Param("id"))
	p := store.FileCounter{Meta: meta(c), ID: c.Param("id"), Repos: repos, Form: store.CounterForm{Party: store.Party(req.Party), Agent: agentForm(req.Agent),
		Content: req.Content, Reasons: req.Reasons, Evidence: uploads(req.Evidence), Lang: req.Lang, Statement: req.Statement, Signature: req.Signature}}
	if n, ok := propose(c, a, store.CmdFileCounter, p); ok {
		c.JSON(http.StatusOK, view.InfringementNotice(n, redacted(c, n)))
	}
}

func (a *API) recordCourtAction(c *gin.Context) {
	var req wire.CourtActionRequest
	if err := decode(c, &req); err != nil {
		fail(c, err)
		return
	}
	auditTarget(c, "notice "+c.Param("id"))
	n, ok := propose(c, a, store.CmdRecordCourtAction, store.RecordCourtAction{Meta: meta(c), ID: c.Param("id"), Detail: req.Detail})
	if ok {
		c.JSON(http.StatusOK, view.InfringementNotice(n, redacted(c, n)))
	}
}
