// Package data is Gantry's format for datasets, models and task outputs
// stored as OCI artifacts, and the rules that make unpacking one safe.
//
// It owns: the Gantry dataset artifact (an OCI image manifest whose config
// describes the tree and whose layers are one blob per large file plus tar
// packs of small files), the CNCF ModelPack layout used for models, how any
// other artifact (one pushed by oras, a plain tar layer) is read as a tree,
// building an artifact from a directory, and writing a tree into a
// directory without ever writing outside it. It also drives a push and a
// pull in parallel over a Remote, skipping what is already there.
//
// It does not own the registry (node/registry serves the bytes; the client
// package speaks its HTTP API), the per-node cache of unpacked inputs, or
// who may read what. DESIGN.md says why it is built this way.
package data

import (
	"encoding/json"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// Media types of the Gantry dataset artifact (DESIGN.md describes it).
const (
	// ArtifactTypeDataset is the manifest's artifactType for a dataset.
	ArtifactTypeDataset = "application/vnd.gantry.dataset.v1"
	// ArtifactTypeOutput is the manifest's artifactType for a task's output
	// (the same layout as a dataset).
	ArtifactTypeOutput = "application/vnd.gantry.output.v1"
	// MediaTypeConfig is the config blob: a Config in JSON.
	MediaTypeConfig = "application/vnd.gantry.dataset.config.v1+json"
	// MediaTypeFile is a layer holding the bytes of one file, as they are.
	MediaTypeFile = "application/vnd.gantry.dataset.file.v1"
	// MediaTypePack is a layer packing small files: an uncompressed tar.
	MediaTypePack = v1.MediaTypeImageLayer
)

// CNCF ModelPack media types and annotations (model-spec v1) used for
// models.
const (
	ArtifactTypeModel       = "application/vnd.cncf.model.manifest.v1+json"
	MediaTypeModelConfig    = "application/vnd.cncf.model.config.v1+json"
	AnnotationModelFilepath = "org.cncf.model.filepath"
	AnnotationModelFileMeta = "org.cncf.model.file.metadata+json"
)

// Annotations read from artifacts made by other tools.
const (
	// AnnotationTitle names the file a layer holds (oras sets it).
	AnnotationTitle = v1.AnnotationTitle
	// AnnotationUnpack marks a layer oras made from a directory: a gzipped
	// tar whose entries start with the title.
	AnnotationUnpack = "io.deis.oras.content.unpack"
)

// Provenance annotations on a task output's manifest (DESIGN.md,
// "Outputs"): what made it, so a reader can trace it back.
const (
	AnnotationJob      = "dev.gantry.output.job"       // the job's id
	AnnotationTask     = "dev.gantry.output.task"      // the task's index
	AnnotationAttempt  = "dev.gantry.output.attempt"   // the attempt's number
	AnnotationExitCode = "dev.gantry.output.exit-code" // the task's exit code
	AnnotationImage    = "dev.gantry.output.image"     // the image reference the task ran
	// AnnotationImageDigest is the image's manifest digest (Docker's image
	// id for an image not run by digest).
	AnnotationImageDigest = "dev.gantry.output.image-digest"
	// AnnotationInputs lists every input as "repo@digest", comma-separated
	// in the job's order.
	AnnotationInputs = "dev.gantry.output.inputs"
	// AnnotationGenAI is "true" on the output of a generative-AI image:
	// generated content, labelled as such (service terms 2.1.4.1 (3)).
	AnnotationGenAI = "dev.gantry.genai"
	// AnnotationCreated is when the attempt ended (RFC 3339).
	AnnotationCreated = v1.AnnotationCreated
)

// ModelKind is the kind of a file in a ModelPack artifact; each has its
// own layer media types.
type ModelKind string

// The kinds of ModelPack layers.
const (
	KindWeight       ModelKind = "weight"
	KindWeightConfig ModelKind = "weight.config"
	KindDoc          ModelKind = "doc"
	KindCode         ModelKind = "code"
	KindDataset      ModelKind = "dataset"
)

// ModelMediaType is the media type of a ModelPack layer of kind k: the
// file's bytes as they are (raw) or a tar.
func ModelMediaType(k ModelKind, raw bool) string {
	if raw {
		return "application/vnd.cncf.model." + string(k) + ".v1.raw"
	}
	return "application/vnd.cncf.model." + string(k) + ".v1.tar"
}

// EntryType is what an entry of a tree is.
type EntryType string

// The entry types a tree may hold; nothing else is ever stored or written.
const (
	TypeDir     EntryType = "dir"
	TypeFile    EntryType = "file"
	TypeSymlink EntryType = "symlink"
)

// Config is the config blob of a Gantry dataset: every entry of the tree,
// sorted by path, with its mode, modification time and, for a file, its
// size, digest and the layer holding it.
type Config struct {
	Version int     `json:"version"`
	Files   int     `json:"files"`
	Bytes   int64   `json:"bytes"`
	Entries []Entry `json:"entries"`
}

// ConfigVersion is the version of Config this package writes and reads.
const ConfigVersion = 1

// Entry is one directory, file or symbolic link.
type Entry struct {
	// Path is relative to the tree's root, slash-separated, clean.
	Path string    `json:"path"`
	Type EntryType `json:"type"`
	// Mode holds the permission bits (0o777); set-id and sticky bits are
	// never stored nor restored.
	Mode  uint32    `json:"mode"`
	MTime time.Time `json:"mtime"`
	// Size, Digest and Layer are set for files: Layer indexes the
	// manifest's layers.
	Size   int64         `json:"size,omitempty"`
	Digest digest.Digest `json:"digest,omitempty"`
	Layer  int           `json:"layer,omitempty"`
	// Target is a symbolic link's target: relative, inside the tree.
	Target string `json:"target,omitempty"`
}

// FileMeta is the value of AnnotationModelFileMeta (ModelPack's file
// metadata) on a raw layer.
type FileMeta struct {
	Name     string    `json:"name"`
	Mode     uint32    `json:"mode"`
	UID      uint32    `json:"uid"`
	GID      uint32    `json:"gid"`
	Size     int64     `json:"size"`
	ModTime  time.Time `json:"mtime"`
	Typeflag byte      `json:"typeflag"`
}

// ModelConfig is ModelPack's config blob (MediaTypeModelConfig), with the
// fields Gantry fills in.
type ModelConfig struct {
	Descriptor struct {
		Name string `json:"name,omitempty"`
	} `json:"descriptor"`
	ModelFS struct {
		Type    string          `json:"type"`
		DiffIDs []digest.Digest `json:"diffIds"`
	} `json:"modelfs"`
	Config struct{} `json:"config"`
}

// CheckPath reports whether p may name an entry of a tree: relative,
// slash-separated, clean, without "..", NUL or an empty name. It returns
// an *UnsafeError saying why not.
func CheckPath(p string) error {
	switch {
	case p == "" || p == ".":
		return unsafe(p, "an empty path")
	case strings.HasPrefix(p, "/"):
		return unsafe(p, "an absolute path")
	case strings.ContainsRune(p, 0):
		return unsafe(p, "a NUL in the path")
	case strings.Contains(p, "\\"):
		return unsafe(p, "a backslash in the path")
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return unsafe(p, "a path that escapes the tree (..)")
		}
	}
	if path.Clean(p) != p {
		return unsafe(p, "a path that is not clean")
	}
	return nil
}

