// Package images connects a node's registry to its runner: it opens the
// registry, seeds gantry/toolbox (the image built from this very binary),
// pins job images to digests in the local registry so Docker pulls them
// over loopback, and gives the runner the node's pull credential. The
// registry itself (package registry) and the containers (package runner)
// are not its concern.
package images

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/prometheus/client_golang/prometheus"

	"gantry/node/registry"
	"gantry/node/runner"
	"gantry/node/toolbox"
	"gantry/store"
)

// Environment variables that shorten the registry's clean-up delays; meant
// for tests, which cannot wait the default hour.
const (
	envGCGrace   = "GANTRY_REGISTRY_GC_GRACE"   // registry.Config.GCGrace, e.g. "2s"
	envUploadTTL = "GANTRY_REGISTRY_UPLOAD_TTL" // registry.Config.UploadTTL
)

const (
	toolboxRepo = registry.SystemOwner + "/toolbox"
	toolboxTag  = "latest"
)

// Images is a node's registry as its runner sees it.
type Images struct {
	reg     *registry.Registry
	st      *store.Store
	log     *slog.Logger
	host    string // host:port Docker pulls this node's registry from (loopback)
	dataDir string
	auth    string // X-Registry-Auth for the node credential

	mu   sync.Mutex
	pins map[runner.Key]string // attempt -> the reference it was first handed to the runner with
}

// Config says where the registry lives and what it is wired to.
type Config struct {
	DataDir   string // the node's data dir; the registry is DATA/registry
	HTTPAddr  string // the node's --http address (the registry is on it)
	Advertise string // the node's advertise host
	NodeName  string
	// NodeSecret is the runner's pull credential (user registry.NodeUser).
	NodeSecret string
	Store      *store.Store
	Proposer   store.Proposer
	Auth       registry.Authenticator
	Peers      registry.Peers
	Logger     *slog.Logger
	// OnManifest is told of each image manifest stored (registry.Config).
	OnManifest func(ctx context.Context, repo string, m *store.RegManifest)
	// Registerer receives the registry's metrics (nil: none).
	Registerer prometheus.Registerer
	// Space refuses uploads on a nearly full disk (registry.Config).
	Space registry.Space
}

// Open starts the registry under DATA/registry.
func Open(c Config) (*Images, error) {
	host, err := loopbackHost(c.HTTPAddr)
	if err != nil {
		return nil, err
	}
	cfg := registry.Config{
		Dir: filepath.Join(c.DataDir, "registry"), Store: c.Store, Proposer: c.Proposer, Auth: c.Auth,
		NodeSecret: c.NodeSecret, Logger: c.Logger, Hosts: registryHosts(host, c.HTTPAddr, c.Advertise),
		NodeName: c.NodeName, Peers: c.Peers, OnManifest: c.OnManifest, Registerer: c.Registerer, Space: c.Space,
	}
	for env, dst := range map[string]*time.Duration{envGCGrace: &cfg.GCGrace, envUploadTTL: &cfg.UploadTTL} {
		if v := os.Getenv(env); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return nil, fmt.Errorf("%s=%q: want a positive duration", env, v)
			}
			*dst = d
		}
	}
	reg, err := registry.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("start registry: %w", err)
	}
	b, err := json.Marshal(map[string]string{"username": registry.NodeUser, "password": c.NodeSecret, "serveraddress": host})
	if err != nil {
		reg.Close()
		return nil, fmt.Errorf("encode registry credential: %w", err)
	}
	return &Images{reg: reg, st: c.Store, log: c.Logger.With("component", "images"), host: host,
		dataDir: c.DataDir, auth: base64.URLEncoding.EncodeToString(b), pins: map[runner.Key]string{}}, nil
}

// Registry is the node's registry.
func (im *Images) Registry() *registry.Registry { return im.reg }

// Close closes the registry.
func (im *Images) Close() error { return im.reg.Close() }

// loopbackHost is the host:port the local Docker Engine reaches this node's
// HTTP listener at. Docker treats 127.0.0.0/8 registries as insecure (plain
// HTTP) without daemon configuration.
func loopbackHost(httpAddr string) (string, error) {
	host, port, err := net.SplitHostPort(httpAddr)
	if err != nil {
		return "", fmt.Errorf("--http %q: %w", httpAddr, err)
	}
	switch host {
	case "", "0.0.0.0", "::", "localhost":
		host = "127.0.0.1"
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() && ip.To4() == nil {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}

// registryHosts are the host:port names that reach this node's registry, so
// a job image like 127.0.0.1:7070/alice/tool is checked and pinned like
// alice/tool (and never pulled with the node's credential unchecked).
func registryHosts(loopback, httpAddr, advertise string) []string {
	_, port, _ := net.SplitHostPort(loopback)
	hosts := []string{loopback, net.JoinHostPort("localhost", port)}
	if advertise != "" {
		hosts = append(hosts, net.JoinHostPort(advertise, port))
	}
	if h, _, err := net.SplitHostPort(httpAddr); err == nil && h != "" {
		hosts = append(hosts, httpAddr)
	}
	return hosts
}

// SeedToolbox makes gantry/toolbox:latest in the registry the image built
// from this very binary, importing it when it is missing or different.
func (im *Images) SeedToolbox(ctx context.Context) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own executable: %w", err)
	}
	// Building the image packs (and gzips) the whole binary; remember which
	// binary the registry's toolbox was built from, so a restart of the same
	// binary only hashes it.
	exeSum, err := fileDigest(exe)
	if err != nil {
		return fmt.Errorf("hash own executable: %w", err)
	}
	marker := filepath.Join(im.dataDir, "toolbox-source")
	if b, err := os.ReadFile(marker); err == nil {
		if src, man, ok := strings.Cut(strings.TrimSpace(string(b)), " "); ok && src == exeSum.String() {
			if ok, err := im.toolboxPresent(digest.Digest(man), nil); err != nil || ok {
				return err
			}
		}
	}
	img, err := toolbox.Build(exe)
	if err != nil {
		return fmt.Errorf("build toolbox image: %w", err)
	}
	ok, err := im.toolboxPresent(img.ManifestDigest, []digest.Digest{img.LayerDigest, img.ConfigDigest})
	if err != nil {
		return err
	}
	if !ok {
		layers := map[digest.Digest]io.Reader{img.LayerDigest: bytes.NewReader(img.Layer)}
		if err := im.reg.ImportImage(ctx, registry.SystemOwner, toolboxRepo, toolboxTag, v1.MediaTypeImageManifest,
			img.Manifest, img.Config, layers); err != nil {
			return fmt.Errorf("import toolbox image: %w", err)
		}
	}
	if err := os.WriteFile(marker, []byte(exeSum.String()+" "+img.ManifestDigest.String()+"\n"), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", marker, err)
	}
	return nil
}

