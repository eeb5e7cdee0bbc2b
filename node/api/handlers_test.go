package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"gantry/store"
	"gantry/wire"
)

func TestSubmitJob(t *testing.T) {
	t.Run("a valid spec is stored with its defaults and answered as the job", func(t *testing.T) {
		f := newFixture(t)
		w := f.do(owner, "POST", "/api/v1/jobs", map[string]any{"image": "gantry/toolbox", "command": []string{"echo", "hi"}, "array": 3, "timeout": "90s"})
		if w.Code != http.StatusCreated {
			t.Fatalf("status %d: %s", w.Code, w.Body.String())
		}
		j := decodeAs[wire.Job](t, w)
		if j.Owner != "alice" || j.Total != 3 || j.Counts[wire.StateQueued] != 3 || j.Spec.CPU != 1000 || j.Spec.Memory != 256<<20 ||
			j.Spec.Queue != "default" || time.Duration(j.Spec.Timeout) != 90*time.Second {
			t.Fatalf("job %+v", j)
		}
		if got, err := f.st.Job(j.ID); err != nil || got.Owner != "alice" {
			t.Fatalf("stored job %+v %v", got, err)
		}
	})
	cases := []struct {
		name string
		body string
		want []string
	}{
		{"an unknown field is named", `{"image":"gantry/toolbox","colour":1}`, []string{`unknown field "colour"`}},
		{"a bad duration names its field", `{"image":"gantry/toolbox","timeout":"soon"}`, []string{"timeout:"}},
		{"a missing image is refused", `{"command":["x"]}`, []string{"image: must not be empty"}},
		{"an array too large is refused", `{"image":"gantry/toolbox","array":10001}`, []string{"array: must be between 1 and"}},
		{"an image that does not exist is refused", `{"image":"alice/nothing:1"}`, []string{"image: alice/nothing:1 not found"}},
		{"another user's private image is refused like a missing one", `{"image":"bob/secret:1"}`, []string{"image: bob/secret:1 not found"}},
		{"a dependency that does not exist is refused", `{"image":"gantry/toolbox","after":["01NOPE"]}`, []string{"deps: afterok dependency on job 01NOPE: job not found"}},
		{"a dependency of an unknown kind is refused", `{"image":"gantry/toolbox","deps":[{"job":"01NOPE","kind":"afterwards"}]}`, []string{`deps: job 01NOPE: kind "afterwards" is not one of afterok, afternotok, afterany, n-to-n`}},
		{"more CPU than any node is refused", `{"image":"gantry/toolbox","cpu":64000}`, []string{"cpu: 64 CPUs per task is more than any node has"}},
		{"a label no node has is refused", `{"image":"gantry/toolbox","constraints":{"zone":"mars"}}`, []string{"constraints: no node has zone=mars"}},
		{"trailing data is refused", `{"image":"gantry/toolbox"} {}`, []string{"unexpected data after the JSON object"}},
		{"a network other than none is refused", `{"image":"gantry/toolbox","network":"host"}`, []string{`network: "host" is not a network a job can ask for`}},
		{"a body that is not JSON is refused", `image=x`, []string{"invalid JSON"}},
		{"an output over a system path is refused", `{"image":"gantry/toolbox","output":{"path":"/etc"}}`, []string{"output: /etc is a system path"}},
		{"an output limit under 1 MiB is refused", `{"image":"gantry/toolbox","output":{"path":"/out","limit":1000}}`, []string{"output limit: 1000 bytes, it must be between 1 MiB and 1 TiB"}},
		{"a spec over 256 KiB is refused naming the limit", `{"image":"gantry/toolbox","env":{"A":"` + strings.Repeat("a", 120<<10) + `","B":"` +
			strings.Repeat("b", 120<<10) + `","C":"` + strings.Repeat("c", 20<<10) + `"}}`, []string{"spec: ", "bytes encoded, at most 262144 (256 KiB)"}},
		{"a label value over 1 KiB is refused", `{"image":"gantry/toolbox","labels":{"note":"` + strings.Repeat("n", 2000) + `"}}`, []string{"labels: the value of note is 2000 bytes, at most 1024"}},
		{"a body over 1 MiB is refused naming the limit", `{"image":"gantry/toolbox","env":{"A":"` + strings.Repeat("a", 1<<20) + `"}}`, []string{"request body: more than 1048576 bytes"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			wantError(t, f.do(owner, "POST", "/api/v1/jobs", tc.body), 400, wire.CodeInvalid, tc.want...)
			if jobs, _, _ := f.st.ListJobs(store.JobFilter{Owner: "alice"}); len(jobs) != 1 {
				t.Fatalf("a refused submission stored a job: %d jobs", len(jobs))
			}
		})
	}
	t.Run("a submission sent again with its idempotency key makes one job", func(t *testing.T) {
		f := newFixture(t)
		send := func(key string) *httptest.ResponseRecorder {
			req := httptest.NewRequest("POST", "/api/v1/jobs", strings.NewReader(`{"image":"gantry/toolbox"}`))
			req.Header.Set("Authorization", "Bearer "+f.tokens["alice"])
			req.Header.Set(wire.IdempotencyKeyHeader, key)
			w := httptest.NewRecorder()
			f.api.ServeHTTP(w, req)
			return w
		}
		a, b := decodeAs[wire.Job](t, send("k-1")), decodeAs[wire.Job](t, send("k-1"))
		if a.ID == "" || a.ID != b.ID {
			t.Fatalf("two submissions with one key made %s and %s", a.ID, b.ID)
		}
		if c := decodeAs[wire.Job](t, send("k-2")); c.ID == a.ID {
			t.Fatal("another key returned the same job")
		}
		wantError(t, send("bad key!"), 400, wire.CodeInvalid, wire.IdempotencyKeyHeader)
	})
	t.Run("another user's job is not a dependency", func(t *testing.T) {
		f := newFixture(t)
		wantError(t, f.do(other, "POST", "/api/v1/jobs", map[string]any{"image": "gantry/toolbox", "after": []string{f.job}}),
			400, wire.CodeInvalid, "deps: afterok dependency on job "+f.job+": job not found")
	})
}

