// Package datacache is a node's cache of unpacked job inputs: each
// artifact (by manifest digest) is materialised once into a directory
// under the node's data dir, shared read-only by every task on the node
// that reads it, and evicted, least recently used first, when the cache
// outgrows its cap and no task holds it.
//
// It owns the cache directory and the reference counts. It does not own
// the blobs (the registry's store, which fetches missing ones from peers),
// the artifact format or the unpacking rules (package data), or the mounts
// (the runner). data/DESIGN.md describes the layout.
package datacache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus"

	"gantry/data"
)

// Blobs is where the cache reads artifacts from: this node's registry.
type Blobs interface {
	// Manifest returns the manifest repo@digest.
	Manifest(repo, digest string) ([]byte, error)
	// Blob opens blob d, fetching it from a peer first when this node
	// lacks it.
	Blob(ctx context.Context, d digest.Digest) (*os.File, error)
}

// DefaultMaxBytes is the cap when Config.MaxBytes is 0.
const DefaultMaxBytes = 20 << 30

// Config configures a Cache.
type Config struct {
	Dir      string // the cache's directory (DATA/data-cache)
	MaxBytes int64  // evict down to this; 0: DefaultMaxBytes
	Blobs    Blobs
	Logger   *slog.Logger
	// Registerer receives the cache's metrics (nil: none).
	Registerer prometheus.Registerer
	Now        func() time.Time
}

// Cache is a node's cache of unpacked artifacts. Create it with Open.
type Cache struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	entries map[string]*entry // by manifest digest
	total   int64             // bytes of the entries materialised
	counts  Stats             // Unpacks, Hits, Evictions since Open

	unpacks, hits, evictions prometheus.Counter
	bytes                    prometheus.GaugeFunc
}

type entry struct {
	digest string
	repo   string
	size   int64
	refs   int
	used   time.Time
	ready  chan struct{} // closed once materialised or failed
	err    error
}

// meta is the sidecar file written beside an artifact's tree.
type meta struct {
	Repo string `json:"repo"`
	Size int64  `json:"size"`
}

// Open makes the cache's directories, removes what an interrupted
// materialisation left, and takes up the artifacts already there.
func Open(cfg Config) (*Cache, error) {
	if cfg.Dir == "" || cfg.Blobs == nil {
		return nil, errors.New("datacache: Dir and Blobs are required")
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := &Cache{cfg: cfg, log: cfg.Logger.With("component", "datacache"), entries: map[string]*entry{},
		unpacks:   prometheus.NewCounter(prometheus.CounterOpts{Name: "gantry_data_cache_unpacks_total", Help: "Artifacts materialised into the node's input cache."}),
		hits:      prometheus.NewCounter(prometheus.CounterOpts{Name: "gantry_data_cache_hits_total", Help: "Task inputs served from an artifact already in the cache."}),
		evictions: prometheus.NewCounter(prometheus.CounterOpts{Name: "gantry_data_cache_evictions_total", Help: "Artifacts removed from the input cache to stay under its cap."}),
	}
	c.bytes = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gantry_data_cache_bytes", Help: "Bytes of the artifacts in the node's input cache."},
		func() float64 { c.mu.Lock(); defer c.mu.Unlock(); return float64(c.total) })
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(c.unpacks, c.hits, c.evictions, c.bytes)
	}
	if err := removeTree(c.tmpDir()); err != nil {
		return nil, err
	}
	for _, d := range []string{c.tmpDir(), c.artDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("datacache: %w", err)
		}
	}
	files, err := os.ReadDir(c.artDir())
	if err != nil {
		return nil, fmt.Errorf("datacache: %w", err)
	}
	for _, f := range files {
		name, ok := strings.CutSuffix(f.Name(), ".json")
		if !ok {
			continue
		}
		b, err := os.ReadFile(filepath.Join(c.artDir(), f.Name()))
		var m meta
		if err != nil || json.Unmarshal(b, &m) != nil {
			continue
		}
		info, err := f.Info()
		if err != nil {
			continue
		}
		e := &entry{digest: "sha256:" + name, repo: m.Repo, size: m.Size, used: info.ModTime(), ready: make(chan struct{})}
		close(e.ready)
		c.entries[e.digest] = e
		c.total += e.size
	}
	// A tree without its sidecar was being evicted or never finished.
	for _, f := range files {
		if f.IsDir() && c.entries["sha256:"+f.Name()] == nil {
			removeTree(filepath.Join(c.artDir(), f.Name()))
		}
	}
	return c, nil
}

