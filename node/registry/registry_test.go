package registry

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/prometheus/client_golang/prometheus"

	"gantry/node/auth"
	"gantry/node/registry/registrytest"
	"gantry/store"
)

// env is a registry over a real store (direct FSM apply) and real files.
type env struct {
	t    testing.TB
	dir  string
	st   *store.Store
	prop *store.Direct
	reg  *Registry
	srv  *httptest.Server
	// metrics is the registry's Prometheus registry (new at each open).
	metrics *prometheus.Registry
	now     time.Time
}

func newEnv(t testing.TB) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), now: time.Now()}
	st, err := store.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e.st = st
	e.prop = store.NewDirect(st)
	e.prop.Now = func() time.Time { return e.now }
	ctx := context.Background()
	for _, u := range []struct {
		name  string
		admin bool
	}{{"alice", false}, {"bob", false}, {"root", true}} {
		if err := registrytest.CreateUser(ctx, e.prop, u.name, u.name+"-pw", u.admin); err != nil {
			t.Fatal(err)
		}
	}
	e.open()
	return e
}

func (e *env) open() {
	e.metrics = prometheus.NewRegistry()
	reg, err := New(Config{Dir: e.dir, Store: e.st, Proposer: e.prop, Auth: auth.New(auth.Config{Store: e.st, Logger: slog.New(slog.DiscardHandler),
		Limiter: auth.NewLimiter(auth.Limits{Now: func() time.Time { return e.now }})}),
		NodeSecret: "node-secret", UploadTTL: time.Hour, GCGrace: time.Minute, Now: func() time.Time { return e.now },
		Registerer: e.metrics})
	if err != nil {
		e.t.Fatal(err)
	}
	e.reg = reg
	e.srv = httptest.NewServer(reg)
	e.t.Cleanup(func() { e.srv.Close(); reg.Close() })
}

func (e *env) restart() {
	e.srv.Close()
	e.reg.Close()
	e.open()
}

type resp struct {
	code int
	hdr  http.Header
	body []byte
}

func (r resp) errCode() string {
	var b struct {
		Errors []struct{ Code string } `json:"errors"`
	}
	json.Unmarshal(r.body, &b)
	if len(b.Errors) == 0 {
		return ""
	}
	return b.Errors[0].Code
}

// do sends a request as user (password user+"-pw"; "" for anonymous).
func (e *env) do(user, method, path string, body []byte, hdr ...string) resp {
	e.t.Helper()
	u := path
	if !strings.HasPrefix(u, "http") {
		u = e.srv.URL + path
	}
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if user != "" {
		pw := user + "-pw"
		if user == NodeUser {
			pw = "node-secret"
		}
		req.SetBasicAuth(user, pw)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{res.StatusCode, res.Header, b}
}

func (e *env) pushBlob(user, repo string, b []byte) digest.Digest {
	e.t.Helper()
	d := digest.FromBytes(b)
	r := e.do(user, "POST", "/v2/"+repo+"/blobs/uploads/?digest="+d.String(), b)
	if r.code != http.StatusCreated {
		e.t.Fatalf("push blob: %d %s", r.code, r.body)
	}
	return d
}

func (e *env) pushImage(user, repo, tag string, layers ...[]byte) (digest.Digest, []byte) {
	e.t.Helper()
	cfg := []byte(`{"architecture":"amd64","os":"linux"}`)
	m := v1.Manifest{MediaType: v1.MediaTypeImageManifest,
		Config: v1.Descriptor{MediaType: v1.MediaTypeImageConfig, Digest: e.pushBlob(user, repo, cfg), Size: int64(len(cfg))}}
	m.SchemaVersion = 2
	for _, l := range layers {
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: v1.MediaTypeImageLayerGzip, Digest: e.pushBlob(user, repo, l), Size: int64(len(l))})
	}
	b, _ := json.Marshal(m)
	r := e.do(user, "PUT", "/v2/"+repo+"/manifests/"+tag, b, "Content-Type", v1.MediaTypeImageManifest)
	if r.code != http.StatusCreated {
		e.t.Fatalf("push manifest: %d %s", r.code, r.body)
	}
	return digest.FromBytes(b), b
}

