package api

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"gantry/node/governance"
	"gantry/node/view"
	"gantry/store"
	"gantry/wire"
)

// Governance is what the API needs from node/governance
// (*governance.Governance implements it).
type Governance interface {
	Record(ctx context.Context, e store.AuditEntry) error
	Verify() (store.AuditVerification, error)
	Export(w io.Writer, enc func(*store.AuditRecord) any) error
}

var _ Governance = (*governance.Governance)(nil)

// GovernanceState is what the API reads of governance's records
// (*store.Store implements it).
type GovernanceState interface {
	AuditRecords(f store.AuditFilter) ([]store.AuditRecord, uint64, error)
	Inbox(user string, unread bool) ([]store.Message, error)
	ReviewQueue(state string) ([]store.Publication, error)
	ReviewRules() (store.ReviewRules, error)
}

var _ GovernanceState = (*store.Store)(nil)

var (
	pSince       = Param{"since", "string", "only records at or after this time (RFC 3339, or a duration such as 24h: that long ago)"}
	pActor       = Param{"actor", "string", "only records of this user"}
	pAction      = Param{"action", "string", "only records of this action (user.create, image.takedown, ...)"}
	pUnread      = Param{"unread", "boolean", "only unread messages"}
	pReviewState = Param{"state", "string", "pending (default), approved or rejected"}
)

func (a *API) governanceRoutes() []Route {
	if a.cfg.Governance == nil || a.cfg.GovernanceState == nil {
		return nil
	}
	return []Route{
		route("GET", "/api/v1/audit", Admin, a.listAudit, "The audit log, oldest first, a page at a time").answers(200, wire.AuditList{}).reads(pSince, pActor, pAction, pCursor, pLimit),
		route("GET", "/api/v1/audit/verify", Admin, a.verifyAudit, "Walk the audit log's hash chain: ok, or the first changed or missing record").answers(200, wire.AuditVerification{}),
		route("GET", "/api/v1/audit/export", Admin, a.exportAudit, "Every audit record as JSON lines (wire.AuditRecord), oldest first").produces("application/x-ndjson"),
		route("GET", "/api/v1/inbox", Signed, a.inbox, "The signed-in user's messages from governance flows, newest first").answers(200, wire.Inbox{}).reads(pUnread).whileSuspended(),
		route("POST", "/api/v1/inbox/:id/read", Signed, a.markRead, "Mark one of the signed-in user's messages read").answers(200, wire.Message{}).whileSuspended(),
		route("GET", "/api/v1/review", Admin, a.reviewQueue, "The review queue: published images pending review (or in the state asked for)").answers(200, wire.CatalogList{}).reads(pReviewState),
		route("POST", "/api/v1/review/decide", Admin, a.decideReview, "Approve or reject a published image; a rejection's reason goes to the publisher's inbox").takes(wire.ReviewDecision{}).answers(200, wire.CatalogEntry{}).auditsRefusals("review.decide"),
		route("GET", "/api/v1/review/rules", Admin, a.reviewRules, "The automatic review rules").answers(200, wire.ReviewRules{}),
		route("PUT", "/api/v1/review/rules", Admin, a.setReviewRules, "Set the automatic review rules").takes(wire.ReviewRules{}).answers(200, wire.ReviewRules{}).auditsRefusals("review.rules"),
		route("POST", "/api/v1/inbox/send", Admin, a.sendMessage, "Send a user a message (admin)").takes(wire.MessageSend{}).answers(204, noBody{}).auditsRefusals("inbox.send"),
	}
}

// Audit keys in a request's gin context: the target a handler names for
// its audit record, and the code of the error it answered.
const (
	auditTargetKey = "gantry.audit.target"
	errorCodeKey   = "gantry.error.code"
)

// auditTarget names what the request acts on, for its audit record
// (default: the path's parameters).
func auditTarget(c *gin.Context, target string) { c.Set(auditTargetKey, target) }

// audited records the request in the audit log: the signed-in actor, the
// client's address, the action, the target and the outcome ("ok" or the
// refusal's code). A success rides on the command that performs the
// action (store.WithAudit: appended in the same transaction, so a crash
// cannot keep the action and lose its record); an action no such command
// carried (nothing to collect, ...) and a refusal are appended once the
// handler answered. With refusalsOnly the governance command the handler
// proposes writes its own record, so only refusals are added here.
func (a *API) audited(action string, refusalsOnly bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		var slot *store.AuditSlot
		if !refusalsOnly {
			var ctx context.Context
			ctx, slot = store.WithAudit(c.Request.Context(), func() store.AuditEntry { return a.auditEntry(c, action, "ok") })
			c.Request = c.Request.WithContext(ctx)
		}
		c.Next()
		outcome := "ok"
		if v, ok := c.Get(errorCodeKey); ok {
			outcome, _ = v.(string)
		} else if c.Writer.Status() >= 400 {
			outcome = strconv.Itoa(c.Writer.Status())
		}
		if outcome == "ok" && (refusalsOnly || slot.Carried()) {
			return
		}
		_ = a.cfg.Governance.Record(c.Request.Context(), a.auditEntry(c, action, outcome))
	}
}

// auditEntry is the audit record of the request c as it stands.
func (a *API) auditEntry(c *gin.Context, action, outcome string) store.AuditEntry {
	target := c.GetString(auditTargetKey)
	if target == "" {
		var ps []string
		for _, p := range c.Params {
			ps = append(ps, strings.TrimPrefix(p.Value, "/"))
		}
		target = strings.Join(ps, " ")
	}
	return store.AuditEntry{Actor: identity(c).User, Source: c.RemoteIP(), Action: action, Target: target, Outcome: outcome}
}

