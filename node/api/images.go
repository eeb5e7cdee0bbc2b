package api

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"gantry/node/registry"
	"gantry/node/view"
	"gantry/store"
	"gantry/wire"
)

// Images is what the API needs from the registry (registry.Registry
// implements it).
type Images interface {
	List(ctx context.Context, user string, admin bool) ([]registry.RepoInfo, error)
	Usage(ctx context.Context) (map[string]int64, error)
	LocalRef(image string) (ref string, ok bool)
	Resolve(ctx context.Context, user string, admin bool, image string) (repo, digest string, err error)
	DeleteTag(ctx context.Context, user string, admin bool, repo, tag string) error
	DeleteManifest(ctx context.Context, user string, admin bool, repo, digest string) error
	ImportDockerArchive(ctx context.Context, owner string, archive io.Reader) ([]string, error)
	GC(ctx context.Context, dryRun bool) (registry.GCReport, error)
	// Local reads repository repo in-process (task outputs).
	Local(repo, user string) *registry.Local
}

var _ Images = (*registry.Registry)(nil)

// checkImage rejects a job image in this node's registry (with or without
// this node's host) that does not exist or that the caller may not pull;
// both get the same message, so others' private repositories are not
// revealed. Images in other registries are left to Docker.
func (a *API) checkImage(c *gin.Context, user string, admin bool, image string) error {
	if a.cfg.Images == nil {
		return nil
	}
	ref, ok := a.cfg.Images.LocalRef(image)
	if !ok {
		return a.checkRegistry(image)
	}
	_, _, err := a.cfg.Images.Resolve(c.Request.Context(), user, admin, ref)
	if err == nil {
		return nil
	}
	switch store.ErrorCode(err) {
	case store.EInvalid:
		return store.Errorf(store.EInvalid, "image: %s", store.ErrorMessage(err))
	case store.ENotFound:
		return store.Errorf(store.EInvalid, "image: %s not found", image)
	}
	return err
}

func (a *API) listImages(c *gin.Context) {
	id := identity(c)
	ctx := c.Request.Context()
	repos, err := a.cfg.Images.List(ctx, id.User, id.Admin)
	if err != nil {
		fail(c, err)
		return
	}
	usage, err := a.cfg.Images.Usage(ctx)
	if err != nil {
		fail(c, err)
		return
	}
	resp := wire.ImageList{Repositories: imageRepos(repos), Usage: usage[id.User]}
	if err := a.withCatalog(resp.Repositories); err != nil {
		fail(c, err)
		return
	}
	if id.Admin {
		resp.UsageByOwner = usage
	}
	c.JSON(http.StatusOK, resp)
}

// checkRegistry refuses an image of another registry unless an admin
// allowed that registry (--allow-registry): otherwise any user could make
// the Docker daemon send requests to any host and port, the host's own
// loopback services included.
func (a *API) checkRegistry(image string) error {
	host, _, _ := strings.Cut(image, "/")
	for _, h := range a.cfg.Registries {
		if strings.EqualFold(host, h) {
			return nil
		}
	}
	return store.Errorf(store.EInvalid, "image: %s is in the registry %s, which this installation does not pull from: push the image to Gantry (docker push) or ask an admin to allow the registry (gantry server --allow-registry %s)", image, host, host)
}

