package registry

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"gantry/gantrytest"
	"gantry/node/auth"
	"gantry/store"
)

// fakeCluster is two or more registries over one store (the replicated
// state) with their own blob directories; fakePeers connects them as the
// node package does over the internal listener.
type fakeCluster struct {
	mu      sync.Mutex
	regs    map[string]*Registry
	fetches atomic.Int32
	gate    chan struct{} // when set, FetchBlob waits on it
	corrupt bool          // FetchBlob serves wrong bytes
	hold    chan struct{} // when set, FetchBlob serves half the blob, then waits on it
	down    bool          // Replicate fails: no peer reachable
}

type fakePeers struct {
	c    *fakeCluster
	self string
}

func (p fakePeers) others() []string {
	var out []string
	for _, n := range []string{"a", "b", "c"} {
		if _, ok := p.c.regs[n]; ok && n != p.self {
			out = append(out, n)
		}
	}
	return out
}

func (p fakePeers) Holders(d digest.Digest) []string {
	st := p.c.regs[p.self].st
	held, _ := st.RegBlobHolders(d.String())
	var out []string
	for _, h := range held {
		if h != p.self {
			out = append(out, h)
		}
	}
	return out
}

func (p fakePeers) FetchBlob(ctx context.Context, node string, d digest.Digest) (io.ReadCloser, error) {
	p.c.fetches.Add(1)
	if p.c.gate != nil {
		<-p.c.gate
	}
	f, err := p.c.regs[node].OpenBlob(d)
	if err != nil {
		return nil, err
	}
	if p.c.corrupt || p.c.hold != nil {
		b, _ := io.ReadAll(f)
		f.Close()
		if p.c.corrupt {
			b[0] ^= 0xff
		}
		if p.c.hold != nil {
			half := len(b) / 2
			return io.NopCloser(io.MultiReader(bytes.NewReader(b[:half]), &heldReader{hold: p.c.hold, r: bytes.NewReader(b[half:])})), nil
		}
		return io.NopCloser(bytes.NewReader(b)), nil
	}
	return f, nil
}

// heldReader blocks its first read until hold is closed.
type heldReader struct {
	hold chan struct{}
	r    io.Reader
}

func (h *heldReader) Read(p []byte) (int, error) {
	<-h.hold
	return h.r.Read(p)
}

func (p fakePeers) Copies() int {
	if len(p.c.regs) < 2 {
		return 1
	}
	return 2
}

func (p fakePeers) Replicate(ctx context.Context, d digest.Digest, except []string) error {
	if p.c.down {
		return errors.New("no other node is up")
	}
	for _, n := range p.others() {
		if !containsStr(except, n) {
			return p.c.regs[n].PullBlob(ctx, d, p.self)
		}
	}
	return errors.New("no candidate")
}

// newFakeCluster starts registries named names over e's store.
func newFakeCluster(e *env, names ...string) (*fakeCluster, map[string]*httptest.Server) {
	c := &fakeCluster{regs: map[string]*Registry{}}
	srvs := map[string]*httptest.Server{}
	for _, n := range names {
		reg, err := New(Config{Dir: e.t.TempDir(), Store: e.st, Proposer: e.prop, Auth: auth.New(auth.Config{Store: e.st}),
			NodeSecret: "node-secret", Now: func() time.Time { return e.now }, NodeName: n, Peers: fakePeers{c, n}})
		if err != nil {
			e.t.Fatal(err)
		}
		c.regs[n] = reg
		srvs[n] = httptest.NewServer(reg)
		e.t.Cleanup(func() { srvs[n].Close(); reg.Close() })
	}
	return c, srvs
}

func (e *env) on(srv *httptest.Server, user, method, path string, body []byte, hdr ...string) resp {
	e.t.Helper()
	return e.do(user, method, srv.URL+path, body, hdr...)
}