func TestAnonymousRequestsGetTheBearerChallenge(t *testing.T) {
	e := newEnv(t)
	r := e.do("", "GET", "/v2/", nil)
	if r.code != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401", r.code)
	}
	want := fmt.Sprintf(`Bearer realm="%s/v2/token",service="gantry"`, e.srv.URL)
	if got := r.hdr.Get("WWW-Authenticate"); got != want {
		t.Fatalf("challenge %q, want %q", got, want)
	}
	if r := e.do("alice", "GET", "/v2/", nil); r.code != http.StatusOK {
		t.Fatalf("basic auth: %d", r.code)
	}
	if r := e.do("", "GET", "/v2/", nil, "Authorization", "Basic "+"YWxpY2U6bm9wZQ=="); r.code != http.StatusUnauthorized || r.errCode() != codeUnauthorized {
		t.Fatalf("bad password: %d %s", r.code, r.body)
	}
}

// TestRepeatedBadPasswordsAreThrottled: after five wrong passwords for
// alice, basic auth and the token endpoint answer 429 TOOMANYREQUESTS with
// Retry-After, even with her right password, until the cool-down ends;
// bob, at the same address, is not held up.
func TestRepeatedBadPasswordsAreThrottled(t *testing.T) {
	e := newEnv(t)
	basic := func(user, pw string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pw))
	}
	for i := range 5 {
		if r := e.do("", "GET", "/v2/", nil, "Authorization", basic("alice", "wrong")); r.code != http.StatusUnauthorized || r.errCode() != codeUnauthorized {
			t.Fatalf("wrong password %d: %d %s", i+1, r.code, r.body)
		}
	}
	throttled := func(what string, r resp) {
		t.Helper()
		if r.code != http.StatusTooManyRequests || r.errCode() != codeTooManyRequests || r.hdr.Get("Retry-After") != "1" ||
			!strings.Contains(string(r.body), "too many failed sign-ins for alice: try again in 1s") {
			t.Fatalf("%s: %d Retry-After %q %s, want 429 TOOMANYREQUESTS with Retry-After 1", what, r.code, r.hdr.Get("Retry-After"), r.body)
		}
	}
	throttled("a sixth wrong password", e.do("", "GET", "/v2/", nil, "Authorization", basic("alice", "wrong")))
	throttled("the right password during the cool-down", e.do("alice", "GET", "/v2/", nil))
	throttled("the token endpoint during the cool-down", e.do("alice", "GET", "/v2/token?service=gantry", nil))
	if r := e.do("bob", "GET", "/v2/token?service=gantry", nil); r.code != http.StatusOK {
		t.Fatalf("bob from the same address: %d %s", r.code, r.body)
	}
	e.now = e.now.Add(time.Second)
	if r := e.do("alice", "GET", "/v2/", nil); r.code != http.StatusOK {
		t.Fatalf("alice after the cool-down: %d %s", r.code, r.body)
	}
	if r := e.do("alice", "GET", "/v2/token?service=gantry", nil); r.code != http.StatusOK {
		t.Fatalf("alice's token after the cool-down: %d %s", r.code, r.body)
	}
}

