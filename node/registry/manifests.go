package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"gantry/store"
)

// Docker media types (image-spec defines the OCI ones).
const (
	mediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	mediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaTypeDockerForeignLayer = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
)

// manifestDoc is the union of the fields of the four manifest formats the
// registry accepts.
type manifestDoc struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	ArtifactType  string            `json:"artifactType"`
	Config        *v1.Descriptor    `json:"config"`
	Layers        []v1.Descriptor   `json:"layers"`
	Manifests     []v1.Descriptor   `json:"manifests"`
	Subject       *v1.Descriptor    `json:"subject"`
	Annotations   map[string]string `json:"annotations"`
}

func manifestInvalid(format string, args ...any) *ociError {
	return ociErr(http.StatusBadRequest, codeManifestInvalid, format, args...)
}

// foreignLayer reports whether a layer is one the registry never stores
// (non-distributable layers, whose bytes come from their URLs).
func foreignLayer(d v1.Descriptor) bool {
	return strings.Contains(d.MediaType, ".nondistributable.") || d.MediaType == mediaTypeDockerForeignLayer
}

// parseManifest validates a manifest body against its media type and
// returns the record to store (without repository, digest or time).
func parseManifest(body []byte, contentType string) (*store.RegManifest, error) {
	var doc manifestDoc
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, manifestInvalid("manifest is not valid JSON")
	}
	if doc.SchemaVersion != 2 {
		return nil, manifestInvalid("unsupported schemaVersion %d", doc.SchemaVersion)
	}
	mt := contentType
	if mt != "" {
		if parsed, _, err := mime.ParseMediaType(mt); err == nil {
			mt = parsed
		}
	}
	if doc.MediaType != "" && mt != "" && doc.MediaType != mt {
		return nil, manifestInvalid("mediaType %q does not match Content-Type %q", truncate(doc.MediaType), truncate(mt))
	}
	if mt == "" || mt == "application/json" || mt == "application/octet-stream" {
		mt = doc.MediaType
	}
	if mt == "" {
		switch {
		case doc.Config != nil:
			mt = v1.MediaTypeImageManifest
		case doc.Manifests != nil:
			mt = v1.MediaTypeImageIndex
		}
	}
	m := &store.RegManifest{MediaType: mt, ArtifactType: doc.ArtifactType, Annotations: doc.Annotations}
	checkDesc := func(what string, d v1.Descriptor) error {
		if err := d.Digest.Validate(); err != nil {
			return manifestInvalid("%s: invalid digest %q", what, truncate(string(d.Digest)))
		}
		if _, err := parseDigest(string(d.Digest)); err != nil {
			return manifestInvalid("%s: unsupported digest %q", what, truncate(string(d.Digest)))
		}
		if d.Size < 0 {
			return manifestInvalid("%s: negative size", what)
		}
		if d.Data != nil && d.Digest.Algorithm().Available() && d.Digest.Algorithm().FromBytes(d.Data) != d.Digest {
			return manifestInvalid("%s: data does not match digest", what)
		}
		return nil
	}
	switch mt {
	case v1.MediaTypeImageManifest, mediaTypeDockerManifest:
		if doc.Config == nil {
			return nil, manifestInvalid("image manifest without config")
		}
		if doc.Manifests != nil {
			return nil, manifestInvalid("image manifest with manifests")
		}
		if err := checkDesc("config", *doc.Config); err != nil {
			return nil, err
		}
		m.Blobs = append(m.Blobs, doc.Config.Digest.String())
		for i, l := range doc.Layers {
			if err := checkDesc(fmt.Sprintf("layers[%d]", i), l); err != nil {
				return nil, err
			}
			m.Layers = append(m.Layers, l.Digest.String())
			if foreignLayer(l) {
				m.Foreign = append(m.Foreign, l.Digest.String())
				continue
			}
			if !containsStr(m.Blobs, l.Digest.String()) {
				m.Blobs = append(m.Blobs, l.Digest.String())
			}
		}
		if m.ArtifactType == "" && mt == v1.MediaTypeImageManifest {
			m.ArtifactType = doc.Config.MediaType
		}
	case v1.MediaTypeImageIndex, mediaTypeDockerManifestList:
		if doc.Config != nil || doc.Layers != nil {
			return nil, manifestInvalid("index with config or layers")
		}
		for i, c := range doc.Manifests {
			if err := checkDesc(fmt.Sprintf("manifests[%d]", i), c); err != nil {
				return nil, err
			}
			if !containsStr(m.Manifests, c.Digest.String()) {
				m.Manifests = append(m.Manifests, c.Digest.String())
			}
		}
	default:
		return nil, manifestInvalid("unsupported manifest media type %q", truncate(mt))
	}
	if doc.Subject != nil {
		if err := checkDesc("subject", *doc.Subject); err != nil {
			return nil, err
		}
		m.Subject = doc.Subject.Digest.String()
	}
	return m, nil
}

