package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/oklog/ulid/v2"

	"gantry/node/catalog"
	"gantry/node/view"
	"gantry/store"
	"gantry/wire"
)

// Catalog is what the API needs from the community catalog
// (*catalog.Catalog implements it).
type Catalog interface {
	Publish(ctx context.Context, actor string, p catalog.Publish) (*store.Publication, error)
	Search(f catalog.Filter) ([]store.Publication, string, error)
}

var _ Catalog = (*catalog.Catalog)(nil)

// CatalogState is what the API reads of the catalog's records
// (*store.Store implements it).
type CatalogState interface {
	Publication(repo string) (*store.Publication, error)
	PublicationReadme(repo string) (*store.Readme, error)
	Licence(digest string) (*store.LicenceText, error)
	Derivations(repo string) ([]store.Derivation, error)
	AccessRequest(repo, user string) (*store.AccessRequest, error)
	Acceptance(repo, user string) (*store.Acceptance, error)
	RepoAccess(repo string) ([]store.Acceptance, []store.AccessRequest, error)
	UserAcceptances(user string) ([]store.Acceptance, error)
	PullGate(user, repo string) (bool, error)
	RegManifests(repo string) ([]store.RegManifest, error)
	RegTagsOf(repo string) (map[string][]string, error)
	RegRepo(name string) (*store.RegRepo, error)
	TrialAllowance() (store.TrialAllowance, error)
	TrialUse(user, day string) (store.TrialUse, error)
}

var _ CatalogState = (*store.Store)(nil)

func (a *API) catalogRoutes() []Route {
	if a.cfg.Catalog == nil || a.cfg.CatalogState == nil {
		return nil
	}
	return []Route{
		route("POST", "/api/v1/images/publish", Signed, a.publish, "Publish a repository you own to the community catalog under a licence (again: update it; a changed licence text is a new version users accept again); it is listed once review approves it").takes(wire.Publish{}).answers(200, wire.CatalogEntry{}).audits("image.publish"),
		route("POST", "/api/v1/images/unpublish", Signed, a.unpublish, "Return a published repository to private (the owner keeps it)").takes(wire.RepoRef{}).answers(204, noBody{}),
		route("POST", "/api/v1/images/accept", Signed, a.accept, "Accept the licence of a published repository (the version read)").takes(wire.Accept{}).answers(200, wire.Acceptance{}),
		route("POST", "/api/v1/images/request", Signed, a.requestAccess, "Ask the publisher of a repository in approval mode for access").takes(wire.AccessAsk{}).answers(200, wire.AccessRequest{}),
		route("GET", "/api/v1/images/access", Signed, a.accessReport, "Who accepted a repository's licence and who asked for access (its publisher, or an admin)").answers(200, wire.AccessReport{}).reads(pRepo),
		route("POST", "/api/v1/images/access/decide", Signed, a.decideAccess, "Approve, reject or revoke a user's access (the publisher)").takes(wire.AccessDecision{}).answers(200, wire.AccessRequest{}),
		route("GET", "/api/v1/images/accepted", Signed, a.acceptedList, "The licences the caller accepted").answers(200, wire.AcceptanceList{}),
		route("POST", "/api/v1/images/notices/remove", Signed, a.removeNotice, "Remove the licence notice a derived repository inherits from yours (its rights holder only)").takes(wire.RemoveNotice{}).answers(204, noBody{}),
		route("GET", "/api/v1/catalog", Signed, a.listCatalog, "Browse and search the community catalog").answers(200, wire.CatalogList{}).
			reads(pQuery, Param{"license", "string", "only licences naming this SPDX id"}, Param{"genai", "boolean", "only generative-AI images (true) or none (false)"},
				Param{"access", "string", "open or approval"}, Param{"kind", "string", "image, dataset or model"}, Param{"sort", "string", "recent (default), pulls or name"}, pCursor, pLimit),
		route("GET", "/api/v1/catalog/entry", Signed, a.catalogEntry, "A published repository: README, licence text, tags, notices, and where the caller stands").answers(200, wire.CatalogDetail{}).reads(pRepo),
		route("GET", "/api/v1/catalog/trial", Signed, a.trial, "The trial allowance and what the caller has left of it today").answers(200, wire.Trial{}),
		route("POST", "/api/v1/catalog/try", Signed, a.try, "Try a community image: run its command as a job under the trial allowance (not your quota; no outputs kept)").takes(wire.RepoRef{}).answers(201, wire.TryResult{}),
		route("PUT", "/api/v1/admin/trial", Admin, a.setTrial, "Set the trial allowance (0 CPU-seconds: no trials)").takes(wire.TrialAllowance{}).answers(200, wire.TrialAllowance{}),
	}
}

