package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"gantry/store"
)

// Peers is the registry's view of the other nodes of the cluster: who holds
// a blob, how to read it from them, and how to get a second copy made. The
// node package implements it over the mutual-TLS internal listener; the
// registry knows nothing of the cluster beyond this.
type Peers interface {
	// Holders returns the other nodes recorded as holding blob d, those
	// believed reachable first.
	Holders(d digest.Digest) []string
	// FetchBlob opens the bytes of blob d on node. The caller verifies them.
	FetchBlob(ctx context.Context, node string, d digest.Digest) (io.ReadCloser, error)
	// Copies is how many nodes must hold a blob before a push is
	// acknowledged: 1 on a single-node cluster, else 2.
	Copies() int
	// Replicate asks one other node, not in except, to copy blob d from
	// this node, and returns once it holds it (and recorded so).
	Replicate(ctx context.Context, d digest.Digest, except []string) error
}

// fetchCall is one peer fetch of a blob; concurrent requests for the same
// blob wait on it, and a GET may stream the bytes as they arrive
// (streamFromPeer).
type fetchCall struct {
	done chan struct{}
	err  error // set before done is closed

	mu      sync.Mutex
	changed chan struct{} // closed and replaced when the attempt or its progress moves
	attempt int           // attempts started, one per peer tried
	path    string        // the temporary file of the current attempt
	written int64         // bytes of the current attempt in that file
}

func newFetchCall() *fetchCall {
	return &fetchCall{done: make(chan struct{}), changed: make(chan struct{})}
}