// since reads a time filter: RFC 3339, or a duration ago.
func since(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return time.Now().Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, store.Errorf(store.EInvalid, "since: %q is neither an RFC 3339 time nor a duration such as 24h", s)
	}
	return t, nil
}

func (a *API) listAudit(c *gin.Context) {
	f := store.AuditFilter{Actor: c.Query("actor"), Action: c.Query("action")}
	var err error
	if f.Since, err = since(c.Query("since")); err != nil {
		fail(c, err)
		return
	}
	if s := c.Query("cursor"); s != "" {
		if f.After, err = strconv.ParseUint(s, 10, 64); err != nil {
			fail(c, store.Errorf(store.EInvalid, "cursor: want the next of the previous page"))
			return
		}
	}
	if s := c.Query("limit"); s != "" {
		if f.Limit, err = strconv.Atoi(s); err != nil || f.Limit < 1 || f.Limit > store.MaxAuditPage {
			fail(c, store.Errorf(store.EInvalid, "limit: want 1 to %d", store.MaxAuditPage))
			return
		}
	}
	recs, next, err := a.cfg.GovernanceState.AuditRecords(f)
	if err != nil {
		fail(c, err)
		return
	}
	out := wire.AuditList{Records: view.AuditRecords(recs)}
	if next != 0 {
		out.Next = strconv.FormatUint(next, 10)
	}
	c.JSON(http.StatusOK, out)
}

func (a *API) verifyAudit(c *gin.Context) {
	v, err := a.cfg.Governance.Verify()
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, view.AuditVerification(v))
}

func (a *API) exportAudit(c *gin.Context) {
	c.Header("Content-Type", "application/x-ndjson")
	c.Status(http.StatusOK)
	if err := a.cfg.Governance.Export(c.Writer, func(r *store.AuditRecord) any { return view.AuditRecord(r) }); err != nil {
		// The status is sent: the log says what was cut short.
		a.log.Error("export the audit log", "err", err)
	}
}

func (a *API) inbox(c *gin.Context) {
	unread := c.Query("unread") == "true" || c.Query("unread") == "1"
	ms, err := a.cfg.GovernanceState.Inbox(identity(c).User, unread)
	if err != nil {
		fail(c, err)
		return
	}
	out := wire.Inbox{Messages: view.Messages(ms)}
	for _, m := range ms {
		if !m.Read {
			out.Unread++
		}
	}
	c.JSON(http.StatusOK, out)
}

func (a *API) markRead(c *gin.Context) {
	m, ok := propose(c, a, store.CmdMarkRead, store.MarkRead{User: identity(c).User, ID: c.Param("id")})
	if ok {
		c.JSON(http.StatusOK, view.Message(m))
	}
}

// meta is who asks for a governance command, for its audit record.
func meta(c *gin.Context) store.Meta {
	id := identity(c)
	return store.Meta{Actor: id.User, Source: c.RemoteIP(), Admin: id.Admin}
}

func (a *API) sendMessage(c *gin.Context) {
	var req wire.MessageSend
	if err := decode(c, &req); err != nil {
		fail(c, err)
		return
	}
	auditTarget(c, req.User)
	if _, ok := propose(c, a, store.CmdSendMessage, store.SendMessage{Meta: meta(c), User: req.User, Subject: req.Subject, Body: req.Body}); ok {
		c.Status(http.StatusNoContent)
	}
}

func (a *API) reviewQueue(c *gin.Context) {
	state := c.Query("state")
	switch state {
	case "", store.ReviewPending, store.ReviewApproved, store.ReviewRejected:
	default:
		fail(c, store.Errorf(store.EInvalid, "state: want pending, approved or rejected"))
		return
	}
	ps, err := a.cfg.GovernanceState.ReviewQueue(state)
	if err != nil {
		fail(c, err)
		return
	}
	out := wire.CatalogList{Entries: []wire.CatalogEntry{}}
	for i := range ps {
		out.Entries = append(out.Entries, view.CatalogEntry(&ps[i], nil))
	}
	c.JSON(http.StatusOK, out)
}

func (a *API) decideReview(c *gin.Context) {
	var req wire.ReviewDecision
	if err := decode(c, &req); err != nil {
		fail(c, err)
		return
	}
	auditTarget(c, req.Repo)
	decision := map[string]string{"approve": store.ReviewApproved, "reject": store.ReviewRejected}[req.Decision]
	if decision == "" {
		fail(c, store.Errorf(store.EInvalid, "decision: want approve or reject"))
		return
	}
	p, ok := propose(c, a, store.CmdReview, store.DecideReview{Meta: meta(c), Repo: req.Repo, Decision: decision, Reason: req.Reason})
	if ok {
		c.JSON(http.StatusOK, view.CatalogEntry(p, nil))
	}
}

func reviewRulesView(r store.ReviewRules) wire.ReviewRules {
	return wire.ReviewRules{Auto: r.Auto, RequireFields: r.RequireFields, Deny: r.Deny}
}

func (a *API) reviewRules(c *gin.Context) {
	r, err := a.cfg.GovernanceState.ReviewRules()
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, reviewRulesView(r))
}

func (a *API) setReviewRules(c *gin.Context) {
	var req wire.ReviewRules
	if err := decode(c, &req); err != nil {
		fail(c, err)
		return
	}
	r, ok := propose(c, a, store.CmdReviewRules, store.SetReviewRules{Meta: meta(c), Rules: store.ReviewRules{Auto: req.Auto, RequireFields: req.RequireFields, Deny: req.Deny}})
	if ok {
		c.JSON(http.StatusOK, reviewRulesView(*r))
	}
}