func TestTokenFlowGrantsOnlyWhatTheRulesAllow(t *testing.T) {
	e := newEnv(t)
	e.pushImage("alice", "alice/tool", "1.0", []byte("layer"))
	q := url.Values{"service": {"gantry"}, "scope": {"repository:alice/tool:pull,push", "repository:bob/x:pull"}}
	r := e.do("alice", "GET", "/v2/token?"+q.Encode(), nil)
	if r.code != http.StatusOK {
		t.Fatalf("token: %d %s", r.code, r.body)
	}
	var tok struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
	}
	json.Unmarshal(r.body, &tok)
	if tok.Token == "" || tok.Token != tok.AccessToken {
		t.Fatalf("token response %s", r.body)
	}
	bearer := func(method, path string) resp {
		return e.do("", method, path, nil, "Authorization", "Bearer "+tok.Token)
	}
	if r := bearer("GET", "/v2/alice/tool/manifests/1.0"); r.code != http.StatusOK {
		t.Fatalf("pull with token: %d %s", r.code, r.body)
	}
	if r := bearer("GET", "/v2/bob/x/tags/list"); r.code != http.StatusForbidden || r.errCode() != codeDenied {
		t.Fatalf("bob's repo with alice's token: %d %s", r.code, r.body)
	}
	// A token without the scope asks the client to fetch one that has it.
	r = bearer("DELETE", "/v2/alice/tool/manifests/1.0")
	if r.code != http.StatusUnauthorized || !strings.Contains(r.hdr.Get("WWW-Authenticate"), `error="insufficient_scope"`) {
		t.Fatalf("missing scope: %d %q", r.code, r.hdr.Get("WWW-Authenticate"))
	}
	if r := e.do("", "GET", "/v2/", nil, "Authorization", "Bearer "+tok.Token+"x"); r.code != http.StatusUnauthorized {
		t.Fatalf("tampered token: %d", r.code)
	}
	// An admin disabling the account ends its tokens at once, not when
	// they expire.
	disabled := true
	if _, err := store.CmdUpdateUser.Propose(context.Background(), e.prop, store.UpdateUser{Name: "alice", Disabled: &disabled}); err != nil {
		t.Fatal(err)
	}
	if r := bearer("GET", "/v2/alice/tool/manifests/1.0"); r.code != http.StatusUnauthorized || !strings.Contains(string(r.body), "disabled") {
		t.Fatalf("token of a disabled account: %d %s", r.code, r.body)
	}
	disabled = false
	if _, err := store.CmdUpdateUser.Propose(context.Background(), e.prop, store.UpdateUser{Name: "alice", Disabled: &disabled}); err != nil {
		t.Fatal(err)
	}
	if r := bearer("GET", "/v2/alice/tool/manifests/1.0"); r.code != http.StatusOK {
		t.Fatalf("token once the account is enabled again: %d %s", r.code, r.body)
	}
	e.now = e.now.Add(DefaultTokenTTL + time.Second)
	if r := bearer("GET", "/v2/alice/tool/manifests/1.0"); r.code != http.StatusUnauthorized {
		t.Fatalf("expired token: %d", r.code)
	}
}

func TestPrivateRepositoriesAreHiddenFromOtherUsers(t *testing.T) {
	e := newEnv(t)
	dg, _ := e.pushImage("alice", "alice/tool", "1.0", []byte("secret layer"))
	layer := digest.FromBytes([]byte("secret layer"))
	for _, p := range []string{"/v2/alice/tool/manifests/1.0", "/v2/alice/tool/manifests/" + dg.String(),
		"/v2/alice/tool/blobs/" + layer.String(), "/v2/alice/tool/tags/list", "/v2/alice/nothing/tags/list"} {
		if r := e.do("bob", "GET", p, nil); r.code != http.StatusForbidden || r.errCode() != codeDenied {
			t.Errorf("bob GET %s: %d %s", p, r.code, r.body)
		}
	}
	if r := e.do("bob", "POST", "/v2/alice/tool/blobs/uploads/", nil); r.code != http.StatusForbidden {
		t.Errorf("bob push to alice: %d", r.code)
	}
	// Mounting needs read access to the source.
	if r := e.do("bob", "POST", "/v2/bob/stolen/blobs/uploads/?mount="+layer.String()+"&from=alice/tool", nil); r.code != http.StatusAccepted {
		t.Errorf("bob mount from alice: %d, want 202 (a fresh upload)", r.code)
	}
	if r := e.do("bob", "POST", "/v2/bob/stolen/blobs/uploads/?mount="+layer.String(), nil); r.code != http.StatusAccepted {
		t.Errorf("bob anonymous mount: %d, want 202", r.code)
	}
	if r := e.do("alice", "POST", "/v2/alice/copy/blobs/uploads/?mount="+layer.String()+"&from=alice/tool", nil); r.code != http.StatusCreated {
		t.Errorf("alice mount from her own repo: %d %s", r.code, r.body)
	}
	r := e.do("bob", "GET", "/v2/_catalog", nil)
	if strings.Contains(string(r.body), "alice") {
		t.Errorf("bob's catalog shows alice's repos: %s", r.body)
	}
	for _, u := range []string{"root", NodeUser} {
		if r := e.do(u, "GET", "/v2/alice/tool/blobs/"+layer.String(), nil); r.code != http.StatusOK || string(r.body) != "secret layer" {
			t.Errorf("%s pull: %d", u, r.code)
		}
	}
	if r := e.do(NodeUser, "POST", "/v2/alice/tool/blobs/uploads/", nil); r.code != http.StatusForbidden {
		t.Errorf("node push: %d, want 403", r.code)
	}
}