// Trial defaults: what a trial task gets when the admin set no size.
const (
	trialCPU    = 500
	trialMemory = 256 << 20
)

// trialView shows an allowance with the size trials run at (the defaults
// where the admin set none).
func trialView(t store.TrialAllowance) wire.TrialAllowance {
	cpu, mem := trialSize(t)
	return wire.TrialAllowance{CPUSecondsPerDay: t.CPUSecondsPerDay, MaxRunTime: wire.Duration(t.MaxRunTime), CPU: cpu, Memory: mem}
}

// trialSize is the CPU (millicores) and memory a trial runs with.
func trialSize(t store.TrialAllowance) (cpu, mem int64) {
	cpu, mem = t.CPU, t.Memory
	if cpu == 0 {
		cpu = trialCPU
	}
	if mem == 0 {
		mem = trialMemory
	}
	return cpu, mem
}

// trialLeft is the caller's trial allowance and use today.
func (a *API) trialLeft(user string) (wire.Trial, store.TrialAllowance, error) {
	al, err := a.cfg.CatalogState.TrialAllowance()
	if err != nil {
		return wire.Trial{}, al, err
	}
	day := store.TrialDay(time.Now())
	u, err := a.cfg.CatalogState.TrialUse(user, day)
	if err != nil {
		return wire.Trial{}, al, err
	}
	return wire.Trial{Allowance: trialView(al), Used: u.CPUSeconds, Left: max(float64(al.CPUSecondsPerDay)-u.CPUSeconds, 0), Day: day}, al, nil
}

func (a *API) trial(c *gin.Context) {
	t, _, err := a.trialLeft(identity(c).User)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, t)
}

func (a *API) setTrial(c *gin.Context) {
	var req wire.TrialAllowance
	if err := decode(c, &req); err != nil {
		fail(c, err)
		return
	}
	t, ok := propose(c, a, store.CmdSetTrialAllowance, store.SetTrialAllowance{Allowance: store.TrialAllowance{
		CPUSecondsPerDay: req.CPUSecondsPerDay, MaxRunTime: store.Duration(req.MaxRunTime), CPU: req.CPU, Memory: req.Memory}})
	if ok {
		c.JSON(http.StatusOK, trialView(*t))
	}
}

// try runs a community image's command (the publisher's, or the image's
// own) as a trial job: the licence gate applies as to any job; it runs at
// the trial size, for at most what is left of today's allowance (and the
// longest run), one trial at a time, outside the caller's quota.
func (a *API) try(c *gin.Context) {
	var req wire.RepoRef
	if err := decode(c, &req); err != nil {
		fail(c, err)
		return
	}
	pub, ok := a.publication(c, req.Repo)
	if !ok {
		return
	}
	id := identity(c)
	left, al, err := a.trialLeft(id.User)
	if err != nil {
		fail(c, err)
		return
	}
	if al.CPUSecondsPerDay <= 0 {
		fail(c, store.Errorf(store.EForbidden, "trials are off on this installation (an admin sets the trial allowance)"))
		return
	}
	if left.Left < 1 {
		fail(c, store.Errorf(store.EForbidden, "your trial allowance for today (%d CPU-seconds) is used up; it renews at 00:00 UTC", al.CPUSecondsPerDay))
		return
	}
	for _, st := range []string{store.StateQueued, store.StateScheduled, store.StateRunning} {
		jobs, _, err := a.cfg.Store.ListJobs(store.JobFilter{Owner: id.User, State: st, Limit: 1000})
		if err != nil {
			fail(c, err)
			return
		}
		for _, j := range jobs {
			if j.Trial {
				fail(c, store.Errorf(store.EConflict, "your trial %s is still going: one trial at a time", j.ID))
				return
			}
		}
	}
	tag, err := a.trialTag(pub.Repo)
	if err != nil {
		fail(c, err)
		return
	}
	cpu, mem := trialSize(al)
	limit := time.Duration(left.Left / (float64(cpu) / 1000) * float64(time.Second))
	if al.MaxRunTime > 0 && time.Duration(al.MaxRunTime) < limit {
		limit = time.Duration(al.MaxRunTime)
	}
	spec := store.JobSpec{Name: "try " + pub.Repo, Image: pub.Repo + ":" + tag, Command: pub.Command, CPU: cpu, Memory: mem,
		Timeout: store.Duration(limit.Truncate(time.Second)), Labels: map[string]string{"gantry.trial": pub.Repo}}
	spec.Defaults()
	if err := spec.Validate(); err != nil {
		fail(c, err)
		return
	}
	if err := a.checkImage(c, id.User, id.Admin, spec.Image); err != nil {
		fail(c, err)
		return
	}
	genai, err := a.genAI(pub.Repo)
	if err != nil {
		fail(c, err)
		return
	}
	j, ok := propose(c, a, store.CmdSubmitJob, store.SubmitJob{ID: ulid.Make().String(), Owner: id.User, Spec: spec, GenAI: genai, Trial: true})
	if !ok {
		return
	}
	c.JSON(http.StatusCreated, wire.TryResult{Job: view.Job(j), Trial: left})
}

