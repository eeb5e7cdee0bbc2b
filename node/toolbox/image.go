package toolbox

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// BinaryPath is where the gantry binary lives inside the toolbox image.
const BinaryPath = "/gantry"

// DefaultRepoTag is the name a fresh installation gives the toolbox image.
const DefaultRepoTag = "gantry/toolbox:latest"

// LabelToolbox marks an image as built by Build; its value is "true".
const LabelToolbox = "io.gantry.toolbox"

// Entrypoint is the toolbox image's entrypoint: arguments of a task are
// toolbox commands, e.g. ["echo", "hello"].
var Entrypoint = []string{BinaryPath, "toolbox"}

// epoch is the modification time of every file in the layer and the image's
// creation time, so the same binary always yields the same digests.
var epoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// libDirs are searched, in order, for the shared libraries a dynamically
// linked binary needs; a library is stored in the image at the path where it
// was found, which the dynamic loader also searches by default.
var libDirs = []string{
	"/lib/x86_64-linux-gnu",
	"/usr/lib/x86_64-linux-gnu",
	"/lib64",
	"/usr/lib64",
	"/lib",
	"/usr/lib",
	"/lib/aarch64-linux-gnu",
	"/usr/lib/aarch64-linux-gnu",
}

// Image is a one-layer OCI image holding the gantry binary. All byte slices
// are the exact blobs a registry stores; their digests are computed over them.
type Image struct {
	// Layer is the gzip-compressed tar of the image's only layer
	// (media type v1.MediaTypeImageLayerGzip).
	Layer []byte
	// LayerDigest is the digest of Layer, as it appears in the manifest.
	LayerDigest digest.Digest
	// DiffID is the digest of the uncompressed layer tar, as it appears in
	// the config's rootfs.
	DiffID digest.Digest
	// Config is the OCI image config JSON (v1.MediaTypeImageConfig).
	Config []byte
	// ConfigDigest is the digest of Config; Docker uses it as the image ID.
	ConfigDigest digest.Digest
	// Manifest is the OCI image manifest JSON (v1.MediaTypeImageManifest).
	Manifest []byte
	// ManifestDigest is the digest of Manifest: the image's repo digest.
	ManifestDigest digest.Digest
	// Files lists the paths of the regular files in the layer, sorted; a
	// dynamically linked binary brings its loader and libraries.
	Files []string
	// Static reports whether the binary needed no dynamic loader.
	Static bool
}

// LayerDescriptor describes Layer for a manifest or a blob upload.
func (img *Image) LayerDescriptor() v1.Descriptor {
	return v1.Descriptor{MediaType: v1.MediaTypeImageLayerGzip, Digest: img.LayerDigest, Size: int64(len(img.Layer))}
}

// ConfigDescriptor describes Config.
func (img *Image) ConfigDescriptor() v1.Descriptor {
	return v1.Descriptor{MediaType: v1.MediaTypeImageConfig, Digest: img.ConfigDigest, Size: int64(len(img.Config))}
}

// ManifestDescriptor describes Manifest, e.g. for an index or a tag.
func (img *Image) ManifestDescriptor() v1.Descriptor {
	return v1.Descriptor{MediaType: v1.MediaTypeImageManifest, Digest: img.ManifestDigest, Size: int64(len(img.Manifest))}
}

// Blobs returns every blob of the image by digest: layer, config and
// manifest.
func (img *Image) Blobs() map[digest.Digest][]byte {
	return map[digest.Digest][]byte{
		img.LayerDigest:    img.Layer,
		img.ConfigDigest:   img.Config,
		img.ManifestDigest: img.Manifest,
	}
}

// layerFile is one regular file to put in the layer: the bytes of src stored
// at dst (an absolute path inside the image).
type layerFile struct {
	dst, src string
	mode     int64
}

