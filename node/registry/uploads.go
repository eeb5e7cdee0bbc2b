package registry

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/opencontainers/go-digest"

	"gantry/store"
)

// upload is a blob upload session: a data file in the uploads directory
// (<id>.data) and its metadata (<id>.json). The running hash lives in
// memory; after a restart it is recomputed from the file on the next use,
// so sessions survive restarts until they expire.
type upload struct {
	mu      sync.Mutex
	id      string
	repo    string
	user    string
	dataP   string
	metaP   string
	f       *os.File
	size    int64
	alg     digest.Algorithm
	h       hash.Hash // nil: recompute from the file before appending
	started time.Time
	touched time.Time
	gone    bool
}

type uploadMeta struct {
	Repo    string    `json:"repo"`
	User    string    `json:"user"`
	Started time.Time `json:"started"`
}

func newUploadID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func validUploadID(id string) bool {
	if len(id) != 32 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil
}

// createUpload starts a session on disk. Persistent sessions are
// registered for later requests; ephemeral ones (monolithic POST) are not.
func (r *Registry) createUpload(repo, user string, alg digest.Algorithm, persistent bool) (*upload, error) {
	id := newUploadID()
	now := r.now()
	u := &upload{
		id: id, repo: repo, user: user, alg: alg, h: alg.Hash(),
		dataP: filepath.Join(r.blobs.tmp, id+".data"), metaP: filepath.Join(r.blobs.tmp, id+".json"),
		started: now, touched: now,
	}
	f, err := os.OpenFile(u.dataP, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create upload: %w", err)
	}
	u.f = f
	if persistent {
		if err := r.makeRoom(user); err != nil {
			u.discard()
			return nil, err
		}
		b, _ := json.Marshal(uploadMeta{Repo: repo, User: user, Started: now})
		if err := os.WriteFile(u.metaP, b, 0o644); err != nil {
			u.discard()
			return nil, fmt.Errorf("create upload: %w", err)
		}
		r.upMu.Lock()
		r.uploads[id] = u
		r.upMu.Unlock()
	}
	return u, nil
}

// uploadIdle is how long a session must have been left alone before a new
// one of the same user, at its limit, replaces it.
const uploadIdle = time.Minute

// makeRoom keeps a user's open sessions under Config.MaxUploads: at the
// limit, the session idle longest goes if nobody touched it for
// uploadIdle (a client that gave up); otherwise the new one is refused
// with 429 and Retry-After, so one account cannot fill the disk with
// sessions, nor lock itself out for the TTL.
func (r *Registry) makeRoom(user string) error {
	if user == NodeUser {
		return nil
	}
	r.upMu.Lock()
	var mine []*upload
	for _, u := range r.uploads {
		if u.user == user {
			mine = append(mine, u)
		}
	}
	r.upMu.Unlock()
	if len(mine) < r.cfg.MaxUploads {
		return nil
	}
	var oldest *upload
	var at time.Time
	for _, u := range mine {
		if !u.mu.TryLock() {
			continue // a request is writing to it
		}
		if !u.gone && (oldest == nil || u.touched.Before(at)) {
			oldest, at = u, u.touched
		}
		u.mu.Unlock()
	}
	now := r.now()
	if oldest == nil || now.Sub(at) < uploadIdle {
		wait := uploadIdle
		if oldest != nil {
			wait = uploadIdle - now.Sub(at)
		}
		return retryLater{store.Errorf(store.ERateLimited, "%s has %d upload sessions open, the most allowed: finish or cancel one (DELETE its location), or retry once one has been idle for %s", user, len(mine), uploadIdle), wait}
	}
	if !oldest.mu.TryLock() {
		return retryLater{store.Errorf(store.ERateLimited, "%s has %d upload sessions open, the most allowed: retry in a moment", user, len(mine)), time.Second}
	}
	if !oldest.gone {
		r.log.Info("upload session replaced", "user", user, "upload", oldest.id, "idle", now.Sub(oldest.touched))
		oldest.discard()
	}
	oldest.mu.Unlock()
	r.forget(oldest)
	return nil
}