func TestSystemImagesAreReadableByEveryUser(t *testing.T) {
	e := newEnv(t)
	cfg := []byte(`{"os":"linux"}`)
	layer := []byte("toolbox layer")
	m := v1.Manifest{MediaType: v1.MediaTypeImageManifest,
		Config: v1.Descriptor{MediaType: v1.MediaTypeImageConfig, Digest: digest.FromBytes(cfg), Size: int64(len(cfg))},
		Layers: []v1.Descriptor{{MediaType: v1.MediaTypeImageLayer, Digest: digest.FromBytes(layer), Size: int64(len(layer))}}}
	m.SchemaVersion = 2
	mb, _ := json.Marshal(m)
	err := e.reg.ImportImage(context.Background(), SystemOwner, "toolbox", "latest", v1.MediaTypeImageManifest, mb, cfg,
		map[digest.Digest]io.Reader{digest.FromBytes(layer): bytes.NewReader(layer)})
	if err != nil {
		t.Fatal(err)
	}
	if r := e.do("bob", "GET", "/v2/gantry/toolbox/manifests/latest", nil); r.code != http.StatusOK || !bytes.Equal(r.body, mb) {
		t.Fatalf("bob pull toolbox: %d %s", r.code, r.body)
	}
	if r := e.do("bob", "PUT", "/v2/gantry/toolbox/manifests/evil", mb, "Content-Type", v1.MediaTypeImageManifest); r.code != http.StatusForbidden {
		t.Fatalf("bob push to gantry/: %d", r.code)
	}
}

