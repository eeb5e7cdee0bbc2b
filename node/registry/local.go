package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"

	"github.com/opencontainers/go-digest"

	"gantry/store"
)

// Local is one repository of this registry written and read in-process,
// as its owner would over the distribution API: blobs are stored (or
// linked when this node holds them), a manifest is committed only once
// its blobs are on as many nodes as a push needs, and the usual checks of
// names, tags and quotas apply. The node stores task outputs with it. It
// implements data.Remote.
type Local struct {
	r          *Registry
	repo, user string
}

// Local returns repository repo ("owner/name") written as user.
func (r *Registry) Local(repo, user string) *Local {
	return &Local{r: r, repo: repo, user: user}
}

// Blob reads blob d of the repository from offset on.
func (l *Local) Blob(ctx context.Context, d digest.Digest, offset int64) (io.ReadCloser, error) {
	if _, err := l.r.st.RegBlobLink(l.repo, d.String()); err != nil {
		return nil, fmt.Errorf("blob %s of %s: %w", d, l.repo, err)
	}
	f, err := l.r.OpenBlob(d)
	if errors.Is(err, fs.ErrNotExist) {
		if ok, ferr := l.r.ensureLocal(ctx, d); ferr != nil || !ok {
			return nil, fmt.Errorf("blob %s of %s is on no reachable node", d, l.repo)
		}
		f, err = l.r.OpenBlob(d)
	}
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

// PushBlob stores blob d unless this node holds it already, in which case
// it is only linked into the repository (sent is then false).
func (l *Local) PushBlob(ctx context.Context, d digest.Digest, size int64, open func() (io.ReadCloser, error)) (bool, error) {
	if _, err := l.r.st.RegBlobLink(l.repo, d.String()); err == nil {
		if _, ok, _ := l.r.blobs.stat(d, l.r.now()); ok {
			return false, nil
		}
	}
	if ok, err := l.r.linkExisting(ctx, l.repo, l.user, d); err != nil {
		return false, err
	} else if ok {
		return false, nil
	}
	rc, err := open()
	if err != nil {
		return false, err
	}
	defer rc.Close()
	got, n, err := l.r.ingest(ctx, l.repo, l.user, d, rc)
	if err != nil {
		return false, err
	}
	if got != d || n != size {
		return false, fmt.Errorf("blob %s: stored %d bytes, want %d", d, n, size)
	}
	return true, nil
}

// Manifest reads the manifest a tag or digest of the repository names.
func (l *Local) Manifest(_ context.Context, ref string) ([]byte, error) {
	m, err := l.r.resolve(l.repo, ref)
	if err != nil {
		return nil, fmt.Errorf("manifest %s:%s: %w", l.repo, ref, err)
	}
	return m.Content, nil
}

// PutManifest stores a manifest under tag ref (or its digest) once its
// blobs have the copies a push needs.
func (l *Local) PutManifest(ctx context.Context, ref, mediaType string, body []byte) (digest.Digest, error) {
	var tags []string
	if !validTag(ref) {
		if _, err := parseDigest(ref); err != nil {
			return "", fmt.Errorf("put manifest %s:%s: invalid tag", l.repo, ref)
		}
	} else {
		tags = []string{ref}
	}
	m, err := parseManifest(body, mediaType)
	if err != nil {
		return "", fmt.Errorf("put manifest %s:%s: %w", l.repo, ref, err)
	}
	d := digest.Canonical.FromBytes(body)
	m.Repo, m.Digest, m.Content, m.Pusher = l.repo, d.String(), body, l.user
	if err := l.r.ensureCopies(ctx, l.repo, m.Blobs); err != nil {
		return "", fmt.Errorf("put manifest %s:%s: %w", l.repo, ref, err)
	}
	if _, err := store.CmdRegPutManifest.Propose(ctx, l.r.prop, store.RegPutManifest{Owner: ownerOf(l.repo), Manifest: *m, Tags: tags}); err != nil {
		return "", fmt.Errorf("put manifest %s:%s: %w", l.repo, ref, err)
	}
	l.r.notifyManifest(l.repo, m)
	return d, nil
}