// withCatalog adds to each repository how it is published and the licence
// notices it inherits.
func (a *API) withCatalog(repos []wire.ImageRepo) error {
	st := a.cfg.CatalogState
	if st == nil {
		return nil
	}
	for i := range repos {
		r := &repos[i]
		pub, err := st.Publication(r.Name)
		switch {
		case err == nil:
			r.Published = &wire.ImagePublication{Licence: view.Licence(pub.Licence), Access: pub.Access, Pulls: pub.Pulls}
			r.GenAI = pub.GenAI
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
		if m := a.cfg.Moderation; m != nil {
			t, err := m.Takedown(r.Name)
			switch {
			case err == nil:
				r.TakenDown = view.Takedown(t)
			case !errors.Is(err, store.ErrNotFound):
				return err
			}
		}
		ds, err := st.Derivations(r.Name)
		if err != nil {
			return err
		}
		for k := range ds {
			n := view.Notice(&ds[k])
			r.Notices = append(r.Notices, n)
			r.GenAI = r.GenAI || n.GenAI
		}
	}
	return nil
}

func (a *API) deleteImage(c *gin.Context) {
	p := strings.TrimPrefix(c.Param("path"), "/")
	id := identity(c)
	ctx := c.Request.Context()
	if repo, tag, ok := strings.Cut(p, "/tags/"); ok && repo != "" && tag != "" && !strings.Contains(tag, "/") {
		if err := a.cfg.Images.DeleteTag(ctx, id.User, id.Admin, repo, tag); err != nil {
			fail(c, err)
			return
		}
		c.JSON(http.StatusOK, wire.Deleted{Deleted: repo + ":" + tag})
		return
	}
	if repo, d, ok := strings.Cut(p, "/manifests/"); ok && repo != "" && d != "" && !strings.Contains(d, "/") {
		if err := a.cfg.Images.DeleteManifest(ctx, id.User, id.Admin, repo, d); err != nil {
			fail(c, err)
			return
		}
		c.JSON(http.StatusOK, wire.Deleted{Deleted: repo + "@" + d})
		return
	}
	fail(c, store.Errorf(store.ENotFound, "no such endpoint: DELETE /api/v1/images/%s (want /api/v1/images/REPO/tags/TAG or /api/v1/images/REPO/manifests/DIGEST)", p))
}

// importImages stores the images of a `docker save` archive (the request
// body) under the caller's namespace.
func (a *API) importImages(c *gin.Context) {
	id := identity(c)
	refs, err := a.cfg.Images.ImportDockerArchive(c.Request.Context(), id.User, c.Request.Body)
	if err != nil {
		a.log.Info("image import failed", "user", id.User, "err", err)
		fail(c, err)
		return
	}
	if refs == nil {
		refs = []string{}
	}
	c.JSON(http.StatusCreated, wire.ImageImport{Images: refs})
}

func (a *API) collectGarbage(c *gin.Context) {
	dry := c.Query("dry_run")
	rep, err := a.cfg.Images.GC(c.Request.Context(), dry == "1" || dry == "true")
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gcReport(rep))
}

// imageRepo is the repository of this node's registry an image reference
// names ("" for another registry, or a reference that does not parse).
func (a *API) imageRepo(image string) string {
	if a.cfg.Images == nil {
		return ""
	}
	ref, ok := a.cfg.Images.LocalRef(image)
	if !ok {
		return ""
	}
	r, err := registry.ParseReference(ref)
	if err != nil {
		return ""
	}
	return r.Repo
}

// genAI reports whether repo's images perform generative AI: it is
// published so, or built on an image that is.
func (a *API) genAI(repo string) (bool, error) {
	if repo == "" || a.cfg.CatalogState == nil {
		return false, nil
	}
	p, err := a.cfg.CatalogState.Publication(repo)
	switch {
	case err == nil && p.GenAI:
		return true, nil
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return false, err
	}
	ds, err := a.cfg.CatalogState.Derivations(repo)
	if err != nil {
		return false, err
	}
	for _, d := range ds {
		if d.GenAI {
			return true, nil
		}
	}
	return false, nil
}

// imageRepos is what the API shows of the registry's repositories.
func imageRepos(rs []registry.RepoInfo) []wire.ImageRepo {
	out := make([]wire.ImageRepo, len(rs))
	for i, r := range rs {
		tags := make([]wire.ImageTag, len(r.Tags))
		for k, t := range r.Tags {
			tags[k] = wire.ImageTag{Tag: t.Tag, Digest: t.Digest, MediaType: t.MediaType, Size: t.Size, Pushed: t.Pushed}
		}
		out[i] = wire.ImageRepo{Name: r.Name, Owner: r.Owner, Tags: tags, Manifests: r.Manifests, Size: r.Size, LastPush: r.LastPush}
	}
	return out
}

// gcReport is what the API shows of a garbage collection.
func gcReport(r registry.GCReport) wire.GCReport {
	out := wire.GCReport{DryRun: r.DryRun, DeletedBlobs: r.DeletedBlobs, FreedBytes: r.FreedBytes,
		ExpiredUploads: r.ExpiredUploads, KeptBlobs: r.KeptBlobs, UnlinkedBlobs: []wire.BlobLink{}}
	for _, l := range r.UnlinkedBlobs {
		out.UnlinkedBlobs = append(out.UnlinkedBlobs, wire.BlobLink{Repo: l.Repo, Digest: l.Digest})
	}
	for _, p := range r.Peers {
		out.Peers = append(out.Peers, wire.PeerGC{Node: p.Node, DeletedBlobs: p.DeletedBlobs, FreedBytes: p.FreedBytes, Error: p.Error})
	}
	return out
}
