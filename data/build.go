package data

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// Sizes that shape a dataset's layers (DESIGN.md: why these).
const (
	// LargeFile is the size from which a file gets a layer of its own.
	LargeFile = 4 << 20
	// PackMin and PackMax bound a pack of small files: a pack ends at the
	// first file past PackMin whose path hashes to a boundary, or at
	// PackMax, so adding a file changes one or two packs, not all after it.
	PackMin = 8 << 20
	PackMax = 32 << 20
)

// PartialDir is the directory a pull keeps half-downloaded blobs in,
// inside the target, so an interrupted pull resumes. A push skips it.
const PartialDir = ".gantry-pull"

// BuildOptions says what kind of artifact to make of a directory.
type BuildOptions struct {
	// Model makes a CNCF ModelPack artifact instead of a dataset.
	Model bool
	// Name is the model's name in its config (ModelPack's descriptor).
	Name string
	// ArtifactType overrides the dataset's artifactType (ArtifactTypeOutput
	// for task outputs); ignored for models.
	ArtifactType string
	// Annotations go on the manifest.
	Annotations map[string]string
	// Parallel is how many layers are hashed at once (0: 4).
	Parallel int
	// Progress, when set, counts the bytes hashed.
	Progress *Progress
}

// Artifact is a directory made into an OCI artifact: its manifest, config
// and the layers, which read the directory's files again when sent.
type Artifact struct {
	Manifest  []byte
	MediaType string
	Digest    digest.Digest
	Config    Blob
	Layers    []Blob
	Files     int
	Bytes     int64
}

// Blob is one blob of an Artifact.
type Blob struct {
	Desc v1.Descriptor
	// Open reads the blob's bytes; for a layer built from files, the files
	// are read again, so a file changed since Build gives other bytes (the
	// registry then refuses the digest).
	Open func() (io.ReadCloser, error)
}

// group is a layer in the making: one large file, or a pack of small ones.
type group struct {
	raw     bool
	kind    ModelKind // models only
	members []*member
	desc    v1.Descriptor
}

type member struct {
	rel  string
	abs  string
	info fs.FileInfo
	e    *Entry
}