func TestChunkedUploadRejectsOutOfOrderChunksAndResumesAfterRestart(t *testing.T) {
	e := newEnv(t)
	data := bytes.Repeat([]byte("0123456789abcdef"), 10000)
	d := digest.FromBytes(data)
	r := e.do("alice", "POST", "/v2/alice/big/blobs/uploads/", nil)
	if r.code != http.StatusAccepted {
		t.Fatal(r.code)
	}
	loc := r.hdr.Get("Location")
	r = e.do("alice", "PATCH", loc, data[:50000], "Content-Range", "0-49999", "Content-Type", "application/octet-stream")
	if r.code != http.StatusAccepted || r.hdr.Get("Range") != "0-49999" {
		t.Fatalf("first chunk: %d %q", r.code, r.hdr.Get("Range"))
	}
	r = e.do("alice", "PATCH", loc, data[60000:70000], "Content-Range", "60000-69999")
	if r.code != http.StatusRequestedRangeNotSatisfiable || r.hdr.Get("Range") != "0-49999" {
		t.Fatalf("out-of-order chunk: %d %q", r.code, r.hdr.Get("Range"))
	}
	e.restart()
	if r := e.do("alice", "GET", loc, nil); r.code != http.StatusNoContent || r.hdr.Get("Range") != "0-49999" {
		t.Fatalf("status after restart: %d %q", r.code, r.hdr.Get("Range"))
	}
	r = e.do("alice", "PATCH", loc, data[50000:], "Content-Range", fmt.Sprintf("50000-%d", len(data)-1))
	if r.code != http.StatusAccepted {
		t.Fatalf("resume: %d %s", r.code, r.body)
	}
	r = e.do("alice", "PUT", loc+"?digest="+d.String(), nil)
	if r.code != http.StatusCreated || r.hdr.Get("Docker-Content-Digest") != d.String() {
		t.Fatalf("finish: %d %s", r.code, r.body)
	}
	r = e.do("alice", "GET", "/v2/alice/big/blobs/"+d.String(), nil, "Range", "bytes=16-31")
	if r.code != http.StatusPartialContent || string(r.body) != "0123456789abcdef" {
		t.Fatalf("range: %d %q", r.code, r.body)
	}
	if r := e.do("alice", "GET", loc, nil); r.code != http.StatusNotFound || r.errCode() != codeBlobUploadUnknown {
		t.Fatalf("finished session: %d %s", r.code, r.body)
	}
}

func TestDigestMismatchLeavesNoBlob(t *testing.T) {
	e := newEnv(t)
	wrong := digest.FromBytes([]byte("something else"))
	r := e.do("alice", "POST", "/v2/alice/x/blobs/uploads/?digest="+wrong.String(), []byte("content"))
	if r.code != http.StatusBadRequest || r.errCode() != codeDigestInvalid {
		t.Fatalf("mismatch: %d %s", r.code, r.body)
	}
	for _, d := range []digest.Digest{wrong, digest.FromBytes([]byte("content"))} {
		if _, err := os.Stat(e.reg.blobs.path(d)); !os.IsNotExist(err) {
			t.Errorf("blob %s exists after a failed upload", d)
		}
	}
	entries, _ := os.ReadDir(e.reg.blobs.tmp)
	if len(entries) != 0 {
		t.Errorf("upload dir not empty: %v", entries)
	}
	if r := e.do("alice", "POST", "/v2/alice/x/blobs/uploads/?digest=sha256:nothex", []byte("x")); r.errCode() != codeDigestInvalid {
		t.Errorf("malformed digest: %d %s", r.code, r.body)
	}
}

func TestBadManifestsAreRejectedAndNothingIsStored(t *testing.T) {
	e := newEnv(t)
	cfg := e.pushBlob("alice", "alice/app", []byte(`{}`))
	missing := digest.FromBytes([]byte("never pushed"))
	mk := func(layers ...digest.Digest) []byte {
		m := v1.Manifest{MediaType: v1.MediaTypeImageManifest, Config: v1.Descriptor{MediaType: v1.MediaTypeImageConfig, Digest: cfg, Size: 2}}
		m.SchemaVersion = 2
		for _, l := range layers {
			m.Layers = append(m.Layers, v1.Descriptor{MediaType: v1.MediaTypeImageLayer, Digest: l, Size: 1})
		}
		b, _ := json.Marshal(m)
		return b
	}
	cases := []struct {
		name, path, ctype string
		body              []byte
		status            int
		code              string
	}{
		{"missing blob", "/v2/alice/app/manifests/v1", v1.MediaTypeImageManifest, mk(missing), 400, codeManifestBlobUnknown},
		{"not JSON", "/v2/alice/app/manifests/v1", v1.MediaTypeImageManifest, []byte("{"), 400, codeManifestInvalid},
		{"media type mismatch", "/v2/alice/app/manifests/v1", v1.MediaTypeImageIndex, mk(), 400, codeManifestInvalid},
		{"digest mismatch", "/v2/alice/app/manifests/" + missing.String(), v1.MediaTypeImageManifest, mk(), 400, codeDigestInvalid},
		{"too big", "/v2/alice/app/manifests/v1", v1.MediaTypeImageManifest, bytes.Repeat([]byte(" "), DefaultMaxManifestSize+1), 413, codeSizeInvalid},
		{"path trick", "/v2/alice/../bob/manifests/v1", v1.MediaTypeImageManifest, mk(), 400, codeNameInvalid},
		{"upper case name", "/v2/alice/App/manifests/v1", v1.MediaTypeImageManifest, mk(), 400, codeNameInvalid},
		{"bad tag", "/v2/alice/app/manifests/-v1", v1.MediaTypeImageManifest, mk(), 400, codeManifestInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u, _ := url.Parse(e.srv.URL)
			u.RawPath, u.Path = c.path, c.path
			r := e.do("alice", "PUT", u.String(), c.body, "Content-Type", c.ctype)
			if r.code != c.status || r.errCode() != c.code {
				t.Fatalf("%d %s, want %d %s", r.code, r.body, c.status, c.code)
			}
		})
	}
	tags, _, _ := e.st.RegTags("alice/app", "", 0)
	ms, _ := e.st.RegManifests("alice/app")
	if len(tags) != 0 || len(ms) != 0 {
		t.Fatalf("stored after rejects: tags %v manifests %d", tags, len(ms))
	}
}