// Build makes the toolbox image from the gantry binary at exePath (usually
// os.Executable()). A static binary yields a layer with just /gantry and /tmp;
// a dynamically linked one also gets its ELF interpreter and every shared
// library it needs, resolved recursively, so it runs in an otherwise empty
// image. The result depends only on the bytes of those files. Errors: the
// file is not a readable ELF executable, or a needed library cannot be found.
func Build(exePath string) (*Image, error) {
	files, arch, static, err := collectFiles(exePath)
	if err != nil {
		return nil, err
	}
	img := &Image{Static: static}
	for _, f := range files {
		img.Files = append(img.Files, f.dst)
	}

	var gz bytes.Buffer
	diff := sha256.New()
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	if err != nil {
		return nil, fmt.Errorf("gzip writer: %w", err)
	}
	if err := writeLayer(io.MultiWriter(zw, diff), files); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("compress layer: %w", err)
	}
	img.Layer = gz.Bytes()
	img.LayerDigest = digest.FromBytes(img.Layer)
	img.DiffID = digest.NewDigest(digest.SHA256, diff)

	created := epoch
	cfg := v1.Image{
		Created: &created,
		Author:  "gantry",
		Platform: v1.Platform{
			Architecture: arch,
			OS:           "linux",
		},
		Config: v1.ImageConfig{
			Entrypoint: Entrypoint,
			Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			WorkingDir: "/tmp",
			Labels: map[string]string{
				LabelToolbox:                         "true",
				v1.AnnotationTitle:                   "gantry toolbox",
				v1.AnnotationDescription:             "The gantry binary's toolbox commands: echo, sleep, exit, env, burn, alloc, write, cat, tick, fail-until, lines.",
				"org.opencontainers.image.vendor":    "gantry",
				"org.opencontainers.image.base.name": "scratch",
			},
		},
		RootFS: v1.RootFS{Type: "layers", DiffIDs: []digest.Digest{img.DiffID}},
		History: []v1.History{{
			Created:   &created,
			CreatedBy: "gantry toolbox build",
			Comment:   fmt.Sprintf("gantry binary and %d runtime file(s)", len(files)-1),
		}},
	}
	if img.Config, err = json.Marshal(cfg); err != nil {
		return nil, fmt.Errorf("encode image config: %w", err)
	}
	img.ConfigDigest = digest.FromBytes(img.Config)

	man := v1.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: v1.MediaTypeImageManifest,
		Config:    img.ConfigDescriptor(),
		Layers:    []v1.Descriptor{img.LayerDescriptor()},
	}
	if img.Manifest, err = json.Marshal(man); err != nil {
		return nil, fmt.Errorf("encode image manifest: %w", err)
	}
	img.ManifestDigest = digest.FromBytes(img.Manifest)
	return img, nil
}

// collectFiles returns the files of the layer, sorted by destination path,
// the binary's architecture in OCI terms, and whether it is static.
func collectFiles(exePath string) ([]layerFile, string, bool, error) {
	f, err := elf.Open(exePath)
	if err != nil {
		return nil, "", false, fmt.Errorf("read binary %s: %w", exePath, err)
	}
	defer f.Close()
	arch, err := ociArch(f.Machine)
	if err != nil {
		return nil, "", false, fmt.Errorf("binary %s: %w", exePath, err)
	}
	files := []layerFile{{dst: BinaryPath, src: exePath, mode: 0o755}}

	interp, err := interpreter(f)
	if err != nil {
		return nil, "", false, fmt.Errorf("binary %s: %w", exePath, err)
	}
	needed, err := f.ImportedLibraries()
	if err != nil {
		return nil, "", false, fmt.Errorf("binary %s: list shared libraries: %w", exePath, err)
	}
	if interp == "" && len(needed) == 0 {
		return files, arch, true, nil
	}
	if interp != "" {
		real, err := filepath.EvalSymlinks(interp)
		if err != nil {
			return nil, "", false, fmt.Errorf("binary %s: ELF interpreter: %w", exePath, err)
		}
		files = append(files, layerFile{dst: interp, src: real, mode: 0o755})
	}
	libs, err := resolveLibraries(needed, f.Class)
	if err != nil {
		return nil, "", false, fmt.Errorf("binary %s: %w", exePath, err)
	}
	seen := map[string]bool{}
	for _, lf := range files {
		seen[lf.dst] = true
	}
	for _, lf := range libs {
		if !seen[lf.dst] {
			seen[lf.dst] = true
			files = append(files, lf)
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].dst < files[j].dst })
	return files, arch, false, nil
}

func ociArch(m elf.Machine) (string, error) {
	switch m {
	case elf.EM_X86_64:
		return "amd64", nil
	case elf.EM_AARCH64:
		return "arm64", nil
	case elf.EM_386:
		return "386", nil
	case elf.EM_RISCV:
		return "riscv64", nil
	case elf.EM_PPC64:
		return "ppc64le", nil
	case elf.EM_S390:
		return "s390x", nil
	}
	return "", fmt.Errorf("unsupported machine %v", m)
}

func interpreter(f *elf.File) (string, error) {
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		b, err := io.ReadAll(p.Open())
		if err != nil {
			return "", fmt.Errorf("read ELF interpreter: %w", err)
		}
		return strings.TrimRight(string(b), "\x00"), nil
	}
	return "", nil
}

// resolveLibraries finds each needed library and, recursively, the libraries
// those need. A library of the wrong ELF class (e.g. a 32-bit one earlier on
// the search path) is skipped, as the loader skips it.
func resolveLibraries(needed []string, class elf.Class) ([]layerFile, error) {
	var out []layerFile
	done := map[string]bool{}
	queue := append([]string(nil), needed...)
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		if done[name] {
			continue
		}
		done[name] = true
		dst, real, more, err := findLibrary(name, class)
		if err != nil {
			return nil, err
		}
		out = append(out, layerFile{dst: dst, src: real, mode: 0o755})
		queue = append(queue, more...)
	}
	return out, nil
}