// trialTag picks the tag a trial runs: latest when there is one, else the
// most recently pushed.
func (a *API) trialTag(repo string) (string, error) {
	tags, err := a.cfg.CatalogState.RegTagsOf(repo)
	if err != nil {
		return "", err
	}
	ms, err := a.cfg.CatalogState.RegManifests(repo)
	if err != nil {
		return "", err
	}
	best, bestAt := "", time.Time{}
	for _, m := range ms {
		for _, t := range tags[m.Digest] {
			if t == "latest" {
				return t, nil
			}
			if best == "" || m.Pushed.After(bestAt) {
				best, bestAt = t, m.Pushed
			}
		}
	}
	if best == "" {
		return "", store.Errorf(store.EConflict, "%s has no tagged image to try", repo)
	}
	return best, nil
}

var pRepo = Param{"repo", "string", "the repository, e.g. alice/tool"}

func (a *API) publish(c *gin.Context) {
	var req wire.Publish
	if err := decode(c, &req); err != nil {
		fail(c, err)
		return
	}
	id := identity(c)
	auditTarget(c, req.Repo)
	pub, err := a.cfg.Catalog.Publish(c.Request.Context(), id.User, catalog.Publish{
		Repo: req.Repo, License: req.License, LicenseName: req.LicenseName, LicenseText: req.LicenseText,
		Description: req.Description, Readme: req.Readme, Access: req.Access, Questions: req.Questions,
		GenAI: req.GenAI, GenAIFiled: req.GenAIFiled, Use: req.Use, Command: req.Command, Lang: req.Lang,
	})
	if errors.Is(err, store.ErrNotFound) || (store.ErrorCode(err) == store.EForbidden && !a.published(req.Repo)) {
		// Others' private repositories are not revealed.
		err = store.Errorf(store.ENotFound, "repository %s not found", req.Repo)
	}
	if err != nil {
		fail(c, err)
		return
	}
	a.entryAnswer(c, pub)
}

// published reports whether repo is in the catalog (its existence is
// public then).
func (a *API) published(repo string) bool {
	_, err := a.cfg.CatalogState.Publication(repo)
	return err == nil
}

func (a *API) entryAnswer(c *gin.Context, pub *store.Publication) {
	ds, err := a.cfg.CatalogState.Derivations(pub.Repo)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, view.CatalogEntry(pub, ds))
}

func (a *API) unpublish(c *gin.Context) {
	var req wire.RepoRef
	if err := decode(c, &req); err != nil {
		fail(c, err)
		return
	}
	id := identity(c)
	if _, ok := propose(c, a, store.CmdUnpublishRepo, store.UnpublishRepo{Repo: req.Repo, Actor: id.User, Admin: id.Admin}); ok {
		c.Status(http.StatusNoContent)
	}
}

