package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"gantry/gantrytest"
	"gantry/node/auth"
	"gantry/node/catalog"
	"gantry/node/cluster"
	"gantry/node/governance"
	"gantry/node/history"
	"gantry/node/registry"
	"gantry/store"
	"gantry/wire"
)

// The handler tests run the real API over a real store (Badger in a temp
// dir, commands applied by store.Direct), real authentication and a real
// in-process registry; only the cluster membership, which needs Raft and
// other machines, is a hand-written fake (fakeCluster).

// role is who sends a request in a test.
type role string

const (
	anonymous role = "anonymous"
	owner     role = "owner" // alice, who owns the fixture's job, schedule, image and token
	other     role = "other" // bob, another user
	admin     role = "admin"
)

var roles = []role{anonymous, owner, other, admin}

// userOf is the account each role signs in as.
var userOf = map[role]string{owner: "alice", other: "bob", admin: "admin"}

// passwordOf is each account's password.
func passwordOf(user string) string { return user + "-password" }

// hashes are the accounts' bcrypt hashes, computed once per test binary.
var hashes = sync.OnceValue(func() map[string][]byte {
	out := map[string][]byte{}
	for _, u := range []string{"alice", "bob", "admin"} {
		h, err := auth.HashPassword(passwordOf(u))
		if err != nil {
			panic(err)
		}
		out[u] = h
	}
	return out
})

