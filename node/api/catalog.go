package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

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
}

var _ CatalogState = (*store.Store)(nil)

func (a *API) catalogRoutes() []Route {
	if a.cfg.Catalog == nil || a.cfg.CatalogState == nil {
		return nil
	}
	return []Route{
		route("POST", "/api/v1/images/publish", Signed, a.publish, "Publish a repository you own to the community catalog under a licence (again: update it; a changed licence text is a new version users accept again)").takes(wire.Publish{}).answers(200, wire.CatalogEntry{}),
		route("POST", "/api/v1/images/unpublish", Signed, a.unpublish, "Return a published repository to private (the owner keeps it)").takes(wire.RepoRef{}).answers(204, noBody{}),
		route("POST", "/api/v1/images/accept", Signed, a.accept, "Accept the licence of a published repository (the version read)").takes(wire.Accept{}).answers(200, wire.Acceptance{}),
		route("POST", "/api/v1/images/request", Signed, a.requestAccess, "Ask the publisher of a repository in approval mode for access").takes(wire.AccessAsk{}).answers(200, wire.AccessRequest{}),
		route("GET", "/api/v1/images/access", Signed, a.accessReport, "Who accepted a repository's licence and who asked for access (its publisher, or an admin)").answers(200, wire.AccessReport{}).reads(pRepo),
		route("POST", "/api/v1/images/access/decide", Signed, a.decideAccess, "Approve, reject or revoke a user's access (the publisher)").takes(wire.AccessDecision{}).answers(200, wire.AccessRequest{}),
		route("GET", "/api/v1/images/accepted", Signed, a.acceptedList, "The licences the caller accepted").answers(200, wire.AcceptanceList{}),
		route("POST", "/api/v1/images/notices/remove", Signed, a.removeNotice, "Remove the licence notice a derived repository inherits from yours (its rights holder only)").takes(wire.RemoveNotice{}).answers(204, noBody{}),
		route("GET", "/api/v1/catalog", Signed, a.listCatalog, "Browse and search the community catalog").answers(200, wire.CatalogList{}).
			reads(pQuery, Param{"license", "string", "only licences naming this SPDX id"}, Param{"genai", "boolean", "only generative-AI images (true) or none (false)"},
				Param{"access", "string", "open or approval"}, Param{"sort", "string", "recent (default), pulls or name"}, pCursor, pLimit),
		route("GET", "/api/v1/catalog/entry", Signed, a.catalogEntry, "A published repository: README, licence text, tags, notices, and where the caller stands").answers(200, wire.CatalogDetail{}).reads(pRepo),
	}
}

var pRepo = Param{"repo", "string", "the repository, e.g. alice/tool"}

func (a *API) publish(c *gin.Context) {
	var req wire.Publish
	if err := decode(c, &req); err != nil {
		fail(c, err)
		return
	}
	id := identity(c)
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
	f := catalog.Filter{Query: c.Query("q"), License: c.Query("license"), Access: c.Query("access"), Sort: c.Query("sort"), Cursor: c.Query("cursor")}
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
