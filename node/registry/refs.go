package registry

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"

	"gantry/store"
)

// Reference is an image reference split into its parts.
type Reference struct {
	Host   string // registry host ("" for this registry)
	Repo   string // repository path, e.g. "alice/tool"
	Tag    string // "" when the reference has no tag
	Digest string // "" when the reference has no digest
}

// IsLocal reports whether a job's image reference names an image in
// Gantry's own registry: its first path component is not a registry host
// (no '.' or ':' and not "localhost"), as Docker decides it.
func IsLocal(image string) bool {
	first, _, ok := strings.Cut(image, "/")
	if !ok {
		return true
	}
	return !strings.ContainsAny(first, ".:") && first != "localhost"
}

// LocalRef returns the reference in this registry that image names, without
// its host: image itself when IsLocal says so, or image minus one of
// Config.Hosts. ok is false for references to other registries.
func (r *Registry) LocalRef(image string) (ref string, ok bool) {
	if IsLocal(image) {
		return image, true
	}
	host, rest, _ := strings.Cut(image, "/")
	for _, h := range r.cfg.Hosts {
		if strings.EqualFold(host, h) {
			return rest, true
		}
	}
	return "", false
}

// ParseReference splits a reference of this registry ("repo", "repo:tag",
// "repo@digest" or "repo:tag@digest"; no host) and validates each part. A
// reference with neither tag nor digest means tag "latest".
func ParseReference(image string) (Reference, error) {
	var ref Reference
	name := image
	if i := strings.Index(name, "@"); i >= 0 {
		d, err := digest.Parse(name[i+1:])
		if err != nil {
			return ref, fmt.Errorf("image %q: invalid digest: %w", image, err)
		}
		ref.Digest, name = d.String(), name[:i]
	}
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		ref.Tag, name = name[i+1:], name[:i]
		if !validTag(ref.Tag) {
			return ref, fmt.Errorf("image %q: invalid tag", image)
		}
	}
	if !validName(name) {
		return ref, fmt.Errorf("image %q: invalid repository name", image)
	}
	ref.Repo = name
	if ref.Tag == "" && ref.Digest == "" {
		ref.Tag = "latest"
	}
	return ref, nil
}

// Resolve returns the repository and manifest digest a local reference
// (see IsLocal) names, if user may pull it. Errors: a *store.Error with code
// EInvalid for a malformed reference, ENotFound ("image: ... not found")
// when it does not exist or user may not read it.
func (r *Registry) Resolve(ctx context.Context, user string, admin bool, image string) (repo, dgst string, err error) {
	ref, err := ParseReference(image)
	if err != nil {
		return "", "", store.Errorf(store.EInvalid, "%s", err.Error())
	}
	notFound := store.Errorf(store.ENotFound, "image: %s not found", image)
	if err := r.may(&principal{user: user, admin: admin, node: user == NodeUser}, ref.Repo, "pull"); err != nil {
		if errors.Is(err, errDenied) {
			return "", "", notFound
		}
		return "", "", err
	}
	d := ref.Digest
	if d == "" {
		t, err := r.st.RegTag(ref.Repo, ref.Tag)
		if errors.Is(err, store.ErrNotFound) {
			return "", "", notFound
		}
		if err != nil {
			return "", "", fmt.Errorf("resolve %s: %w", image, err)
		}
		d = t.Digest
	} else if ref.Tag != "" {
		// "repo:tag@digest": the digest decides, as in Docker; the tag
		// must still exist so a typo is not silently ignored.
		if _, err := r.st.RegTag(ref.Repo, ref.Tag); errors.Is(err, store.ErrNotFound) {
			return "", "", notFound
		} else if err != nil {
			return "", "", fmt.Errorf("resolve %s: %w", image, err)
		}
	}
	if _, err := r.st.RegManifest(ref.Repo, d); errors.Is(err, store.ErrNotFound) {
		return "", "", notFound
	} else if err != nil {
		return "", "", fmt.Errorf("resolve %s: %w", image, err)
	}
	return ref.Repo, d, nil
}

// DeleteTag removes a tag, if user owns the repository (or is an admin).
// The manifest stays until it is deleted by digest; GC then reclaims blobs
// no manifest references. Errors: *store.Error with ENotFound when the tag
// does not exist or the repository is not visible to user, EForbidden when
// user may read but not delete it.
func (r *Registry) DeleteTag(ctx context.Context, user string, admin bool, repo, tag string) error {
	if !validName(repo) || !validTag(tag) {
		return store.Errorf(store.EInvalid, "invalid repository or tag %q", truncate(repo+":"+tag))
	}
	notFound := store.Errorf(store.ENotFound, "image: %s:%s not found", repo, tag)
	if !allowed(user, admin, false, repo, "pull") {
		return notFound
	}
	if !allowed(user, admin, false, repo, "delete") {
		return store.Errorf(store.EForbidden, "only the owner of %s can delete its tags", repo)
	}
	if _, err := store.CmdRegDeleteTag.Propose(ctx, r.prop, store.RegDeleteTag{Repo: repo, Tag: tag}); err != nil {
		if store.ErrorCode(err) == store.ENotFound {
			return notFound
		}
		return fmt.Errorf("delete tag %s:%s: %w", repo, tag, err)
	}
	r.log.Info("tag deleted", "repo", repo, "tag", tag, "user", user)
	return nil
}

// HasBlob reports whether this node holds the bytes of blob d (metadata is
// cluster-wide, blob files are per node).
func (r *Registry) HasBlob(d digest.Digest) (bool, error) {
	_, ok, err := r.blobs.stat(d, r.now())
	return ok, err
}

// DeleteManifest removes a manifest by digest with the tags pointing at it,
// if user owns the repository (or is an admin); GC then reclaims the blobs
// no other manifest references. Errors as for DeleteTag.
func (r *Registry) DeleteManifest(ctx context.Context, user string, admin bool, repo, dgst string) error {
	d, err := digest.Parse(dgst)
	if !validName(repo) || err != nil {
		return store.Errorf(store.EInvalid, "invalid repository or digest %q", truncate(repo+"@"+dgst))
	}
	notFound := store.Errorf(store.ENotFound, "image: %s@%s not found", repo, d)
	if !allowed(user, admin, false, repo, "pull") {
		return notFound
	}
	if !allowed(user, admin, false, repo, "delete") {
		return store.Errorf(store.EForbidden, "only the owner of %s can delete its manifests", repo)
	}
	m, err := r.st.RegManifest(repo, d.String())
	if errors.Is(err, store.ErrNotFound) {
		return notFound
	}
	if err != nil {
		return fmt.Errorf("delete manifest %s@%s: %w", repo, d, err)
	}
	if _, err := store.CmdRegDeleteManifest.Propose(ctx, r.prop, store.RegDeleteManifest{Repo: repo, Digest: d.String()}); err != nil {
		if store.ErrorCode(err) == store.ENotFound {
			return notFound
		}
		return fmt.Errorf("delete manifest %s@%s: %w", repo, d, err)
	}
	r.releaseBlobs(ctx, repo, m)
	r.log.Info("manifest deleted", "repo", repo, "digest", d, "user", user)
	return nil
}