func TestJobReads(t *testing.T) {
	f := newFixture(t)
	t.Run("the owner's list holds their job, another user's does not", func(t *testing.T) {
		l := decodeAs[wire.JobList](t, f.do(owner, "GET", "/api/v1/jobs", nil))
		if len(l.Jobs) != 1 || l.Jobs[0].ID != f.job {
			t.Fatalf("alice's jobs %+v", l)
		}
		if l := decodeAs[wire.JobList](t, f.do(other, "GET", "/api/v1/jobs", nil)); len(l.Jobs) != 0 {
			t.Fatalf("bob sees %+v", l.Jobs)
		}
		if l := decodeAs[wire.JobList](t, f.do(admin, "GET", "/api/v1/jobs?owner=alice", nil)); len(l.Jobs) != 1 {
			t.Fatalf("admin sees %+v", l.Jobs)
		}
	})
	t.Run("a job says why its queued task waits", func(t *testing.T) {
		j := decodeAs[wire.Job](t, f.do(owner, "GET", "/api/v1/jobs/"+f.job, nil))
		if j.Counts[wire.StateQueued] != 1 || j.Counts[wire.StateScheduled] != 1 || j.Spec.Image != "gantry/toolbox" {
			t.Fatalf("job %+v", j)
		}
	})
	t.Run("tasks page by state and cursor", func(t *testing.T) {
		l := decodeAs[wire.TaskList](t, f.do(owner, "GET", "/api/v1/jobs/"+f.job+"/tasks?limit=1", nil))
		if len(l.Tasks) != 1 || l.Tasks[0].Index != 0 || l.Next != "1" {
			t.Fatalf("first page %+v", l)
		}
		l = decodeAs[wire.TaskList](t, f.do(owner, "GET", "/api/v1/jobs/"+f.job+"/tasks?state=queued", nil))
		if len(l.Tasks) != 1 || l.Tasks[0].Index != 1 {
			t.Fatalf("queued tasks %+v", l)
		}
	})
	t.Run("a task lists its attempts", func(t *testing.T) {
		d := decodeAs[wire.TaskDetail](t, f.do(owner, "GET", "/api/v1/jobs/"+f.job+"/tasks/0", nil))
		if d.State != wire.StateScheduled || d.Attempts != 1 || len(d.AttemptList) != 1 || d.AttemptList[0].Node != "n1" {
			t.Fatalf("task %+v", d)
		}
	})
	t.Run("a log on another node is read from it", func(t *testing.T) {
		f.must(ignore(store.CmdUpsertNode.Propose(t.Context(), f.direct, store.UpsertNode{Node: store.Node{Name: "n2", Addr: "x:1", Capacity: store.Resources{CPU: 1000, Memory: 1 << 30}}})))
		f.api.cfg.NodeName = "n2"
		defer func() { f.api.cfg.NodeName = "n1" }()
		w := f.do(owner, "GET", "/api/v1/jobs/"+f.job+"/tasks/0/logs", nil)
		if w.Code != 200 || w.Body.String() != "log from n1\n" || w.Header().Get("X-Gantry-Node") != "n1" {
			t.Fatalf("proxied log %d %q %v", w.Code, w.Body.String(), w.Header())
		}
	})
	bad := []struct{ name, path, want string }{
		{"an unknown state", "/api/v1/jobs?state=sleeping", "state: want one of"},
		{"a limit out of range", "/api/v1/jobs?limit=0", "limit: want 1..1000"},
		{"a task cursor that is not an index", "/tasks?cursor=x", "cursor: want a task index"},
		{"a task state that does not exist", "/tasks?state=x", "state: want one of"},
		{"an attempt number below 1", "/tasks/0/logs?attempt=0", "attempt: want a number from 1"},
		{"a wait longer than an hour", "/wait?timeout=2h", "timeout: want a duration up to 1h"},
	}
	for _, tc := range bad {
		t.Run(tc.name+" is refused", func(t *testing.T) {
			p := tc.path
			if !strings.HasPrefix(p, "/api/") {
				p = "/api/v1/jobs/" + f.job + p
			}
			wantError(t, f.do(owner, "GET", p, nil), 400, wire.CodeInvalid, tc.want)
		})
	}
	t.Run("a task the job does not have is not found", func(t *testing.T) {
		wantError(t, f.do(owner, "GET", "/api/v1/jobs/"+f.job+"/tasks/2", nil), 404, wire.CodeNotFound, "has no task 2")
	})
	t.Run("a job that does not exist is not found", func(t *testing.T) {
		wantError(t, f.do(owner, "GET", "/api/v1/jobs/01NOPE", nil), 404, wire.CodeNotFound, "job 01NOPE not found")
	})
}