func containsStr(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// resolve returns the manifest a tag or digest reference names.
func (r *Registry) resolve(repo, ref string) (*store.RegManifest, error) {
	var d string
	if strings.Contains(ref, ":") {
		dg, err := parseDigest(ref)
		if err != nil {
			return nil, err
		}
		d = dg.String()
	} else {
		if !validTag(ref) {
			return nil, manifestInvalid("invalid tag %q", truncate(ref))
		}
		t, err := r.st.RegTag(repo, ref)
		if errors.Is(err, store.ErrNotFound) {
			return nil, errManifestUnknown
		}
		if err != nil {
			return nil, err
		}
		d = t.Digest
	}
	m, err := r.st.RegManifest(repo, d)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errManifestUnknown
	}
	return m, err
}

// serveManifest handles GET/HEAD/PUT/DELETE /v2/<name>/manifests/<ref>.
func (r *Registry) serveManifest(ctx context.Context, w http.ResponseWriter, req *http.Request, rt *route, p *principal) error {
	switch req.Method {
	case http.MethodGet, http.MethodHead:
		m, err := r.resolve(rt.name, rt.ref)
		if err != nil {
			return err
		}
		h := w.Header()
		h.Set("Content-Type", m.MediaType)
		h.Set("Docker-Content-Digest", m.Digest)
		h.Set("Etag", `"`+m.Digest+`"`)
		h.Set("Content-Length", strconv.Itoa(len(m.Content)))
		w.WriteHeader(http.StatusOK)
		if req.Method == http.MethodGet {
			w.Write(m.Content)
			r.countPull(rt.name, p)
		}
		return nil
	case http.MethodPut:
		return r.putManifest(ctx, w, req, rt, p)
	case http.MethodDelete:
		if !strings.Contains(rt.ref, ":") {
			if !validTag(rt.ref) {
				return manifestInvalid("invalid tag %q", truncate(rt.ref))
			}
			if _, err := store.CmdRegDeleteTag.Propose(ctx, r.prop, store.RegDeleteTag{Repo: rt.name, Tag: rt.ref}); err != nil {
				if store.ErrorCode(err) == store.ENotFound {
					return errManifestUnknown
				}
				return err
			}
		} else {
			d, err := parseDigest(rt.ref)
			if err != nil {
				return err
			}
			m, err := r.st.RegManifest(rt.name, d.String())
			if errors.Is(err, store.ErrNotFound) {
				return errManifestUnknown
			}
			if err != nil {
				return err
			}
			if _, err := store.CmdRegDeleteManifest.Propose(ctx, r.prop, store.RegDeleteManifest{Repo: rt.name, Digest: d.String()}); err != nil {
				if store.ErrorCode(err) == store.ENotFound {
					return errManifestUnknown
				}
				return err
			}
			r.releaseBlobs(ctx, rt.name, m)
		}
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusAccepted)
		return nil
	}
	methodNotAllowed(w)
	return nil
}

func (r *Registry) putManifest(ctx context.Context, w http.ResponseWriter, req *http.Request, rt *route, p *principal) error {
	limit := r.cfg.MaxManifestSize
	if req.ContentLength > limit {
		return ociErr(http.StatusRequestEntityTooLarge, codeSizeInvalid, "manifest larger than %d bytes", limit)
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, limit+1))
	if err != nil {
		return fmt.Errorf("read manifest: %w", err)
	}
	if int64(len(body)) > limit {
		return ociErr(http.StatusRequestEntityTooLarge, codeSizeInvalid, "manifest larger than %d bytes", limit)
	}
	var tags []string
	var d digest.Digest
	if strings.Contains(rt.ref, ":") {
		want, err := parseDigest(rt.ref)
		if err != nil {
			return err
		}
		d = want.Algorithm().FromBytes(body)
		if d != want {
			return ociErr(http.StatusBadRequest, codeDigestInvalid, "manifest digest %s does not match %s", d, want)
		}
	} else {
		if !validTag(rt.ref) {
			return manifestInvalid("invalid tag %q", truncate(rt.ref))
		}
		tags = append(tags, rt.ref)
		d = digest.Canonical.FromBytes(body)
	}
	for _, t := range req.URL.Query()["tag"] {
		if !validTag(t) {
			return manifestInvalid("invalid tag %q", truncate(t))
		}
		if !containsStr(tags, t) {
			tags = append(tags, t)
		}
	}
	m, err := parseManifest(body, req.Header.Get("Content-Type"))
	if err != nil {
		return err
	}
	m.Repo, m.Digest, m.Content, m.Pusher = rt.name, d.String(), body, p.user
	if err := r.ensureCopies(ctx, rt.name, m.Blobs); err != nil {
		return err
	}
	_, err = store.CmdRegPutManifest.Propose(ctx, r.prop, store.RegPutManifest{Owner: ownerOf(rt.name), Manifest: *m, Tags: tags})
	if err != nil {
		if se := (*store.Error)(nil); errors.As(err, &se) && se.Code == store.ENotFound {
			return &ociError{Status: http.StatusBadRequest, Code: codeManifestBlobUnknown, Message: se.Message}
		}
		return err
	}
	h := w.Header()
	h.Set("Location", "/v2/"+rt.name+"/manifests/"+d.String())
	h.Set("Docker-Content-Digest", d.String())
	if m.Subject != "" {
		h.Set("OCI-Subject", m.Subject)
	}
	if len(req.URL.Query()["tag"]) > 0 {
		h.Set("OCI-Tag", strings.Join(tags, ","))
	}
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	r.notifyManifest(rt.name, m)
	return nil
}

