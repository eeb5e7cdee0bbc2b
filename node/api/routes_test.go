package api

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
)

// matrixRow is what each role gets from one route, with the request that
// exercises it (path parameters filled from the fixture).
type matrixRow struct {
	path func(f *fixture) string
	body func(f *fixture, r role) any
	want map[role]int
}

func fixed(p string) func(*fixture) string { return func(*fixture) string { return p } }

func onJob(suffix string) func(*fixture) string {
	return func(f *fixture) string { return "/api/v1/jobs/" + f.job + suffix }
}

func onSchedule(suffix string) func(*fixture) string {
	return func(f *fixture) string { return "/api/v1/schedules/" + f.schedule + suffix }
}

func onNotice(suffix string) func(*fixture) string {
	return func(f *fixture) string { return "/api/v1/notices/" + f.noticed() + suffix }
}

func onNoticeDown(suffix string) func(*fixture) string {
	return func(f *fixture) string {
		if f.notice == "" {
			f.noticeDown()
		}
		return "/api/v1/notices/" + f.notice + suffix
	}
}

func onNoticeCountered(suffix string) func(*fixture) string {
	return func(f *fixture) string {
		if f.notice == "" {
			f.noticeCountered()
		}
		return "/api/v1/notices/" + f.notice + suffix
	}
}

func body(v any) func(*fixture, role) any { return func(*fixture, role) any { return v } }

// moderated is body v on a fixture with moderation records (f.moderated).
func moderated(v any) func(*fixture, role) any {
	return func(f *fixture, _ role) any { f.moderated(); return v }
}

// statuses builds the wanted answers: anonymous, owner, other user, admin.
func statuses(anon, own, oth, adm int) map[role]int {
	return map[role]int{anonymous: anon, owner: own, other: oth, admin: adm}
}

var (
	public    = func(s int) map[role]int { return statuses(s, s, s, s) }
	signedIn  = func(s int) map[role]int { return statuses(401, s, s, s) }
	adminOnly = func(s int) map[role]int { return statuses(401, 403, 403, s) }
	// ownedBy: the owner and an admin get s; another user is told the
	// thing does not exist (404), so others' private things are not revealed.
	ownedBy = func(s int) map[role]int { return statuses(401, s, 404, s) }
)

var jobBody = body(map[string]any{"image": "gantry/toolbox", "command": []string{"true"}})