func TestCancelAndRetry(t *testing.T) {
	f := newFixture(t)
	j := decodeAs[wire.Job](t, f.do(owner, "POST", "/api/v1/jobs/"+f.job+"/cancel", nil))
	if !j.CancelRequested || j.Counts[wire.StateCancelled] != 1 {
		t.Fatalf("cancelled job %+v", j)
	}
	w := f.do(owner, "POST", "/api/v1/jobs/"+f.job+"/retry", nil)
	if w.Code != 201 {
		t.Fatalf("retry %d %s", w.Code, w.Body.String())
	}
	if r := decodeAs[wire.Job](t, w); r.ID == f.job || r.Total != 2 || r.Spec.Image != "gantry/toolbox" {
		t.Fatalf("resubmitted %+v", r)
	}
}

// TestDependencyGraph: deps and the after aliases are stored as one list;
// the graph route shows both directions with kind and state; an n-to-n
// dependency on an array of another size and too many dependencies are
// refused; cancel with dependents cancels the waiting dependents.
func TestDependencyGraph(t *testing.T) {
	f := newFixture(t)
	submit := func(body any) wire.Job {
		t.Helper()
		w := f.do(owner, "POST", "/api/v1/jobs", body)
		if w.Code != http.StatusCreated {
			t.Fatalf("submit: %d %s", w.Code, w.Body.String())
		}
		return decodeAs[wire.Job](t, w)
	}
	a := submit(map[string]any{"image": "gantry/toolbox", "name": "first"})
	b := submit(map[string]any{"image": "gantry/toolbox", "after_any": []string{a.ID},
		"deps": []map[string]string{{"job": f.job, "kind": "afternotok"}}})
	if len(b.Spec.Deps) != 2 || len(b.Spec.AfterAny) != 0 || b.Spec.Deps[1] != (wire.Dependency{Job: a.ID, Kind: wire.DepAfterAny}) || b.Held != 2 {
		t.Fatalf("the after_any alias is folded into deps: %+v", b.Spec)
	}
	n := submit(map[string]any{"image": "gantry/toolbox", "array": 2, "sequential": true,
		"deps": []map[string]string{{"job": f.job, "kind": "n-to-n"}}})

	g := decodeAs[wire.JobGraph](t, f.do(owner, "GET", "/api/v1/jobs/"+a.ID+"/deps", nil))
	if g.Job != a.ID || len(g.Dependencies) != 0 || len(g.Dependents) != 1 ||
		g.Dependents[0] != (wire.DepEdge{Job: b.ID, Kind: wire.DepAfterAny, State: wire.StateQueued}) {
		t.Fatalf("graph of a: %+v", g)
	}
	g = decodeAs[wire.JobGraph](t, f.do(owner, "GET", "/api/v1/jobs/"+b.ID+"/deps", nil))
	if len(g.Dependencies) != 2 || g.Dependencies[1] != (wire.DepEdge{Job: a.ID, Kind: wire.DepAfterAny, Name: "first", State: wire.StateQueued}) {
		t.Fatalf("graph of b: %+v", g)
	}
	g = decodeAs[wire.JobGraph](t, f.do(owner, "GET", "/api/v1/jobs/"+f.job+"/deps", nil))
	if len(g.Dependents) != 2 || g.Dependents[0].Job > g.Dependents[1].Job {
		t.Fatalf("graph of the fixture's job: %+v", g)
	}
	if g := decodeAs[wire.JobGraph](t, f.do(owner, "GET", "/api/v1/jobs/"+n.ID+"/deps", nil)); !g.Sequential {
		t.Fatalf("graph of a sequential job: %+v", g)
	}
	if j := decodeAs[wire.Job](t, f.do(owner, "GET", "/api/v1/jobs/"+n.ID, nil)); !strings.Contains(j.Waiting, "waiting for the tasks they depend on") {
		t.Fatalf("why the n-to-n job's tasks wait: %q", j.Waiting)
	}
	wantError(t, f.do(other, "GET", "/api/v1/jobs/"+a.ID+"/deps", nil), 404, wire.CodeNotFound, "not found")

	wantError(t, f.do(owner, "POST", "/api/v1/jobs", map[string]any{"image": "gantry/toolbox", "array": 3,
		"deps": []map[string]string{{"job": f.job, "kind": "n-to-n"}}}), 400, wire.CodeInvalid, "same size")
	many := make([]map[string]string, store.MaxDependencies+1)
	for i := range many {
		many[i] = map[string]string{"job": fmt.Sprintf("j%d", i), "kind": "afterok"}
	}
	wantError(t, f.do(owner, "POST", "/api/v1/jobs", map[string]any{"image": "gantry/toolbox", "deps": many}), 400, wire.CodeInvalid, "at most 1000")

	wantError(t, f.do(owner, "POST", "/api/v1/jobs/"+a.ID+"/cancel?dependents=maybe", nil), 400, wire.CodeInvalid, "dependents:")
	if j := decodeAs[wire.Job](t, f.do(owner, "POST", "/api/v1/jobs/"+a.ID+"/cancel?dependents=true", nil)); j.State != wire.StateCancelled {
		t.Fatalf("cancelled %+v", j)
	}
	if j := decodeAs[wire.Job](t, f.do(owner, "GET", "/api/v1/jobs/"+b.ID, nil)); j.State != wire.StateCancelled {
		t.Fatalf("the waiting dependent after cancel with dependents: %+v", j)
	}
	if j := decodeAs[wire.Job](t, f.do(owner, "GET", "/api/v1/jobs/"+n.ID, nil)); j.State != wire.StateQueued {
		t.Fatalf("a dependent of another job: %+v", j)
	}
}

