package toolbox

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"gantry/gantrytest"
)

// buildStatic compiles a tiny static Go program and returns its path.
func buildStatic(t *testing.T) string {
	t.Helper()
	return buildTiny(t, "package main\n\nfunc main() { println(\"tiny\") }\n", "CGO_ENABLED=0")
}

// buildDynamic builds a cgo program, which links libc dynamically as a plain
// `go run . server` does on a machine with a C compiler.
func buildDynamic(t *testing.T) string {
	t.Helper()
	src := "package main\n\n// #include <stdio.h>\n// static void hello(void) { printf(\"dynamic ok\\n\"); fflush(stdout); }\nimport \"C\"\n\nfunc main() { C.hello() }\n"
	return buildTiny(t, src, "CGO_ENABLED=1")
}

func buildTiny(t *testing.T, src, cgo string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module tiny\n\ngo 1.22\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "tiny")
	cmd := exec.Command("go", "build", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), cgo, "GOFLAGS=")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build (%s): %v\n%s", cgo, err, b)
	}
	return out
}

// layerEntries lists the layer's tar entries by name.
func layerEntries(t *testing.T, img *Image) map[string]*tar.Header {
	t.Helper()
	if got := digest.FromBytes(img.Layer); got != img.LayerDigest {
		t.Fatalf("layer digest = %s, want %s", img.LayerDigest, got)
	}
	zr, err := gzip.NewReader(bytes.NewReader(img.Layer))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if got := digest.FromBytes(raw); got != img.DiffID {
		t.Fatalf("diffID = %s, want %s", img.DiffID, got)
	}
	tr := tar.NewReader(bytes.NewReader(raw))
	out := map[string]*tar.Header{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out[h.Name] = h
	}
}

func TestBuildStaticBinaryHasOnlyTheBinary(t *testing.T) {
	exe := buildStatic(t)
	img, err := Build(exe)
	if err != nil {
		t.Fatal(err)
	}
	if !img.Static {
		t.Error("Static = false for a CGO_ENABLED=0 binary")
	}
	if !slices.Equal(img.Files, []string{"/gantry"}) {
		t.Errorf("Files = %v, want [/gantry]", img.Files)
	}
	ents := layerEntries(t, img)
	if h := ents["gantry"]; h == nil || h.Mode != 0o755 || h.Typeflag != tar.TypeReg {
		t.Errorf("gantry entry = %+v", h)
	}
	if h := ents["tmp/"]; h == nil || h.Mode != 0o1777 || h.Typeflag != tar.TypeDir {
		t.Errorf("tmp entry = %+v, want a 1777 directory", h)
	}

	var cfg v1.Image
	if err := json.Unmarshal(img.Config, &cfg); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.Config.Entrypoint, []string{"/gantry", "toolbox"}) || cfg.Config.WorkingDir != "/tmp" {
		t.Errorf("config = %+v", cfg.Config)
	}
	if cfg.Config.Labels[LabelToolbox] != "true" || len(cfg.Config.Env) == 0 {
		t.Errorf("labels/env = %v %v", cfg.Config.Labels, cfg.Config.Env)
	}
	if !slices.Equal(cfg.RootFS.DiffIDs, []digest.Digest{img.DiffID}) || cfg.OS != "linux" || cfg.Architecture == "" {
		t.Errorf("rootfs/platform = %+v %s/%s", cfg.RootFS, cfg.OS, cfg.Architecture)
	}
	var man v1.Manifest
	if err := json.Unmarshal(img.Manifest, &man); err != nil {
		t.Fatal(err)
	}
	if man.Config.Digest != img.ConfigDigest || len(man.Layers) != 1 || man.Layers[0].Digest != img.LayerDigest || man.MediaType != v1.MediaTypeImageManifest {
		t.Errorf("manifest = %s", img.Manifest)
	}
	if digest.FromBytes(img.Manifest) != img.ManifestDigest || digest.FromBytes(img.Config) != img.ConfigDigest {
		t.Error("manifest or config digest does not match its bytes")
	}
}

func TestBuildIsDeterministic(t *testing.T) {
	exe := buildStatic(t)
	a, err := Build(exe)
	if err != nil {
		t.Fatal(err)
	}
	// A different mtime on the input must not change the image.
	if err := os.Chtimes(exe, time.Now().Add(-time.Hour), time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	b, err := Build(exe)
	if err != nil {
		t.Fatal(err)
	}
	if a.ManifestDigest != b.ManifestDigest || a.LayerDigest != b.LayerDigest {
		t.Fatalf("two builds differ: %s vs %s", a.ManifestDigest, b.ManifestDigest)
	}
}

func TestBuildDynamicBinaryBringsItsLibraries(t *testing.T) {
	img, err := Build(buildDynamic(t))
	if err != nil {
		t.Fatal(err)
	}
	if img.Static {
		t.Fatal("Static = true for a cgo binary")
	}
	ents := layerEntries(t, img)
	var haveLibc, haveLoader bool
	for name, h := range ents {
		if h.Typeflag == tar.TypeSymlink {
			t.Errorf("%s is a symlink; want real files at the loader's paths", name)
		}
		switch filepath.Base(name) {
		case "libc.so.6":
			haveLibc = true
		case "ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1":
			haveLoader = true
		}
	}
	if !haveLibc || !haveLoader {
		t.Errorf("layer files %v: want the ELF interpreter and libc", img.Files)
	}
}

func TestWriteDockerArchiveHasManifestJSON(t *testing.T) {
	img, err := Build(buildStatic(t))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := img.WriteDockerArchive(&buf, "gantry/toolbox:test"); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(&buf)
	files := map[string][]byte{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		files[h.Name] = b
	}
	var entries []dockerManifestEntry
	if err := json.Unmarshal(files["manifest.json"], &entries); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	if len(entries) != 1 || !slices.Equal(entries[0].RepoTags, []string{"gantry/toolbox:test"}) {
		t.Fatalf("manifest.json = %s", files["manifest.json"])
	}
	if !bytes.Equal(files[entries[0].Config], img.Config) || !bytes.Equal(files[entries[0].Layers[0]], img.Layer) {
		t.Error("manifest.json does not point at the config and layer")
	}
	if _, ok := files["index.json"]; !ok {
		t.Error("no index.json")
	}
}

// TestDynamicImageRunsInDocker loads the image of a dynamically linked
// binary into the real Docker Engine and runs it from scratch: the loader
// and libraries packed with it are enough.
func TestDynamicImageRunsInDocker(t *testing.T) {
	gantrytest.RequireDocker(t)
	img, err := Build(buildDynamic(t))
	if err != nil {
		t.Fatal(err)
	}
	tag := fmt.Sprintf("gantry-test/dynamic:%d", time.Now().UnixNano())
	var archive bytes.Buffer
	if err := img.WriteDockerArchive(&archive, tag); err != nil {
		t.Fatal(err)
	}
	load := exec.Command("docker", "load")
	load.Stdin = &archive
	if out, err := load.CombinedOutput(); err != nil {
		t.Fatalf("docker load: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", tag).Run() })
	out, err := exec.Command("docker", "run", "--rm", "--label", "gantry.test=toolbox", tag).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "dynamic ok") {
		t.Fatalf("docker run of the dynamic image: %v\n%s", err, out)
	}
}