// retryLater is a refusal that says when to try again (Retry-After).
type retryLater struct {
	error
	after time.Duration
}

func (e retryLater) RetryAfter() time.Duration { return e.after }
func (e retryLater) Unwrap() error             { return e.error }

// getUpload finds a session of repo, in memory or left on disk by a previous
// process. The session is returned locked.
func (r *Registry) getUpload(id, repo string) (*upload, error) {
	if !validUploadID(id) {
		return nil, errUploadUnknown
	}
	r.upMu.Lock()
	u, ok := r.uploads[id]
	if !ok {
		var err error
		u, err = r.loadUpload(id)
		if err != nil {
			r.upMu.Unlock()
			return nil, err
		}
		r.uploads[id] = u
	}
	r.upMu.Unlock()
	u.mu.Lock()
	if u.gone || u.repo != repo {
		u.mu.Unlock()
		return nil, errUploadUnknown
	}
	return u, nil
}

func (r *Registry) loadUpload(id string) (*upload, error) {
	metaP := filepath.Join(r.blobs.tmp, id+".json")
	b, err := os.ReadFile(metaP)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errUploadUnknown
	}
	if err != nil {
		return nil, fmt.Errorf("load upload: %w", err)
	}
	var m uploadMeta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, errUploadUnknown
	}
	dataP := filepath.Join(r.blobs.tmp, id+".data")
	f, err := os.OpenFile(dataP, os.O_RDWR, 0)
	if err != nil {
		return nil, errUploadUnknown
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("load upload: %w", err)
	}
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		f.Close()
		return nil, fmt.Errorf("load upload: %w", err)
	}
	return &upload{id: id, repo: m.Repo, user: m.User, dataP: dataP, metaP: metaP, f: f, size: fi.Size(),
		alg: digest.Canonical, started: m.Started, touched: fi.ModTime()}, nil
}

func (u *upload) closeFile() {
	if u.f != nil {
		u.f.Close()
		u.f = nil
	}
}

// discard removes the session's files. The caller holds u.mu.
func (u *upload) discard() {
	u.gone = true
	u.closeFile()
	os.Remove(u.dataP)
	os.Remove(u.metaP)
}

func (r *Registry) forget(u *upload) {
	r.upMu.Lock()
	delete(r.uploads, u.id)
	r.upMu.Unlock()
}

// rehash recomputes the running hash with alg from the file.
func (u *upload) rehash(alg digest.Algorithm) (hash.Hash, error) {
	h := alg.Hash()
	if _, err := io.Copy(h, io.NewSectionReader(u.f, 0, u.size)); err != nil {
		return nil, fmt.Errorf("rehash upload: %w", err)
	}
	return h, nil
}

// appendBody appends a request body to the session.
func (u *upload) appendBody(body io.Reader, limit int64, now time.Time) error {
	if u.h == nil {
		h, err := u.rehash(u.alg)
		if err != nil {
			return err
		}
		u.h = h
	}
	n, err := copyHashed(u.f, u.size, u.h, body, limit, nil)
	u.size += n
	u.touched = now
	if err != nil {
		// The hash and the file no longer describe a clean prefix: truncate
		// back is not possible after hashing, so recompute on the next use.
		u.h = nil
		return err
	}
	return nil
}

// appendTo appends a request body to an upload while the node's disk
// keeps its reserve of free space (Config.Space). An upload that meets a
// full disk (the reserve, or ENOSPC itself) is discarded on the spot, its
// bytes freed, and the client told why: a partial blob is of no use to
// anyone and would keep the disk full.
func (r *Registry) appendTo(u *upload, body io.Reader, limit int64) error {
	if err := r.cfg.Space.Fits(uint64(max(limit, 0))); err != nil {
		u.discard()
		r.forget(u)
		return err
	}
	err := u.appendBody(&spaceReader{r: body, space: r.cfg.Space}, limit, r.now())
	if err == nil {
		return nil
	}
	var se *store.Error
	full := errors.As(err, &se) && se.Code == store.EDiskFull
	if !full && errors.Is(err, syscall.ENOSPC) {
		full = true
		if err = r.cfg.Space.Check(); err == nil {
			err = store.Errorf(store.EDiskFull, "node %s is out of disk space: the upload was discarded; free space (delete images or data) and push again", r.cfg.NodeName)
		}
	}
	if full {
		r.log.Warn("upload discarded: disk full", "repo", u.repo, "user", u.user, "bytes", u.size)
		u.discard()
		r.forget(u)
	}
	return err
}

