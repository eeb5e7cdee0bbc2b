package api

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"gantry/store"
	"gantry/wire"
)

// Route is one endpoint of the API. Every route is declared once, in
// routeTable, with what it takes and answers: the router, the OpenAPI
// description (openapi.go), the handler tests and the isolation matrix all
// read that list.
type Route struct {
	Method  string
	Path    string // gin syntax: /api/v1/jobs/:id
	Access  Access
	Summary string
	// Body is the request body's type (a zero value), nil for none.
	Body any
	// Status and Answer are the success answer and its body's type; a nil
	// Answer is no body (204) or Produces below.
	Status int
	Answer any
	// Produces is the content type of a body that is not JSON.
	Produces string
	// Query lists the query parameters the route reads.
	Query []Param
	// Audit names the action the route's requests are recorded as in the
	// audit log (empty: not recorded); AuditRefusalsOnly: the command it
	// proposes records its own success.
	Audit             string
	AuditRefusalsOnly bool
	// WhileSuspended: a suspended account may still call it (to read why,
	// its inbox, and answer); every other route refuses it.
	WhileSuspended bool
	handler        gin.HandlerFunc
}

// Param is a query parameter.
type Param struct {
	Name, Type, Description string
}

var (
	pConsistent = Param{"consistent", "boolean", "true: a linearizable read (waits until this node has applied every write acknowledged before the request)"}
	pCursor     = Param{"cursor", "string", "where the page starts: the previous page's next"}
	pLimit      = Param{"limit", "integer", "how many items (1 to 1000 jobs, or 1 to the array size of tasks)"}
	pState      = Param{"state", "string", "only items in this state: queued, scheduled, running, succeeded, failed, cancelled"}
	pOwner      = Param{"owner", "string", "admins: only this user's items (default: everyone's)"}
	pQuery      = Param{"q", "string", "only jobs whose id, name or image contains this text"}
	pTimeout    = Param{"timeout", "string", "how long to wait, a duration up to 1h (default 60s)"}
	pAttempt    = Param{"attempt", "integer", "the attempt number (default: the latest)"}
	pFollow     = Param{"follow", "boolean", "stream new output until the attempt ends"}
	pDeadline   = Param{"deadline", "string", "a duration: after it, tasks still running on the node are moved elsewhere"}
	pDryRun     = Param{"dry_run", "boolean", "report what would be removed, remove nothing"}
	pToken      = Param{"token", "string", "an API token, for WebSocket clients that cannot set headers"}
	pDependents = Param{"dependents", "boolean", "true: also cancel, transitively, the dependents that have not started (default: each dependent settles as its kind says)"}
)

// route starts a route declaration; the methods below add what it takes
// and answers.
func route(method, path string, access Access, h gin.HandlerFunc, summary string) Route {
	return Route{Method: method, Path: path, Access: access, handler: h, Summary: summary, Status: http.StatusOK}
}

func (r Route) takes(body any) Route { r.Body = body; return r }
func (r Route) answers(status int, body any) Route {
	r.Status, r.Answer = status, body
	return r
}
func (r Route) produces(contentType string) Route { r.Produces = contentType; return r }
func (r Route) reads(ps ...Param) Route           { r.Query = append(r.Query, ps...); return r }

// audits records the route's requests in the audit log as action.
func (r Route) audits(action string) Route { r.Audit = action; return r }

// auditsRefusals records the route's refused requests as action; the
// governance command it proposes records its success itself.
func (r Route) auditsRefusals(action string) Route {
	r.Audit, r.AuditRefusalsOnly = action, true
	return r
}

// whileSuspended lets a suspended account call the route.
func (r Route) whileSuspended() Route { r.WhileSuspended = true; return r }

// noBody is the answer of a route that answers 204.
type noBody struct{}

// joinAnswer is a member's answer to a joining node (raftcluster.JoinResponse).
type joinAnswer struct {
	Cert       []byte `json:"cert"`
	ClusterID  string `json:"cluster_id"`
	MemberAddr string `json:"member_addr"`
}

