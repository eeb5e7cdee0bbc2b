package registry

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"gantry/store"
)

// The registry's isolation matrix: every route kind and method the
// registry serves, against alice's private repository, for each role. A
// route kind added without rows fails TestRegistryMatrixCoversEveryRoute.

type regRole string

const (
	rAnon      regRole = "anonymous"
	rOwner     regRole = "owner"
	rOther     regRole = "another user"
	rAdmin     regRole = "admin"
	rSuspended regRole = "the owner, suspended"
	rNode      regRole = "a node"
)

var regRoles = []regRole{rAnon, rOwner, rOther, rAdmin, rSuspended, rNode}

// matrixFixture is alice's private alice/tool:1 (manifest m, layer l) and
// an upload session of hers.
type matrixFixture struct {
	e      *env
	m, l   digest.Digest
	upload string // the session's location path
}

func newMatrixFixture(t *testing.T, suspend bool) *matrixFixture {
	e := newEnv(t)
	m, _ := e.pushImage("alice", "alice/tool", "1", []byte("alice's private layer"))
	f := &matrixFixture{e: e, m: m, l: digest.FromBytes([]byte("alice's private layer"))}
	r := e.do("alice", "POST", "/v2/alice/tool/blobs/uploads/", nil)
	if r.code != http.StatusAccepted {
		t.Fatalf("upload session: %d %s", r.code, r.body)
	}
	f.upload = r.hdr.Get("Location")
	if suspend {
		if _, err := store.CmdSuspendUser.Propose(context.Background(), e.prop, store.SuspendUser{Meta: store.Meta{Actor: "root", Admin: true}, User: "alice", Reason: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// do sends the request as role (the suspended owner is alice).
func (f *matrixFixture) do(role regRole, method, path string, body []byte, hdr ...string) resp {
	user := map[regRole]string{rAnon: "", rOwner: "alice", rOther: "bob", rAdmin: "root", rSuspended: "alice", rNode: NodeUser}[role]
	return f.e.do(user, method, path, body, hdr...)
}

type regRow struct {
	kind   int
	method string
	path   func(f *matrixFixture) string
	body   []byte
	hdr    []string
	want   map[regRole]int
}

// wants: anonymous, owner, another user, admin, the suspended owner, a node.
func wants(anon, own, oth, adm, susp, node int) map[regRole]int {
	return map[regRole]int{rAnon: anon, rOwner: own, rOther: oth, rAdmin: adm, rSuspended: susp, rNode: node}
}

func regFixed(p string) func(*matrixFixture) string { return func(*matrixFixture) string { return p } }

var regMatrix = []regRow{
	{kind: routeBase, method: "GET", path: regFixed("/v2/"), want: wants(401, 200, 200, 200, 200, 200)},
	{kind: routeCatalog, method: "GET", path: regFixed("/v2/_catalog"), want: wants(401, 200, 200, 200, 200, 200)},
	{kind: routeToken, method: "GET", path: regFixed("/v2/token?service=gantry&scope=repository:alice/tool:pull"), want: wants(401, 200, 200, 200, 200, 200)},
	{kind: routeManifest, method: "GET", path: regFixed("/v2/alice/tool/manifests/1"), want: wants(401, 200, 403, 200, 403, 200)},
	{kind: routeManifest, method: "HEAD", path: func(f *matrixFixture) string { return "/v2/alice/tool/manifests/" + f.m.String() }, want: wants(401, 200, 403, 200, 403, 200)},
	{kind: routeManifest, method: "PUT", path: regFixed("/v2/alice/tool/manifests/2"), body: []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}`),
		hdr: []string{"Content-Type", "application/vnd.oci.image.manifest.v1+json"}, want: wants(401, 400, 403, 400, 403, 403)},
	{kind: routeManifest, method: "DELETE", path: func(f *matrixFixture) string { return "/v2/alice/tool/manifests/" + f.m.String() }, want: wants(401, 202, 403, 202, 403, 403)},
	{kind: routeBlob, method: "GET", path: func(f *matrixFixture) string { return "/v2/alice/tool/blobs/" + f.l.String() }, want: wants(401, 200, 403, 200, 403, 200)},
	{kind: routeBlob, method: "HEAD", path: func(f *matrixFixture) string { return "/v2/alice/tool/blobs/" + f.l.String() }, want: wants(401, 200, 403, 200, 403, 200)},
	{kind: routeBlob, method: "DELETE", path: func(f *matrixFixture) string { return "/v2/alice/tool/blobs/" + f.l.String() }, want: wants(401, 202, 403, 202, 403, 403)},
	{kind: routeUploadStart, method: "POST", path: regFixed("/v2/alice/tool/blobs/uploads/"), want: wants(401, 202, 403, 202, 403, 403)},
	{kind: routeUpload, method: "GET", path: func(f *matrixFixture) string { return f.upload }, want: wants(401, 204, 403, 204, 403, 204)},
	{kind: routeUpload, method: "PATCH", path: func(f *matrixFixture) string { return f.upload }, body: []byte("x"), hdr: []string{"Content-Range", "0-0"}, want: wants(401, 202, 403, 202, 403, 403)},
	{kind: routeUpload, method: "PUT", path: func(f *matrixFixture) string { return f.upload + "&digest=" + digest.FromBytes(nil).String() }, want: wants(401, 201, 403, 201, 403, 403)},
	{kind: routeUpload, method: "DELETE", path: func(f *matrixFixture) string { return f.upload }, want: wants(401, 204, 403, 204, 403, 403)},
	{kind: routeTags, method: "GET", path: regFixed("/v2/alice/tool/tags/list"), want: wants(401, 200, 403, 200, 403, 200)},
	{kind: routeReferrers, method: "GET", path: func(f *matrixFixture) string { return "/v2/alice/tool/referrers/" + f.m.String() }, want: wants(401, 200, 403, 200, 403, 200)},
}

func TestRegistryMatrix(t *testing.T) {
	for _, row := range regMatrix {
		for _, role := range regRoles {
			name := fmt.Sprintf("%s %d as %s", row.method, row.kind, role)
			t.Run(name, func(t *testing.T) {
				f := newMatrixFixture(t, role == rSuspended)
				path := row.path(f)
				if !strings.Contains(path, "?") && strings.Contains(path, "&") {
					path = strings.Replace(path, "&", "?", 1)
				}
				r := f.do(role, row.method, path, row.body, row.hdr...)
				if want := row.want[role]; r.code != want {
					t.Fatalf("%s %s as %s: %d %s, want %d", row.method, path, role, r.code, r.body, want)
				}
				if r.code >= 400 {
					// A refusal tells nothing of alice's things.
					for _, secret := range []string{f.m.Encoded(), f.l.Encoded(), "alice's private layer", strings.TrimPrefix(f.upload, "/v2/alice/tool/blobs/uploads/")} {
						if secret != "" && strings.Contains(string(r.body)+fmt.Sprint(r.hdr), secret) {
							t.Fatalf("the refusal to %s shows %q: %s %v", role, secret, r.body, r.hdr)
						}
					}
				}
			})
		}
	}
}

// TestRegistryMatrixCoversEveryRoute: every route kind has rows, and each
// row says what every role gets.
func TestRegistryMatrixCoversEveryRoute(t *testing.T) {
	seen := map[int]bool{}
	for _, row := range regMatrix {
		seen[row.kind] = true
		if len(row.want) != len(regRoles) {
			t.Errorf("%s %d: %d roles, want %d", row.method, row.kind, len(row.want), len(regRoles))
		}
	}
	for k := 0; k < routeKinds; k++ {
		if !seen[k] {
			t.Errorf("route kind %d has no row in the registry's isolation matrix", k)
		}
	}
}