// fixture is one API over a fresh store holding: alice, bob and admin with
// API tokens; a node n1; alice's job (two tasks, one placed), schedule,
// image alice/tool:1 and extra token; gantry/toolbox:latest.
type fixture struct {
	t      testing.TB
	st     *store.Store
	direct *store.Direct
	api    *API
	reg    *registry.Registry
	cat    *catalog.Catalog
	state  *faultyState
	clu    *fakeCluster
	hist   *history.History
	// clock is the sign-in limiter's clock (auth throttling).
	clock *gantrytest.Clock

	tokens   map[string]string // user -> API token secret
	job      string            // alice's job
	schedule string            // alice's schedule
	extraTok string            // id of alice's second token
	notice   string            // carol's notice against alice/tool (noticed)
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	st, err := store.Open(t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &fixture{t: t, st: st, direct: store.NewDirect(st), tokens: map[string]string{}}
	ctx := context.Background()
	f.tokens["admin"] = auth.NewSecret()
	f.must(ignore(store.CmdBootstrap.Propose(ctx, f.direct, store.Bootstrap{Cluster: store.ClusterInfo{ID: "testcluster"},
		Admin: store.User{Name: "admin", PasswordHash: hashes()["admin"], Admin: true},
		Token: store.Token{ID: "tok-admin", User: "admin", Name: "test"}, TokenHash: auth.HashToken(f.tokens["admin"])})))
	for _, u := range []string{"alice", "bob"} {
		f.must(ignore(store.CmdCreateUser.Propose(ctx, f.direct, store.CreateUser{User: store.User{Name: u, PasswordHash: hashes()[u]}})))
		secret := auth.NewSecret()
		f.must(ignore(store.CmdCreateToken.Propose(ctx, f.direct, store.CreateToken{Token: store.Token{ID: "tok-" + u, User: u, Name: "test"}, Hash: auth.HashToken(secret)})))
		f.tokens[u] = secret
	}
	f.extraTok = "tok-alice-extra"
	f.must(ignore(store.CmdCreateToken.Propose(ctx, f.direct, store.CreateToken{Token: store.Token{ID: f.extraTok, User: "alice", Name: "extra"}, Hash: auth.HashToken(auth.NewSecret())})))
	f.must(ignore(store.CmdUpsertNode.Propose(ctx, f.direct, store.UpsertNode{Node: store.Node{Name: "n1", Addr: "127.0.0.1:1", APIAddr: "127.0.0.1:2",
		Capacity: store.Resources{CPU: 4000, Memory: 8 << 30}}})))

	f.clock = gantrytest.NewClock(time.Now())
	au := auth.New(auth.Config{Store: st, NodeSecret: "node-secret", Logger: slog.New(slog.DiscardHandler),
		Limiter: auth.NewLimiter(auth.Limits{Now: f.clock.Now})})
	f.reg, err = registry.New(registry.Config{Dir: t.TempDir(), Store: st, Proposer: f.direct, Auth: au, NodeSecret: "node-secret",
		Hosts: []string{"127.0.0.1:7070"}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.reg.Close() })
	f.image(registry.SystemOwner, "gantry/toolbox", "latest")
	f.image("alice", "alice/tool", "1")
	f.image("alice", "alice/model", "1")
	f.cat = catalog.New(catalog.Config{Store: st, Proposer: f.direct, Registry: f.reg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	// alice publishes alice/tool (open, MIT) and alice/model (approval,
	// one question, which bob has asked for); bob builds bob/app on
	// alice/tool.
	if _, err := f.cat.Publish(ctx, "alice", catalog.Publish{Repo: "alice/tool", License: "MIT", Description: "a tool", Readme: "# Tool\n\nIt does things."}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.cat.Publish(ctx, "alice", catalog.Publish{Repo: "alice/model", License: "Apache-2.0", Access: store.AccessApproval,
		Questions: []string{"What for?"}, GenAI: true}); err != nil {
		t.Fatal(err)
	}
	f.approve("alice/tool")
	f.approve("alice/model")
	f.must(ignore(store.CmdRequestAccess.Propose(ctx, f.direct, store.RequestAccess{Repo: "alice/model", User: "bob", Answers: []string{"a thesis"}})))
	f.image("bob", "bob/app", "1", "layer of alice/tool", "bob's layer")
	f.must(ignore(store.CmdSetTrialAllowance.Propose(ctx, f.direct, store.SetTrialAllowance{Allowance: store.TrialAllowance{CPUSecondsPerDay: 60}})))

	spec := store.JobSpec{Image: "gantry/toolbox", Command: []string{"echo"}, Array: 2}
	spec.Defaults()
	j, err := store.CmdSubmitJob.Propose(ctx, f.direct, store.SubmitJob{ID: "01JOBALICE0000000000000000", Owner: "alice", Spec: spec})
	f.must(err)
	f.job = j.ID
	f.must(ignore(store.CmdPlace.Propose(ctx, f.direct, store.Place{Placements: []store.Placement{{JobID: f.job, Task: 0, Node: "n1"}}})))
	sc, err := store.CmdCreateSchedule.Propose(ctx, f.direct, store.CreateSchedule{Schedule: store.Schedule{ID: "01SCHEDALICE00000000000000", Owner: "alice", Cron: "@hourly", Spec: spec}})
	f.must(err)
	f.schedule = sc.ID
	// A queue only alice may use: bob is told it does not exist.
	f.must(ignore(store.CmdCreateQueue.Propose(ctx, f.direct, store.CreateQueue{Queue: store.Queue{Name: "lab", Weight: 2, Users: []string{"alice"}}})))

	// alice has one message (id 1) in her inbox.
	f.must(ignore(store.CmdSendMessage.Propose(ctx, f.direct, store.SendMessage{Meta: store.Meta{Actor: "admin", Admin: true}, User: "alice", Subject: "welcome"})))
	// bob has a quota and nothing placed; alice has a task placed and no
	// quota: both have a series in the history, sampled once.
	f.must(ignore(store.CmdUpdateUser.Propose(ctx, f.direct, store.UpdateUser{Name: "bob", Quota: &store.Resources{CPU: 2000, Memory: 4 << 30}})))
	f.hist = history.New(history.Config{Source: st, Now: f.clock.Now,
		Used: func(context.Context, store.Node) *store.Resources { return &store.Resources{CPU: 700, Memory: 3 << 30} }})
	f.hist.Sample(ctx)

	f.state = &faultyState{State: st}
	f.clu = &fakeCluster{}
	f.api = New(Config{
		Store: f.state, Proposer: f.direct, Auth: au, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		LogPath:  func(job string, task, attempt int) string { return t.TempDir() + "/none.log" },
		Leader:   func() (bool, string) { return true, "n1" },
		Registry: f.reg, Images: f.reg, Cluster: f.clu, NodeName: "n1",
		Catalog: f.cat, CatalogState: st, History: f.hist,
		Governance: governance.New(governance.Config{Store: st, Proposer: f.direct, Logger: slog.New(slog.DiscardHandler)}), GovernanceState: st, Moderation: st, Notices: st, Now: f.clock.Now,
		Backup: backupOf(st, f.reg, t.TempDir()),
		Metrics: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain; version=0.0.4")
			io.WriteString(w, "# metrics\n")
		}),
		Events: eventsEcho{},
	})
	return f
}

// approve is an admin's approval of a published repository (review).
func (f *fixture) approve(repo string) {
	f.t.Helper()
	f.must(ignore(store.CmdReview.Propose(context.Background(), f.direct, store.DecideReview{Meta: store.Meta{Actor: "admin", Admin: true},
		Repo: repo, Decision: store.ReviewApproved})))
}

func (f *fixture) must(err error) {
	f.t.Helper()
	if err != nil {
		f.t.Fatal(err)
	}
}

func ignore[R any](_ R, err error) error { return err }

// image stores an image repo:tag owned by owner whose layers hold the
// given texts (by default one layer, "layer of <repo>").
func (f *fixture) image(owner, repo, tag string, layers ...string) {
	f.t.Helper()
	if len(layers) == 0 {
		layers = []string{"layer of " + repo}
	}
	config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	m := v1.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: v1.MediaTypeImageManifest,
		Config: v1.Descriptor{MediaType: v1.MediaTypeImageConfig, Digest: digest.FromBytes(config), Size: int64(len(config))}}
	blobs := map[digest.Digest]io.Reader{}
	for _, l := range layers {
		d := digest.FromBytes([]byte(l))
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: v1.MediaTypeImageLayerGzip, Digest: d, Size: int64(len(l))})
		blobs[d] = strings.NewReader(l)
	}
	mb, err := json.Marshal(m)
	f.must(err)
	f.must(f.reg.ImportImage(context.Background(), owner, repo, tag, v1.MediaTypeImageManifest, mb, config, blobs))
}

