package registry

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/opencontainers/go-digest"
)

// streamMin is the size from which a GET of a blob this node lacks is
// served while it is fetched from a peer; smaller blobs are fetched first,
// so a failed fetch can still be answered with a clean error.
const streamMin = 8 << 20

// streamFromPeer answers a GET of blob d (size bytes, linked here, held by
// other nodes) while this node fetches it from a peer: the client gets the
// bytes as they land in the fetch's temporary file instead of waiting for
// the whole blob. The last byte is held back until the fetch has verified
// the digest, so a client never receives a complete body that was not
// verified; when the fetch fails the connection is cut and the client sees
// a short body. served is false when it did not answer (the blob became
// local, no peer holds it, or the fetch ended before any attempt started):
// the caller serves the usual way.
func (r *Registry) streamFromPeer(ctx context.Context, w http.ResponseWriter, d digest.Digest, size int64) (served bool) {
	if r.cfg.Peers == nil || len(r.cfg.Peers.Holders(d)) == 0 {
		return false
	}
	c := r.startFetch(ctx, d, nil)
	var f *os.File
	var attempt int
	for f == nil {
		a, path, _, changed := c.state()
		if a > 0 {
			if ff, err := os.Open(path); err == nil {
				f, attempt = ff, a
				break
			}
			// That attempt's file is gone already: wait for the next one.
		}
		select {
		case <-c.done:
			return false
		case <-changed:
		case <-ctx.Done():
			return true
		}
	}
	defer f.Close()
	h := w.Header()
	h.Set("Docker-Content-Digest", d.String())
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Etag", `"`+d.String()+`"`)
	h.Set("Content-Length", strconv.FormatInt(size, 10))
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	buf := make([]byte, 1<<20)
	var sent int64
	start := time.Now()
	for sent < size {
		a, _, written, changed := c.state()
		finished := false
		select {
		case <-c.done:
			finished = true
		default:
		}
		if a != attempt || (finished && c.err != nil) {
			// The attempt being streamed failed (another peer may be tried,
			// from byte 0): cut the response; the client retries.
			r.log.Warn("blob stream cut: the fetch from a peer failed", "digest", d, "sent", sent, "err", c.err)
			panic(http.ErrAbortHandler)
		}
		limit := min(written, size-1) // the last byte waits for verification
		if finished {
			limit = size
		}
		for sent < limit {
			n, err := f.ReadAt(buf[:min(int64(len(buf)), limit-sent)], sent)
			if n > 0 {
				if _, werr := w.Write(buf[:n]); werr != nil {
					return true // the client went away
				}
				sent += int64(n)
			}
			if err != nil && !errors.Is(err, io.EOF) {
				r.log.Warn("blob stream: read the fetch file", "digest", d, "err", err)
				panic(http.ErrAbortHandler)
			}
			if n == 0 {
				break
			}
		}
		if flusher != nil {
			flusher.Flush()
		}
		if sent >= size {
			break
		}
		select {
		case <-changed:
		case <-c.done:
		case <-ctx.Done():
			return true
		}
	}
	r.log.Info("blob served while fetched from a peer", "digest", d, "bytes", sent, "took", time.Since(start).Round(time.Millisecond))
	return true
}