func TestRerun(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	// Task 0 ran on n1 and failed; task 1 never ran and is cancelled.
	f.must(ignore(store.CmdAttemptEnded.Propose(ctx, f.direct, store.AttemptEnded{JobID: f.job, Task: 0, N: 1, ExitCode: 2, Reason: store.ReasonExited, Ended: time.Now()})))
	f.do(owner, "POST", "/api/v1/jobs/"+f.job+"/cancel", nil)
	wantError(t, f.do(owner, "POST", "/api/v1/jobs/"+f.job+"/rerun", map[string]any{"tasks": []int{7}}), 400, wire.CodeInvalid, "has no task 7")
	wantError(t, f.do(owner, "POST", "/api/v1/jobs/"+f.job+"/rerun", map[string]any{"failed": true, "tasks": []int{0}}), 400, wire.CodeInvalid, "not both")
	wantError(t, f.do(owner, "POST", "/api/v1/jobs/"+f.job+"/rerun", `{"failed":"yes"}`), 400, wire.CodeInvalid, "failed")
	w := f.do(owner, "POST", "/api/v1/jobs/"+f.job+"/rerun", map[string]bool{"failed": true})
	res := decodeAs[wire.RerunResult](t, w)
	if w.Code != 200 || len(res.Tasks) != 1 || res.Tasks[0] != 0 || res.Job.State != wire.StateRunning || res.Job.Counts[wire.StateQueued] != 1 {
		t.Fatalf("rerun %d %+v", w.Code, res)
	}
	if d := decodeAs[wire.TaskDetail](t, f.do(owner, "GET", "/api/v1/jobs/"+f.job+"/tasks/0", nil)); d.State != wire.StateQueued || d.Reruns != 1 || len(d.AttemptList) != 1 {
		t.Fatalf("task after the rerun %+v", d)
	}
}