// Build walks dir and makes an artifact of it, hashing every file. Only
// directories, regular files and symbolic links that stay inside dir are
// allowed; anything else is an error naming it.
func Build(ctx context.Context, dir string, opt BuildOptions) (*Artifact, error) {
	if opt.Parallel <= 0 {
		opt.Parallel = 4
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	var entries []*Entry
	var files []*member
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if rel == PartialDir {
			return filepath.SkipDir
		}
		if err := CheckPath(rel); err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		e := &Entry{Path: rel, Mode: uint32(info.Mode().Perm()), MTime: info.ModTime().UTC()}
		switch {
		case info.Mode().IsDir():
			e.Type = TypeDir
		case info.Mode().IsRegular():
			e.Type, e.Size = TypeFile, info.Size()
			files = append(files, &member{rel: rel, abs: p, info: info, e: e})
		case info.Mode()&fs.ModeSymlink != 0:
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := CheckLink(rel, t); err != nil {
				return err
			}
			e.Type, e.Target, e.Mode = TypeSymlink, t, 0o777
		default:
			return fmt.Errorf("%s: %s cannot be stored (only directories, files and links)", p, describeMode(info.Mode()))
		}
		entries = append(entries, e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	groups := plan(files, opt.Model)
	if p := opt.Progress; p != nil {
		for _, f := range files {
			p.Total.Add(f.info.Size())
		}
		p.Blobs.Add(int64(len(groups)))
	}
	if err := hashGroups(ctx, groups, opt); err != nil {
		return nil, err
	}
	return assemble(entries, groups, opt)
}

func describeMode(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device file"
	}
	return "a special file"
}

// plan assigns files to layers: a large file (every weight file of a
// model) alone, small ones in packs in path order (per kind for models).
func plan(files []*member, model bool) []*group {
	slices.SortFunc(files, func(a, b *member) int { return strings.Compare(a.rel, b.rel) })
	var out []*group
	open := map[ModelKind]*group{}
	var sizes = map[*group]int64{}
	for _, f := range files {
		var kind ModelKind
		if model {
			kind = ClassifyModelFile(f.rel)
		}
		if f.info.Size() >= LargeFile || kind == KindWeight {
			out = append(out, &group{raw: true, kind: kind, members: []*member{f}})
			continue
		}
		g := open[kind]
		if g == nil {
			g = &group{kind: kind}
			open[kind] = g
			out = append(out, g)
		}
		g.members = append(g.members, f)
		sizes[g] += f.info.Size() + 1024
		if sizes[g] >= PackMax || (sizes[g] >= PackMin && boundary(f.rel)) {
			delete(open, kind)
		}
	}
	return out
}

// boundary is true for one path in eight, decided by the path alone.
func boundary(p string) bool {
	h := fnv.New32a()
	h.Write([]byte(p))
	return h.Sum32()%8 == 0
}

// ClassifyModelFile says which ModelPack kind a file of a model is, by its
// name: weights, their configuration (tokenizer, config.json), docs, code,
// or else dataset.
func ClassifyModelFile(p string) ModelKind {
	base := strings.ToLower(path.Base(p))
	ext := path.Ext(base)
	switch ext {
	case ".safetensors", ".bin", ".gguf", ".pt", ".pth", ".ckpt", ".onnx", ".h5", ".msgpack", ".pb", ".tflite", ".mlmodel", ".pkl", ".npz", ".model":
		return KindWeight
	case ".json", ".yaml", ".yml", ".toml", ".txt", ".tiktoken", ".vocab", ".spm":
		if strings.HasPrefix(base, "readme") || strings.HasPrefix(base, "license") {
			return KindDoc
		}
		return KindWeightConfig
	case ".md", ".rst", ".pdf", ".html":
		return KindDoc
	case ".py", ".sh", ".ipynb", ".js", ".go", ".c", ".cc", ".cpp", ".h", ".rs", ".java":
		return KindCode
	}
	if strings.HasPrefix(base, "readme") || strings.HasPrefix(base, "license") || strings.HasPrefix(base, "notice") {
		return KindDoc
	}
	return KindDataset
}

// hashGroups computes each layer's digest and size, and each file's
// digest, reading the files once, Parallel layers at a time.
func hashGroups(ctx context.Context, groups []*group, opt BuildOptions) error {
	parallel := opt.Parallel
	work := make(chan *group)
	errc := make(chan error, parallel)
	var wg sync.WaitGroup
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for g := range work {
				if err := hashGroup(ctx, g, opt.Model, opt.Progress); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	var err error
feed:
	for _, g := range groups {
		select {
		case work <- g:
		case err = <-errc:
			break feed
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		}
	}
	close(work)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errc:
		default:
		}
	}
	return err
}

func hashGroup(ctx context.Context, g *group, model bool, p *Progress) error {
	h := sha256.New()
	var n int64
	if g.raw {
		f := g.members[0]
		rc, err := os.Open(f.abs)
		if err != nil {
			return err
		}
		n, err = io.Copy(h, &countReader{r: ctxReader{ctx, rc}, p: p})
		rc.Close()
		if err != nil {
			return fmt.Errorf("read %s: %w", f.abs, err)
		}
		if n != f.info.Size() {
			return fmt.Errorf("%s changed while it was read", f.abs)
		}
		f.e.Digest = digest.NewDigest(digest.SHA256, h)
	} else {
		cw := &countWriter{w: h}
		if err := writePack(ctx, cw, g, true, p); err != nil {
			return err
		}
		n = cw.n
	}
	g.desc = v1.Descriptor{MediaType: layerMediaType(g, model), Digest: digest.NewDigest(digest.SHA256, h), Size: n}
	return nil
}

func layerMediaType(g *group, model bool) string {
	switch {
	case model:
		return ModelMediaType(g.kind, g.raw)
	case g.raw:
		return MediaTypeFile
	}
	return MediaTypePack
}