// publication reads a published repository, or answers 404.
func (a *API) publication(c *gin.Context, repo string) (*store.Publication, bool) {
	pub, err := a.cfg.CatalogState.Publication(repo)
	if errors.Is(err, store.ErrNotFound) {
		fail(c, store.Errorf(store.ENotFound, "%s is not in the catalog", repo))
		return nil, false
	}
	if err != nil {
		fail(c, err)
		return nil, false
	}
	if id := identity(c); !pub.Listed() && pub.Owner != id.User && !id.Admin {
		// Not yet approved (governance's review): others are not told it exists.
		fail(c, store.Errorf(store.ENotFound, "%s is not in the catalog", repo))
		return nil, false
	}
	return pub, true
}

func (a *API) accept(c *gin.Context) {
	var req wire.Accept
	if err := decode(c, &req); err != nil {
		fail(c, err)
		return
	}
	pub, ok := a.publication(c, req.Repo)
	if !ok {
		return
	}
	version := req.Licence
	if version == "" {
		version = pub.Licence.Digest
	}
	ac, ok := propose(c, a, store.CmdAcceptLicence, store.AcceptLicence{Repo: req.Repo, User: identity(c).User, Licence: version, Answers: req.Answers})
	if ok {
		c.JSON(http.StatusOK, view.Acceptance(ac))
	}
}

func (a *API) requestAccess(c *gin.Context) {
	var req wire.AccessAsk
	if err := decode(c, &req); err != nil {
		fail(c, err)
		return
	}
	r, ok := propose(c, a, store.CmdRequestAccess, store.RequestAccess{Repo: req.Repo, User: identity(c).User, Answers: req.Answers})
	if ok {
		c.JSON(http.StatusOK, view.AccessRequest(r))
	}
}

func (a *API) accessReport(c *gin.Context) {
	repo := c.Query("repo")
	pub, ok := a.publication(c, repo)
	if !ok {
		return
	}
	if id := identity(c); pub.Owner != id.User && !id.Admin {
		fail(c, store.Errorf(store.EForbidden, "only the publisher of %s sees who uses it", repo))
		return
	}
	acs, reqs, err := a.cfg.CatalogState.RepoAccess(repo)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, wire.AccessReport{Repo: repo, Acceptances: view.Acceptances(acs), Requests: view.AccessRequests(reqs)})
}

var decisions = map[string]string{"approve": store.AccessApproved, "reject": store.AccessRejected, "revoke": store.AccessRevoked}

func (a *API) decideAccess(c *gin.Context) {
	var req wire.AccessDecision
	if err := decode(c, &req); err != nil {
		fail(c, err)
		return
	}
	d, ok := decisions[req.Decision]
	if !ok {
		fail(c, store.Errorf(store.EInvalid, "decision: approve, reject or revoke"))
		return
	}
	id := identity(c)
	r, ok := propose(c, a, store.CmdDecideAccess, store.DecideAccess{Repo: req.Repo, User: req.User, Decision: d, Reason: req.Reason, Actor: id.User, Admin: id.Admin})
	if ok {
		c.JSON(http.StatusOK, view.AccessRequest(r))
	}
}

func (a *API) acceptedList(c *gin.Context) {
	acs, err := a.cfg.CatalogState.UserAcceptances(identity(c).User)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, wire.AcceptanceList{Acceptances: view.Acceptances(acs)})
}

func (a *API) removeNotice(c *gin.Context) {
	var req wire.RemoveNotice
	if err := decode(c, &req); err != nil {
		fail(c, err)
		return
	}
	id := identity(c)
	if _, ok := propose(c, a, store.CmdRemoveNotice, store.RemoveNotice{Repo: req.Repo, Base: req.Base, Actor: id.User, Admin: id.Admin}); ok {
		c.Status(http.StatusNoContent)
	}
}