// joinRequest is what a joining node sends (raftcluster.JoinRequest): no
// secret, an HMAC proof of it.
type joinRequest struct {
	Name     string `json:"name"`
	RaftAddr string `json:"raft_addr"`
	Host     string `json:"host"`
	CSR      []byte `json:"csr"`
	Time     int64  `json:"time"`
	Proof    string `json:"proof"`
}

// routeTable is every route of the API. Registry paths (/v2/) and the
// console's assets are served outside it (ServeHTTP, fallback).
func (a *API) routeTable() []Route {
	rs := []Route{
		route("GET", "/healthz", Public, a.health, "Whether the node serves, its Raft role and the cluster's failure tolerance").answers(200, wire.Health{}),
		route("POST", "/api/v1/login", Public, a.login, "Sign in: a session (cookies) or, with client, an API token").takes(wire.Login{}).answers(200, wire.LoginResult{}),
		route("POST", "/api/v1/logout", Signed, a.logout, "End the session").answers(204, noBody{}).whileSuspended(),
		route("GET", "/api/v1/me", Signed, a.me, "The signed-in account, its quotas, what its tasks and repositories hold (and, if suspended, why)").answers(200, wire.User{}).whileSuspended(),
		route("POST", "/api/v1/me/password", Signed, a.changePassword, "Change the signed-in account's password; the account's other console sessions end").takes(wire.PasswordChange{}).answers(200, wire.PasswordChanged{}).audits("user.password"),
		route("GET", "/api/v1/tokens", Signed, a.listTokens, "The signed-in account's API tokens (no secrets)").answers(200, wire.TokenList{}),
		route("POST", "/api/v1/tokens", Signed, a.createToken, "Create an API token (its secret is shown once)").takes(wire.TokenRequest{}).answers(201, wire.TokenCreated{}).audits("token.create"),
		route("DELETE", "/api/v1/tokens/:id", Signed, a.deleteToken, "Revoke one of the signed-in account's tokens").answers(204, noBody{}).audits("token.delete"),
		route("GET", "/api/v1/users", Admin, a.listUsers, "Every account with its quota and usage").answers(200, wire.UserList{}),
		route("POST", "/api/v1/users", Admin, a.createUser, "Create an account").takes(wire.CreateUser{}).answers(201, wire.User{}).audits("user.create"),
		route("PATCH", "/api/v1/users/:name", Admin, a.updateUser, "Disable or enable an account, set its quota, storage quota or fair-share weight").takes(wire.UpdateUser{}).answers(200, wire.User{}).audits("user.update"),

		route("POST", "/api/v1/jobs", Signed, a.submitJob, "Submit a job (an Idempotency-Key header makes a repeat return the first job)").takes(wire.JobSpec{}).answers(201, wire.Job{}),
		route("GET", "/api/v1/jobs", Signed, a.listJobs, "The caller's jobs (an admin's: everyone's), newest first, a page at a time").answers(200, wire.JobList{}).reads(pState, pQuery, pCursor, pLimit, pOwner),
		route("GET", "/api/v1/jobs/:id", Signed, a.getJob, "A job, with why its queued tasks wait").answers(200, wire.Job{}),
		route("POST", "/api/v1/jobs/:id/cancel", Signed, a.cancelJob, "Cancel a job: queued tasks at once, running ones stopped; with dependents=true also, transitively, the dependents that have not started").answers(200, wire.Job{}).reads(pDependents),
		route("GET", "/api/v1/jobs/:id/deps", Signed, a.jobDeps, "The graph around a job: its dependencies and its dependents, each with kind and state").answers(200, wire.JobGraph{}),
		route("POST", "/api/v1/jobs/:id/retry", Signed, a.retryJob, "Submit the whole job again, as a new job (owner only)").answers(201, wire.Job{}),
		route("POST", "/api/v1/jobs/:id/rerun", Signed, a.rerunJob, "Run chosen ended tasks again in the same job (owner only)").takes(wire.Rerun{}).answers(200, wire.RerunResult{}),
		route("GET", "/api/v1/jobs/:id/wait", Signed, a.waitJob, "Wait until the job ends or the timeout passes; the job as it is then").answers(200, wire.Job{}).reads(pTimeout),
		route("GET", "/api/v1/jobs/:id/tasks", Signed, a.listTasks, "A job's tasks, a page at a time").answers(200, wire.TaskList{}).reads(pState, pCursor, pLimit),
		route("GET", "/api/v1/jobs/:id/outputs", Signed, a.listOutputs, "The outputs stored of a job's tasks (--output), a page of tasks at a time, each with a reference oras and gantry data pull read").answers(200, wire.OutputList{}).reads(pCursor, pLimit),
		route("GET", "/api/v1/jobs/:id/tasks/:index", Signed, a.getTask, "A task and its attempts").answers(200, wire.TaskDetail{}),
		route("GET", "/api/v1/jobs/:id/tasks/:index/output", Signed, a.downloadOutput, "A task's newest stored output as one tar file (the console's download)").produces("application/x-tar"),
		route("GET", "/api/v1/jobs/:id/tasks/:index/logs", Signed, a.taskLogs, "An attempt's log, from whichever node ran it (410 once removed by the log retention)").produces("text/plain").reads(pAttempt, pFollow),

		route("POST", "/api/v1/schedules", Signed, a.createSchedule, "Create a schedule: a job submitted at the times a cron expression names (UTC)").takes(wire.ScheduleRequest{}).answers(201, wire.Schedule{}),
		route("GET", "/api/v1/schedules", Signed, a.listSchedules, "The caller's schedules (an admin's: everyone's)").answers(200, wire.ScheduleList{}).reads(pOwner),
		route("GET", "/api/v1/schedules/:id", Signed, a.getSchedule, "A schedule").answers(200, wire.Schedule{}),
		route("POST", "/api/v1/schedules/:id/pause", Signed, a.pauseSchedule(true), "Pause a schedule").answers(200, wire.Schedule{}),
		route("POST", "/api/v1/schedules/:id/resume", Signed, a.pauseSchedule(false), "Resume a schedule").answers(200, wire.Schedule{}),
		route("DELETE", "/api/v1/schedules/:id", Signed, a.deleteSchedule, "Remove a schedule (the jobs it submitted stay)").answers(204, noBody{}),

		route("GET", "/api/v1/queues", Signed, a.listQueues, "The queues (a user's: those they may submit to), with each one's guaranteed share, usage and waiting tasks").answers(200, wire.QueueList{}),
		route("POST", "/api/v1/queues", Admin, a.createQueue, "Create a queue").takes(wire.QueueRequest{}).answers(201, wire.Queue{}),
		route("GET", "/api/v1/queues/:name", Signed, a.getQueue, "A queue").answers(200, wire.Queue{}),
		route("PATCH", "/api/v1/queues/:name", Admin, a.updateQueue, "Change a queue's settings (the fields given)").takes(wire.QueueRequest{}).answers(200, wire.Queue{}),
		route("DELETE", "/api/v1/queues/:name", Admin, a.deleteQueue, "Remove a queue with no queued or running task").answers(204, noBody{}),

		route("GET", "/api/v1/nodes", Signed, a.listNodes, "The nodes, their load and Raft roles, and the cluster's failure tolerance").answers(200, wire.NodeList{}),
		route("GET", "/api/v1/nodes/:name", Signed, a.getNode, "A node: its load, role and GPUs, with the attempts holding each (others' only to admins)").answers(200, wire.Node{}),
		route("POST", "/api/v1/nodes/:name/drain", Admin, a.setNodeState(store.NodeDraining), "Stop placing tasks on a node").answers(200, wire.Node{}).reads(pDeadline).audits("node.drain"),
		route("POST", "/api/v1/nodes/:name/ready", Admin, a.setNodeState(store.NodeReady), "Place tasks on a node again").answers(200, wire.Node{}).audits("node.ready"),
		route("GET", "/api/v1/cluster", Signed, a.cluster, "The cluster's identity and leader").answers(200, wire.Cluster{}),

		route("GET", "/metrics", Signed, a.metrics, "Prometheus metrics").produces("text/plain"),
		route("GET", "/debug/pprof/*name", Admin, a.pprof, "Go profiles, for operators").produces("application/octet-stream"),
	}
	if a.cfg.Images != nil {
		rs = append(rs,
			route("GET", "/api/v1/images", Signed, a.listImages, "The repositories the caller may pull, with tags and sizes, and storage use").answers(200, wire.ImageList{}),
			route("POST", "/api/v1/images/import", Signed, a.importImages, "Import the images of a `docker save` archive (the body, application/x-tar) under the caller's namespace").answers(201, wire.ImageImport{}),
			// Repository names contain slashes: /images/<repo>/tags/<tag>
			// and /images/<repo>/manifests/<digest>.
			route("DELETE", "/api/v1/images/*path", Signed, a.deleteImage, "Delete REPO/tags/TAG or REPO/manifests/DIGEST (owner or admin)").answers(200, wire.Deleted{}).audits("image.delete"),
			route("POST", "/api/v1/admin/gc", Admin, a.collectGarbage, "Remove blobs no manifest references, on every node").answers(200, wire.GCReport{}).reads(pDryRun).audits("image.gc"),
		)
	}
	rs = append(rs, a.catalogRoutes()...)
	rs = append(rs, a.governanceRoutes()...)
	rs = append(rs, a.statsRoutes()...)
	rs = append(rs, a.moderationRoutes()...)
	rs = append(rs, a.noticeRoutes()...)
	if a.cfg.Cluster != nil {
		rs = append(rs,
			route("GET", "/api/v1/cluster/ca", Public, a.clusterCA, "The cluster CA certificate, which a joining node pins by the hash in its token").produces("application/x-pem-file"),
			route("POST", "/api/v1/cluster/join", Public, a.clusterJoin, "A node joins: its certificate request with an HMAC proof of the join secret").takes(joinRequest{}).answers(200, joinAnswer{}),
			route("GET", "/api/v1/cluster/join-command", Admin, a.joinCommand(false), "The command that joins a node to this cluster").answers(200, wire.JoinCommand{}),
			route("POST", "/api/v1/cluster/join-token/rotate", Admin, a.joinCommand(true), "Replace the join secret: every older token stops working").answers(200, wire.JoinCommand{}).audits("cluster.join_token.rotate"),
			route("GET", "/api/v1/cluster/members", Admin, a.clusterMembers, "The Raft configuration").answers(200, wire.MemberList{}),
			route("POST", "/api/v1/nodes/:name/remove", Admin, a.removeNode, "Take a node out of the cluster").answers(200, wire.Node{}).audits("node.remove"),
		)
	}
	if a.cfg.Backup != nil {
		rs = append(rs, route("POST", "/api/v1/backup", Admin, a.backup,
			"An online backup (application/x-tar): the state and every blob it links, but those the body says the backup directory has; backup.json comes last, so a cut-off archive is never a backup").
			takes(wire.BackupRequest{}).produces("application/x-tar").audits("cluster.backup"))
	}
	if a.cfg.Events != nil {
		rs = append(rs, route("GET", "/api/v1/events", Signed, gin.WrapH(a.cfg.Events),
			"The live change feed (WebSocket): jobs, tasks of a followed job, nodes, schedules, as wire.Event lines").answers(101, noBody{}).reads(pToken))
	}
	rs = append(rs, route("GET", "/api/v1/openapi.json", Signed, a.openAPI, "This description").produces("application/json"))
	return rs
}