func TestPushIsOnTwoNodesAndAnotherNodeFetchesOnce(t *testing.T) {
	e := newEnv(t)
	c, srv := newFakeCluster(e, "a", "b", "c")
	e.srv = srv["a"]
	layer := bytes.Repeat([]byte("layer bytes "), 300000)
	e.pushImage("alice", "alice/app", "v1", layer)
	ld := digest.FromBytes(layer)
	holders, _ := e.st.RegBlobHolders(ld.String())
	if len(holders) != 2 || holders[0] != "a" {
		t.Fatalf("holders after the push: %v, want a and one peer", holders)
	}
	if _, err := os.Stat(c.regs[holders[1]].blobs.path(ld)); err != nil {
		t.Fatalf("the replica on %s is missing: %v", holders[1], err)
	}

	// Node c lacks the layer (the replica went to b): concurrent GETs wait
	// on a single fetch.
	c.fetches.Store(0)
	c.gate = make(chan struct{})
	var wg sync.WaitGroup
	results := make([]resp, 8)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = e.on(srv["c"], NodeUser, "GET", "/v2/alice/app/blobs/"+ld.String(), nil)
		}()
	}
	// Release the peer once the one fetch has reached it; GETs still on their
	// way then find it in flight or the blob already stored.
	deadline := time.Now().Add(10 * time.Second)
	for c.fetches.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no peer fetch started")
		}
		runtime.Gosched()
	}
	close(c.gate)
	wg.Wait()
	for i, r := range results {
		if r.code != http.StatusOK || !bytes.Equal(r.body, layer) {
			t.Fatalf("GET %d on c: %d, %d bytes", i, r.code, len(r.body))
		}
	}
	if n := c.fetches.Load(); n != 1 {
		t.Fatalf("%d peer fetches for 8 concurrent GETs, want 1", n)
	}
	if holders, _ := e.st.RegBlobHolders(ld.String()); len(holders) != 3 {
		t.Fatalf("holders after c fetched: %v", holders)
	}

	// GC on one node sweeps every node and forgets the locations removed.
	tag, err := e.st.RegTag("alice/app", "v1")
	if err != nil {
		t.Fatal(err)
	}
	if r := e.on(srv["a"], "alice", "DELETE", "/v2/alice/app/manifests/"+tag.Digest, nil); r.code != http.StatusAccepted {
		t.Fatalf("delete manifest: %d %s", r.code, r.body)
	}
	e.now = e.now.Add(3 * time.Hour)
	rep, err := c.regs["a"].GC(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Peers) != 2 {
		t.Fatalf("gc report peers: %+v", rep.Peers)
	}
	for n, reg := range c.regs {
		if _, err := os.Stat(reg.blobs.path(ld)); err == nil {
			t.Fatalf("the layer is still on %s after gc", n)
		}
	}
	if holders, _ := e.st.RegBlobHolders(ld.String()); len(holders) != 0 {
		t.Fatalf("holders after gc: %v", holders)
	}
}

func (p fakePeers) CollectPeers(ctx context.Context, dryRun bool) []PeerGC {
	var out []PeerGC
	for _, n := range p.others() {
		rep, err := p.c.regs[n].GCLocal(ctx, dryRun)
		pg := PeerGC{Node: n, DeletedBlobs: rep.DeletedBlobs, FreedBytes: rep.FreedBytes}
		if err != nil {
			pg.Error = err.Error()
		}
		out = append(out, pg)
	}
	return out
}