// matrix is the isolation matrix over every API route: a route added
// without a row here fails TestRouteMatrixCoversEveryRoute.
var matrix = map[string]matrixRow{
	"GET /healthz":             {path: fixed("/healthz"), want: public(200)},
	"POST /api/v1/login":       {path: fixed("/api/v1/login"), body: body(map[string]string{"username": "alice", "password": passwordOf("alice")}), want: public(200)},
	"POST /api/v1/logout":      {path: fixed("/api/v1/logout"), want: signedIn(204)},
	"GET /api/v1/me":           {path: fixed("/api/v1/me"), want: signedIn(200)},
	"GET /api/v1/tokens":       {path: fixed("/api/v1/tokens"), want: signedIn(200)},
	"POST /api/v1/tokens":      {path: fixed("/api/v1/tokens"), body: body(map[string]string{"name": "ci"}), want: signedIn(201)},
	"GET /api/v1/users":        {path: fixed("/api/v1/users"), want: adminOnly(200)},
	"POST /api/v1/users":       {path: fixed("/api/v1/users"), body: body(map[string]any{"username": "carol", "password": "carol-password"}), want: adminOnly(201)},
	"GET /api/v1/jobs":         {path: fixed("/api/v1/jobs"), want: signedIn(200)},
	"POST /api/v1/jobs":        {path: fixed("/api/v1/jobs"), body: jobBody, want: signedIn(201)},
	"GET /api/v1/nodes":        {path: fixed("/api/v1/nodes"), want: signedIn(200)},
	"GET /api/v1/cluster":      {path: fixed("/api/v1/cluster"), want: signedIn(200)},
	"GET /metrics":             {path: fixed("/metrics"), want: signedIn(200)},
	"GET /api/v1/images":       {path: fixed("/api/v1/images"), want: signedIn(200)},
	"GET /api/v1/events":       {path: fixed("/api/v1/events"), want: signedIn(200)},
	"GET /api/v1/openapi.json": {path: fixed("/api/v1/openapi.json"), want: signedIn(200)},
	"POST /api/v1/admin/gc":    {path: fixed("/api/v1/admin/gc?dry_run=1"), want: adminOnly(200)},
	"GET /debug/pprof/*name":   {path: fixed("/debug/pprof/cmdline"), want: adminOnly(200)},
	"POST /api/v1/me/password": {path: fixed("/api/v1/me/password"), want: signedIn(200),
		body: func(_ *fixture, r role) any {
			return map[string]string{"old": passwordOf(userOf[r]), "new": "a-new-password-1"}
		}},
	// A user's tokens are their own: nobody else can delete one, admins
	// included (they disable the account instead).
	"DELETE /api/v1/tokens/:id": {path: func(f *fixture) string { return "/api/v1/tokens/" + f.extraTok }, want: statuses(401, 204, 404, 404)},
	"PATCH /api/v1/users/:name": {path: fixed("/api/v1/users/alice"), body: body(map[string]any{"disabled": false}), want: adminOnly(200)},

	"GET /api/v1/jobs/:id":                     {path: onJob(""), want: ownedBy(200)},
	"GET /api/v1/jobs/:id/timeline":            {path: onJob("/timeline"), want: ownedBy(200)},
	"GET /api/v1/stats/history":                {path: fixed("/api/v1/stats/history?window=1d"), want: signedIn(200)},
	"POST /api/v1/jobs/:id/cancel":             {path: onJob("/cancel?dependents=true"), want: ownedBy(200)},
	"GET /api/v1/jobs/:id/deps":                {path: onJob("/deps"), want: ownedBy(200)},
	"GET /api/v1/jobs/:id/wait":                {path: onJob("/wait?timeout=0s"), want: ownedBy(200)},
	"GET /api/v1/jobs/:id/tasks":               {path: onJob("/tasks"), want: ownedBy(200)},
	"GET /api/v1/jobs/:id/outputs":             {path: onJob("/outputs"), want: ownedBy(200)},
	"GET /api/v1/jobs/:id/tasks/:index/output": {path: func(f *fixture) string { f.storedOutput(); return onJob("/tasks/0/output")(f) }, want: ownedBy(200)},
	"GET /api/v1/jobs/:id/tasks/:index":        {path: onJob("/tasks/0"), want: ownedBy(200)},
	"GET /api/v1/jobs/:id/tasks/:index/logs":   {path: onJob("/tasks/0/logs"), want: ownedBy(200)},
	// Only the owner resubmits: a job runs as its owner, never as an admin
	// who asked for it again.
	"POST /api/v1/jobs/:id/retry": {path: onJob("/retry"), want: statuses(401, 201, 404, 403)},
	// The fixture's job has not ended: the owner is told so (409).
	"POST /api/v1/jobs/:id/rerun": {path: onJob("/rerun"), body: body(map[string]bool{"failed": true}), want: statuses(401, 409, 404, 403)},

	"POST /api/v1/schedules":                 {path: fixed("/api/v1/schedules"), body: body(map[string]any{"cron": "@daily", "spec": map[string]any{"image": "gantry/toolbox"}}), want: signedIn(201)},
	"GET /api/v1/schedules":                  {path: fixed("/api/v1/schedules"), want: signedIn(200)},
	"GET /api/v1/schedules/:id":              {path: onSchedule(""), want: ownedBy(200)},
	"POST /api/v1/schedules/:id/pause":       {path: onSchedule("/pause"), want: ownedBy(200)},
	"POST /api/v1/schedules/:id/resume":      {path: onSchedule("/resume"), want: ownedBy(200)},
	"DELETE /api/v1/schedules/:id":           {path: onSchedule(""), want: ownedBy(204)},
	"GET /api/v1/queues":                     {path: fixed("/api/v1/queues"), want: signedIn(200)},
	"POST /api/v1/queues":                    {path: fixed("/api/v1/queues"), body: body(map[string]any{"name": "gpu", "weight": 1}), want: adminOnly(201)},
	"GET /api/v1/queues/:name":               {path: fixed("/api/v1/queues/lab"), want: ownedBy(200)},
	"PATCH /api/v1/queues/:name":             {path: fixed("/api/v1/queues/lab"), body: body(map[string]any{"weight": 3}), want: adminOnly(200)},
	"DELETE /api/v1/queues/:name":            {path: fixed("/api/v1/queues/lab"), want: adminOnly(204)},
	"GET /api/v1/nodes/:name":                {path: fixed("/api/v1/nodes/n1"), want: signedIn(200)},
	"POST /api/v1/nodes/:name/drain":         {path: fixed("/api/v1/nodes/n1/drain"), want: adminOnly(200)},
	"POST /api/v1/nodes/:name/ready":         {path: fixed("/api/v1/nodes/n1/ready"), want: adminOnly(200)},
	"POST /api/v1/nodes/:name/remove":        {path: fixed("/api/v1/nodes/n1/remove"), want: adminOnly(200)},
	"POST /api/v1/backup":                    {path: fixed("/api/v1/backup"), body: body(map[string]any{}), want: adminOnly(200)},
	"GET /api/v1/cluster/ca":                 {path: fixed("/api/v1/cluster/ca"), want: public(200)},
	"POST /api/v1/cluster/join":              {path: fixed("/api/v1/cluster/join"), body: body(map[string]string{"name": "n2"}), want: public(200)},
	"GET /api/v1/cluster/join-command":       {path: fixed("/api/v1/cluster/join-command"), want: adminOnly(200)},
	"POST /api/v1/cluster/join-token/rotate": {path: fixed("/api/v1/cluster/join-token/rotate"), want: adminOnly(200)},
	"GET /api/v1/cluster/members":            {path: fixed("/api/v1/cluster/members"), want: adminOnly(200)},
	// The import reads a `docker save` archive; an empty body is refused
	// after authentication (e2e TestImageImport imports a real one).
	"POST /api/v1/images/import":  {path: fixed("/api/v1/images/import"), body: body(""), want: signedIn(400)},
	"DELETE /api/v1/images/*path": {path: fixed("/api/v1/images/alice/tool/tags/1"), want: ownedBy(200)},

	// The community catalog. alice publishes alice/tool (open) and
	// alice/model (approval, bob has asked); bob/app is built on
	// alice/tool. Publishing is the owner's alone, admins included
	// (another user's private repository is not found: TestCatalog).
	"POST /api/v1/images/publish":   {path: fixed("/api/v1/images/publish"), body: body(map[string]string{"repo": "alice/tool", "license": "MIT"}), want: statuses(401, 200, 403, 403)},
	"POST /api/v1/images/unpublish": {path: fixed("/api/v1/images/unpublish"), body: body(map[string]string{"repo": "alice/tool"}), want: statuses(401, 204, 403, 204)},
	"POST /api/v1/images/accept":    {path: fixed("/api/v1/images/accept"), body: body(map[string]string{"repo": "alice/tool"}), want: signedIn(200)},
	// The publisher cannot ask for their own repository (409).
	"POST /api/v1/images/request":        {path: fixed("/api/v1/images/request"), body: body(map[string]any{"repo": "alice/model", "answers": []string{"teaching"}}), want: statuses(401, 409, 200, 200)},
	"GET /api/v1/images/access":          {path: fixed("/api/v1/images/access?repo=alice/model"), want: statuses(401, 200, 403, 200)},
	"POST /api/v1/images/access/decide":  {path: fixed("/api/v1/images/access/decide"), body: body(map[string]string{"repo": "alice/model", "user": "bob", "decision": "approve"}), want: statuses(401, 200, 403, 200)},
	"GET /api/v1/images/accepted":        {path: fixed("/api/v1/images/accepted"), want: signedIn(200)},
	"POST /api/v1/images/notices/remove": {path: fixed("/api/v1/images/notices/remove"), body: body(map[string]string{"repo": "bob/app", "base": "alice/tool"}), want: statuses(401, 204, 403, 204)},
	"GET /api/v1/catalog":                {path: fixed("/api/v1/catalog"), want: signedIn(200)},
	"GET /api/v1/catalog/entry":          {path: fixed("/api/v1/catalog/entry?repo=alice/tool"), want: signedIn(200)},
	"GET /api/v1/catalog/trial":          {path: fixed("/api/v1/catalog/trial"), want: signedIn(200)},
	"PUT /api/v1/admin/trial":            {path: fixed("/api/v1/admin/trial"), body: body(map[string]any{"cpu_seconds_per_day": 60, "max_run_time": "30s"}), want: adminOnly(200)},
	// The fixture turns trials on (60 CPU-seconds); bob has not accepted
	// alice/tool's licence: refused by the gate like any job of it.
	// Governance: the audit log is the admins'; a user's inbox is theirs.
	"GET /api/v1/audit":           {path: fixed("/api/v1/audit?since=24h&actor=admin"), want: adminOnly(200)},
	"GET /api/v1/audit/verify":    {path: fixed("/api/v1/audit/verify"), want: adminOnly(200)},
	"GET /api/v1/audit/export":    {path: fixed("/api/v1/audit/export"), want: adminOnly(200)},
	"GET /api/v1/inbox":           {path: fixed("/api/v1/inbox"), want: signedIn(200)},
	"POST /api/v1/inbox/send":     {path: fixed("/api/v1/inbox/send"), body: body(map[string]string{"user": "alice", "subject": "hello"}), want: adminOnly(204)},
	"GET /api/v1/review":          {path: fixed("/api/v1/review?state=approved"), want: adminOnly(200)},
	"POST /api/v1/review/decide":  {path: fixed("/api/v1/review/decide"), body: body(map[string]string{"repo": "alice/tool", "decision": "reject", "reason": "no README"}), want: adminOnly(200)},
	"GET /api/v1/review/rules":    {path: fixed("/api/v1/review/rules"), want: adminOnly(200)},
	"PUT /api/v1/review/rules":    {path: fixed("/api/v1/review/rules"), body: body(map[string]any{"auto": true, "deny": []string{"casino"}}), want: adminOnly(200)},
	"POST /api/v1/inbox/:id/read": {path: fixed("/api/v1/inbox/1/read"), want: statuses(401, 200, 404, 404)},

	// Moderation: anyone signed in reports and lists their own reports;
	// deciding, takedowns and suspensions are the admins' (f.moderated
	// files report 1, takes alice/model down, suspends dave).
	"GET /api/v1/reports/categories":   {path: fixed("/api/v1/reports/categories"), want: signedIn(200)},
	"POST /api/v1/reports":             {path: fixed("/api/v1/reports"), body: body(map[string]string{"repo": "alice/tool", "category": "other", "reason": "broken"}), want: signedIn(201)},
	"GET /api/v1/reports":              {path: fixed("/api/v1/reports?open=true"), want: signedIn(200)},
	"POST /api/v1/reports/:id/decide":  {path: fixed("/api/v1/reports/1/decide"), body: moderated(map[string]string{"decision": "dismiss", "reason": "fine"}), want: adminOnly(200)},
	"GET /api/v1/takedowns":            {path: fixed("/api/v1/takedowns"), want: adminOnly(200)},
	"POST /api/v1/takedowns":           {path: fixed("/api/v1/takedowns"), body: body(map[string]any{"repo": "alice/tool", "reason": "infringing", "stop_jobs": true}), want: adminOnly(201)},
	"POST /api/v1/takedowns/restore":   {path: fixed("/api/v1/takedowns/restore"), body: moderated(map[string]string{"repo": "alice/model"}), want: adminOnly(200)},
	"POST /api/v1/users/:name/suspend": {path: fixed("/api/v1/users/bob/suspend"), body: body(map[string]any{"reason": "spam", "cancel_jobs": true}), want: adminOnly(200)},
	"POST /api/v1/users/:name/restore": {path: fixed("/api/v1/users/dave/restore"), body: moderated(nil), want: adminOnly(200)},

	// Infringement notices (notices_test.go): carol's notice accuses
	// alice's alice/tool, so alice is a party and bob a stranger, told it
	// does not exist; deciding and the settings are the admins'; the
	// counter-notice is the accused publisher's (an admin is refused: 403),
	// the court action the notifier's or an admin's (alice: 403).
	"GET /api/v1/notices/statements":              {path: fixed("/api/v1/notices/statements"), want: public(200)},
	"GET /api/v1/notices/settings":                {path: fixed("/api/v1/notices/settings"), want: adminOnly(200)},
	"PUT /api/v1/notices/settings":                {path: fixed("/api/v1/notices/settings"), body: body(map[string]any{"wait_business_days": 5}), want: adminOnly(200)},
	"POST /api/v1/notices":                        {path: fixed("/api/v1/notices"), body: body(wireNoticeForm()), want: statuses(401, 400, 201, 201)}, // not against one's own image
	"POST /api/v1/notices/public":                 {path: fixed("/api/v1/notices/public"), body: func(f *fixture, _ role) any { f.openPublicForm(); return wireNoticeForm() }, want: public(201)},
	"GET /api/v1/notices":                         {path: fixed("/api/v1/notices?state=filed"), want: signedIn(200)},
	"GET /api/v1/notices/:id":                     {path: onNotice(""), want: ownedBy(200)},
	"GET /api/v1/notices/:id/attachments/:digest": {path: onNotice("/attachments/" + noticeProofDigest()), want: ownedBy(200)},
	"POST /api/v1/notices/:id/decide":             {path: onNotice("/decide"), body: body(map[string]string{"decision": "takedown", "reason": "the symbols match"}), want: adminOnly(200)},
	"POST /api/v1/notices/:id/counter":            {path: onNoticeDown("/counter"), body: body(wireCounterForm()), want: statuses(401, 200, 404, 403)},
	"POST /api/v1/notices/:id/court":              {path: onNoticeCountered("/court"), body: body(map[string]string{"detail": "case 26-1"}), want: statuses(401, 403, 404, 200)},

	"POST /api/v1/catalog/try": {path: fixed("/api/v1/catalog/try"), body: body(map[string]string{"repo": "alice/tool"}), want: statuses(401, 201, 403, 201)},
}