func TestReferrersListsSubjectsAndFiltersByArtifactType(t *testing.T) {
	e := newEnv(t)
	subj, sb := e.pushImage("alice", "alice/app", "v1", []byte("l"))
	empty := e.pushBlob("alice", "alice/app", []byte("{}"))
	for _, at := range []string{"application/vnd.example.sbom", "application/vnd.example.sig"} {
		m := v1.Manifest{MediaType: v1.MediaTypeImageManifest, ArtifactType: at,
			Config:  v1.Descriptor{MediaType: v1.MediaTypeEmptyJSON, Digest: empty, Size: 2},
			Subject: &v1.Descriptor{MediaType: v1.MediaTypeImageManifest, Digest: subj, Size: int64(len(sb))}}
		m.SchemaVersion = 2
		b, _ := json.Marshal(m)
		d := digest.FromBytes(b)
		r := e.do("alice", "PUT", "/v2/alice/app/manifests/"+d.String(), b, "Content-Type", v1.MediaTypeImageManifest)
		if r.code != http.StatusCreated || r.hdr.Get("OCI-Subject") != subj.String() {
			t.Fatalf("push referrer: %d %q %s", r.code, r.hdr.Get("OCI-Subject"), r.body)
		}
	}
	r := e.do("alice", "GET", "/v2/alice/app/referrers/"+subj.String()+"?artifactType=application/vnd.example.sig", nil)
	var idx v1.Index
	json.Unmarshal(r.body, &idx)
	if r.code != http.StatusOK || r.hdr.Get("OCI-Filters-Applied") != "artifactType" || len(idx.Manifests) != 1 || idx.Manifests[0].ArtifactType != "application/vnd.example.sig" {
		t.Fatalf("filtered referrers: %d %q %s", r.code, r.hdr.Get("OCI-Filters-Applied"), r.body)
	}
	r = e.do("alice", "GET", "/v2/alice/app/referrers/"+subj.String(), nil)
	json.Unmarshal(r.body, &idx)
	if len(idx.Manifests) != 2 {
		t.Fatalf("referrers: %s", r.body)
	}
}