func (a *API) listCatalog(c *gin.Context) {
	f := catalog.Filter{Query: c.Query("q"), License: c.Query("license"), Access: c.Query("access"), Kind: c.Query("kind"), Sort: c.Query("sort"), Cursor: c.Query("cursor")}
	switch f.Sort {
	case "", "recent", "pulls", "name":
	default:
		fail(c, store.Errorf(store.EInvalid, "sort: recent, pulls or name"))
		return
	}
	if f.Access != "" && f.Access != store.AccessOpen && f.Access != store.AccessApproval {
		fail(c, store.Errorf(store.EInvalid, "access: open or approval"))
		return
	}
	switch f.Kind {
	case "", store.KindImage, store.KindDataset, store.KindModel:
	default:
		fail(c, store.Errorf(store.EInvalid, "kind: image, dataset or model"))
		return
	}
	if v := c.Query("genai"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			fail(c, store.Errorf(store.EInvalid, "genai: true or false"))
			return
		}
		f.GenAI = &b
	}
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			fail(c, store.Errorf(store.EInvalid, "limit: want 1..500"))
			return
		}
		f.Limit = n
	}
	if v := f.Cursor; v != "" {
		if n, err := strconv.Atoi(v); err != nil || n < 0 {
			fail(c, store.Errorf(store.EInvalid, "cursor: want the next of the previous page"))
			return
		}
	}
	pubs, next, err := a.cfg.Catalog.Search(f)
	if err != nil {
		fail(c, err)
		return
	}
	out := wire.CatalogList{Entries: make([]wire.CatalogEntry, 0, len(pubs)), Next: next}
	for i := range pubs {
		ds, err := a.cfg.CatalogState.Derivations(pubs[i].Repo)
		if err != nil {
			fail(c, err)
			return
		}
		out.Entries = append(out.Entries, view.CatalogEntry(&pubs[i], ds))
	}
	c.JSON(http.StatusOK, out)
}

func (a *API) catalogEntry(c *gin.Context) {
	repo := c.Query("repo")
	pub, ok := a.publication(c, repo)
	if !ok {
		return
	}
	st := a.cfg.CatalogState
	ds, err := st.Derivations(repo)
	if err != nil {
		fail(c, err)
		return
	}
	d := wire.CatalogDetail{CatalogEntry: view.CatalogEntry(pub, ds), Tags: []wire.ImageTag{}}
	if rd, err := st.PublicationReadme(repo); err == nil {
		d.ReadmeHTML = rd.HTML
	}
	if lt, err := st.Licence(pub.Licence.Digest); err == nil {
		d.LicenceText = lt.Text
	}
	tags, err := st.RegTagsOf(repo)
	if err != nil {
		fail(c, err)
		return
	}
	ms, err := st.RegManifests(repo)
	if err != nil {
		fail(c, err)
		return
	}
	for _, m := range ms {
		for _, t := range tags[m.Digest] {
			d.Tags = append(d.Tags, wire.ImageTag{Tag: t, Digest: m.Digest, MediaType: m.MediaType, Size: m.Size + m.BlobsSize, Pushed: m.Pushed})
		}
	}
	status, err := a.catalogStatus(identity(c).User, pub)
	if err != nil {
		fail(c, err)
		return
	}
	d.Status = status
	d.Grant = wire.Statement{Lang: pub.Grant.Lang, Text: pub.Grant.Text, At: pub.Grant.At}
	terms := []catalog.Statement{catalog.ForLearning}
	if pub.GenAI {
		terms = append(terms, catalog.AIOutput)
	}
	for _, t := range terms {
		d.Terms = append(d.Terms, wire.Statement{Clause: t.Clause, EN: t.EN, ZH: t.ZH, Text: t.EN})
	}
	c.JSON(http.StatusOK, d)
}

// catalogStatus is where user stands with a publication, by the licence
// gate's own verdict, told apart as the console shows it.
func (a *API) catalogStatus(user string, pub *store.Publication) (wire.CatalogStatus, error) {
	if user == pub.Owner {
		return wire.CatalogStatus{State: wire.StatusOwner}, nil
	}
	var s wire.CatalogStatus
	if ac, err := a.cfg.CatalogState.Acceptance(pub.Repo, user); err == nil {
		l := view.Licence(ac.Licence)
		s.Accepted = &l
	}
	_, err := a.cfg.CatalogState.PullGate(user, pub.Repo)
	switch code := store.ErrorCode(err); {
	case err == nil:
		s.State = wire.StatusAccepted
	case code == store.ELicenceNotAccepted:
		s.State, s.Message = wire.StatusMustAccept, store.ErrorMessage(err)
	case code == store.EAccessPending:
		s.State, s.Message = wire.StatusMustAsk, store.ErrorMessage(err)
		if _, rerr := a.cfg.CatalogState.AccessRequest(pub.Repo, user); rerr == nil {
			s.State = wire.StatusPending
		}
	case code == store.EAccessRejected:
		s.State, s.Message = wire.StatusRejected, store.ErrorMessage(err)
	default:
		return s, err
	}
	return s, nil
}