// writePack writes a pack's tar: the members in path order with fixed
// owners, so the same files always make the same bytes. With record, each
// member's digest is computed on the way.
func writePack(ctx context.Context, w io.Writer, g *group, record bool, p *Progress) error {
	tw := tar.NewWriter(w)
	for _, f := range g.members {
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: f.rel, Size: f.info.Size(), Mode: int64(f.e.Mode),
			ModTime: f.e.MTime, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("pack %s: %w", f.rel, err)
		}
		rc, err := os.Open(f.abs)
		if err != nil {
			return err
		}
		var dst io.Writer = tw
		fh := sha256.New()
		var src io.Reader = ctxReader{ctx, io.LimitReader(rc, f.info.Size()+1)}
		if record {
			dst = io.MultiWriter(tw, fh)
			src = &countReader{r: src, p: p}
		}
		n, err := io.Copy(dst, src)
		rc.Close()
		if err == nil && n != f.info.Size() {
			err = fmt.Errorf("%s changed while it was read", f.abs)
		}
		if err != nil {
			return fmt.Errorf("pack %s: %w", f.rel, err)
		}
		if record {
			f.e.Digest = digest.NewDigest(digest.SHA256, fh)
		}
	}
	return tw.Close()
}

// assemble makes the manifest and config once every layer is hashed.
// Layers with the same digest (two identical large files) are stored once.
func assemble(entries []*Entry, groups []*group, opt BuildOptions) (*Artifact, error) {
	a := &Artifact{MediaType: v1.MediaTypeImageManifest}
	index := map[digest.Digest]int{}
	for _, g := range groups {
		i, ok := index[g.desc.Digest]
		if !ok {
			i = len(a.Layers)
			index[g.desc.Digest] = i
			d := g.desc
			if g.raw {
				f := g.members[0]
				d.Annotations = map[string]string{AnnotationTitle: f.rel}
				if opt.Model {
					meta, _ := json.Marshal(FileMeta{Name: f.rel, Mode: f.e.Mode, Size: f.e.Size, ModTime: f.e.MTime, Typeflag: tar.TypeReg})
					d.Annotations[AnnotationModelFilepath] = f.rel
					d.Annotations[AnnotationModelFileMeta] = string(meta)
				}
			}
			a.Layers = append(a.Layers, Blob{Desc: d, Open: g.opener()})
		}
		for _, f := range g.members {
			f.e.Layer = i
			a.Files++
			a.Bytes += f.e.Size
		}
	}
	var cfg []byte
	var err error
	cfgType := MediaTypeConfig
	artifactType := ArtifactTypeDataset
	if opt.ArtifactType != "" {
		artifactType = opt.ArtifactType
	}
	if opt.Model {
		cfgType, artifactType = MediaTypeModelConfig, ArtifactTypeModel
		var mc ModelConfig
		mc.Descriptor.Name = opt.Name
		mc.ModelFS.Type = "layers"
		mc.ModelFS.DiffIDs = []digest.Digest{}
		for _, l := range a.Layers {
			mc.ModelFS.DiffIDs = append(mc.ModelFS.DiffIDs, l.Desc.Digest)
		}
		cfg, err = json.Marshal(mc)
	} else {
		c := Config{Version: ConfigVersion, Files: a.Files, Bytes: a.Bytes, Entries: []Entry{}}
		for _, e := range entries {
			c.Entries = append(c.Entries, *e)
		}
		slices.SortFunc(c.Entries, func(x, y Entry) int { return strings.Compare(x.Path, y.Path) })
		cfg, err = json.Marshal(c)
	}
	if err != nil {
		return nil, fmt.Errorf("encode config: %w", err)
	}
	a.Config = Blob{Desc: v1.Descriptor{MediaType: cfgType, Digest: digest.FromBytes(cfg), Size: int64(len(cfg))},
		Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(cfg)), nil }}
	m := v1.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: v1.MediaTypeImageManifest,
		ArtifactType: artifactType, Config: a.Config.Desc, Layers: []v1.Descriptor{}, Annotations: opt.Annotations}
	for _, l := range a.Layers {
		m.Layers = append(m.Layers, l.Desc)
	}
	if a.Manifest, err = json.Marshal(m); err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	a.Digest = digest.FromBytes(a.Manifest)
	return a, nil
}

// opener reads the layer again: the file itself, or the pack written
// through a pipe.
func (g *group) opener() func() (io.ReadCloser, error) {
	if g.raw {
		return func() (io.ReadCloser, error) { return os.Open(g.members[0].abs) }
	}
	return func() (io.ReadCloser, error) {
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(writePack(context.Background(), pw, g, false, nil)) }()
		return pr, nil
	}
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// ctxReader stops a long copy when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// errNotData is returned for a manifest that is not an image manifest.
var errNotData = errors.New("not a data artifact: an OCI image manifest is expected")