func TestTagListPaginates(t *testing.T) {
	e := newEnv(t)
	_, b := e.pushImage("alice", "alice/app", "a", []byte("l"))
	for _, tag := range []string{"b", "c", "d"} {
		if r := e.do("alice", "PUT", "/v2/alice/app/manifests/"+tag, b, "Content-Type", v1.MediaTypeImageManifest); r.code != 201 {
			t.Fatal(r.code)
		}
	}
	r := e.do("alice", "GET", "/v2/alice/app/tags/list?n=2", nil)
	if string(r.body) != `{"name":"alice/app","tags":["a","b"]}` || r.hdr.Get("Link") != `</v2/alice/app/tags/list?last=b&n=2>; rel="next"` {
		t.Fatalf("page 1: %s %q", r.body, r.hdr.Get("Link"))
	}
	r = e.do("alice", "GET", "/v2/alice/app/tags/list?n=2&last=b", nil)
	if string(r.body) != `{"name":"alice/app","tags":["c","d"]}` || r.hdr.Get("Link") != "" {
		t.Fatalf("page 2: %s %q", r.body, r.hdr.Get("Link"))
	}
}

func TestGCRemovesOnlyUnreferencedBlobsAndExpiredUploads(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.pushImage("alice", "alice/app", "v1", []byte("kept layer"))
	orphan := e.pushBlob("alice", "alice/app", []byte("orphan layer"))
	r := e.do("alice", "POST", "/v2/alice/app/blobs/uploads/", nil)
	e.do("alice", "PATCH", r.hdr.Get("Location"), []byte("abandoned"))

	// Young links and uploads are in-flight pushes: nothing is collected.
	rep, err := e.reg.GC(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.DeletedBlobs) != 0 || len(rep.UnlinkedBlobs) != 0 || len(rep.ExpiredUploads) != 0 {
		t.Fatalf("collected in-flight push: %+v", rep)
	}
	e.now = e.now.Add(2 * time.Hour)
	dry, err := e.reg.GC(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(dry.DeletedBlobs) != 1 || dry.DeletedBlobs[0] != orphan.String() || len(dry.ExpiredUploads) != 1 {
		t.Fatalf("dry run: %+v", dry)
	}
	if _, err := os.Stat(e.reg.blobs.path(orphan)); err != nil {
		t.Fatalf("dry run deleted: %v", err)
	}
	rep, err = e.reg.GC(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.DeletedBlobs) != 1 || len(rep.ExpiredUploads) != 1 || rep.FreedBytes != int64(len("orphan layer")+len("abandoned")) {
		t.Fatalf("gc: %+v", rep)
	}
	if _, err := os.Stat(e.reg.blobs.path(orphan)); !os.IsNotExist(err) {
		t.Fatalf("orphan still on disk: %v", err)
	}
	if r := e.do("alice", "GET", "/v2/alice/app/manifests/v1", nil); r.code != 200 {
		t.Fatal("image lost")
	}
	if r := e.do("alice", "GET", "/v2/alice/app/blobs/"+digest.FromBytes([]byte("kept layer")).String(), nil); r.code != 200 {
		t.Fatal("referenced layer lost")
	}
	if r := e.do("alice", "HEAD", "/v2/alice/app/blobs/"+orphan.String(), nil); r.code != 404 {
		t.Fatalf("collected blob still served: %d", r.code)
	}
}

func TestImportDockerArchiveAndList(t *testing.T) {
	e := newEnv(t)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, b []byte) {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg})
		tw.Write(b)
	}
	layer := bytes.Repeat([]byte("L"), 3000)
	cfg := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers"}}`)
	add("abc/layer.tar", layer)
	add("cfg.json", cfg)
	add("manifest.json", []byte(`[{"Config":"cfg.json","RepoTags":["docker.io/library/busybox:1.36","alice/tool:v2"],"Layers":["abc/layer.tar"]}]`))
	tw.Close()
	refs, err := e.reg.ImportDockerArchive(context.Background(), "alice", &buf)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(refs, " ") != "alice/busybox:1.36 alice/tool:v2" {
		t.Fatalf("refs %v", refs)
	}
	r := e.do("alice", "GET", "/v2/alice/busybox/manifests/1.36", nil)
	var m v1.Manifest
	json.Unmarshal(r.body, &m)
	if r.code != 200 || len(m.Layers) != 1 || m.Layers[0].Digest != digest.FromBytes(layer) {
		t.Fatalf("imported manifest: %d %s", r.code, r.body)
	}
	list, err := e.reg.List(context.Background(), "alice", false)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Name != "alice/busybox" || len(list[0].Tags) != 1 || list[0].Tags[0].Size <= int64(len(layer)) {
		t.Fatalf("list: %+v", list)
	}
	if l, _ := e.reg.List(context.Background(), "bob", false); len(l) != 0 {
		t.Fatalf("bob sees %+v", l)
	}
	usage, _ := e.reg.Usage(context.Background())
	if usage["alice"] != int64(len(layer)+len(cfg)) {
		t.Fatalf("usage %v", usage)
	}
}