func TestCorruptPeerBytesAreRejected(t *testing.T) {
	e := newEnv(t)
	c, srv := newFakeCluster(e, "a", "b")
	e.srv = srv["a"]
	d := e.pushBlob("alice", "alice/app", []byte("some blob"))
	// Drop b's replica (once the early copy is done): b must fetch again,
	// from a, and gets corrupt bytes.
	if err := c.regs["a"].waitCopy(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	if _, err := c.regs["b"].blobs.removeIfIdle(d, e.now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	c.corrupt = true
	if r := e.on(srv["b"], "alice", "GET", "/v2/alice/app/blobs/"+d.String(), nil); r.code != http.StatusServiceUnavailable {
		t.Fatalf("GET of a corrupt peer copy: %d, want 503 (retry)", r.code)
	}
	if _, err := os.Stat(c.regs["b"].blobs.path(d)); err == nil {
		t.Fatal("a corrupt copy was stored")
	}
	c.corrupt = false
	if r := e.on(srv["b"], "alice", "GET", "/v2/alice/app/blobs/"+d.String(), nil); r.code != http.StatusOK || string(r.body) != "some blob" {
		t.Fatalf("GET after the peer is fixed: %d %q", r.code, r.body)
	}
}

func TestPushWithoutAReachablePeerIsRefusedWithARetryableError(t *testing.T) {
	e := newEnv(t)
	c, srv := newFakeCluster(e, "a", "b")
	e.srv = srv["a"]
	c.down = true
	cfg := []byte(`{"architecture":"amd64","os":"linux"}`)
	cd := e.pushBlob("alice", "alice/app", cfg)
	man := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` +
		cd.String() + `","size":` + strconv.Itoa(len(cfg)) + `},"layers":[]}`)
	put := func() resp {
		return e.do("alice", "PUT", "/v2/alice/app/manifests/v1", man, "Content-Type", "application/vnd.oci.image.manifest.v1+json")
	}
	if r := put(); r.code != http.StatusServiceUnavailable || r.errCode() != "UNAVAILABLE" {
		t.Fatalf("manifest PUT with no peer: %d %s, want 503 UNAVAILABLE", r.code, r.body)
	}
	if _, err := e.st.RegTag("alice/app", "v1"); err == nil {
		t.Fatal("the refused push left a tag")
	}
	c.down = false
	if r := put(); r.code != http.StatusCreated {
		t.Fatalf("manifest PUT once a peer is back: %d %s", r.code, r.body)
	}
}

func TestSingleNodeNeedsNoPeer(t *testing.T) {
	e := newEnv(t)
	c, srv := newFakeCluster(e, "a")
	e.srv = srv["a"]
	c.down = true
	e.pushImage("alice", "alice/app", "v1", []byte("layer"))
	if n := c.fetches.Load(); n != 0 {
		t.Fatalf("%d peer fetches on a single node", n)
	}
}

func TestReconcileLocationsMatchesTheDisk(t *testing.T) {
	e := newEnv(t)
	c, srv := newFakeCluster(e, "a")
	e.srv = srv["a"]
	reg := c.regs["a"]
	d := e.pushBlob("alice", "alice/app", []byte("old blob"))
	ctx := context.Background()
	// As if stored before locations were recorded.
	if _, err := store.CmdRegBlobLocated.Propose(ctx, e.prop, store.RegBlobLocated{Node: "a", Digests: []string{d.String()}, Gone: true}); err != nil {
		t.Fatal(err)
	}
	if added, removed, err := reg.ReconcileLocations(ctx); err != nil || added != 1 || removed != 0 {
		t.Fatalf("reconcile: +%d -%d %v, want +1", added, removed, err)
	}
	if h, _ := e.st.RegBlobHolders(d.String()); len(h) != 1 || h[0] != "a" {
		t.Fatalf("holders: %v", h)
	}
	if err := os.Remove(reg.blobs.path(d)); err != nil {
		t.Fatal(err)
	}
	if added, removed, err := reg.ReconcileLocations(ctx); err != nil || added != 0 || removed != 1 {
		t.Fatalf("reconcile after the file is lost: +%d -%d %v, want -1", added, removed, err)
	}
	if added, removed, err := reg.ReconcileLocations(ctx); err != nil || added+removed != 0 {
		t.Fatalf("second reconcile: +%d -%d %v, want nothing", added, removed, err)
	}
}

// TestGetStreamsALargeBlobWhileItIsFetched: a node lacking a large blob
// answers a GET with the bytes as they arrive from the peer (the client has
// half the blob while the peer still holds back the rest), the body is the
// blob, and the node keeps a verified copy. With corrupt peer bytes the
// client never gets a complete body and nothing is stored.
func TestGetStreamsALargeBlobWhileItIsFetched(t *testing.T) {
	e := newEnv(t)
	c, srv := newFakeCluster(e, "a", "b")
	e.srv = srv["a"]
	blob := make([]byte, 24<<20)
	for i := range blob {
		blob[i] = byte(i*7 + i>>12)
	}
	d := e.pushBlob("alice", "alice/big", blob)
	dropCopy := func() {
		if err := c.regs["a"].waitCopy(context.Background(), d); err != nil {
			t.Fatal(err)
		}
		if _, err := c.regs["b"].blobs.removeIfIdle(d, e.now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	dropCopy()
	get := func() *http.Response {
		req, _ := http.NewRequest("GET", srv["b"].URL+"/v2/alice/big/blobs/"+d.String(), nil)
		req.SetBasicAuth("alice", "alice-pw")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}

	c.hold = make(chan struct{})
	res := get()
	if res.StatusCode != http.StatusOK || res.ContentLength != int64(len(blob)) {
		t.Fatalf("GET: %d, length %d", res.StatusCode, res.ContentLength)
	}
	first := make([]byte, len(blob)/2-(4<<20))
	got := make(chan error, 1)
	go func() { _, err := io.ReadFull(res.Body, first); got <- err }()
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("reading the first half: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no bytes reached the client while the peer held back the second half: the GET waits for the whole fetch")
	}
	close(c.hold)
	rest, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || !bytes.Equal(append(first, rest...), blob) {
		t.Fatalf("streamed body: %d+%d bytes, %v; want the blob", len(first), len(rest), err)
	}
	gantrytest.Eventually(t, 10*time.Second, func() bool { _, err := os.Stat(c.regs["b"].blobs.path(d)); return err == nil }, "b to keep the verified copy")

	// Corrupt bytes from the peer: the body is cut short, nothing stored.
	c.hold = nil
	dropCopy()
	c.corrupt = true
	res = get()
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err == nil && len(body) == len(blob) {
		t.Fatalf("a complete body (%d bytes, status %d) was served from corrupt peer bytes", len(body), res.StatusCode)
	}
	if _, err := os.Stat(c.regs["b"].blobs.path(d)); err == nil {
		t.Fatal("a corrupt copy was stored")
	}
}