// spaceReader ends a body with the disk-full error once the disk is down
// to its reserve (looking every 8 MiB: the reserve covers far more).
type spaceReader struct {
	r     io.Reader
	space Space
	since int64
}

func (s *spaceReader) Read(p []byte) (int, error) {
	if s.since >= 8<<20 {
		s.since = 0
		if err := s.space.Check(); err != nil {
			return 0, err
		}
	}
	n, err := s.r.Read(p)
	s.since += int64(n)
	return n, err
}

// finish verifies the session's content against d, then moves it into the
// blob store and links it into the repository.
func (r *Registry) finish(ctx context.Context, u *upload, d digest.Digest) error {
	h := u.h
	if h == nil || u.alg != d.Algorithm() {
		var err error
		if h, err = u.rehash(d.Algorithm()); err != nil {
			return err
		}
	}
	got := digest.NewDigest(d.Algorithm(), h)
	if got != d {
		return ociErr(http.StatusBadRequest, codeDigestInvalid, "content digest %s does not match %s", got, d)
	}
	if err := u.f.Sync(); err != nil {
		return fmt.Errorf("sync upload: %w", err)
	}
	u.closeFile()
	if err := r.blobs.commit(u.dataP, d, r.now()); err != nil {
		return err
	}
	os.Remove(u.metaP)
	u.gone = true
	_, err := store.CmdRegLinkBlob.Propose(ctx, r.prop, store.RegLinkBlob{Repo: u.repo, Owner: ownerOf(u.repo), Digest: d.String(), Size: u.size, User: u.user, Node: r.cfg.NodeName})
	return err
}

func (r *Registry) setUploadHeaders(w http.ResponseWriter, u *upload) {
	w.Header().Set("Location", "/v2/"+u.repo+"/blobs/uploads/"+u.id)
	w.Header().Set("Docker-Upload-UUID", u.id)
	w.Header().Set("Range", fmt.Sprintf("0-%d", max(u.size-1, 0)))
	w.Header().Set("Content-Length", "0")
}