func TestAccounts(t *testing.T) {
	t.Run("login returns a token that works and the account", func(t *testing.T) {
		f := newFixture(t)
		w := f.do(anonymous, "POST", "/api/v1/login", map[string]string{"username": "alice", "password": passwordOf("alice"), "client": "cli"})
		res := decodeAs[wire.LoginResult](t, w)
		if res.User.Name != "alice" || !strings.HasPrefix(res.Token, "gtk_") {
			t.Fatalf("login %+v", res)
		}
		f.tokens["alice"] = res.Token
		if me := decodeAs[wire.User](t, f.do(owner, "GET", "/api/v1/me", nil)); me.Name != "alice" || me.Usage == nil {
			t.Fatalf("me %+v", me)
		}
		if l := decodeAs[wire.TokenList](t, f.do(owner, "GET", "/api/v1/tokens", nil)); len(l.Tokens) != 3 {
			t.Fatalf("alice's tokens %+v", l)
		}
	})
	t.Run("a browser session gets cookies and needs the CSRF header to change things", func(t *testing.T) {
		f := newFixture(t)
		w := f.do(anonymous, "POST", "/api/v1/login", map[string]string{"username": "alice", "password": passwordOf("alice")})
		var session, csrf string
		for _, c := range w.Result().Cookies() {
			switch c.Name {
			case sessionCookie:
				session = c.Value
				if !c.HttpOnly {
					t.Fatal("session cookie readable by scripts")
				}
			case csrfCookie:
				csrf = c.Value
			}
		}
		if session == "" || csrf == "" {
			t.Fatalf("cookies %v", w.Result().Cookies())
		}
		send := func(header bool) int {
			req := httptest.NewRequest("POST", "/api/v1/tokens", strings.NewReader(`{"name":"x"}`))
			req.AddCookie(&http.Cookie{Name: sessionCookie, Value: session})
			req.AddCookie(&http.Cookie{Name: csrfCookie, Value: csrf})
			if header {
				req.Header.Set(csrfHeader, csrf)
			}
			rec := httptest.NewRecorder()
			f.api.ServeHTTP(rec, req)
			return rec.Code
		}
		if c := send(false); c != 403 {
			t.Fatalf("without the CSRF header: %d", c)
		}
		if c := send(true); c != 201 {
			t.Fatalf("with it: %d", c)
		}
	})
	refused := []struct {
		name   string
		who    role
		method string
		path   string
		body   any
		status int
		code   string
		want   string
	}{
		{"a wrong password", anonymous, "POST", "/api/v1/login", map[string]string{"username": "alice", "password": "nope-nope"}, 401, wire.CodeUnauthorized, "invalid credentials"},
		{"the node's own credential", anonymous, "POST", "/api/v1/login", map[string]string{"username": "gantry-node", "password": "node-secret"}, 401, wire.CodeUnauthorized, "invalid credentials"},
		{"a bad token", anonymous, "GET", "/api/v1/me", nil, 401, wire.CodeUnauthorized, "invalid credentials"},
		{"no credentials", anonymous, "GET", "/api/v1/me", nil, 401, wire.CodeUnauthorized, "authentication required"},
		{"a wrong old password", owner, "POST", "/api/v1/me/password", map[string]string{"old": "wrong-wrong", "new": "another-one-1"}, 403, wire.CodeForbidden, "old: the current password is wrong"},
		{"a short new password", owner, "POST", "/api/v1/me/password", map[string]string{"old": passwordOf("alice"), "new": "short"}, 400, wire.CodeInvalid, "password: at least 8 characters"},
		{"a token without a name", owner, "POST", "/api/v1/tokens", map[string]string{"name": " "}, 400, wire.CodeInvalid, "name: give the token a name"},
		{"someone else's token", owner, "DELETE", "/api/v1/tokens/tok-bob", nil, 404, wire.CodeNotFound, "token tok-bob not found"},
		{"a bad user name", admin, "POST", "/api/v1/users", map[string]string{"username": "Carol!", "password": "carol-password"}, 400, wire.CodeInvalid, "username: 2-32 lowercase"},
		{"a user that exists", admin, "POST", "/api/v1/users", map[string]string{"username": "bob", "password": "bob-password-2"}, 409, wire.CodeConflict, `user "bob" already exists`},
		{"an update of a user that does not exist", admin, "PATCH", "/api/v1/users/zed", map[string]any{"disabled": true}, 404, wire.CodeNotFound, `user "zed" not found`},
		{"disabling yourself", admin, "PATCH", "/api/v1/users/admin", map[string]any{"disabled": true}, 400, wire.CodeInvalid, "you cannot disable your own account"},
		{"a negative quota", admin, "PATCH", "/api/v1/users/alice", map[string]any{"quota": map[string]int{"cpu": -1}}, 400, wire.CodeInvalid, "quota: must not be negative"},
		{"a negative storage quota", admin, "PATCH", "/api/v1/users/alice", map[string]any{"storage_quota": -1}, 400, wire.CodeInvalid, "storage_quota: must not be negative"},
		{"a storage quota set by a user", owner, "PATCH", "/api/v1/users/alice", map[string]any{"storage_quota": 1 << 40}, 403, wire.CodeForbidden, "admin only"},
	}
	for _, tc := range refused {
		t.Run(tc.name+" is refused", func(t *testing.T) {
			f := newFixture(t)
			if tc.name == "a bad token" {
				f.tokens["alice"] = "gtk_nope"
				tc.who = owner
			}
			wantError(t, f.do(tc.who, tc.method, tc.path, tc.body), tc.status, tc.code, tc.want)
		})
	}
	t.Run("an admin sets a quota, shown with the usage", func(t *testing.T) {
		f := newFixture(t)
		u := decodeAs[wire.User](t, f.do(admin, "PATCH", "/api/v1/users/alice", map[string]any{"quota": map[string]int64{"cpu": 2000}}))
		if u.Quota == nil || u.Quota.CPU != 2000 || u.Usage == nil || u.Usage.Tasks != 1 {
			t.Fatalf("user %+v quota %+v usage %+v", u, u.Quota, u.Usage)
		}
		l := decodeAs[wire.UserList](t, f.do(admin, "GET", "/api/v1/users", nil))
		if len(l.Users) != 3 {
			t.Fatalf("users %+v", l)
		}
	})
	t.Run("an admin sets a storage quota, shown with what the repositories hold", func(t *testing.T) {
		f := newFixture(t)
		ctx := context.Background()
		base := decodeAs[wire.User](t, f.do(owner, "GET", "/api/v1/me", nil)).Storage // the fixture's images
		if base == nil {
			t.Fatal("no storage in /me")
		}
		for _, l := range []store.RegLinkBlob{
			{Repo: "alice/app", Owner: "alice", Digest: "sha256:aa", Size: 3 << 20},
			{Repo: "alice/data", Owner: "alice", Digest: "sha256:aa", Size: 3 << 20}, // the same blob: counted once
			{Repo: "alice/data", Owner: "alice", Digest: "sha256:bb", Size: 1 << 20},
		} {
			if _, err := store.CmdRegLinkBlob.Propose(ctx, f.direct, l); err != nil {
				t.Fatal(err)
			}
		}
		u := decodeAs[wire.User](t, f.do(admin, "PATCH", "/api/v1/users/alice", map[string]any{"storage_quota": 10 << 30}))
		if u.StorageQuota != 10<<30 || u.Storage == nil || *u.Storage != (wire.StorageUsage{Bytes: base.Bytes + 4<<20, Blobs: base.Blobs + 2}) {
			t.Fatalf("user %+v storage %+v", u, u.Storage)
		}
		me := decodeAs[wire.User](t, f.do(owner, "GET", "/api/v1/me", nil))
		if me.StorageQuota != 10<<30 || me.Storage == nil || me.Storage.Bytes != base.Bytes+4<<20 {
			t.Fatalf("me %+v storage %+v", me, me.Storage)
		}
		l := decodeAs[wire.UserList](t, f.do(admin, "GET", "/api/v1/users", nil))
		for _, u := range l.Users {
			if u.Storage == nil || u.Name == "alice" && u.Storage.Bytes != base.Bytes+4<<20 {
				t.Fatalf("%s's storage in the list: %+v", u.Name, u.Storage)
			}
		}
		// Setting the CPU quota leaves the storage quota alone; 0 removes it.
		if u := decodeAs[wire.User](t, f.do(admin, "PATCH", "/api/v1/users/alice", map[string]any{"quota": map[string]int64{"cpu": 1000}})); u.StorageQuota != 10<<30 {
			t.Fatalf("storage quota after a CPU quota: %d", u.StorageQuota)
		}
		if u := decodeAs[wire.User](t, f.do(admin, "PATCH", "/api/v1/users/alice", map[string]any{"storage_quota": 0})); u.StorageQuota != 0 {
			t.Fatalf("storage quota after removing it: %d", u.StorageQuota)
		}
	})
	t.Run("a disabled account is refused at once", func(t *testing.T) {
		f := newFixture(t)
		f.do(admin, "PATCH", "/api/v1/users/bob", map[string]any{"disabled": true})
		wantError(t, f.do(other, "GET", "/api/v1/me", nil), 403, wire.CodeForbidden, "account bob is disabled")
	})
}

