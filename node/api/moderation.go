package api

import (
	"net/http"
	"slices"

	"github.com/gin-gonic/gin"

	"gantry/node/view"
	"gantry/store"
	"gantry/wire"
)

// Moderation routes (node/governance): reports of published images,
// takedowns, suspensions of accounts.

// ModerationState is what the moderation routes read (*store.Store
// implements it).
type ModerationState interface {
	Reports(reporter string, openOnly bool) ([]store.Report, error)
	Takedowns() ([]store.Takedown, error)
	Takedown(repo string) (*store.Takedown, error)
	Suspended(user string) error
}

var _ ModerationState = (*store.Store)(nil)

var pOpen = Param{"open", "boolean", "only reports not yet decided"}

func (a *API) moderationRoutes() []Route {
	if a.cfg.Moderation == nil {
		return nil
	}
	return []Route{
		route("GET", "/api/v1/reports/categories", Signed, a.reportCategories, "The categories a report names: the service terms' forbidden content, licence_violation and other").answers(200, wire.ReportCategories{}),
		route("POST", "/api/v1/reports", Signed, a.fileReport, "Report a published image with a category and a reason").takes(wire.ReportRequest{}).answers(201, wire.Report{}).auditsRefusals("report.file"),
		route("GET", "/api/v1/reports", Signed, a.listReports, "Reports grouped by image: an admin's, every report; a user's, their own").answers(200, wire.ReportList{}).reads(pOpen),
		route("POST", "/api/v1/reports/:id/decide", Admin, a.decideReport, "Dismiss a report with a reason, or take its image down").takes(wire.ReportDecision{}).answers(200, wire.ReportDecided{}).auditsRefusals("report.decide"),
		route("GET", "/api/v1/takedowns", Admin, a.listTakedowns, "The images taken down").answers(200, wire.TakedownList{}),
		route("POST", "/api/v1/takedowns", Admin, a.takeDown, "Take an image down: out of the catalog, refused (451) to everyone but its owner; stop_jobs also cancels others' running jobs of it").takes(wire.TakedownRequest{}).answers(201, wire.Takedown{}).auditsRefusals("image.takedown"),
		route("POST", "/api/v1/takedowns/restore", Admin, a.restoreImage, "Lift an image's takedown").takes(wire.RestoreRequest{}).answers(200, wire.Takedown{}).auditsRefusals("image.restore"),
		route("POST", "/api/v1/users/:name/suspend", Admin, a.suspendUser, "Suspend an account: it may only sign in, read why and its inbox, and answer; cancel_jobs also cancels its jobs").takes(wire.SuspendRequest{}).answers(200, wire.User{}).auditsRefusals("user.suspend"),
		route("POST", "/api/v1/users/:name/restore", Admin, a.restoreUser, "Lift an account's suspension").answers(200, wire.User{}).auditsRefusals("user.restore"),
	}
}

// notSuspended refuses a suspended account (403 account_suspended, with
// the reason) on every route but those it keeps (whileSuspended).
func (a *API) notSuspended(c *gin.Context) {
	if id := identity(c); !id.Admin {
		if err := a.cfg.Moderation.Suspended(id.User); err != nil {
			fail(c, err)
			return
		}
	}
	c.Next()
}

func (a *API) reportCategories(c *gin.Context) {
	out := wire.ReportCategories{}
	for _, rc := range store.ReportCategories {
		out.Categories = append(out.Categories, wire.ReportCategory(rc))
	}
	c.JSON(http.StatusOK, out)
}

func (a *API) fileReport(c *gin.Context) {
	var req wire.ReportRequest
	if err := decode(c, &req); err != nil {
		fail(c, err)
		return
	}
	auditTarget(c, req.Repo)
	r, ok := propose(c, a, store.CmdFileReport, store.FileReport{Meta: meta(c), Repo: req.Repo, Category: req.Category, Reason: req.Reason})
	if ok {
		c.JSON(http.StatusCreated, view.Report(r))
	}
}

func (a *API) listReports(c *gin.Context) {
	id := identity(c)
	reporter := id.User
	if id.Admin {
		reporter = ""
	}
	rs, err := a.cfg.Moderation.Reports(reporter, c.Query("open") == "true" || c.Query("open") == "1")
	if err != nil {
		fail(c, err)
		return
	}
	out := wire.ReportList{Images: []wire.ReportGroup{}}
	for i := range rs {
		r := &rs[i]
		if n := len(out.Images); n == 0 || out.Images[n-1].Repo != r.Repo {
			g := wire.ReportGroup{Repo: r.Repo, Owner: r.Owner}
			if id.Admin {
				t, err := a.cfg.Moderation.Takedown(r.Repo)
				switch {
				case err == nil:
					g.TakenDown = view.Takedown(t)
				case !isNotFound(err):
					fail(c, err)
					return
				}
			}
			out.Images = append(out.Images, g)
		}
		g := &out.Images[len(out.Images)-1]
		g.Reports = append(g.Reports, view.Report(r))
		if r.State == store.ReportOpen {
			g.Open++
		}
	}
	c.JSON(http.StatusOK, out)
}

func isNotFound(err error) bool { return store.ErrorCode(err) == store.ENotFound }

