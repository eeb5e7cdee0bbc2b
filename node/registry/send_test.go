package registry

import (
	"bytes"
	"context"
	"crypto/rand"
	"net"
	"net/http"
	"strconv"
	"testing"
)

// A large blob fetched by a client on this host takes the copying path;
// ranges and conditional requests still get what HTTP promises.
func TestLargeBlobsServeWholeRangedAndConditionalGets(t *testing.T) {
	e := newEnv(t)
	blob := make([]byte, 3<<20+123)
	rand.Read(blob)
	d := e.pushBlob("alice", "alice/big", blob)
	path := "/v2/alice/big/blobs/" + d.String()

	r := e.do("alice", "GET", path, nil)
	if r.code != http.StatusOK || !bytes.Equal(r.body, blob) {
		t.Fatalf("whole GET: %d, %d bytes; want 200 and the blob", r.code, len(r.body))
	}
	if r.hdr.Get("Content-Length") != strconv.Itoa(len(blob)) || r.hdr.Get("Docker-Content-Digest") != d.String() {
		t.Errorf("whole GET headers: %v", r.hdr)
	}
	r = e.do("alice", "GET", path, nil, "Range", "bytes=1048576-2097151")
	if r.code != http.StatusPartialContent || !bytes.Equal(r.body, blob[1<<20:2<<20]) {
		t.Errorf("ranged GET: %d, %d bytes; want 206 and the second MiB", r.code, len(r.body))
	}
	r = e.do("alice", "GET", path, nil, "If-None-Match", `"`+d.String()+`"`)
	if r.code != http.StatusNotModified || len(r.body) != 0 {
		t.Errorf("conditional GET: %d, %d bytes; want 304 and no body", r.code, len(r.body))
	}
	r = e.do("alice", "HEAD", path, nil)
	if r.code != http.StatusOK || r.hdr.Get("Content-Length") != strconv.Itoa(len(blob)) {
		t.Errorf("HEAD: %d %v", r.code, r.hdr)
	}
}

func TestSameHostRecognisesLoopbackAndTheLocalAddress(t *testing.T) {
	local := &net.TCPAddr{IP: net.ParseIP("10.1.2.3"), Port: 5000}
	ctx := context.WithValue(context.Background(), http.LocalAddrContextKey, net.Addr(local))
	for _, c := range []struct {
		remote string
		want   bool
	}{
		{"127.0.0.1:4000", true},
		{"127.8.9.1:4000", true},
		{"[::1]:4000", true},
		{"10.1.2.3:4000", true},
		{"[::ffff:10.1.2.3]:4000", true},
		{"10.1.2.4:4000", false},
		{"[2001:db8::1]:4000", false},
		{"not an address", false},
	} {
		if got := sameHost(ctx, c.remote); got != c.want {
			t.Errorf("sameHost(%s) = %v, want %v", c.remote, got, c.want)
		}
	}
}