// do sends a request as r and returns the recorded answer.
func (f *fixture) do(r role, method, path string, body any) *httptest.ResponseRecorder {
	f.t.Helper()
	return f.doWith(f.tokens[userOf[r]], method, path, body)
}

// doWith sends a request with an API token (none: anonymous).
func (f *fixture) doWith(token, method, path string, body any) *httptest.ResponseRecorder {
	f.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		js, err := json.Marshal(b)
		f.must(err)
		rd = bytes.NewReader(js)
	}
	req := httptest.NewRequest(method, path, rd)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	f.api.ServeHTTP(w, req)
	checkAgainstOpenAPI(f.t, f.api, req, body, w)
	return w
}

// decodeAs decodes a recorded JSON answer into v.
func decodeAs[T any](t *testing.T, w *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("decode %T from %q: %v", v, w.Body.String(), err)
	}
	return v
}

// wantError checks an error answer: its status, its code and that its
// message contains each of parts.
func wantError(t *testing.T, w *httptest.ResponseRecorder, status int, code string, parts ...string) {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status %d, want %d: %s", w.Code, status, w.Body.String())
	}
	e := decodeAs[wire.Error](t, w)
	if e.Code != code {
		t.Fatalf("code %q, want %q (%s)", e.Code, code, w.Body.String())
	}
	for _, p := range parts {
		if !strings.Contains(e.Error, p) {
			t.Fatalf("message %q does not say %q", e.Error, p)
		}
	}
}

// faultyState is the real store with reads that can be made to fail, for
// the paths where a store error must not be mistaken for a missing record.
type faultyState struct {
	State
	mu       sync.Mutex
	failJob  map[string]bool // job ids whose read fails
	failUse  bool
	failNode bool
}

var errDisk = store.Errorf(store.EInternal, "disk on fire")

func (s *faultyState) Job(id string) (*store.Job, error) {
	s.mu.Lock()
	fail := s.failJob[id]
	s.mu.Unlock()
	if fail {
		return nil, errDisk
	}
	return s.State.Job(id)
}