func routeKey(r Route) string { return r.Method + " " + r.Path }

// TestRouteMatrixCoversEveryRoute fails when a route is added to the
// router without a row in the isolation matrix, or a row names a route the
// router does not have.
func TestRouteMatrixCoversEveryRoute(t *testing.T) {
	f := newFixture(t)
	have := map[string]bool{}
	for _, r := range f.api.Routes() {
		k := routeKey(r)
		have[k] = true
		if _, ok := matrix[k]; !ok {
			t.Errorf("route %s has no row in the isolation matrix (routes_test.go)", k)
		}
	}
	for k := range matrix {
		if !have[k] {
			t.Errorf("the isolation matrix has a row for %s, which the router does not have", k)
		}
	}
}

// TestRouteMatrix sends every route's request as each role, each on a
// fresh fixture, and checks the status: anonymous callers get 401 from
// every route but the public ones, non-admins 403 from admin routes, and
// another user 404 for the owner's job, schedule, image and token.
func TestRouteMatrix(t *testing.T) {
	keys := make([]string, 0, len(matrix))
	for k := range matrix {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		row := matrix[k]
		method, _, _ := strings.Cut(k, " ")
		for _, r := range roles {
			t.Run(fmt.Sprintf("%s as %s", k, r), func(t *testing.T) {
				t.Parallel()
				f := newFixture(t)
				var b any
				if row.body != nil {
					b = row.body(f, r)
				}
				w := f.do(r, method, row.path(f), b)
				if w.Code != row.want[r] {
					t.Fatalf("%s %s as %s: status %d, want %d: %.300s", method, row.path(f), r, w.Code, row.want[r], w.Body.String())
				}
				if w.Code >= 400 && w.Header().Get("Content-Type") != "application/json; charset=utf-8" {
					t.Fatalf("error answer is %q, want JSON", w.Header().Get("Content-Type"))
				}
			})
		}
	}
}

// TestRouteAccessMatchesDeclaration checks that a route's declared access
// is what the router enforces: the matrix rows of public routes answer
// anonymous callers, admin routes refuse signed-in users.
func TestRouteAccessMatchesDeclaration(t *testing.T) {
	f := newFixture(t)
	for _, r := range f.api.Routes() {
		row, ok := matrix[routeKey(r)]
		if !ok {
			continue // reported by TestRouteMatrixCoversEveryRoute
		}
		switch r.Access {
		case Public:
			if row.want[anonymous] == http.StatusUnauthorized {
				t.Errorf("%s is declared public but its row wants 401 for anonymous callers", routeKey(r))
			}
		case Signed, Admin:
			if row.want[anonymous] != http.StatusUnauthorized {
				t.Errorf("%s is declared %s but its row lets anonymous callers in", routeKey(r), r.Access)
			}
			if r.Access == Admin && (row.want[owner] != http.StatusForbidden || row.want[other] != http.StatusForbidden) {
				t.Errorf("%s is declared admin-only but its row lets users in", routeKey(r))
			}
		}
	}
}