// CheckLink reports whether a symbolic link at p may point at target: a
// relative target that, resolved from p's directory, stays in the tree.
func CheckLink(p, target string) error {
	switch {
	case target == "":
		return unsafe(p, "a symbolic link without a target")
	case strings.HasPrefix(target, "/"):
		return unsafe(p, "a symbolic link to an absolute path ("+target+")")
	case strings.ContainsRune(target, 0):
		return unsafe(p, "a NUL in a symbolic link's target")
	}
	r := path.Join(path.Dir(p), target)
	if r == ".." || strings.HasPrefix(r, "../") {
		return unsafe(p, "a symbolic link pointing outside the tree ("+target+")")
	}
	return nil
}

// UnsafeError is an entry refused because writing it could reach outside
// the tree or create something other than a directory, file or link.
type UnsafeError struct {
	Path   string
	Reason string
}

func (e *UnsafeError) Error() string {
	return fmt.Sprintf("refused entry %q: %s", e.Path, e.Reason)
}

func unsafe(p, reason string) error { return &UnsafeError{Path: p, Reason: reason} }

// ParseConfig reads and checks a dataset config against the manifest's
// layer count: every path safe and unique, every file in a layer, every
// link inside the tree.
func ParseConfig(b []byte, layers int) (*Config, error) {
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("dataset config: %w", err)
	}
	if c.Version != ConfigVersion {
		return nil, fmt.Errorf("dataset config: version %d (this Gantry reads %d)", c.Version, ConfigVersion)
	}
	seen := make(map[string]EntryType, len(c.Entries))
	for _, e := range c.Entries {
		if err := CheckPath(e.Path); err != nil {
			return nil, err
		}
		if _, dup := seen[e.Path]; dup {
			return nil, unsafe(e.Path, "listed twice")
		}
		seen[e.Path] = e.Type
		switch e.Type {
		case TypeDir:
		case TypeFile:
			if e.Layer < 0 || e.Layer >= layers {
				return nil, fmt.Errorf("dataset config: %s: layer %d of %d", e.Path, e.Layer, layers)
			}
			if err := e.Digest.Validate(); err != nil {
				return nil, fmt.Errorf("dataset config: %s: %w", e.Path, err)
			}
			if e.Size < 0 {
				return nil, fmt.Errorf("dataset config: %s: negative size", e.Path)
			}
		case TypeSymlink:
			if err := CheckLink(e.Path, e.Target); err != nil {
				return nil, err
			}
		default:
			return nil, unsafe(e.Path, fmt.Sprintf("an entry of type %q", e.Type))
		}
	}
	// A parent must be a directory: a file or link at a/ with an entry at
	// a/b would make a write go through it.
	for p := range seen {
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			if t, ok := seen[d]; ok && t != TypeDir {
				return nil, unsafe(p, "its parent "+d+" is not a directory")
			}
		}
	}
	return &c, nil
}
