package node

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

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

// images wires the node's registry to its runner: it pins job images to
// digests in the local registry and gives the runner its pull credential.
type images struct {
	reg  *registry.Registry
	st   *store.Store
	log  *slog.Logger
	host string // host:port Docker pulls this node's registry from (loopback)
	auth string // X-Registry-Auth for the node credential

	mu   sync.Mutex
	pins map[runner.Key]string // attempt -> the reference it was first handed to the runner with
}

// openRegistry starts the registry under DATA/registry; nodeSecret is the
// runner's pull credential (user registry.NodeUser).
func (n *Node) openRegistry(nodeSecret string) error {
	host, err := loopbackHost(n.cfg.HTTPAddr)
	if err != nil {
		return err
	}
	cfg := registry.Config{
		Dir: filepath.Join(n.cfg.DataDir, "registry"), Store: n.store, Proposer: n, Auth: n.auth,
		NodeSecret: nodeSecret, Logger: n.log, Hosts: n.registryHosts(host),
		NodeName: n.cfg.Name, Peers: peers{n}, // peers.go
	}
	for env, dst := range map[string]*time.Duration{envGCGrace: &cfg.GCGrace, envUploadTTL: &cfg.UploadTTL} {
		if v := os.Getenv(env); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return fmt.Errorf("%s=%q: want a positive duration", env, v)
			}
			*dst = d
		}
	}
	reg, err := registry.New(cfg)
	if err != nil {
		return fmt.Errorf("start registry: %w", err)
	}
	b, err := json.Marshal(map[string]string{"username": registry.NodeUser, "password": nodeSecret, "serveraddress": host})
	if err != nil {
		reg.Close()
		return fmt.Errorf("encode registry credential: %w", err)
	}
	n.images = &images{reg: reg, st: n.store, log: n.log.With("component", "images"), host: host,
		auth: base64.URLEncoding.EncodeToString(b), pins: map[runner.Key]string{}}
	return nil
}

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
func (n *Node) registryHosts(loopback string) []string {
	_, port, _ := net.SplitHostPort(loopback)
	hosts := []string{loopback, net.JoinHostPort("localhost", port)}
	if adv, err := n.advertiseHost(); err == nil {
		hosts = append(hosts, net.JoinHostPort(adv, port))
	}
	if h, _, err := net.SplitHostPort(n.cfg.HTTPAddr); err == nil && h != "" {
		hosts = append(hosts, n.cfg.HTTPAddr)
	}
	return hosts
}

// seedToolbox makes gantry/toolbox:latest in the registry the image built
// from this very binary, importing it when it is missing or different.
func (n *Node) seedToolbox(ctx context.Context) error {
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
	marker := filepath.Join(n.cfg.DataDir, "toolbox-source")
	if b, err := os.ReadFile(marker); err == nil {
		if src, man, ok := strings.Cut(strings.TrimSpace(string(b)), " "); ok && src == exeSum.String() {
			if ok, err := n.toolboxPresent(digest.Digest(man), nil); err != nil || ok {
				return err
			}
		}
	}
	img, err := toolbox.Build(exe)
	if err != nil {
		return fmt.Errorf("build toolbox image: %w", err)
	}
	ok, err := n.toolboxPresent(img.ManifestDigest, []digest.Digest{img.LayerDigest, img.ConfigDigest})
	if err != nil {
		return err
	}
	if !ok {
		layers := map[digest.Digest]io.Reader{img.LayerDigest: bytes.NewReader(img.Layer)}
		if err := n.images.reg.ImportImage(ctx, registry.SystemOwner, toolboxRepo, toolboxTag, v1.MediaTypeImageManifest,
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
func (n *Node) toolboxPresent(manifest digest.Digest, blobs []digest.Digest) (bool, error) {
	t, err := n.store.RegTag(toolboxRepo, toolboxTag)
	if errors.Is(err, store.ErrNotFound) || (err == nil && t.Digest != manifest.String()) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read %s:%s: %w", toolboxRepo, toolboxTag, err)
	}
	if blobs == nil {
		m, err := n.store.RegManifest(toolboxRepo, manifest.String())
		if err != nil {
			return false, nil
		}
		for _, b := range m.Blobs {
			blobs = append(blobs, digest.Digest(b))
		}
	}
	for _, d := range blobs {
		ok, err := n.images.reg.HasBlob(d)
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

// registryAuth is the runner's RegistryAuth: the node credential for pulls
// from this node's registry, nothing for other registries.
func (im *images) registryAuth(ref string) string {
	if strings.HasPrefix(ref, im.host+"/") {
		return im.auth
	}
	return ""
}

// pinImages rewrites the images of specs that name this registry (see
// Registry.LocalRef) to host/repo@digest, so Docker pulls over loopback and a
// tag moved later does not change an attempt. An attempt keeps the reference
// it was first given; pins of attempts no longer wanted are dropped.
func (im *images) pinImages(ctx context.Context, specs []runner.Spec) {
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
func (im *images) resolve(ctx context.Context, image string) (ref string, pinned bool) {
	repo, d, err := im.reg.Resolve(ctx, registry.NodeUser, false, image)
	if err == nil {
		return im.host + "/" + repo + "@" + d, true
	}
	if store.ErrorCode(err) != store.ENotFound {
		im.log.Warn("resolve job image", "image", image, "err", err)
	}
	return im.host + "/" + image, false
}

// prepullToolbox pulls gantry/toolbox into Docker in the background once the
// HTTP server (and so the registry) is serving, so the first job that uses it
// starts at once.
func (n *Node) prepullToolbox(ctx context.Context) {
	ref, pinned := n.images.resolve(ctx, toolboxRepo+":"+toolboxTag)
	if !pinned {
		return
	}
	if err := n.runner.Pull(ctx, ref); err != nil && ctx.Err() == nil {
		n.log.Warn("pre-pull of the toolbox image failed; the first job will pull it", "err", err)
	}
}
