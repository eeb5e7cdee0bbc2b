package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"gantry/store"
)

// ArtifactFile is one file an artifact carries (a layer).
type ArtifactFile struct {
	MediaType string
	Title     string // org.opencontainers.image.title
	Data      []byte
}

// AttachArtifact stores an OCI artifact referring to subject (a manifest
// of repo) so any client that lists the subject's referrers finds it: an
// image manifest with the empty config, the files as layers, artifactType
// and annotations. The artifact's content is a function of its inputs, so
// attaching the same one twice stores one. It is held to as many copies as
// a push. It returns the artifact's digest.
func (r *Registry) AttachArtifact(ctx context.Context, owner, repo string, subject *store.RegManifest, artifactType string, annotations map[string]string, files []ArtifactFile) (digest.Digest, error) {
	if !validName(repo) {
		return "", fmt.Errorf("attach to %s: invalid repository name", repo)
	}
	empty := []byte("{}")
	m := v1.Manifest{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    v1.MediaTypeImageManifest,
		ArtifactType: artifactType,
		Config:       v1.Descriptor{MediaType: v1.MediaTypeEmptyJSON, Digest: digest.FromBytes(empty), Size: int64(len(empty)), Data: empty},
		Subject:      &v1.Descriptor{MediaType: subject.MediaType, Digest: digest.Digest(subject.Digest), Size: subject.Size},
		Annotations:  annotations,
	}
	blobs := map[digest.Digest][]byte{digest.FromBytes(empty): empty}
	for _, f := range files {
		d := digest.FromBytes(f.Data)
		blobs[d] = f.Data
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: f.MediaType, Digest: d, Size: int64(len(f.Data)),
			Annotations: map[string]string{v1.AnnotationTitle: f.Title}})
	}
	body, err := json.Marshal(m)
	if err != nil {
		return "", fmt.Errorf("attach to %s: %w", repo, err)
	}
	rec, err := parseManifest(body, v1.MediaTypeImageManifest)
	if err != nil {
		return "", fmt.Errorf("attach to %s: %w", repo, err)
	}
	for d, b := range blobs {
		if _, _, err := r.ingest(ctx, repo, owner, d, bytes.NewReader(b)); err != nil {
			return "", fmt.Errorf("attach to %s: blob %s: %w", repo, d, err)
		}
	}
	if err := r.ensureCopies(ctx, repo, rec.Blobs); err != nil {
		return "", fmt.Errorf("attach to %s: %w", repo, err)
	}
	d := digest.Canonical.FromBytes(body)
	rec.Repo, rec.Digest, rec.Content, rec.Pusher = repo, d.String(), body, owner
	if _, err := store.CmdRegPutManifest.Propose(ctx, r.prop, store.RegPutManifest{Owner: ownerOf(repo), Manifest: *rec}); err != nil {
		return "", fmt.Errorf("attach to %s: %w", repo, err)
	}
	return d, nil
}