func (c *Cache) tmpDir() string { return filepath.Join(c.cfg.Dir, "tmp") }
func (c *Cache) artDir() string { return filepath.Join(c.cfg.Dir, "artifacts") }

// Path is where the tree of artifact d lives once materialised.
func (c *Cache) Path(d string) string {
	_, hex, _ := strings.Cut(d, ":")
	return filepath.Join(c.artDir(), hex)
}

// Acquire returns the directory holding artifact repo@d, materialising it
// first if it is not in the cache, and holds it there until release is
// called: an artifact held by a task is never evicted. Concurrent calls
// for one artifact share one materialisation.
func (c *Cache) Acquire(ctx context.Context, repo, d string) (dir string, release func(), err error) {
	dg, err := digest.Parse(d)
	if err != nil || dg.Algorithm() != digest.SHA256 {
		return "", nil, fmt.Errorf("input %s@%s: not a sha256 digest", repo, d)
	}
	c.mu.Lock()
	e, ok := c.entries[d]
	if ok {
		c.hits.Inc()
		c.counts.Hits++
	} else {
		e = &entry{digest: d, repo: repo, ready: make(chan struct{})}
		c.entries[d] = e
		go c.materialise(e)
	}
	e.refs++
	e.used = c.cfg.Now()
	c.mu.Unlock()
	var once sync.Once
	release = func() { once.Do(func() { c.release(e) }) }
	select {
	case <-e.ready:
	case <-ctx.Done():
		release()
		return "", nil, ctx.Err()
	}
	if e.err != nil {
		release()
		return "", nil, e.err
	}
	return c.Path(d), release, nil
}

func (c *Cache) release(e *entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e.refs--
	e.used = c.cfg.Now()
	if e.err != nil && e.refs == 0 && c.entries[e.digest] == e {
		delete(c.entries, e.digest) // the next Acquire tries again
	}
	if e.err == nil {
		t := e.used
		os.Chtimes(filepath.Join(c.artDir(), strings.TrimPrefix(e.digest, "sha256:")+".json"), t, t)
	}
	c.evictLocked()
}

// materialise unpacks an artifact into a temporary directory and renames
// it into place; it runs once per artifact, whoever asked first.
func (c *Cache) materialise(e *entry) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	start := c.cfg.Now()
	size, err := c.unpack(ctx, e)
	c.mu.Lock()
	e.err, e.size = err, size
	if err == nil {
		c.total += size
		c.unpacks.Inc()
		c.counts.Unpacks++
		c.evictLocked()
	} else if e.refs == 0 && c.entries[e.digest] == e {
		delete(c.entries, e.digest)
	}
	c.mu.Unlock()
	if err != nil {
		c.log.Warn("input not materialised", "repo", e.repo, "digest", e.digest, "err", err)
	} else {
		c.log.Info("input materialised", "repo", e.repo, "digest", e.digest, "bytes", size, "took", c.cfg.Now().Sub(start).Round(time.Millisecond))
	}
	close(e.ready)
}

