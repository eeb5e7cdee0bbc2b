// Package ui is Gantry's browser console: its static assets (plain HTML, CSS
// and JavaScript modules embedded with go:embed, no build step) and the
// WebSocket hub that pushes live job, task and node changes to browsers
// (/api/v1/events). It does not authenticate requests or serve the REST API:
// node/api does both and mounts these handlers. See DESIGN.md.
package ui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed assets
var assets embed.FS

type asset struct {
	body  []byte
	etag  string
	ctype string
}

// Assets returns the handler of the console's pages. Files under /assets/
// are served as they are; every other path answers index.html, whose script
// routes in the browser, so links such as /jobs/ID can be bookmarked.
func Assets() http.Handler {
	files := map[string]asset{}
	_ = fs.WalkDir(assets, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := assets.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		files["/"+p] = asset{body: b, etag: `"` + hex.EncodeToString(sum[:8]) + `"`, ctype: contentType(p)}
		return nil
	})
	index := files["/assets/index.html"]
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		a, ok := files[path.Clean(r.URL.Path)]
		if !ok {
			if strings.HasPrefix(r.URL.Path, "/assets/") {
				http.NotFound(w, r)
				return
			}
			a = index
		}
		h := w.Header()
		h.Set("Content-Type", a.ctype)
		h.Set("ETag", a.etag)
		// Revalidate every time: the assets change with the binary, and an
		// unchanged one costs a 304.
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
	})
}

func contentType(p string) string {
	switch path.Ext(p) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	case ".json":
		return "application/json; charset=utf-8"
	}
	return "application/octet-stream"
}