func findLibrary(name string, class elf.Class) (dst, real string, needed []string, err error) {
	if strings.Contains(name, "/") {
		return "", "", nil, fmt.Errorf("shared library %q: paths are not supported", name)
	}
	for _, dir := range libDirs {
		p := path.Join(dir, name)
		r, err := filepath.EvalSymlinks(p)
		if err != nil {
			continue
		}
		lib, err := elf.Open(r)
		if err != nil {
			continue
		}
		more, lerr := lib.ImportedLibraries()
		ok := lib.Class == class
		lib.Close()
		if !ok {
			continue
		}
		if lerr != nil {
			return "", "", nil, fmt.Errorf("shared library %s: %w", r, lerr)
		}
		return p, r, more, nil
	}
	return "", "", nil, fmt.Errorf("shared library %q not found in %s", name, strings.Join(libDirs, ", "))
}

// writeLayer writes the layer tar: the parent directories of every file,
// /tmp (mode 1777), and the files, all owned by root with fixed times.
func writeLayer(w io.Writer, files []layerFile) error {
	dirs := map[string]bool{"tmp": true}
	for _, f := range files {
		for d := path.Dir(strings.TrimPrefix(f.dst, "/")); d != "." && d != "/"; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	var dirList []string
	for d := range dirs {
		dirList = append(dirList, d)
	}
	sort.Strings(dirList)

	tw := tar.NewWriter(w)
	for _, d := range dirList {
		mode := int64(0o755)
		if d == "tmp" {
			mode = 0o1777
		}
		hdr := &tar.Header{
			Typeflag: tar.TypeDir,
			Name:     d + "/",
			Mode:     mode,
			ModTime:  epoch,
			Format:   tar.FormatPAX,
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("write layer directory %s: %w", d, err)
		}
	}
	for _, f := range files {
		if err := addFile(tw, f); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("finish layer tar: %w", err)
	}
	return nil
}

func addFile(tw *tar.Writer, f layerFile) error {
	src, err := os.Open(f.src)
	if err != nil {
		return fmt.Errorf("open %s: %w", f.src, err)
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil {
		return fmt.Errorf("stat %s: %w", f.src, err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s: %w", f.src, fs.ErrInvalid)
	}
	hdr := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     strings.TrimPrefix(f.dst, "/"),
		Mode:     f.mode,
		Size:     st.Size(),
		ModTime:  epoch,
		Format:   tar.FormatPAX,
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("write layer header %s: %w", f.dst, err)
	}
	n, err := io.Copy(tw, src)
	if err != nil {
		return fmt.Errorf("copy %s into layer: %w", f.src, err)
	}
	if n != st.Size() {
		return fmt.Errorf("copy %s into layer: %w", f.src, errors.New("file changed size while reading"))
	}
	return nil
}

// dockerManifestEntry is one element of manifest.json in a `docker save`
// archive.
type dockerManifestEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// WriteDockerArchive writes the image as a `docker save` tar that
// `docker load` and the Engine API's ImageLoad accept, tagged repoTag
// ("name:tag"; empty for no tag). The archive is also an OCI image layout
// (oci-layout, index.json, blobs/sha256/...), as `docker save` writes since
// Docker 25, so OCI tools can read it too.
func (img *Image) WriteDockerArchive(w io.Writer, repoTag string) error {
	blobPath := func(d digest.Digest) string { return "blobs/" + d.Algorithm().String() + "/" + d.Encoded() }

	entry := dockerManifestEntry{Config: blobPath(img.ConfigDigest), Layers: []string{blobPath(img.LayerDigest)}, RepoTags: []string{}}
	md := img.ManifestDescriptor()
	if repoTag != "" {
		entry.RepoTags = []string{repoTag}
		md.Annotations = map[string]string{"io.containerd.image.name": repoTag}
		if i := strings.LastIndex(repoTag, ":"); i > strings.LastIndex(repoTag, "/") {
			md.Annotations[v1.AnnotationRefName] = repoTag[i+1:]
		}
	}
	dockerManifest, err := json.Marshal([]dockerManifestEntry{entry})
	if err != nil {
		return fmt.Errorf("encode manifest.json: %w", err)
	}
	index, err := json.Marshal(v1.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: v1.MediaTypeImageIndex,
		Manifests: []v1.Descriptor{md},
	})
	if err != nil {
		return fmt.Errorf("encode index.json: %w", err)
	}
	layout, err := json.Marshal(v1.ImageLayout{Version: v1.ImageLayoutVersion})
	if err != nil {
		return fmt.Errorf("encode oci-layout: %w", err)
	}

	tw := tar.NewWriter(w)
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: epoch}); err != nil {
			return fmt.Errorf("write archive: %w", err)
		}
	}
	entries := []struct {
		name string
		data []byte
	}{
		{blobPath(img.LayerDigest), img.Layer},
		{blobPath(img.ConfigDigest), img.Config},
		{blobPath(img.ManifestDigest), img.Manifest},
		{"index.json", index},
		{"manifest.json", dockerManifest},
		{v1.ImageLayoutFile, layout},
	}
	for _, e := range entries {
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: e.name, Mode: 0o644, Size: int64(len(e.data)), ModTime: epoch}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("write archive entry %s: %w", e.name, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return fmt.Errorf("write archive entry %s: %w", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("finish archive: %w", err)
	}
	return nil
}
