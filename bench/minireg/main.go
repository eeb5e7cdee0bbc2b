// Command minireg is the benchmarks' yardstick for pulls: a read-only OCI
// registry that serves OCI image layouts from disk, as the files lie, with
// nothing else in the way (no auth, no metadata store, no logging). What a
// client achieves pulling from it is that client's own limit on this
// machine. It answers only what pulls need: the /v2/ ping and GET/HEAD of
// manifests (by tag or digest) and blobs. Not shipped; started by
// bench/clients_test.go.
//
//	minireg -addr 127.0.0.1:5000 -root DIR [-copy]
//
// A repository name is a directory under DIR holding an OCI layout
// (index.json, blobs/); tags are the layout's ref.name annotations. Bodies
// go out with sendfile (http.ServeContent on the file), or with -copy
// through a 1 MiB user-space buffer, to compare the two for a client.
package main

import (
	"encoding/json"
	"flag"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

type server struct {
	root string
	copy bool
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	root := flag.String("root", "", "directory of OCI layouts, one per repository")
	copyBuf := flag.Bool("copy", false, "send bodies through a 1 MiB buffer instead of sendfile")
	flag.Parse()
	if *root == "" {
		log.Fatal("minireg: -root is required")
	}
	log.Fatal(http.ListenAndServe(*addr, &server{root: *root, copy: *copyBuf}))
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "read-only", http.StatusMethodNotAllowed)
		return
	}
	p := strings.TrimPrefix(r.URL.Path, "/v2/")
	if p == "" || p == r.URL.Path {
		w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
		return
	}
	var name, kind, ref string
	for _, k := range []string{"/manifests/", "/blobs/"} {
		if i := strings.LastIndex(p, k); i > 0 {
			name, kind, ref = p[:i], strings.Trim(k, "/"), p[i+len(k):]
			break
		}
	}
	layout := filepath.Join(s.root, filepath.FromSlash(name))
	if name == "" || strings.Contains(name, "..") || !strings.HasPrefix(layout, s.root) {
		http.NotFound(w, r)
		return
	}
	mediaType := "application/octet-stream"
	d, err := digest.Parse(ref)
	if kind == "manifests" {
		var desc v1.Descriptor
		if desc, err = lookup(layout, ref); err == nil {
			d, mediaType = desc.Digest, desc.MediaType
		}
	}
	if err != nil {
		http.NotFound(w, r)
		return
	}
	f, err := os.Open(filepath.Join(layout, "blobs", string(d.Algorithm()), d.Encoded()))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", mediaType)
	w.Header().Set("Docker-Content-Digest", d.String())
	if !s.copy || r.Method == http.MethodHead || r.Header.Get("Range") != "" {
		http.ServeContent(w, r, "", fi.ModTime(), f)
		return
	}
	w.Header().Set("Content-Length", strconv.FormatInt(fi.Size(), 10))
	buf := make([]byte, 1<<20)
	// A plain writer: hides the response's ReadFrom, so no sendfile.
	_, _ = io.CopyBuffer(struct{ io.Writer }{w}, f, buf)
}

// lookup resolves a manifest reference in an OCI layout: a digest listed in
// index.json, or a tag (the ref.name annotation).
func lookup(layout, ref string) (v1.Descriptor, error) {
	b, err := os.ReadFile(filepath.Join(layout, "index.json"))
	if err != nil {
		return v1.Descriptor{}, err
	}
	var idx v1.Index
	if err := json.Unmarshal(b, &idx); err != nil {
		return v1.Descriptor{}, err
	}
	for _, m := range idx.Manifests {
		if m.Digest.String() == ref || m.Annotations[v1.AnnotationRefName] == ref {
			return m, nil
		}
	}
	return v1.Descriptor{}, os.ErrNotExist
}