func (c *Cache) unpack(ctx context.Context, e *entry) (int64, error) {
	body, err := c.cfg.Blobs.Manifest(e.repo, e.digest)
	if err != nil {
		return 0, fmt.Errorf("input %s@%s: %w", e.repo, e.digest, err)
	}
	m, err := data.ParseManifest(body)
	if err != nil {
		return 0, fmt.Errorf("input %s@%s: %w", e.repo, e.digest, err)
	}
	src := blobSource{c.cfg.Blobs}
	var cfg []byte
	if data.IsDataset(m) {
		if m.Config.Size > data.MaxConfigSize {
			return 0, fmt.Errorf("input %s@%s: config of %d bytes", e.repo, e.digest, m.Config.Size)
		}
		rc, err := src.Blob(ctx, m.Config.Digest, 0)
		if err != nil {
			return 0, fmt.Errorf("input %s@%s: config: %w", e.repo, e.digest, err)
		}
		cfg, err = io.ReadAll(io.LimitReader(rc, data.MaxConfigSize))
		rc.Close()
		if err != nil {
			return 0, err
		}
	}
	t, err := data.NewTree(m, cfg)
	if err != nil {
		return 0, fmt.Errorf("input %s@%s: %w", e.repo, e.digest, err)
	}
	var b [6]byte
	rand.Read(b[:])
	tmp := filepath.Join(c.tmpDir(), strings.TrimPrefix(e.digest, "sha256:")+"-"+hex.EncodeToString(b[:]))
	if _, err := data.Unpack(ctx, tmp, t, src, data.UnpackOptions{MaxBytes: c.cfg.MaxBytes, Verified: true}); err != nil {
		removeTree(tmp)
		if errors.Is(err, data.ErrTooLarge) {
			return 0, fmt.Errorf("input %s@%s is larger than this node's data cache (%d bytes)", e.repo, e.digest, c.cfg.MaxBytes)
		}
		return 0, fmt.Errorf("input %s@%s: %w", e.repo, e.digest, err)
	}
	size, err := treeSize(tmp)
	if err != nil {
		removeTree(tmp)
		return 0, err
	}
	dst := c.Path(e.digest)
	removeTree(dst)
	if err := os.Rename(tmp, dst); err != nil {
		removeTree(tmp)
		return 0, fmt.Errorf("input %s@%s: %w", e.repo, e.digest, err)
	}
	mb, _ := json.Marshal(meta{Repo: e.repo, Size: size})
	if err := os.WriteFile(dst+".json", mb, 0o644); err != nil {
		return 0, fmt.Errorf("input %s@%s: %w", e.repo, e.digest, err)
	}
	return size, nil
}

// evictLocked removes artifacts no task holds, least recently used first,
// until the cache is under its cap.
func (c *Cache) evictLocked() {
	for c.total > c.cfg.MaxBytes {
		var victim *entry
		for _, e := range c.entries {
			select {
			case <-e.ready:
			default:
				continue
			}
			if e.refs > 0 || e.err != nil {
				continue
			}
			if victim == nil || e.used.Before(victim.used) {
				victim = e
			}
		}
		if victim == nil {
			return
		}
		delete(c.entries, victim.digest)
		c.total -= victim.size
		c.evictions.Inc()
		c.counts.Evictions++
		p := c.Path(victim.digest)
		os.Remove(p + ".json")
		if err := removeTree(p); err != nil {
			c.log.Warn("evict input", "digest", victim.digest, "err", err)
		}
		c.log.Info("input evicted", "repo", victim.repo, "digest", victim.digest, "bytes", victim.size)
	}
}

// Stats is what the cache holds, and what it did since Open.
type Stats struct {
	Artifacts int
	Bytes     int64
	Held      int // artifacts some task holds

	Unpacks, Hits, Evictions int
}

// Stats says what the cache holds now.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.counts
	s.Bytes = c.total
	for _, e := range c.entries {
		if e.err == nil {
			s.Artifacts++
			if e.refs > 0 {
				s.Held++
			}
		}
	}
	return s
}

type blobSource struct{ b Blobs }

func (s blobSource) Blob(ctx context.Context, d digest.Digest, offset int64) (io.ReadCloser, error) {
	f, err := s.b.Blob(ctx, d)
	if err != nil {
		return nil, err
	}
	if offset > 0 {
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			f.Close()
			return nil, err
		}
	}
	return f, nil
}

// treeSize is the bytes of the files under dir.
func treeSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			n += fi.Size()
		}
		return nil
	})
	return n, err
}

// removeTree removes dir even where the artifact made directories
// read-only.
func removeTree(dir string) error {
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o700)
		}
		return nil
	})
	return os.RemoveAll(dir)
}