func TestSchedulesAndNodes(t *testing.T) {
	f := newFixture(t)
	t.Run("a schedule is created with its next run", func(t *testing.T) {
		w := f.do(owner, "POST", "/api/v1/schedules", map[string]any{"name": "nightly", "cron": "0 3 * * *", "spec": map[string]any{"image": "gantry/toolbox"}})
		s := decodeAs[wire.Schedule](t, w)
		if w.Code != 201 || s.NextRun.IsZero() || s.Owner != "alice" || s.Spec.CPU != 1000 {
			t.Fatalf("schedule %d %+v", w.Code, s)
		}
		if l := decodeAs[wire.ScheduleList](t, f.do(owner, "GET", "/api/v1/schedules", nil)); len(l.Schedules) != 2 {
			t.Fatalf("schedules %+v", l)
		}
		if p := decodeAs[wire.Schedule](t, f.do(owner, "POST", "/api/v1/schedules/"+s.ID+"/pause", nil)); !p.Paused || !p.NextRun.IsZero() {
			t.Fatalf("paused %+v", p)
		}
	})
	t.Run("a bad cron expression is refused naming the field", func(t *testing.T) {
		wantError(t, f.do(owner, "POST", "/api/v1/schedules", map[string]any{"cron": "every tuesday", "spec": map[string]any{"image": "gantry/toolbox"}}),
			400, wire.CodeInvalid, "cron:")
	})
	t.Run("a bad spec is refused under spec.", func(t *testing.T) {
		wantError(t, f.do(owner, "POST", "/api/v1/schedules", map[string]any{"cron": "@daily", "spec": map[string]any{"image": "alice/nothing"}}),
			400, wire.CodeInvalid, "spec.image: alice/nothing not found")
	})
	t.Run("nodes are listed with the leader", func(t *testing.T) {
		l := decodeAs[wire.NodeList](t, f.do(owner, "GET", "/api/v1/nodes", nil))
		if len(l.Nodes) != 1 || !l.Nodes[0].Leader || l.Nodes[0].Allocated.CPU != 1000 {
			t.Fatalf("nodes %+v", l)
		}
	})
	t.Run("a drain with a deadline is recorded", func(t *testing.T) {
		n := decodeAs[wire.Node](t, f.do(admin, "POST", "/api/v1/nodes/n1/drain?deadline=10m", nil))
		if n.State != wire.NodeDraining || n.DrainDeadline.IsZero() {
			t.Fatalf("drained %+v", n)
		}
		f.do(admin, "POST", "/api/v1/nodes/n1/ready", nil)
	})
	t.Run("draining a node that does not exist is not found", func(t *testing.T) {
		wantError(t, f.do(admin, "POST", "/api/v1/nodes/zz/drain", nil), 404, wire.CodeNotFound, `node "zz" not found`)
	})
	t.Run("a bad drain deadline is refused", func(t *testing.T) {
		wantError(t, f.do(admin, "POST", "/api/v1/nodes/n1/drain?deadline=soon", nil), 400, wire.CodeInvalid, "deadline:")
	})
	t.Run("the cluster says who leads", func(t *testing.T) {
		c := decodeAs[wire.Cluster](t, f.do(owner, "GET", "/api/v1/cluster", nil))
		if c.ID != "testcluster" || c.Leader != "n1" || c.Nodes != 1 {
			t.Fatalf("cluster %+v", c)
		}
	})
	t.Run("the join command and members are the admin's", func(t *testing.T) {
		if jc := decodeAs[wire.JoinCommand](t, f.do(admin, "POST", "/api/v1/cluster/join-token/rotate", nil)); jc.Token != "T" || f.clu.rotated != 1 {
			t.Fatalf("rotate %+v %d", jc, f.clu.rotated)
		}
		if m := decodeAs[wire.MemberList](t, f.do(admin, "GET", "/api/v1/cluster/members", nil)); len(m.Members) != 1 || !m.Members[0].Leader || !m.Members[0].Voter {
			t.Fatalf("members %+v", m)
		}
	})
	t.Run("a join request that does not parse is refused", func(t *testing.T) {
		wantError(t, f.do(anonymous, "POST", "/api/v1/cluster/join", "not json"), 400, wire.CodeInvalid, "join request")
	})
}