// startUpload handles POST /v2/<name>/blobs/uploads/: a cross-repository
// mount, a monolithic upload (?digest=), or the start of a session.
func (r *Registry) startUpload(ctx context.Context, w http.ResponseWriter, req *http.Request, rt *route, p *principal) error {
	if req.Method != http.MethodPost {
		methodNotAllowed(w)
		return nil
	}
	q := req.URL.Query()
	if m := q.Get("mount"); m != "" {
		d, err := parseDigest(m)
		if err != nil {
			return err
		}
		ok, err := r.mount(ctx, rt.name, d, q.Get("from"), p)
		if err != nil {
			return err
		}
		if ok {
			w.Header().Set("Location", "/v2/"+rt.name+"/blobs/"+d.String())
			w.Header().Set("Docker-Content-Digest", d.String())
			w.Header().Set("Content-Length", "0")
			w.WriteHeader(http.StatusCreated)
			return nil
		}
		// Not mountable: fall through to a new session, as the spec says.
	}
	if ds := q.Get("digest"); ds != "" {
		d, err := parseDigest(ds)
		if err != nil {
			return err
		}
		u, err := r.createUpload(rt.name, p.user, d.Algorithm(), false)
		if err != nil {
			return err
		}
		u.mu.Lock()
		defer u.mu.Unlock()
		if err := r.appendTo(u, req.Body, req.ContentLength); err != nil {
			u.discard()
			return err
		}
		if err := r.finish(ctx, u, d); err != nil {
			u.discard()
			return err
		}
		r.replicateSoon(d) // peers.go
		w.Header().Set("Location", "/v2/"+rt.name+"/blobs/"+d.String())
		w.Header().Set("Docker-Content-Digest", d.String())
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusCreated)
		return nil
	}
	u, err := r.createUpload(rt.name, p.user, digest.Canonical, true)
	if err != nil {
		return err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if req.ContentLength > 0 {
		if err := r.appendTo(u, req.Body, req.ContentLength); err != nil {
			return err
		}
	}
	r.setUploadHeaders(w, u)
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// mount links blob d into repo when the caller may read a repository that
// holds it (from, or any readable repository when from is empty) and this
// node has its bytes.
func (r *Registry) mount(ctx context.Context, repo string, d digest.Digest, from string, p *principal) (bool, error) {
	var candidates []string
	if from != "" {
		if !validName(from) || r.may(p, from, "pull") != nil {
			return false, nil
		}
		candidates = []string{from}
	} else {
		repos, err := r.st.RegBlobRepos(d.String())
		if err != nil {
			return false, err
		}
		for _, rp := range repos {
			if r.may(p, rp, "pull") == nil {
				candidates = append(candidates, rp)
			}
		}
	}
	for _, src := range candidates {
		link, err := r.st.RegBlobLink(src, d.String())
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return false, err
		}
		if ok, err := r.ensureLocal(ctx, d); err != nil || !ok {
			return false, err
		}
		if _, err := store.CmdRegLinkBlob.Propose(ctx, r.prop, store.RegLinkBlob{Repo: repo, Owner: ownerOf(repo), Digest: d.String(), Size: link.Size, User: p.user, Node: r.cfg.NodeName}); err != nil {
			return false, err
		}
		return true, nil
	}
	return false, nil
}

// serveUpload handles GET/PATCH/PUT/DELETE on an upload session.
func (r *Registry) serveUpload(ctx context.Context, w http.ResponseWriter, req *http.Request, rt *route, p *principal) error {
	u, err := r.getUpload(rt.ref, rt.name)
	if err != nil {
		return err
	}
	defer u.mu.Unlock()
	switch req.Method {
	case http.MethodGet:
		r.setUploadHeaders(w, u)
		w.WriteHeader(http.StatusNoContent)
		return nil
	case http.MethodDelete:
		u.discard()
		r.forget(u)
		w.WriteHeader(http.StatusNoContent)
		return nil
	case http.MethodPatch:
		if cr := req.Header.Get("Content-Range"); cr != "" {
			start, end, ok := parseContentRange(cr)
			if !ok || start != u.size || (req.ContentLength >= 0 && end-start+1 != req.ContentLength) {
				r.setUploadHeaders(w, u)
				return ociErr(http.StatusRequestedRangeNotSatisfiable, codeBlobUploadInvalid, "content range %q does not continue the upload at %d", cr, u.size)
			}
		}
		if err := r.appendTo(u, req.Body, req.ContentLength); err != nil {
			return err
		}
		r.setUploadHeaders(w, u)
		w.WriteHeader(http.StatusAccepted)
		return nil
	case http.MethodPut:
		d, err := parseDigest(req.URL.Query().Get("digest"))
		if err != nil {
			return err
		}
		if cr := req.Header.Get("Content-Range"); cr != "" {
			start, _, ok := parseContentRange(cr)
			if !ok || start != u.size {
				r.setUploadHeaders(w, u)
				return ociErr(http.StatusRequestedRangeNotSatisfiable, codeBlobUploadInvalid, "content range %q does not continue the upload at %d", cr, u.size)
			}
		}
		if req.ContentLength != 0 {
			if err := r.appendTo(u, req.Body, req.ContentLength); err != nil {
				return err
			}
		}
		if err := r.finish(ctx, u, d); err != nil {
			var oe *ociError
			if errors.As(err, &oe) {
				u.discard()
				r.forget(u)
			}
			return err
		}
		r.forget(u)
		r.replicateSoon(d) // peers.go
		w.Header().Set("Location", "/v2/"+rt.name+"/blobs/"+d.String())
		w.Header().Set("Docker-Content-Digest", d.String())
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusCreated)
		return nil
	}
	methodNotAllowed(w)
	return nil
}