// begin starts a new attempt writing to path.
func (c *fetchCall) begin(path string) {
	c.mu.Lock()
	c.attempt++
	c.path, c.written = path, 0
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

// advance records that the current attempt has n bytes in its file.
func (c *fetchCall) advance(n int64) {
	c.mu.Lock()
	c.written = n
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

// state returns the current attempt, its file and progress, and a channel
// closed at the next change.
func (c *fetchCall) state() (attempt int, path string, written int64, changed <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.attempt, c.path, c.written, c.changed
}

// fetchTimeout bounds one peer fetch (a 500 MiB blob takes seconds).
const fetchTimeout = 30 * time.Minute

// errNoCopy is the answer to a push whose blobs could not be put on a
// second node: the client retries on 503.
func errNoCopy(d digest.Digest, err error) *ociError {
	return &ociError{Status: http.StatusServiceUnavailable, Code: "UNAVAILABLE",
		Message: fmt.Sprintf("blob %s could not be copied to a second node (%v); retry the push", d, err)}
}

// OpenBlob opens a blob this node holds, for a peer. It returns an error
// wrapping fs.ErrNotExist when the blob is not here.
func (r *Registry) OpenBlob(d digest.Digest) (*os.File, error) {
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("open blob: %w", fs.ErrNotExist)
	}
	f, err := r.blobs.open(d)
	if err == nil {
		r.blobs.touch(d, r.now())
	}
	return f, err
}

// PullBlob copies blob d from node (any holder when node is empty) unless
// this node holds it already; the location is recorded. It serves a peer's
// request for a second copy of a pushed blob.
func (r *Registry) PullBlob(ctx context.Context, d digest.Digest, node string) error {
	if err := d.Validate(); err != nil {
		return ociErr(http.StatusBadRequest, codeDigestInvalid, "invalid digest")
	}
	var from []string
	if node != "" {
		from = []string{node}
	}
	return r.fetchBlob(ctx, d, from)
}

// ensureLocal fetches blob d from a peer when this node lacks it. ok is
// false when no peer could provide it (or there are no peers).
func (r *Registry) ensureLocal(ctx context.Context, d digest.Digest) (bool, error) {
	if _, ok, err := r.blobs.stat(d, r.now()); err != nil || ok {
		return ok, err
	}
	if r.cfg.Peers == nil {
		return false, nil
	}
	if err := r.fetchBlob(ctx, d, nil); err != nil {
		if errors.Is(err, errNoHolder) {
			return false, nil
		}
		r.log.Warn("fetch blob from peers", "digest", d, "err", err)
		return false, nil
	}
	return true, nil
}

var errNoHolder = errors.New("no other node holds the blob")

// fetchBlob runs one fetch of d per digest at a time (singleflight); the
// fetch outlives a waiter that gives up.
func (r *Registry) fetchBlob(ctx context.Context, d digest.Digest, from []string) error {
	c := r.startFetch(ctx, d, from)
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// startFetch returns the fetch of d under way, starting one if there is
// none.
func (r *Registry) startFetch(ctx context.Context, d digest.Digest, from []string) *fetchCall {
	r.fetchMu.Lock()
	defer r.fetchMu.Unlock()
	if r.fetches == nil {
		r.fetches = map[digest.Digest]*fetchCall{}
	}
	if c, running := r.fetches[d]; running {
		return c
	}
	c := newFetchCall()
	r.fetches[d] = c
	go func() {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
		c.err = r.doFetch(fctx, d, from, c)
		cancel()
		r.fetchMu.Lock()
		delete(r.fetches, d)
		r.fetchMu.Unlock()
		close(c.done)
	}()
	return c
}

func (r *Registry) doFetch(ctx context.Context, d digest.Digest, from []string, c *fetchCall) error {
	if _, ok, err := r.blobs.stat(d, r.now()); err != nil || ok {
		return err
	}
	if from == nil && r.cfg.Peers != nil {
		from = r.cfg.Peers.Holders(d)
	}
	if len(from) == 0 {
		return errNoHolder
	}
	var errs []error
	for _, node := range from {
		start := time.Now()
		size, err := r.fetchFrom(ctx, node, d, c)
		if err != nil {
			errs = append(errs, fmt.Errorf("from %s: %w", node, err))
			continue
		}
		took := time.Since(start)
		r.log.Info("blob fetched from a peer", "digest", d, "from", node, "bytes", size, "took", took.Round(time.Millisecond),
			"mib_per_s", fmt.Sprintf("%.0f", float64(size)/(1<<20)/max(took.Seconds(), 1e-6)))
		if r.cfg.NodeName != "" {
			if _, err := store.CmdRegBlobLocated.Propose(ctx, r.prop, store.RegBlobLocated{Node: r.cfg.NodeName, Digests: []string{d.String()}}); err != nil {
				return fmt.Errorf("record blob location: %w", err)
			}
		}
		return nil
	}
	return errors.Join(errs...)
}

// fetchFrom streams blob d from node into a temporary file while hashing,
// verifies it, syncs it and moves it into place.
func (r *Registry) fetchFrom(ctx context.Context, node string, d digest.Digest, c *fetchCall) (int64, error) {
	rc, err := r.cfg.Peers.FetchBlob(ctx, node, d)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	tmp := filepath.Join(r.blobs.tmp, newUploadID()+".data")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644)
	if err != nil {
		return 0, fmt.Errorf("create fetch file: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	h := d.Algorithm().Hash()
	c.begin(tmp)
	n, err := copyHashed(f, 0, h, rc, -1, c.advance)
	if err != nil {
		return n, err
	}
	if got := digest.NewDigest(d.Algorithm(), h); got != d {
		return n, fmt.Errorf("content digest %s does not match %s", got, d)
	}
	if err := f.Sync(); err != nil {
		return n, fmt.Errorf("sync fetched blob: %w", err)
	}
	if err := f.Close(); err != nil {
		return n, fmt.Errorf("close fetched blob: %w", err)
	}
	ok = true
	if err := r.blobs.commit(tmp, d, r.now()); err != nil {
		os.Remove(tmp)
		return n, err
	}
	return n, nil
}

// ensureCopies makes sure every blob of a manifest being pushed to repo is
// held by Peers.Copies() nodes before the push is acknowledged: a blob this
// node lacks is fetched here, and a blob only here is copied to one peer.
// It does nothing on a single-node cluster.
func (r *Registry) ensureCopies(ctx context.Context, repo string, blobs []string) error {
	if r.cfg.Peers == nil || len(blobs) == 0 {
		return nil
	}
	want := r.cfg.Peers.Copies()
	if want <= 1 {
		return nil
	}
	for _, b := range blobs {
		d, err := digest.Parse(b)
		if err != nil {
			continue // parseManifest validated; nothing to copy
		}
		if _, err := r.st.RegBlobLink(repo, b); err != nil {
			continue // not linked: the manifest is refused anyway
		}
		if err := r.waitCopy(ctx, d); err != nil {
			return err
		}
		others := r.cfg.Peers.Holders(d)
		local, err := r.ensureLocal(ctx, d)
		if err != nil {
			return err
		}
		have := len(others)
		if local {
			have++ // Holders excludes this node
		}
		if have >= want {
			continue
		}
		if !local {
			return errNoCopy(d, errors.New("no node holds it"))
		}
		if err := r.cfg.Peers.Replicate(ctx, d, others); err != nil {
			return errNoCopy(d, err)
		}
	}
	return nil
}

// PeerGC is one other node's part of a cluster-wide collection.
type PeerGC struct {
	Node         string   `json:"node"`
	DeletedBlobs []string `json:"deleted_blobs,omitempty"`
	FreedBytes   int64    `json:"freed_bytes"`
	Error        string   `json:"error,omitempty"`
}

// PeerCollector is implemented by a Peers that can run the sweep of GC on
// the other nodes (GCLocal there).
type PeerCollector interface {
	CollectPeers(ctx context.Context, dryRun bool) []PeerGC
}

// forgetLocations records that this node no longer holds the blobs a
// collection deleted.
func (r *Registry) forgetLocations(ctx context.Context, rep *GCReport) {
	if rep.DryRun || len(rep.DeletedBlobs) == 0 || r.cfg.NodeName == "" || r.cfg.Peers == nil {
		return
	}
	for i := 0; i < len(rep.DeletedBlobs); i += unlinkBatch {
		batch := rep.DeletedBlobs[i:min(i+unlinkBatch, len(rep.DeletedBlobs))]
		if _, err := store.CmdRegBlobLocated.Propose(ctx, r.prop, store.RegBlobLocated{Node: r.cfg.NodeName, Digests: batch, Gone: true}); err != nil {
			r.log.Warn("gc: forget blob locations", "err", err)
			return
		}
	}
}

// collectPeers runs the sweep on the other nodes and adds their results.
func (r *Registry) collectPeers(ctx context.Context, rep *GCReport) {
	pc, ok := r.cfg.Peers.(PeerCollector)
	if !ok {
		return
	}
	rep.Peers = pc.CollectPeers(ctx, rep.DryRun)
	for _, p := range rep.Peers {
		rep.FreedBytes += p.FreedBytes
	}
}

// ReconcileLocations makes the store's record of the blobs this node holds
// match its disk: blobs stored before locations were recorded (or restored
// from a backup) are announced, records of files that are gone are dropped.
// It returns how many records it added and removed.
func (r *Registry) ReconcileLocations(ctx context.Context) (added, removed int, err error) {
	if r.cfg.NodeName == "" {
		return 0, 0, nil
	}
	recorded, err := r.st.RegBlobsHeldBy(r.cfg.NodeName)
	if err != nil {
		return 0, 0, err
	}
	rec := make(map[string]bool, len(recorded))
	for _, d := range recorded {
		rec[d] = true
	}
	var add []string
	if err := r.blobs.walk(func(d digest.Digest, _ int64) error {
		if !rec[d.String()] {
			add = append(add, d.String())
		}
		delete(rec, d.String())
		return nil
	}); err != nil {
		return 0, 0, err
	}
	var gone []string
	for d := range rec {
		if _, ok, err := r.blobs.stat(digest.Digest(d), r.now()); err == nil && !ok {
			gone = append(gone, d)
		}
	}
	for _, c := range []struct {
		ds   []string
		gone bool
	}{{add, false}, {gone, true}} {
		for i := 0; i < len(c.ds); i += unlinkBatch {
			batch := c.ds[i:min(i+unlinkBatch, len(c.ds))]
			if _, err := store.CmdRegBlobLocated.Propose(ctx, r.prop, store.RegBlobLocated{Node: r.cfg.NodeName, Digests: batch, Gone: c.gone}); err != nil {
				return added, removed, err
			}
			if c.gone {
				removed += len(batch)
			} else {
				added += len(batch)
			}
		}
	}
	return added, removed, nil
}

// replicateSoon starts copying a just-uploaded blob to a peer, so that the
// manifest PUT which follows finds two copies (ensureCopies waits for a copy
// in flight, and makes one itself if this one failed).
func (r *Registry) replicateSoon(d digest.Digest) {
	if r.cfg.Peers == nil || r.cfg.Peers.Copies() <= 1 {
		return
	}
	r.fetchMu.Lock()
	if r.copies == nil {
		r.copies = map[digest.Digest]*fetchCall{}
	}
	if _, ok := r.copies[d]; ok {
		r.fetchMu.Unlock()
		return
	}
	c := &fetchCall{done: make(chan struct{})}
	r.copies[d] = c
	r.fetchMu.Unlock()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
		if len(r.cfg.Peers.Holders(d)) == 0 {
			c.err = r.cfg.Peers.Replicate(ctx, d, nil)
		}
		cancel()
		if c.err != nil {
			r.log.Info("early copy of a pushed blob to a peer failed; the manifest push will retry", "digest", d, "err", c.err)
		}
		r.fetchMu.Lock()
		delete(r.copies, d)
		r.fetchMu.Unlock()
		close(c.done)
	}()
}

// waitCopy waits for replicateSoon's copy of d, if one is in flight.
func (r *Registry) waitCopy(ctx context.Context, d digest.Digest) error {
	r.fetchMu.Lock()
	c := r.copies[d]
	r.fetchMu.Unlock()
	if c == nil {
		return nil
	}
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// missingBlob is the answer for a linked blob this node could not get: 503
// (retry) while other nodes are recorded as holding it, else BLOB_UNKNOWN.
func (r *Registry) missingBlob(d digest.Digest) error {
	if r.cfg.Peers != nil && len(r.cfg.Peers.Holders(d)) > 0 {
		return &ociError{Status: http.StatusServiceUnavailable, Code: "UNAVAILABLE",
			Message: fmt.Sprintf("blob %s is on other nodes, which cannot serve it now; retry", d)}
	}
	return errBlobUnknown
}