func TestImages(t *testing.T) {
	f := newFixture(t)
	l := decodeAs[wire.ImageList](t, f.do(owner, "GET", "/api/v1/images", nil))
	names := map[string]bool{}
	for _, r := range l.Repositories {
		names[r.Name] = true
	}
	if !names["alice/tool"] || !names["gantry/toolbox"] || l.Usage <= 0 {
		t.Fatalf("alice's images %+v", l)
	}
	if l := decodeAs[wire.ImageList](t, f.do(other, "GET", "/api/v1/images", nil)); len(l.Repositories) != 2 { // bob/app, gantry/toolbox
		t.Fatalf("bob sees %+v", l.Repositories)
	}
	wantError(t, f.do(owner, "DELETE", "/api/v1/images/alice/tool/blobs/x", nil), 404, wire.CodeNotFound, "no such endpoint")
	if d := decodeAs[wire.Deleted](t, f.do(owner, "DELETE", "/api/v1/images/alice/tool/tags/1", nil)); d.Deleted != "alice/tool:1" {
		t.Fatalf("deleted %+v", d)
	}
	if r := decodeAs[wire.GCReport](t, f.do(admin, "POST", "/api/v1/admin/gc?dry_run=1", nil)); !r.DryRun {
		t.Fatalf("gc %+v", r)
	}
}

// TestErrorTable checks the one table from error codes to statuses, and
// that the details of an internal error stay in the log.
func TestErrorTable(t *testing.T) {
	cases := []struct {
		err    error
		status int
		code   string
		msg    string
	}{
		{store.Errorf(store.EInvalid, "x: bad"), 400, wire.CodeInvalid, "x: bad"},
		{store.Errorf(store.EUnauthorized, "who?"), 401, wire.CodeUnauthorized, "who?"},
		{store.Errorf(store.EForbidden, "no"), 403, wire.CodeForbidden, "no"},
		{store.ErrNotFound, 404, wire.CodeNotFound, "not found"},
		{store.Errorf(store.EConflict, "taken"), 409, wire.CodeConflict, "taken"},
		{store.Errorf(store.EGone, "removed"), 410, wire.CodeGone, "removed"},
		{store.Errorf(store.EUnavailable, "later"), 503, wire.CodeUnavailable, "later"},
		{errors.New("open /var/lib/gantry/state: permission denied"), 500, wire.CodeInternal, "internal error"},
		{store.Errorf("made-up", "?"), 500, wire.CodeInternal, "internal error"},
	}
	gin.SetMode(gin.ReleaseMode)
	for _, tc := range cases {
		t.Run(tc.code+" answers "+http.StatusText(tc.status), func(t *testing.T) {
			w := httptest.NewRecorder()
			c, _ := gin.CreateTestContext(w)
			c.Request = httptest.NewRequest("GET", "/api/v1/x", nil)
			fail(c, tc.err)
			wantError(t, w, tc.status, tc.code, tc.msg)
			if strings.Contains(w.Body.String(), "permission denied") {
				t.Fatal("internal details were sent to the user")
			}
		})
	}
	t.Run("an unknown endpoint is a JSON 404", func(t *testing.T) {
		f := newFixture(t)
		wantError(t, f.do(owner, "GET", "/api/v1/nothing", nil), 404, wire.CodeNotFound, "no such endpoint: GET /api/v1/nothing")
	})
	t.Run("a consistent read the leader cannot confirm is 503", func(t *testing.T) {
		f := newFixture(t)
		f.clu.linearizeErr = store.Errorf(store.EUnavailable, "no leader for a consistent read; try again")
		wantError(t, f.do(owner, "GET", "/api/v1/jobs?consistent=true", nil), 503, wire.CodeUnavailable, "no leader")
	})
}