// parseContentRange parses "start-end" (inclusive), with or without a
// "bytes " prefix.
func parseContentRange(s string) (start, end int64, ok bool) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "bytes ")
	a, b, found := strings.Cut(s, "-")
	if !found {
		return 0, 0, false
	}
	start, err1 := strconv.ParseInt(a, 10, 64)
	end, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || start < 0 || end < start {
		return 0, 0, false
	}
	return start, end, true
}

// serveBlob handles GET/HEAD/DELETE /v2/<name>/blobs/<digest>.
func (r *Registry) serveBlob(ctx context.Context, w http.ResponseWriter, req *http.Request, rt *route, p *principal) error {
	d, err := parseDigest(rt.ref)
	if err != nil {
		return err
	}
	if req.Method == http.MethodDelete {
		if _, err := store.CmdRegUnlinkBlobs.Propose(ctx, r.prop, store.RegUnlinkBlobs{Links: []store.RegLink{{Repo: rt.name, Digest: d.String()}}}); err != nil {
			if store.ErrorCode(err) == store.ENotFound {
				return errBlobUnknown
			}
			return err
		}
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusAccepted)
		return nil
	}
	link, err := r.st.RegBlobLink(rt.name, d.String())
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return errBlobUnknown
		}
		return err
	}
	f, err := r.blobs.open(d)
	if errors.Is(err, fs.ErrNotExist) && req.Method == http.MethodGet && req.Header.Get("Range") == "" && link.Size >= streamMin {
		// Large and held elsewhere: serve it while it is fetched (stream.go).
		if r.streamFromPeer(ctx, w, d, link.Size) {
			return nil
		}
		f, err = r.blobs.open(d)
	}
	if errors.Is(err, fs.ErrNotExist) {
		// Linked here but stored on other nodes: fetch it (peers.go).
		if ok, ferr := r.ensureLocal(ctx, d); ferr != nil || !ok {
			return r.missingBlob(d)
		}
		f, err = r.blobs.open(d)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return errBlobUnknown
	}
	if err != nil {
		return err
	}
	defer f.Close()
	if req.Method == http.MethodHead {
		r.blobs.touch(d, r.now())
	}
	h := w.Header()
	h.Set("Docker-Content-Digest", d.String())
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Etag", `"`+d.String()+`"`)
	h.Set("Cache-Control", "max-age=31536000")
	if fi, err := f.Stat(); err == nil && copyBody(req, fi.Size()) {
		// The status is sent: a failure now can only cut the body short.
		if err := sendCopied(w, f, fi.Size()); err != nil {
			r.log.Debug("blob body cut short", "digest", d, "err", err)
		}
		return nil
	}
	http.ServeContent(w, req, "", time.Time{}, f)
	return nil
}

// expireUploads removes sessions idle for longer than UploadTTL and
// returns their ids.
func (r *Registry) expireUploads(dryRun bool) ([]string, error) {
	cutoff := r.now().Add(-r.cfg.UploadTTL)
	entries, err := os.ReadDir(r.blobs.tmp)
	if err != nil {
		return nil, fmt.Errorf("list uploads: %w", err)
	}
	var expired []string
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), ".data")
		if !ok {
			continue
		}
		r.upMu.Lock()
		u, live := r.uploads[id]
		r.upMu.Unlock()
		if live {
			u.mu.Lock()
			if !u.gone && u.touched.Before(cutoff) {
				expired = append(expired, id)
				if !dryRun {
					u.discard()
					r.forget(u)
				}
			}
			u.mu.Unlock()
			continue
		}
		info, err := e.Info()
		if err != nil || !info.ModTime().Before(cutoff) {
			continue
		}
		expired = append(expired, id)
		if !dryRun {
			os.Remove(filepath.Join(r.blobs.tmp, id+".data"))
			os.Remove(filepath.Join(r.blobs.tmp, id+".json"))
		}
	}
	return expired, nil
}