func TestDeleteManifestRemovesItsTags(t *testing.T) {
	e := newEnv(t)
	d, _ := e.pushImage("alice", "alice/app", "v1", []byte("l"))
	if r := e.do("alice", "DELETE", "/v2/alice/app/manifests/"+d.String(), nil); r.code != http.StatusAccepted {
		t.Fatalf("delete: %d %s", r.code, r.body)
	}
	if r := e.do("alice", "GET", "/v2/alice/app/manifests/v1", nil); r.code != 404 || r.errCode() != codeManifestUnknown {
		t.Fatalf("tag after delete: %d %s", r.code, r.body)
	}
	if r := e.do("alice", "DELETE", "/v2/alice/app/manifests/"+d.String(), nil); r.code != 404 {
		t.Fatalf("second delete: %d", r.code)
	}
}

// TestUploadSessionsAreBoundedPerUser: a user holds at most
// DefaultMaxUploads open sessions; one more is refused with 429 and
// Retry-After while they are all fresh, replaces the one idle longest
// once that one has been left alone for a minute, and never touches
// another user's sessions.
func TestUploadSessionsAreBoundedPerUser(t *testing.T) {
	e := newEnv(t)
	open := func(user, repo string) resp {
		return e.do(user, "POST", "/v2/"+repo+"/blobs/uploads/", nil)
	}
	var first string
	for i := range DefaultMaxUploads {
		r := open("alice", "alice/big")
		if r.code != http.StatusAccepted {
			t.Fatalf("session %d: %d %s", i+1, r.code, r.body)
		}
		if i == 0 {
			first = r.hdr.Get("Location")
		}
		e.now = e.now.Add(time.Millisecond)
	}
	r := open("alice", "alice/big")
	if r.code != http.StatusTooManyRequests || r.errCode() != codeTooManyRequests || r.hdr.Get("Retry-After") != "60" ||
		!strings.Contains(string(r.body), "64 upload sessions open") {
		t.Fatalf("one session too many: %d %q %s", r.code, r.hdr.Get("Retry-After"), r.body)
	}
	if r := open("bob", "bob/x"); r.code != http.StatusAccepted {
		t.Fatalf("bob is not affected: %d %s", r.code, r.body)
	}
	e.now = e.now.Add(uploadIdle)
	// The first session was idle longest; touching it keeps it.
	if r := e.do("alice", "PATCH", first, []byte("x"), "Content-Range", "0-0"); r.code != http.StatusAccepted {
		t.Fatalf("patch the first session: %d %s", r.code, r.body)
	}
	if r := open("alice", "alice/big"); r.code != http.StatusAccepted {
		t.Fatalf("a session once the oldest is idle: %d %s", r.code, r.body)
	}
	if r := e.do("alice", "GET", first, nil); r.code != http.StatusNoContent {
		t.Fatalf("the touched session was replaced: %d %s", r.code, r.body)
	}
	files, _ := filepath.Glob(filepath.Join(e.dir, "uploads", "*.data"))
	if n := len(files); n != DefaultMaxUploads+1 {
		t.Fatalf("%d upload files on disk, want %d (alice's and bob's)", n, DefaultMaxUploads+1)
	}
}