// TestStoreFailuresAreNotMissingRecords: a store that cannot answer is an
// internal error (500), never reported as a missing job or an empty
// reason. Each case failed before the fix that came with this test.
func TestStoreFailuresAreNotMissingRecords(t *testing.T) {
	t.Run("a dependency whose read fails", func(t *testing.T) {
		f := newFixture(t)
		f.state.set(func(s *faultyState) { s.failJob = map[string]bool{"01DEP": true} })
		wantError(t, f.do(owner, "POST", "/api/v1/jobs", map[string]any{"image": "gantry/toolbox", "after": []string{"01DEP"}}), 500, wire.CodeInternal)
	})
	t.Run("a wait reason whose usage read fails", func(t *testing.T) {
		f := newFixture(t)
		f.state.set(func(s *faultyState) { s.failUse = true })
		wantError(t, f.do(owner, "GET", "/api/v1/jobs/"+f.job, nil), 500, wire.CodeInternal)
	})
	t.Run("a placement check whose node read fails", func(t *testing.T) {
		f := newFixture(t)
		f.state.set(func(s *faultyState) { s.failNode = true })
		wantError(t, f.do(owner, "POST", "/api/v1/jobs", map[string]any{"image": "gantry/toolbox"}), 500, wire.CodeInternal)
		if jobs, _, _ := f.st.ListJobs(store.JobFilter{Owner: "alice"}); len(jobs) != 1 {
			t.Fatalf("a job was stored although its check failed: %d jobs", len(jobs))
		}
	})
}

// TestQueryTokenOnTheFeedOnly: ?token= authenticates the WebSocket upgrade
// of the event feed and nothing else, so a token leaked in a URL cannot
// delete a tag whose name happens to be "events".
func TestQueryTokenOnTheFeedOnly(t *testing.T) {
	f := newFixture(t)
	f.image("alice", "alice/tool", "events")
	q := "?token=" + f.tokens["alice"]
	send := func(method, path string, upgrade bool) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, nil)
		if upgrade {
			req.Header.Set("Upgrade", "websocket")
			req.Header.Set("Connection", "Upgrade")
		}
		w := httptest.NewRecorder()
		f.api.ServeHTTP(w, req)
		return w
	}
	for _, r := range []struct {
		method, path string
		upgrade      bool
	}{
		{"DELETE", "/api/v1/images/alice/tool/tags/events" + q, true},
		{"GET", "/api/v1/me" + q, false},
		{"GET", "/api/v1/events" + q, false}, // the feed without the upgrade
	} {
		if w := send(r.method, r.path, r.upgrade); w.Code != http.StatusUnauthorized {
			t.Errorf("%s %s (upgrade %v): %d %s, want 401", r.method, r.path, r.upgrade, w.Code, w.Body)
		}
	}
	if tags, err := f.st.RegTagsOf("alice/tool"); err != nil || len(tags) == 0 {
		t.Fatalf("alice/tool's tag events is gone: %v %v", tags, err)
	}
	if w := send("GET", "/api/v1/events"+q, true); w.Code != http.StatusOK || w.Body.String() != "alice" {
		t.Fatalf("the feed's upgrade with ?token=: %d %s, want alice's identity", w.Code, w.Body)
	}
}

// TestJobImagesOfOtherRegistriesAreRefused: a job may name Gantry's own
// registry, or another only when an admin allowed it.
func TestJobImagesOfOtherRegistriesAreRefused(t *testing.T) {
	f := newFixture(t)
	for _, img := range []string{"127.0.0.1:17099/x/y:1", "localhost:6379/x:1", "ghcr.io/org/tool:1"} {
		w := f.do(owner, "POST", "/api/v1/jobs", map[string]any{"image": img, "command": []string{"true"}})
		var e wire.Error
		if w.Code != http.StatusBadRequest || json.Unmarshal(w.Body.Bytes(), &e) != nil || e.Code != wire.CodeInvalid ||
			!strings.Contains(e.Error, "--allow-registry") {
			t.Errorf("job from %s: %d %s, want 400 naming --allow-registry", img, w.Code, w.Body)
		}
	}
	if w := f.do(owner, "POST", "/api/v1/jobs", map[string]any{"image": "alice/tool:1", "command": []string{"true"}}); w.Code != http.StatusCreated {
		t.Fatalf("job from alice's own image: %d %s", w.Code, w.Body)
	}
}