// toolboxPresent reports whether gantry/toolbox:latest points at manifest
// and this node holds its blob files (tags are cluster-wide, blobs per node,
// and the runner pulls from its own node). Without blobs given, they are
// read from the stored manifest.
func (im *Images) toolboxPresent(manifest digest.Digest, blobs []digest.Digest) (bool, error) {
	t, err := im.st.RegTag(toolboxRepo, toolboxTag)
	if errors.Is(err, store.ErrNotFound) || (err == nil && t.Digest != manifest.String()) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read %s:%s: %w", toolboxRepo, toolboxTag, err)
	}
	if blobs == nil {
		m, err := im.st.RegManifest(toolboxRepo, manifest.String())
		if err != nil {
			return false, nil
		}
		for _, b := range m.Blobs {
			blobs = append(blobs, digest.Digest(b))
		}
	}
	for _, d := range blobs {
		ok, err := im.reg.HasBlob(d)
		if err != nil {
			return false, fmt.Errorf("check toolbox blob %s: %w", d, err)
		}
		if !ok {
			return false, nil
		}
	}
	return true, nil
}

// fileDigest is the sha256 of a file's content.
func fileDigest(path string) (digest.Digest, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return digest.SHA256.FromReader(f)
}

// RegistryAuth is the runner's RegistryAuth: the node credential for pulls
// from this node's registry, nothing for other registries.
func (im *Images) RegistryAuth(ref string) string {
	if strings.HasPrefix(ref, im.host+"/") {
		return im.auth
	}
	return ""
}

// PinImages rewrites the images of specs that name this registry (see
// Registry.LocalRef) to host/repo@digest, so Docker pulls over loopback and a
// tag moved later does not change an attempt. An attempt keeps the reference
// it was first given; pins of attempts no longer wanted are dropped.
func (im *Images) PinImages(ctx context.Context, specs []runner.Spec) {
	im.mu.Lock()
	defer im.mu.Unlock()
	keep := make(map[runner.Key]bool, len(specs))
	for i := range specs {
		s := &specs[i]
		keep[s.Key] = true
		local, ok := im.reg.LocalRef(s.Image)
		if !ok {
			continue
		}
		if ref, ok := im.pins[s.Key]; ok {
			s.Image = ref
			continue
		}
		ref, pinned := im.resolve(ctx, local)
		if pinned {
			im.pins[s.Key] = ref
		}
		s.Image = ref
	}
	for k := range im.pins {
		if !keep[k] {
			delete(im.pins, k)
		}
	}
}

// resolve maps a local reference to host/repo@digest. When the tag or
// manifest is gone it still points at this registry (never at Docker Hub),
// so the pull fails as image_pull_failed; pinned is false then.
func (im *Images) resolve(ctx context.Context, image string) (ref string, pinned bool) {
	repo, d, err := im.reg.Resolve(ctx, registry.NodeUser, false, image)
	if err == nil {
		return im.host + "/" + repo + "@" + d, true
	}
	if store.ErrorCode(err) != store.ENotFound {
		im.log.Warn("resolve job image", "image", image, "err", err)
	}
	return im.host + "/" + image, false
}

// PrepullToolbox pulls gantry/toolbox into Docker once the HTTP server
// (and so the registry) is serving, so the first job that uses it starts at
// once.
func (im *Images) PrepullToolbox(ctx context.Context, pull func(ctx context.Context, ref string) error) {
	ref, pinned := im.resolve(ctx, toolboxRepo+":"+toolboxTag)
	if !pinned {
		return
	}
	if err := pull(ctx, ref); err != nil && ctx.Err() == nil {
		im.log.Warn("pre-pull of the toolbox image failed; the first job will pull it", "err", err)
	}
}

// Manifest is the stored manifest repo@digest (datacache.Blobs).
func (im *Images) Manifest(repo, d string) ([]byte, error) {
	m, err := im.st.RegManifest(repo, d)
	if err != nil {
		return nil, fmt.Errorf("manifest %s@%s: %w", repo, d, err)
	}
	return m.Content, nil
}

// Blob opens blob d on this node, fetching it from a peer that holds it
// first when this node does not (datacache.Blobs).
func (im *Images) Blob(ctx context.Context, d digest.Digest) (*os.File, error) {
	f, err := im.reg.OpenBlob(d)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return f, err
	}
	if err := im.reg.PullBlob(ctx, d, ""); err != nil {
		return nil, fmt.Errorf("fetch blob %s from the other nodes: %w", d, err)
	}
	return im.reg.OpenBlob(d)
}
