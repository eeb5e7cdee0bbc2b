// Package registry is Gantry's built-in OCI image registry: the
// distribution-spec v1.1 HTTP API under /v2/, the Docker token endpoint
// (/v2/token), content-addressed blob files on this node's disk, upload
// sessions, image import and garbage collection.
//
// It owns blob bytes and upload sessions. It does not own metadata:
// repositories, manifests, tags, blob links and referrers are records in the
// replicated store, changed only through the Proposer. It does not route
// (the node mounts it at /v2/) and it does not know users' passwords (the
// Authenticator does).
package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus"

	"gantry/store"
)

// Authenticator checks a user's password or API token. It returns an
// *store.Error with code EUnauthorized for bad credentials.
type Authenticator interface {
	Authenticate(ctx context.Context, username, secret string) (user string, admin bool, err error)
}

// NodeUser is the user name the node's runner pulls with (with
// Config.NodeSecret); it may read every repository.
const NodeUser = "gantry-node"

// SystemOwner owns the repositories seeded by Gantry; every authenticated
// user may read them.
const SystemOwner = "gantry"

// Defaults for the optional Config fields.
const (
	DefaultMaxManifestSize = 4 << 20
	DefaultUploadTTL       = 24 * time.Hour
	DefaultMaxUploads      = 64 // open upload sessions per user
	DefaultGCGrace         = time.Hour
	DefaultTokenTTL        = 5 * time.Minute
)

// Space is what uploads need of the node's disk-space guard.
type Space interface {
	Check() error        // nil while the disk has more than its reserve free
	Fits(n uint64) error // nil while n more bytes leave the reserve free
}

// noReserve is the Space of a registry without a guard.
type noReserve struct{}

func (noReserve) Check() error      { return nil }
func (noReserve) Fits(uint64) error { return nil }

// Config configures a Registry.
type Config struct {
	Dir      string         // blob files, upload sessions and the token key live here
	Store    *store.Store   // read side of the replicated metadata
	Proposer store.Proposer // write side of the replicated metadata
	// Space refuses uploads once the node's disk is down to its reserve
	// of free space (node/diskspace); nil: no reserve.
	Space      Space
	Auth       Authenticator // checks passwords and API tokens
	Logger     *slog.Logger  // nil: slog.Default()
	NodeSecret string        // the runner's secret for user NodeUser; empty disables it
	Realm      string        // external base URL for WWW-Authenticate; empty: from the request
	// Hosts are the host:port names that reach this registry (e.g.
	// "127.0.0.1:7070"); an image reference starting with one is local.
	Hosts []string

	MaxManifestSize int64         // 0: DefaultMaxManifestSize
	UploadTTL       time.Duration // idle upload sessions older than this are removed; 0: DefaultUploadTTL
	MaxUploads      int           // open upload sessions per user (uploads.go); 0: DefaultMaxUploads
	GCGrace         time.Duration // blobs linked or touched more recently are never collected; 0: DefaultGCGrace
	TokenTTL        time.Duration // bearer token lifetime; 0: DefaultTokenTTL
	Now             func() time.Time

	// NodeName is this node's name, recorded as a holder of the blobs it
	// stores; Peers (nil: blobs live only here) fetches blobs this node
	// lacks from other nodes and keeps pushes on two nodes (peers.go).
	NodeName string
	Peers    Peers
	// OnManifest, when set, is told of every image manifest stored (not
	// of artifacts referring to another manifest), after the push has
	// been answered: the catalog attaches licence notices to it.
	OnManifest func(ctx context.Context, repo string, m *store.RegManifest)

	// Registerer receives the registry's metrics (nil: none).
	Registerer prometheus.Registerer
}

