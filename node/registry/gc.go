package registry

import (
	"context"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/opencontainers/go-digest"

	"gantry/store"
)

// GCReport says what a garbage collection removed, or would remove in a
// dry run.
type GCReport struct {
	DryRun         bool            `json:"dry_run"`
	UnlinkedBlobs  []store.RegLink `json:"unlinked_blobs"`  // repository links no manifest referenced
	DeletedBlobs   []string        `json:"deleted_blobs"`   // blob files removed from this node
	FreedBytes     int64           `json:"freed_bytes"`     // size of DeletedBlobs and ExpiredUploads
	ExpiredUploads []string        `json:"expired_uploads"` // upload sessions idle longer than UploadTTL
	KeptBlobs      int             `json:"kept_blobs"`      // blob files still referenced or too young
	// Peers are the other nodes' sweeps (a cluster-wide collection); their
	// freed bytes are included in FreedBytes.
	Peers []PeerGC `json:"peers,omitempty"`
}

// unlinkBatch bounds the links one unlink command carries.
const unlinkBatch = 500

// GC removes what no manifest references: first the repository links of
// blobs that no manifest of their repository references (once they are
// older than GCGrace), through the replicated store; then the blob files of
// this node that no repository links; then expired upload sessions.
//
// It is safe while pushes run: links younger than GCGrace are kept (a push
// uploads blobs before its manifest), files written, mounted or checked by a
// client within GCGrace are kept, and the store re-checks on apply that a
// link is still unreferenced, so a manifest committed meanwhile wins. A push
// whose manifest arrives after its long-idle blob was unlinked gets
// MANIFEST_BLOB_UNKNOWN and re-uploads; nothing referenced is ever lost.
func (r *Registry) GC(ctx context.Context, dryRun bool) (GCReport, error) {
	return r.collect(ctx, dryRun, true)
}

// GCLocal is GC without asking the other nodes to sweep: a peer's request.
func (r *Registry) GCLocal(ctx context.Context, dryRun bool) (GCReport, error) {
	return r.collect(ctx, dryRun, false)
}

func (r *Registry) collect(ctx context.Context, dryRun, cluster bool) (GCReport, error) {
	r.gcMu.Lock()
	defer r.gcMu.Unlock()
	rep := GCReport{DryRun: dryRun, UnlinkedBlobs: []store.RegLink{}, DeletedBlobs: []string{}}
	start := r.now()
	cutoff := start.Add(-r.cfg.GCGrace)

	uses, err := r.st.RegBlobUses()
	if err != nil {
		return rep, fmt.Errorf("gc: list blob links: %w", err)
	}
	unlink := map[store.RegLink]bool{}
	for _, u := range uses {
		if u.Referenced || !u.Linked.Before(cutoff) || r.touchedSince(digest.Digest(u.Digest), cutoff) {
			continue
		}
		l := store.RegLink{Repo: u.Repo, Digest: u.Digest}
		unlink[l] = true
		rep.UnlinkedBlobs = append(rep.UnlinkedBlobs, l)
	}
	if !dryRun {
		for i := 0; i < len(rep.UnlinkedBlobs); i += unlinkBatch {
			batch := rep.UnlinkedBlobs[i:min(i+unlinkBatch, len(rep.UnlinkedBlobs))]
			if _, err := store.CmdRegUnlinkBlobs.Propose(ctx, r.prop, store.RegUnlinkBlobs{Links: batch, IfUnreferenced: true, NotAfter: cutoff}); err != nil {
				return rep, fmt.Errorf("gc: unlink: %w", err)
			}
		}
		if uses, err = r.st.RegBlobUses(); err != nil {
			return rep, fmt.Errorf("gc: list blob links: %w", err)
		}
	}
	linked := map[string]bool{}
	for _, u := range uses {
		if !unlink[store.RegLink{Repo: u.Repo, Digest: u.Digest}] || !dryRun {
			linked[u.Digest] = true
		}
	}
	err = r.blobs.walk(func(d digest.Digest, size int64) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if linked[d.String()] || r.touchedSince(d, cutoff) {
			rep.KeptBlobs++
			return nil
		}
		if fi, err := os.Stat(r.blobs.path(d)); err == nil && !fi.ModTime().Before(cutoff) {
			rep.KeptBlobs++ // written recently, possibly by a previous process
			return nil
		}
		if !dryRun {
			removed, err := r.blobs.removeIfIdle(d, cutoff)
			if err != nil {
				return err
			}
			if !removed {
				rep.KeptBlobs++
				return nil
			}
		}
		rep.DeletedBlobs = append(rep.DeletedBlobs, d.String())
		rep.FreedBytes += size
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("gc: sweep blobs: %w", err)
	}
	sizes := map[string]int64{}
	if entries, err := os.ReadDir(r.blobs.tmp); err == nil {
		for _, e := range entries {
			if info, err := e.Info(); err == nil {
				sizes[e.Name()] = info.Size()
			}
		}
	}
	expired, err := r.expireUploads(dryRun)
	if err != nil {
		return rep, fmt.Errorf("gc: %w", err)
	}
	sort.Strings(expired)
	rep.ExpiredUploads = append([]string{}, expired...)
	for _, id := range expired {
		rep.FreedBytes += sizes[id+".data"]
	}
	if !dryRun {
		r.blobs.forgetTouches(cutoff)
	}
	r.forgetLocations(ctx, &rep)
	if cluster {
		r.collectPeers(ctx, &rep)
	}
	r.log.Info("garbage collection", "dry_run", dryRun, "unlinked", len(rep.UnlinkedBlobs), "deleted", len(rep.DeletedBlobs),
		"freed_bytes", rep.FreedBytes, "expired_uploads", len(rep.ExpiredUploads), "took", r.now().Sub(start))
	return rep, nil
}

func (r *Registry) touchedSince(d digest.Digest, t time.Time) bool {
	r.blobs.mu.Lock()
	defer r.blobs.mu.Unlock()
	at, ok := r.blobs.touched[d]
	return ok && !at.Before(t)
}

// releaseBlobs unlinks, after their manifest m was deleted, the blobs of
// m that no other manifest of repo references, by GC's rules (linked
// before GCGrace, not touched by a client since, re-checked on apply), so
// the owner's storage (store/storage.go) drops at once, as a user freeing
// space expects, instead of at the next `gantry image gc`; that GC still
// removes the files. A failure is logged: the manifest is gone, and GC
// unlinks what is left the same way.
func (r *Registry) releaseBlobs(ctx context.Context, repo string, m *store.RegManifest) {
	cutoff := r.now().Add(-r.cfg.GCGrace)
	var links []store.RegLink
	for _, b := range m.Blobs {
		if !r.touchedSince(digest.Digest(b), cutoff) {
			links = append(links, store.RegLink{Repo: repo, Digest: b})
		}
	}
	freed := 0
	for i := 0; i < len(links); i += unlinkBatch {
		n, err := store.CmdRegUnlinkBlobs.Propose(ctx, r.prop, store.RegUnlinkBlobs{Links: links[i:min(i+unlinkBatch, len(links))], IfUnreferenced: true, NotAfter: cutoff})
		if err != nil {
			r.log.Warn("blobs of a deleted manifest left for gc", "repo", repo, "digest", m.Digest, "err", err)
			return
		}
		freed += n
	}
	if freed > 0 {
		r.log.Debug("blobs of a deleted manifest unlinked", "repo", repo, "digest", m.Digest, "blobs", freed)
	}
}