func (s *faultyState) Usage(user string) (store.UserUsage, error) {
	s.mu.Lock()
	fail := s.failUse
	s.mu.Unlock()
	if fail {
		return store.UserUsage{}, errDisk
	}
	return s.State.Usage(user)
}

func (s *faultyState) Nodes() ([]store.Node, error) {
	s.mu.Lock()
	fail := s.failNode
	s.mu.Unlock()
	if fail {
		return nil, errDisk
	}
	return s.State.Nodes()
}

func (s *faultyState) set(fn func(s *faultyState)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(s)
}

// fakeCluster stands in for node/cluster, which needs Raft and peers: it
// answers joins and membership with fixed values and records calls.
type fakeCluster struct {
	mu           sync.Mutex
	linearizeErr error
	removed      []string
	rotated      int
}

var _ ClusterAdmin = (*fakeCluster)(nil)

func (c *fakeCluster) CACert() []byte {
	return []byte("-----BEGIN CERTIFICATE-----\nfake\n-----END CERTIFICATE-----\n")
}

func (c *fakeCluster) Admit(ctx context.Context, req []byte) (any, error) {
	var r struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(req, &r); err != nil || r.Name == "" {
		return nil, store.Errorf(store.EInvalid, "join request: want a JSON object with a name")
	}
	return map[string]string{"member_addr": "127.0.0.1:7071"}, nil
}

func (c *fakeCluster) JoinCommand(ctx context.Context, rotate bool) (string, string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if rotate {
		c.rotated++
	}
	return "gantry server --join 127.0.0.1:7070 --token T", "T", nil
}

func (c *fakeCluster) RemoveNode(ctx context.Context, name string) (*store.Node, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if name != "n1" {
		return nil, store.Errorf(store.ENotFound, "node %q not found", name)
	}
	c.removed = append(c.removed, name)
	return &store.Node{Name: name, State: "removed"}, nil
}

func (c *fakeCluster) Members(context.Context) ([]cluster.Member, error) {
	m := cluster.Member{Leader: true}
	m.ID, m.Addr, m.Voter = "n1", "127.0.0.1:7071", true
	return []cluster.Member{m}, nil
}

func (c *fakeCluster) Roles(context.Context) (cluster.Roles, error) {
	return cluster.Roles{Leader: "n1", Of: map[string]string{"n1": cluster.RoleLeader}, Voters: 1, HealthyVoters: 1}, nil
}

func (c *fakeCluster) Linearize(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.linearizeErr
}

func (c *fakeCluster) NodeLog(ctx context.Context, node, job string, task, attempt int, follow bool) (io.ReadCloser, error) {
	return io.NopCloser(strings.NewReader("log from " + node + "\n")), nil
}

// eventsEcho stands in for the console hub (a WebSocket, driven by the
// browser tests): it answers with who the API said the caller is.
type eventsEcho struct{}

func (eventsEcho) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id, ok := auth.FromContext(r.Context())
	if !ok {
		http.Error(w, "no identity", http.StatusInternalServerError)
		return
	}
	io.WriteString(w, id.User)
}

// waitUntil polls cond until it holds or d passes.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// moderated sets up what the moderation routes act on: bob's report 1 of
// alice/tool, alice/model taken down, dave suspended.
func (f *fixture) moderated() {
	f.t.Helper()
	ctx := context.Background()
	adm := store.Meta{Actor: "admin", Admin: true}
	f.must(ignore(store.CmdFileReport.Propose(ctx, f.direct, store.FileReport{Meta: store.Meta{Actor: "bob"}, Repo: "alice/tool", Category: "other", Reason: "it crashes"})))
	f.must(ignore(store.CmdTakeDown.Propose(ctx, f.direct, store.TakeDown{Meta: adm, Repo: "alice/model", Reason: "a trademark"})))
	f.must(ignore(store.CmdCreateUser.Propose(ctx, f.direct, store.CreateUser{User: store.User{Name: "dave", PasswordHash: hashes()["alice"]}})))
	f.must(ignore(store.CmdSuspendUser.Propose(ctx, f.direct, store.SuspendUser{Meta: adm, User: "dave", Reason: "spam"})))
}
