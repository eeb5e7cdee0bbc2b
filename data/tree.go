package data

import (
	"encoding/json"
	"fmt"
	"strings"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// LayerKind says how a layer becomes part of the tree.
type LayerKind int

// How layers are written.
const (
	// LayerSkip is a layer that is not part of the tree (one without a
	// file name and not a tar, e.g. a signature).
	LayerSkip LayerKind = iota
	// LayerRaw is one file's bytes, written to each of Files.
	LayerRaw
	// LayerTar is a tar whose entries are extracted.
	LayerTar
	// LayerTarGzip is a gzip-compressed tar.
	LayerTarGzip
)

// Layer is one layer of an artifact and what writing it means.
type Layer struct {
	Desc v1.Descriptor
	Kind LayerKind
	// Files are the entries a raw layer is written to.
	Files []Entry
	// Members are the files a tar layer of a Gantry dataset holds, by
	// path: it may hold nothing else. Nil for other artifacts, whose tars
	// may hold any safe entry.
	Members map[string]Entry
}

// Tree is an artifact read as a directory tree.
type Tree struct {
	// Described is true for a Gantry dataset: every entry is listed in its
	// config, with digests, so a pull can skip files already there.
	Described bool
	Dirs      []Entry
	Links     []Entry
	Layers    []Layer
	// Files and Bytes count the files the config lists (datasets only).
	Files int
	Bytes int64
}

// ParseManifest reads an image manifest, refusing indexes and others.
func ParseManifest(body []byte) (*v1.Manifest, error) {
	var m v1.Manifest
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	if m.SchemaVersion != 2 || (m.MediaType != "" && m.MediaType != v1.MediaTypeImageManifest &&
		m.MediaType != "application/vnd.docker.distribution.manifest.v2+json") {
		return nil, errNotData
	}
	for _, l := range m.Layers {
		if err := l.Digest.Validate(); err != nil {
			return nil, fmt.Errorf("manifest: layer %q: %w", l.Digest, err)
		}
		if l.Size < 0 {
			return nil, fmt.Errorf("manifest: layer %s: negative size", l.Digest)
		}
	}
	return &m, nil
}

// IsDataset reports whether a manifest is a Gantry dataset (or output),
// whose config must be read to know the tree.
func IsDataset(m *v1.Manifest) bool { return m.Config.MediaType == MediaTypeConfig }

// NewTree reads an artifact as a tree. config is the config blob's bytes,
// needed for a Gantry dataset (IsDataset) and ignored otherwise.
//
// Other artifacts are read by their layers' annotations: a layer naming a
// file (org.opencontainers.image.title as oras writes it, or ModelPack's
// org.cncf.model.filepath on a raw layer) is that file; one oras made from
// a directory (io.deis.oras.content.unpack), and any tar layer, is
// extracted at the root; anything else is skipped. Every path is checked
// (CheckPath), so an unsafe name is refused here, before anything is
// fetched.
func NewTree(m *v1.Manifest, config []byte) (*Tree, error) {
	if IsDataset(m) {
		return datasetTree(m, config)
	}
	t := &Tree{}
	files := map[string]bool{}
	for _, l := range m.Layers {
		lt := Layer{Desc: l}
		mt := l.MediaType
		name := l.Annotations[AnnotationModelFilepath]
		if name == "" {
			name = l.Annotations[AnnotationTitle]
		}
		name = strings.TrimPrefix(name, "./")
		modelTar := strings.HasPrefix(mt, "application/vnd.cncf.model.") && isTar(mt)
		switch {
		case strings.HasSuffix(mt, "+zstd") || strings.HasSuffix(mt, ".zstd"):
			return nil, fmt.Errorf("layer %s: %s: zstd layers are not supported", l.Digest, mt)
		case l.Annotations[AnnotationUnpack] == "true" || modelTar || (name == "" && isTar(mt)):
			lt.Kind = LayerTar
			if strings.HasSuffix(mt, "gzip") {
				lt.Kind = LayerTarGzip
			}
		case name != "":
			if err := CheckPath(name); err != nil {
				return nil, err
			}
			if files[name] {
				return nil, unsafe(name, "two layers write the same file")
			}
			files[name] = true
			e := Entry{Path: name, Type: TypeFile, Mode: 0o644, Size: l.Size, Digest: l.Digest}
			if s := l.Annotations[AnnotationModelFileMeta]; s != "" {
				var fm FileMeta
				if json.Unmarshal([]byte(s), &fm) == nil {
					e.Mode, e.MTime = fm.Mode&0o777, fm.ModTime
				}
			}
			lt.Kind, lt.Files = LayerRaw, []Entry{e}
		}
		t.Layers = append(t.Layers, lt)
	}
	return t, nil
}

func isTar(mt string) bool {
	return strings.HasSuffix(mt, ".tar") || strings.HasSuffix(mt, ".tar+gzip") || strings.HasSuffix(mt, ".tar.gzip") ||
		mt == "application/vnd.docker.image.rootfs.diff.tar.gzip" || mt == "application/x-tar"
}

func datasetTree(m *v1.Manifest, config []byte) (*Tree, error) {
	c, err := ParseConfig(config, len(m.Layers))
	if err != nil {
		return nil, err
	}
	t := &Tree{Described: true, Files: c.Files, Bytes: c.Bytes}
	for _, l := range m.Layers {
		k := LayerSkip
		switch l.MediaType {
		case MediaTypeFile:
			k = LayerRaw
		case MediaTypePack:
			k = LayerTar
		}
		t.Layers = append(t.Layers, Layer{Desc: l, Kind: k})
	}
	for _, e := range c.Entries {
		switch e.Type {
		case TypeDir:
			t.Dirs = append(t.Dirs, e)
		case TypeSymlink:
			t.Links = append(t.Links, e)
		case TypeFile:
			l := &t.Layers[e.Layer]
			switch l.Kind {
			case LayerRaw:
				if e.Digest != l.Desc.Digest || e.Size != l.Desc.Size {
					return nil, fmt.Errorf("dataset config: %s: not the file of layer %d", e.Path, e.Layer)
				}
				l.Files = append(l.Files, e)
			case LayerTar:
				if l.Members == nil {
					l.Members = map[string]Entry{}
				}
				l.Members[e.Path] = e
			default:
				return nil, fmt.Errorf("dataset config: %s: layer %d is a %s", e.Path, e.Layer, l.Desc.MediaType)
			}
		}
	}
	return t, nil
}