func (a *API) decideReport(c *gin.Context) {
	var req wire.ReportDecision
	if err := decode(c, &req); err != nil {
		fail(c, err)
		return
	}
	id := c.Param("id")
	rs, err := a.cfg.Moderation.Reports("", false)
	if err != nil {
		fail(c, err)
		return
	}
	i := slices.IndexFunc(rs, func(r store.Report) bool { return r.ID == id })
	if i < 0 {
		fail(c, store.Errorf(store.ENotFound, "report %q not found", id))
		return
	}
	auditTarget(c, rs[i].Repo)
	switch req.Decision {
	case "dismiss":
		r, ok := propose(c, a, store.CmdDismissReport, store.DismissReport{Meta: meta(c), ID: id, Reason: req.Reason})
		if ok {
			c.JSON(http.StatusOK, wire.ReportDecided{Report: view.Report(r)})
		}
	case "takedown":
		t, ok := a.proposeTakedown(c, wire.TakedownRequest{Repo: rs[i].Repo, Reason: req.Reason, Report: id, StopJobs: req.StopJobs})
		if !ok {
			return
		}
		rs, err := a.cfg.Moderation.Reports("", false)
		if err != nil {
			fail(c, err)
			return
		}
		out := wire.ReportDecided{Takedown: view.Takedown(t)}
		if j := slices.IndexFunc(rs, func(r store.Report) bool { return r.ID == id }); j >= 0 {
			out.Report = view.Report(&rs[j])
		}
		c.JSON(http.StatusOK, out)
	default:
		fail(c, store.Errorf(store.EInvalid, "decision: want dismiss or takedown"))
	}
}

// proposeTakedown takes req.Repo down; with StopJobs, the running jobs of
// others whose image is in the repository are listed for the command,
// which re-checks each.
func (a *API) proposeTakedown(c *gin.Context, req wire.TakedownRequest) (*store.Takedown, bool) {
	var stop []string
	if req.StopJobs {
		var err error
		if stop, err = a.othersJobsOf([]string{req.Repo}); err != nil {
			fail(c, err)
			return nil, false
		}
	}
	return propose(c, a, store.CmdTakeDown, store.TakeDown{Meta: meta(c), Repo: req.Repo, Reason: req.Reason, Notice: req.Notice, Report: req.Report, StopJobs: stop})
}

// othersJobsOf lists the unended jobs whose image is in one of repos (at
// most store.MaxStopJobs), for a takedown to stop; the command re-checks
// each and leaves the owner's alone.
func (a *API) othersJobsOf(repos []string) ([]string, error) {
	var stop []string
	for _, st := range []string{store.StateQueued, store.StateScheduled, store.StateRunning} {
		cursor := ""
		for {
			js, next, err := a.cfg.Store.ListJobs(store.JobFilter{State: st, Cursor: cursor, Limit: 1000})
			if err != nil {
				return nil, err
			}
			for _, j := range js {
				if slices.Contains(repos, a.imageRepo(j.Spec.Image)) {
					stop = append(stop, j.ID)
				}
			}
			if next == "" || len(stop) >= store.MaxStopJobs {
				break
			}
			cursor = next
		}
	}
	if len(stop) > store.MaxStopJobs {
		stop = stop[:store.MaxStopJobs]
	}
	return stop, nil
}

func (a *API) takeDown(c *gin.Context) {
	var req wire.TakedownRequest
	if err := decode(c, &req); err != nil {
		fail(c, err)
		return
	}
	auditTarget(c, req.Repo)
	if t, ok := a.proposeTakedown(c, req); ok {
		c.JSON(http.StatusCreated, view.Takedown(t))
	}
}

func (a *API) listTakedowns(c *gin.Context) {
	ts, err := a.cfg.Moderation.Takedowns()
	if err != nil {
		fail(c, err)
		return
	}
	out := wire.TakedownList{Takedowns: []wire.Takedown{}}
	for i := range ts {
		out.Takedowns = append(out.Takedowns, *view.Takedown(&ts[i]))
	}
	c.JSON(http.StatusOK, out)
}

func (a *API) restoreImage(c *gin.Context) {
	var req wire.RestoreRequest
	if err := decode(c, &req); err != nil {
		fail(c, err)
		return
	}
	auditTarget(c, req.Repo)
	if t, ok := propose(c, a, store.CmdRestoreImage, store.RestoreImage{Meta: meta(c), Repo: req.Repo, Reason: req.Reason}); ok {
		c.JSON(http.StatusOK, view.Takedown(t))
	}
}

func (a *API) suspendUser(c *gin.Context) {
	var req wire.SuspendRequest
	if err := decode(c, &req); err != nil {
		fail(c, err)
		return
	}
	u, ok := propose(c, a, store.CmdSuspendUser, store.SuspendUser{Meta: meta(c), User: c.Param("name"), Reason: req.Reason,
		Notice: req.Notice, Report: req.Report, CancelJobs: req.CancelJobs})
	if ok {
		a.userAnswer(c, http.StatusOK, u)
	}
}

func (a *API) restoreUser(c *gin.Context) {
	if u, ok := propose(c, a, store.CmdRestoreUser, store.RestoreUser{Meta: meta(c), User: c.Param("name")}); ok {
		a.userAnswer(c, http.StatusOK, u)
	}
}
