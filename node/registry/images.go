package registry

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"gantry/store"
)

// ingest stores the bytes of r as a blob (verified against want when it is
// not empty) and links it into repo. It returns the digest and size.
func (r *Registry) ingest(ctx context.Context, repo, user string, want digest.Digest, src io.Reader) (digest.Digest, int64, error) {
	alg := digest.Canonical
	if want != "" {
		alg = want.Algorithm()
	}
	u, err := r.createUpload(repo, user, alg, false)
	if err != nil {
		return "", 0, err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if err := u.appendBody(src, -1, r.now()); err != nil {
		u.discard()
		return "", 0, err
	}
	d := want
	if d == "" {
		d = digest.NewDigest(alg, u.h)
	}
	if err := r.finish(ctx, u, d); err != nil {
		u.discard()
		return "", 0, err
	}
	return d, u.size, nil
}

// linkExisting links a blob this node already holds into repo; ok is false
// when the blob is not here.
func (r *Registry) linkExisting(ctx context.Context, repo, user string, d digest.Digest) (bool, error) {
	size, ok, err := r.blobs.stat(d, r.now())
	if err != nil || !ok {
		return false, err
	}
	_, err = store.CmdRegLinkBlob.Propose(ctx, r.prop, store.RegLinkBlob{Repo: repo, Owner: ownerOf(repo), Digest: d.String(), Size: size, User: user, Node: r.cfg.NodeName})
	return err == nil, err
}

// ImportImage stores an image given as its parts and tags it owner/repo:tag
// (repo may already start with "owner/"). Layers already held by this node
// may be left out of layers. Used to seed gantry/toolbox at first start.
// Errors: a digest mismatch or an invalid manifest is an *ociError-backed
// error whose message names the problem.
func (r *Registry) ImportImage(ctx context.Context, owner, repo, tag string, manifestMediaType string, manifest []byte, config []byte, layers map[digest.Digest]io.Reader) error {
	return r.importImage(ctx, owner, repo, tag, manifestMediaType, manifest, config, layers, false)
}

// importImage is ImportImage; with copies, the manifest is committed only
// once its blobs are on as many nodes as a push needs (an imported image
// must survive the loss of the node it was imported on). Seeding the
// toolbox does not ask for copies: every node seeds its own.
func (r *Registry) importImage(ctx context.Context, owner, repo, tag string, manifestMediaType string, manifest []byte, config []byte, layers map[digest.Digest]io.Reader, copies bool) error {
	name := repo
	if !strings.HasPrefix(repo, owner+"/") {
		name = owner + "/" + repo
	}
	if !validName(name) || !validTag(tag) {
		return fmt.Errorf("import %s:%s: invalid name or tag", name, tag)
	}
	m, err := parseManifest(manifest, manifestMediaType)
	if err != nil {
		return fmt.Errorf("import %s:%s: %w", name, tag, err)
	}
	var doc manifestDoc
	if err := json.Unmarshal(manifest, &doc); err != nil {
		return fmt.Errorf("import %s:%s: %w", name, tag, err)
	}
	if doc.Config == nil {
		return fmt.Errorf("import %s:%s: only image manifests can be imported", name, tag)
	}
	if _, _, err := r.ingest(ctx, name, owner, doc.Config.Digest, bytes.NewReader(config)); err != nil {
		return fmt.Errorf("import %s:%s: config: %w", name, tag, err)
	}
	for _, l := range doc.Layers {
		if foreignLayer(l) {
			continue
		}
		if rd, ok := layers[l.Digest]; ok {
			if _, _, err := r.ingest(ctx, name, owner, l.Digest, rd); err != nil {
				return fmt.Errorf("import %s:%s: layer %s: %w", name, tag, l.Digest, err)
			}
			continue
		}
		ok, err := r.linkExisting(ctx, name, owner, l.Digest)
		if err != nil {
			return fmt.Errorf("import %s:%s: layer %s: %w", name, tag, l.Digest, err)
		}
		if !ok {
			return fmt.Errorf("import %s:%s: layer %s: not given and not stored", name, tag, l.Digest)
		}
	}
	if copies {
		if err := r.ensureCopies(ctx, name, m.Blobs); err != nil {
			r.log.Warn("import: blobs not on enough nodes", "repo", name, "tag", tag, "err", err)
			var oe *ociError
			if errors.As(err, &oe) {
				return store.Errorf(store.EUnavailable, "import %s:%s: its layers could not be copied to a second node; retry the import", name, tag)
			}
			return fmt.Errorf("import %s:%s: %w", name, tag, err)
		}
	}
	d := digest.Canonical.FromBytes(manifest)
	m.Repo, m.Digest, m.Content, m.Pusher = name, d.String(), manifest, owner
	if _, err := store.CmdRegPutManifest.Propose(ctx, r.prop, store.RegPutManifest{Owner: ownerOf(name), Manifest: *m, Tags: []string{tag}}); err != nil {
		return fmt.Errorf("import %s:%s: %w", name, tag, err)
	}
	r.log.Info("image imported", "repo", name, "tag", tag, "digest", d)
	r.notifyManifest(name, m)
	return nil
}

// dockerSaveEntry is one image of a `docker save` archive's manifest.json.
type dockerSaveEntry struct {
	Config   string   `json:"Config"`
	RepoTags []string `json:"RepoTags"`
	Layers   []string `json:"Layers"`
}

// archiveFile is a regular file of the archive, stored as a blob.
type archiveFile struct {
	digest    digest.Digest
	size      int64
	mediaType string // layer media type from sniffing: tar, tar+gzip, tar+zstd
	small     []byte // content of small (JSON) files
}

// ImportDockerArchive imports every tagged image of a `docker save` archive
// (both the classic layout and Docker 25+'s OCI layout carry manifest.json)
// into repositories under owner, and returns the references it created.
// A name from another namespace is put under owner ("busybox:1" becomes
// "owner/busybox:1").
func (r *Registry) ImportDockerArchive(ctx context.Context, owner string, archive io.Reader) ([]string, error) {
	if !validName(owner) || strings.Contains(owner, "/") {
		return nil, store.Errorf(store.EInvalid, "import archive: invalid owner %q", owner)
	}
	// Files are stored as blobs while reading, because manifest.json may
	// come last; the staging repository is never linked, and blobs not used
	// by an image are collected by GC.
	files := map[string]*archiveFile{}
	tr := tar.NewReader(bufio.NewReaderSize(archive, 1<<20))
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, store.Errorf(store.EInvalid, "import archive: not a readable tar archive: %v", err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		if len(files) >= MaxImportFiles {
			return nil, store.Errorf(store.EInvalid, "import archive: more than %d files: not a docker save archive", MaxImportFiles)
		}
		name := path.Clean(hdr.Name)
		// Only manifest.json stays in memory; every other file, configs
		// too, goes to disk as it is read (configs are read back when
		// manifest.json names them), so an archive of any size costs a
		// few buffers of memory.
		f, err := r.stageFile(tr, hdr.Size, name == "manifest.json")
		if err != nil {
			return nil, fmt.Errorf("import archive: %s: %w", hdr.Name, err)
		}
		files[name] = f
	}
	mf, ok := files["manifest.json"]
	if !ok || mf.small == nil {
		return nil, store.Errorf(store.EInvalid, "import archive: no manifest.json: not a docker save archive")
	}
	var entries []dockerSaveEntry
	if err := json.Unmarshal(mf.small, &entries); err != nil {
		return nil, store.Errorf(store.EInvalid, "import archive: manifest.json: %v", err)
	}
	var refs []string
	for _, e := range entries {
		cfg, ok := files[path.Clean(e.Config)]
		if !ok {
			return refs, store.Errorf(store.EInvalid, "import archive: config %s missing", e.Config)
		}
		cfgBody, err := r.readStaged(cfg)
		if err != nil {
			return refs, fmt.Errorf("import archive: config %s: %w", e.Config, err)
		}
		man := v1.Manifest{MediaType: v1.MediaTypeImageManifest,
			Config: v1.Descriptor{MediaType: v1.MediaTypeImageConfig, Digest: cfg.digest, Size: cfg.size}}
		man.SchemaVersion = 2
		for _, l := range e.Layers {
			lf, ok := files[path.Clean(l)]
			if !ok {
				return refs, store.Errorf(store.EInvalid, "import archive: layer %s missing", l)
			}
			man.Layers = append(man.Layers, v1.Descriptor{MediaType: lf.mediaType, Digest: lf.digest, Size: lf.size})
		}
		body, err := json.Marshal(man)
		if err != nil {
			return refs, fmt.Errorf("import archive: %w", err)
		}
		for _, rt := range e.RepoTags {
			name, tag, err := importName(owner, rt)
			if err != nil {
				return refs, store.Errorf(store.EInvalid, "import archive: %v", err)
			}
			if err := r.importImage(ctx, owner, name, tag, v1.MediaTypeImageManifest, body, cfgBody, nil, true); err != nil {
				return refs, err
			}
			refs = append(refs, name+":"+tag)
		}
	}
	sort.Strings(refs)
	return refs, nil
}

// smallFile bounds manifest.json (kept in memory) and the image configs
// read back from disk.
const smallFile = 4 << 20

// MaxImportFiles bounds the regular files of an imported archive (a docker
// save archive holds a few per layer).
const MaxImportFiles = 10_000

// readStaged reads back a staged small file (an image config).
func (r *Registry) readStaged(f *archiveFile) ([]byte, error) {
	if f.small != nil {
		return f.small, nil
	}
	if f.size > smallFile {
		return nil, store.Errorf(store.EInvalid, "%d bytes, at most %d", f.size, smallFile)
	}
	rd, err := r.blobs.open(f.digest)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	return io.ReadAll(io.LimitReader(rd, smallFile))
}

func (r *Registry) stageFile(src io.Reader, size int64, keep bool) (*archiveFile, error) {
	br := bufio.NewReaderSize(io.LimitReader(src, size), 64<<10)
	head, _ := br.Peek(4)
	f := &archiveFile{size: size, mediaType: v1.MediaTypeImageLayer}
	switch {
	case len(head) >= 2 && head[0] == 0x1f && head[1] == 0x8b:
		f.mediaType = v1.MediaTypeImageLayerGzip
	case len(head) >= 4 && bytes.Equal(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		f.mediaType = v1.MediaTypeImageLayerZstd
	}
	var rd io.Reader = br
	if keep {
		if size > smallFile {
			return nil, store.Errorf(store.EInvalid, "%d bytes, at most %d", size, smallFile)
		}
		b, err := io.ReadAll(br)
		if err != nil {
			return nil, err
		}
		f.small = b
		rd = bytes.NewReader(b)
	}
	u, err := r.createUpload("gantry/import", SystemOwner, digest.Canonical, false)
	if err != nil {
		return nil, err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if err := u.appendBody(rd, -1, r.now()); err != nil {
		u.discard()
		return nil, err
	}
	if u.size != size {
		u.discard()
		return nil, store.Errorf(store.EInvalid, "import archive: truncated archive entry")
	}
	f.digest = digest.NewDigest(digest.Canonical, u.h)
	if err := u.f.Sync(); err != nil {
		u.discard()
		return nil, err
	}
	u.closeFile()
	if err := r.blobs.commit(u.dataP, f.digest, r.now()); err != nil {
		u.discard()
		return nil, err
	}
	return f, nil
}

// importName maps a RepoTag of an archive to a repository under owner.
func importName(owner, ref string) (name, tag string, err error) {
	tag = "latest"
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		ref, tag = ref[:i], ref[i+1:]
	}
	parts := strings.Split(ref, "/")
	if len(parts) > 1 && (strings.ContainsAny(parts[0], ".:") || parts[0] == "localhost") {
		parts = parts[1:]
	}
	if len(parts) > 1 && parts[0] == "library" {
		parts = parts[1:]
	}
	if parts[0] != owner {
		parts = append([]string{owner}, parts...)
	}
	name = strings.ToLower(strings.Join(parts, "/"))
	if !validName(name) || !validTag(tag) {
		return "", "", fmt.Errorf("cannot import %q: not a valid repository name and tag", ref)
	}
	return name, tag, nil
}

// TagInfo describes one tag of a repository.
type TagInfo struct {
	Tag       string    `json:"tag"`
	Digest    string    `json:"digest"`
	MediaType string    `json:"media_type"`
	Size      int64     `json:"size"` // manifest plus the blobs it references
	Pushed    time.Time `json:"pushed"`
}

// RepoInfo describes a repository for `gantry image ls`.
type RepoInfo struct {
	Name      string    `json:"name"`
	Owner     string    `json:"owner"`
	Tags      []TagInfo `json:"tags"`
	Manifests int       `json:"manifests"`
	Size      int64     `json:"size"` // distinct blobs linked plus manifests
	LastPush  time.Time `json:"last_push"`
}

// List returns the repositories user may pull (all for admins), with their
// tags and sizes.
func (r *Registry) List(ctx context.Context, user string, admin bool) ([]RepoInfo, error) {
	repos, err := r.st.RegRepos("", 0, func(rp *store.RegRepo) bool { return allowed(user, admin, false, rp.Name, "pull") })
	if err != nil {
		return nil, fmt.Errorf("list repositories: %w", err)
	}
	uses, err := r.st.RegBlobUses()
	if err != nil {
		return nil, fmt.Errorf("list repositories: %w", err)
	}
	blobBytes := map[string]int64{}
	for _, u := range uses {
		blobBytes[u.Repo] += u.Size
	}
	out := make([]RepoInfo, 0, len(repos))
	for _, rp := range repos {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		ms, err := r.st.RegManifests(rp.Name)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", rp.Name, err)
		}
		tagsOf, err := r.st.RegTagsOf(rp.Name)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", rp.Name, err)
		}
		info := RepoInfo{Name: rp.Name, Owner: rp.Owner, Tags: []TagInfo{}, Manifests: len(ms), Size: blobBytes[rp.Name], LastPush: rp.LastPush}
		for _, m := range ms {
			info.Size += m.Size
			for _, t := range tagsOf[m.Digest] {
				info.Tags = append(info.Tags, TagInfo{Tag: t, Digest: m.Digest, MediaType: m.MediaType, Size: m.Size + m.BlobsSize, Pushed: m.Pushed})
			}
		}
		sort.Slice(info.Tags, func(i, j int) bool { return info.Tags[i].Tag < info.Tags[j].Tag })
		out = append(out, info)
	}
	return out, nil
}

// Usage returns the bytes of distinct blobs linked into each owner's
// repositories (a blob shared by two repositories of one owner counts
// once), as the store's storage index keeps them (store/storage.go): one
// key per owner, not a scan of every link.
func (r *Registry) Usage(ctx context.Context) (map[string]int64, error) {
	uses, err := r.st.StorageUsages()
	if err != nil {
		return nil, fmt.Errorf("usage: %w", err)
	}
	out := make(map[string]int64, len(uses))
	for o, u := range uses {
		out[o] = u.Bytes
	}
	return out, nil
}