// notifyManifest tells OnManifest of a stored image manifest, in the
// background: the client has its answer already.
func (r *Registry) notifyManifest(repo string, m *store.RegManifest) {
	if r.cfg.OnManifest == nil || m.Subject != "" || len(m.Layers) == 0 {
		return
	}
	mc := *m
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		r.cfg.OnManifest(ctx, repo, &mc)
	}()
}

// pageParams reads n and last; n < 0 is invalid, n = 0 means no limit
// unless the parameter is present.
func pageParams(q url.Values) (n int, last string, err error) {
	last = q.Get("last")
	if s := q.Get("n"); s != "" {
		n, err = strconv.Atoi(s)
		if err != nil || n < 0 {
			return 0, "", ociErr(http.StatusBadRequest, codeUnsupported, "invalid n %q", truncate(s))
		}
		if n == 0 {
			return 0, last, nil
		}
		return min(n, 10000), last, nil
	}
	return -1, last, nil
}

func writeJSON(w http.ResponseWriter, req *http.Request, contentType string, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	if req.Method != http.MethodHead {
		w.Write(b)
	}
}

// serveTags handles GET /v2/<name>/tags/list with n/last pagination.
func (r *Registry) serveTags(w http.ResponseWriter, req *http.Request, rt *route) error {
	if _, err := r.st.RegRepo(rt.name); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return errNameUnknown
		}
		return err
	}
	n, last, err := pageParams(req.URL.Query())
	if err != nil {
		return err
	}
	var tags []string
	more := false
	if n == 0 {
		tags = []string{}
	} else {
		tags, more, err = r.st.RegTags(rt.name, last, max(n, 0))
		if err != nil {
			return err
		}
	}
	if more && len(tags) > 0 {
		next := url.URL{Path: "/v2/" + rt.name + "/tags/list", RawQuery: url.Values{"n": {strconv.Itoa(n)}, "last": {tags[len(tags)-1]}}.Encode()}
		w.Header().Set("Link", fmt.Sprintf(`<%s>; rel="next"`, next.String()))
	}
	writeJSON(w, req, "application/json", map[string]any{"name": rt.name, "tags": tags})
	return nil
}

// serveCatalog handles GET /v2/_catalog, listing only repositories the
// caller may pull.
func (r *Registry) serveCatalog(w http.ResponseWriter, req *http.Request, p *principal) error {
	n, last, err := pageParams(req.URL.Query())
	if err != nil {
		return err
	}
	names := []string{}
	more := false
	if n != 0 {
		limit := 0
		if n > 0 {
			limit = n + 1
		}
		repos, err := r.st.RegRepos(last, limit, func(rp *store.RegRepo) bool { return p.can(rp.Name, "pull") })
		if err != nil {
			return err
		}
		for _, rp := range repos {
			names = append(names, rp.Name)
		}
		if n > 0 && len(names) > n {
			names, more = names[:n], true
		}
	}
	if more {
		next := url.URL{Path: "/v2/_catalog", RawQuery: url.Values{"n": {strconv.Itoa(n)}, "last": {names[len(names)-1]}}.Encode()}
		w.Header().Set("Link", fmt.Sprintf(`<%s>; rel="next"`, next.String()))
	}
	writeJSON(w, req, "application/json", map[string]any{"repositories": names})
	return nil
}

// serveReferrers handles GET /v2/<name>/referrers/<digest>.
func (r *Registry) serveReferrers(w http.ResponseWriter, req *http.Request, rt *route) error {
	d, err := parseDigest(rt.ref)
	if err != nil {
		return err
	}
	descs, err := r.st.RegReferrers(rt.name, d.String())
	if err != nil {
		return err
	}
	at := req.URL.Query().Get("artifactType")
	out := make([]v1.Descriptor, 0, len(descs))
	for _, x := range descs {
		if at != "" && x.ArtifactType != at {
			continue
		}
		out = append(out, v1.Descriptor{MediaType: x.MediaType, Digest: digest.Digest(x.Digest), Size: x.Size, ArtifactType: x.ArtifactType, Annotations: x.Annotations})
	}
	if at != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	idx := v1.Index{MediaType: v1.MediaTypeImageIndex, Manifests: out}
	idx.SchemaVersion = 2
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(idx); err != nil {
		return fmt.Errorf("encode referrers: %w", err)
	}
	w.Header().Set("Content-Type", v1.MediaTypeImageIndex)
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(http.StatusOK)
	if req.Method != http.MethodHead {
		w.Write(buf.Bytes())
	}
	return nil
}
