package registry

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"sync"
)

// How a blob's body is sent (DESIGN.md, "Reading a blob"). To a reader on
// another host, sendfile: the bytes go from the page cache to the socket
// without a copy through this process. To a reader on this host (the
// node's Docker daemon, a client on loopback), a user-space copy in 1 MiB
// writes: over loopback the reader then receives a few large linear
// buffers instead of a page-sized fragment per 4 KiB, and spends
// measurably less CPU per byte (bench/clients_test.go), which on a node
// whose cores the client shares is worth more than the copy costs here.
const (
	sendAuto     = "auto"     // copy to readers on this host, sendfile to others
	sendSendfile = "sendfile" // always sendfile
	sendCopy     = "copy"     // always copy
	copyBufSize  = 1 << 20
	// copyMin: smaller bodies leave no difference worth a second path.
	copyMin = 1 << 20
)

// sendMode is read once, from GANTRY_REGISTRY_SEND (auto, sendfile or
// copy): a switch for benchmarks comparing the two, not a tuning knob.
var sendMode = func() string {
	switch m := os.Getenv("GANTRY_REGISTRY_SEND"); m {
	case sendSendfile, sendCopy:
		return m
	}
	return sendAuto
}()

var copyBufs = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

// copyBody reports whether a GET of a blob of size bytes should be answered
// by copying rather than by http.ServeContent (sendfile): a whole-body GET
// without conditions, of a large blob, from a reader on this host (unless
// the mode says otherwise).
func copyBody(req *http.Request, size int64) bool {
	if sendMode == sendSendfile || req.Method != http.MethodGet || size < copyMin {
		return false
	}
	for _, h := range []string{"Range", "If-Range", "If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since"} {
		if req.Header.Get(h) != "" {
			return false
		}
	}
	return sendMode == sendCopy || sameHost(req.Context(), req.RemoteAddr)
}

// sameHost reports whether the peer at remote is on this host: a loopback
// address, or the address the connection arrived on.
func sameHost(ctx context.Context, remote string) bool {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return false
	}
	peer := ap.Addr().Unmap()
	if peer.IsLoopback() {
		return true
	}
	local, ok := ctx.Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return false
	}
	lap, err := netip.ParseAddrPort(local.String())
	return err == nil && lap.Addr().Unmap() == peer
}

// writerOnly hides the response's ReadFrom, so io.CopyBuffer writes the
// buffer instead of handing the file to sendfile.
type writerOnly struct{ io.Writer }

// sendCopied writes the whole of f (size bytes) as a 200 response through
// a pooled 1 MiB buffer. Headers other than the length are the caller's.
func sendCopied(w http.ResponseWriter, f *os.File, size int64) error {
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	w.Header().Set("Accept-Ranges", "bytes")
	w.WriteHeader(http.StatusOK)
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	_, err := io.CopyBuffer(writerOnly{w}, io.LimitReader(f, size), *bp)
	return err
}