// Registry serves the OCI distribution API. Create it with New.
type Registry struct {
	cfg   Config
	st    *store.Store
	prop  store.Proposer
	log   *slog.Logger
	blobs *blobStore
	now   func() time.Time

	tokenKey []byte

	upMu    sync.Mutex
	uploads map[string]*upload

	gcMu sync.Mutex // one collection at a time

	fetchMu sync.Mutex
	fetches map[digest.Digest]*fetchCall // peer fetches in flight (peers.go)
	copies  map[digest.Digest]*fetchCall // copies to a peer in flight (peers.go)

	pullMu  sync.Mutex
	pulls   map[string]int64 // manifest pulls by others since TakePulls
	metrics *requestMetrics  // nil without a Registerer

	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// countPull counts a manifest pull by someone other than the repository's
// owner and the nodes (the catalog's pull counts).
func (r *Registry) countPull(repo string, p *principal) {
	if p == nil || p.node || p.user == "" || p.user == ownerOf(repo) {
		return
	}
	r.pullMu.Lock()
	if r.pulls == nil {
		r.pulls = map[string]int64{}
	}
	r.pulls[repo]++
	r.pullMu.Unlock()
}

// TakePulls returns the pulls counted since the last call and starts
// counting again.
func (r *Registry) TakePulls() map[string]int64 {
	r.pullMu.Lock()
	defer r.pullMu.Unlock()
	out := r.pulls
	r.pulls = nil
	return out
}

var _ http.Handler = (*Registry)(nil)

// New creates the registry's directories and token key under cfg.Dir and
// starts the janitor that expires upload sessions.
func New(cfg Config) (*Registry, error) {
	if cfg.Dir == "" || cfg.Store == nil || cfg.Proposer == nil || cfg.Auth == nil {
		return nil, errors.New("registry: Dir, Store, Proposer and Auth are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Space == nil {
		cfg.Space = noReserve{}
	}
	if cfg.MaxManifestSize <= 0 {
		cfg.MaxManifestSize = DefaultMaxManifestSize
	}
	if cfg.MaxUploads <= 0 {
		cfg.MaxUploads = DefaultMaxUploads
	}
	if cfg.UploadTTL <= 0 {
		cfg.UploadTTL = DefaultUploadTTL
	}
	if cfg.GCGrace <= 0 {
		cfg.GCGrace = DefaultGCGrace
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = DefaultTokenTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Realm = strings.TrimSuffix(cfg.Realm, "/")
	bs, err := newBlobStore(filepath.Join(cfg.Dir, "blobs"), filepath.Join(cfg.Dir, "uploads"))
	if err != nil {
		return nil, err
	}
	key, err := loadOrCreateKey(filepath.Join(cfg.Dir, "token.key"))
	if err != nil {
		return nil, err
	}
	r := &Registry{
		cfg: cfg, st: cfg.Store, prop: cfg.Proposer, log: cfg.Logger.With("component", "registry"),
		blobs: bs, now: cfg.Now, tokenKey: key,
		uploads: map[string]*upload{},
		stop:    make(chan struct{}),
		metrics: newRequestMetrics(cfg.Registerer),
	}
	r.wg.Add(1)
	go r.janitor()
	return r, nil
}

// Close stops the janitor and closes open upload files. Uploads stay on disk
// and can be resumed after a restart until they expire.
func (r *Registry) Close() error {
	r.once.Do(func() { close(r.stop) })
	r.wg.Wait()
	r.upMu.Lock()
	defer r.upMu.Unlock()
	for id, u := range r.uploads {
		u.mu.Lock()
		u.closeFile()
		u.mu.Unlock()
		delete(r.uploads, id)
	}
	return nil
}

func (r *Registry) janitor() {
	defer r.wg.Done()
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			if _, err := r.expireUploads(false); err != nil {
				r.log.Warn("expire uploads", "err", err)
			}
		}
	}
}

// ServeHTTP serves /v2/ (the distribution API) and /v2/token, counting
// each answer in gantry_registry_requests_total when Config.Registerer is
// set.
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if r.metrics == nil {
		r.serve(w, req)
		return
	}
	sw := &statusWriter{ResponseWriter: w}
	r.serve(sw, req)
	if sw.status == 0 {
		sw.status = http.StatusOK // a handler that wrote nothing answers 200
	}
	r.metrics.observe(req.Method, sw.status)
}

func (r *Registry) serve(w http.ResponseWriter, req *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	p, ok := strings.CutPrefix(req.URL.Path, "/v2/")
	if !ok {
		if req.URL.Path != "/v2" {
			r.writeError(w, req, ociErr(http.StatusNotFound, codeNameUnknown, "not found"))
			return
		}
		p = ""
	}
	rt, err := parseRoute(p)
	if rt != nil && rt.kind == routeToken {
		r.serveToken(w, req)
		return
	}
	pr, aerr := r.authenticate(req)
	if aerr != nil {
		r.writeError(w, req, aerr)
		return
	}
	if pr == nil {
		scope := ""
		if rt != nil && rt.name != "" {
			scope = scopeFor(rt, req.Method)
		}
		r.challenge(w, req, scope)
		r.writeError(w, req, ociErr(http.StatusUnauthorized, codeUnauthorized, "authentication required"))
		return
	}
	if err != nil {
		r.writeError(w, req, err)
		return
	}
	if rt == nil {
		r.writeError(w, req, ociErr(http.StatusNotFound, codeNameUnknown, "not found"))
		return
	}
	ctx := req.Context()
	switch rt.kind {
	case routeBase:
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			methodNotAllowed(w)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "2")
		w.WriteHeader(http.StatusOK)
		if req.Method == http.MethodGet {
			w.Write([]byte("{}"))
		}
		return
	case routeCatalog:
		if req.Method != http.MethodGet {
			methodNotAllowed(w)
			return
		}
		err = r.serveCatalog(w, req, pr)
	default:
		action := actionFor(rt, req.Method)
		if action == "" {
			methodNotAllowed(w)
			return
		}
		if err = r.authorize(w, req, pr, rt.name, action); err != nil {
			break
		}
		switch rt.kind {
		case routeBlob:
			err = r.serveBlob(ctx, w, req, rt, pr)
		case routeUploadStart:
			err = r.startUpload(ctx, w, req, rt, pr)
		case routeUpload:
			err = r.serveUpload(ctx, w, req, rt, pr)
		case routeManifest:
			err = r.serveManifest(ctx, w, req, rt, pr)
		case routeTags:
			err = r.serveTags(w, req, rt)
		case routeReferrers:
			err = r.serveReferrers(w, req, rt)
		}
	}
	if err != nil {
		r.writeError(w, req, err)
	}
}

func methodNotAllowed(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusMethodNotAllowed)
	w.Write([]byte(`{"errors":[{"code":"UNSUPPORTED","message":"method not allowed"}]}`))
}

// actionFor returns the scope action a request needs: pull, push or delete.
func actionFor(rt *route, method string) string {
	switch method {
	case http.MethodGet, http.MethodHead:
		return "pull"
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		if rt.kind == routeUploadStart || rt.kind == routeUpload || rt.kind == routeManifest {
			return "push"
		}
	case http.MethodDelete:
		switch rt.kind {
		case routeUpload:
			return "push"
		case routeBlob, routeManifest:
			return "delete"
		}
	}
	return ""
}

func scopeFor(rt *route, method string) string {
	a := actionFor(rt, method)
	switch a {
	case "":
		return ""
	case "pull":
		return "repository:" + rt.name + ":pull"
	case "delete":
		return "repository:" + rt.name + ":delete"
	default:
		return "repository:" + rt.name + ":pull,push"
	}
}

func ensureDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	return nil
}
