// Package api is Gantry's REST API under /api/v1/ (see docs/api.md): the
// routes (one table, Routes), authentication, JSON encoding in the wire
// types (package wire, through package view) and the one table from error
// codes to HTTP statuses. It is the only package that imports gin. State
// changes go through a store.Proposer; reads come from the store.
package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gin-gonic/gin"

	"gantry/node/auth"
	"gantry/node/cluster"
	"gantry/store"
	"gantry/version"
	"gantry/wire"
)

// State is what the API reads from the store (*store.Store implements it).
type State interface {
	Job(id string) (*store.Job, error)
	Graph(id string) (*store.JobGraph, error)
	ListJobs(f store.JobFilter) ([]store.Job, string, error)
	Task(job string, index int) (*store.Task, error)
	Tasks(job, state string, cursor, limit int) ([]store.Task, int, error)
	Attempt(job string, task, n int) (*store.Attempt, error)
	Attempts(job string, task int) ([]store.Attempt, error)
	JobAttempts(job string, from int, fn func(store.Attempt) bool) error
	Nodes() ([]store.Node, error)
	Node(name string) (*store.Node, error)
	Cluster() (store.ClusterInfo, error)
	User(name string) (*store.User, error)
	Users() ([]store.User, error)
	Usage(user string) (store.UserUsage, error)
	StorageUsage(owner string) (store.StorageUsage, error)
	Tokens(user string) ([]store.Token, error)
	Schedule(id string) (*store.Schedule, error)
	Schedules(owner string) ([]store.Schedule, error)
	Queues() ([]store.Queue, error)
	Queue(name string) (store.Queue, error)
	QueueUsages() (map[string]store.UserUsage, error)
	QueuedCount(queue string) (int, error)
	Subscribe(n int) *store.Subscription
}

var _ State = (*store.Store)(nil)

// Config wires the API to the rest of the node.
type Config struct {
	Store    State
	Proposer store.Proposer
	Auth     *auth.Auth
	Logger   *slog.Logger
	// LogPath returns the local file of an attempt's log.
	LogPath func(job string, task, attempt int) string
	// Leader reports whether this node leads the cluster, and the leader's name.
	Leader func() (bool, string)
	// Registry serves /v2/ (and its token endpoint); nil answers 404.
	Registry http.Handler
	// RegistryPaths lists extra path prefixes served by Registry.
	RegistryPaths []string
	// Images manages the registry's images (/api/v1/images, job image
	// checks); nil: those endpoints answer 404 and job images are not checked.
	Images Images
	// Registries are the other registries (host[:port]) jobs may pull
	// from; a job naming any other is refused at submission, so no user
	// makes the Docker daemon send requests where they choose.
	Registries []string
	// Events serves the WebSocket at /api/v1/events; nil answers 404.
	Events http.Handler
	// UI serves everything else (the console); nil answers 404.
	UI http.Handler
	// Metrics serves /metrics.
	Metrics http.Handler
	// Cluster serves joins, join tokens, node removal, consistent reads and
	// logs kept on other nodes (cluster.go); nil: single node, no joins.
	Cluster ClusterAdmin
	// NodeName is this node's name (logs of attempts elsewhere are proxied).
	NodeName string
	// Usage reports what a node actually uses (nil when unknown).
	Usage func(ctx context.Context, n store.Node) *store.Resources
	// LogRetention is how long this node keeps task logs after their job
	// ended (0: forever); a log removed by it is answered with 410.
	LogRetention time.Duration
	// SecureCookies marks session cookies Secure (HTTPS deployments).
	SecureCookies bool
	// History serves the charts' figures (/api/v1/stats/history); nil:
	// no such route.
	History History
	// Catalog and CatalogState serve the community catalog; nil: no
	// catalog routes.
	Catalog      Catalog
	CatalogState CatalogState
	// Governance and GovernanceState serve the audit log, inboxes, review,
	// reports and takedowns, and record audited routes; nil: none of it.
	Governance      Governance
	GovernanceState GovernanceState
	// Moderation is reports, takedowns and suspensions (nil: none, and
	// suspended accounts are not checked).
	Moderation ModerationState
	// Notices serves infringement notices and counter-notices (nil: none).
	Notices NoticeState
	// Now is the clock of the API's own rate limits (nil: time.Now).
	Now func() time.Time
	// Backup writes an online backup archive (node/backup) leaving out the
	// blobs in have; nil: no backup route.
	Backup func(ctx context.Context, w io.Writer, have map[string]bool) error
}

// ClusterAdmin is what the API needs from the node's cluster membership
// (*cluster.Cluster implements it).
type ClusterAdmin interface {
	// CACert is the cluster CA certificate (PEM); public, pinned by joiners.
	CACert() []byte
	// Admit checks a join request (JSON), signs the node's certificate and
	// adds it to Raft; EUnauthorized for a wrong or rotated token.
	Admit(ctx context.Context, req []byte) (any, error)
	// JoinCommand returns the join command and token, first replacing the
	// secret when rotate is set.
	JoinCommand(ctx context.Context, rotate bool) (command, token string, err error)
	// RemoveNode takes a node out of Raft and the state.
	RemoveNode(ctx context.Context, name string) (*store.Node, error)
	// Members lists the Raft configuration.
	Members(ctx context.Context) ([]cluster.Member, error)
	// Roles says who votes and what the cluster can survive.
	Roles(ctx context.Context) (cluster.Roles, error)
	// Linearize makes the next local read see every acknowledged write.
	Linearize(ctx context.Context) error
	// NodeLog opens an attempt's log on the node that ran it.
	NodeLog(ctx context.Context, node, job string, task, attempt int, follow bool) (io.ReadCloser, error)
}

var _ ClusterAdmin = (*cluster.Cluster)(nil)

// API is the HTTP handler of a node.
type API struct {
	cfg     Config
	log     *slog.Logger
	engine  *gin.Engine
	routes  []Route
	doc     *openapi3.T // the OpenAPI description, made from routes
	docJSON []byte
	notices *noticeLimiter // the public notice form's rate limits
}

// Access says who may call a route.
type Access int

const (
	// Public routes need no credentials (health, login, the join protocol).
	Public Access = iota
	// Signed routes need any signed-in user.
	Signed
	// Admin routes need an admin.
	Admin
)

func (a Access) String() string {
	return [...]string{"public", "signed-in", "admin"}[a]
}

// New builds the router.
func New(cfg Config) *API {
	gin.SetMode(gin.ReleaseMode)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	a := &API{cfg: cfg, log: cfg.Logger.With("component", "api"), notices: newNoticeLimiter(cfg.Now)}
	e := gin.New()
	e.Use(a.recoverAPI)
	e.HandleMethodNotAllowed = false
	e.ContextWithFallback = true
	a.routes = a.routeTable()
	doc, b, err := describe(a.routes)
	if err != nil {
		// The table is code: a route declared without its description is
		// a programming error the tests catch before it ships.
		panic(fmt.Sprintf("api: OpenAPI description: %v", err))
	}
	a.doc, a.docJSON = doc, b
	for _, rt := range a.routes {
		chain := []gin.HandlerFunc{}
		if rt.Access != Public {
			chain = append(chain, a.authenticate, a.consistentRead)
			if a.cfg.Moderation != nil && !rt.WhileSuspended {
				chain = append(chain, a.notSuspended)
			}
		}
		if rt.Audit != "" && a.cfg.Governance != nil {
			// Before adminOnly, so a refused admin action is recorded too.
			chain = append(chain, a.audited(rt.Audit, rt.AuditRefusalsOnly))
		}
		if rt.Access == Admin {
			chain = append(chain, a.adminOnly)
		}
		e.Handle(rt.Method, rt.Path, append(chain, rt.handler)...)
	}
	e.NoRoute(a.fallback)
	a.engine = e
	return a
}

// Routes lists every route of the API, in declaration order.
func (a *API) Routes() []Route { return append([]Route(nil), a.routes...) }

// ServeHTTP serves the API, registry and console. Registry paths go to the
// registry directly, not through gin, so blob downloads keep net/http's
// io.ReaderFrom (sendfile) on the response: gin's writer hides it and every
// byte would be copied through user space.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if a.isRegistryPath(r.URL.Path) {
		defer a.recoverRegistry(w, r)
		a.cfg.Registry.ServeHTTP(w, r)
		return
	}
	a.engine.ServeHTTP(w, r)
}

func (a *API) isRegistryPath(p string) bool {
	if a.cfg.Registry == nil {
		return false
	}
	if p == "/v2" || strings.HasPrefix(p, "/v2/") {
		return true
	}
	for _, pre := range a.cfg.RegistryPaths {
		if strings.HasPrefix(p, pre) {
			return true
		}
	}
	return false
}

// recoverRegistry answers 500 for a panic in the registry, as recoverAPI
// does for the API, instead of dropping the connection.
func (a *API) recoverRegistry(w http.ResponseWriter, r *http.Request) {
	v := recover()
	if v == nil {
		return
	}
	if v == http.ErrAbortHandler {
		panic(v)
	}
	a.log.Error("registry handler panicked", "method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusInternalServerError)
	w.Write([]byte(`{"errors":[{"code":"UNKNOWN","message":"internal error"}]}`))
}

// recoverAPI answers a handler's panic with the API's 500, logged with its
// stack, and keeps the connection.
func (a *API) recoverAPI(c *gin.Context) {
	c.Set(loggerKey, a.log)
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		if v == http.ErrAbortHandler {
			panic(v)
		}
		a.log.Error("api handler panicked", "method", c.Request.Method, "path", c.Request.URL.Path, "panic", v, "stack", string(debug.Stack()))
		if !c.Writer.Written() {
			c.AbortWithStatusJSON(http.StatusInternalServerError, wire.Error{Error: "internal error", Code: wire.CodeInternal})
		}
	}()
	c.Next()
}

func (a *API) fallback(c *gin.Context) {
	p := c.Request.URL.Path
	if strings.HasPrefix(p, "/api/") {
		fail(c, store.Errorf(store.ENotFound, "no such endpoint: %s %s", c.Request.Method, p))
		return
	}
	if a.cfg.UI != nil {
		a.cfg.UI.ServeHTTP(c.Writer, c.Request)
		return
	}
	c.String(http.StatusNotFound, "not found\n")
}

// statusOf is the one table from error codes to HTTP statuses.
var statusOf = map[string]int{
	store.EInvalid:       http.StatusBadRequest,
	store.ENotFound:      http.StatusNotFound,
	store.EConflict:      http.StatusConflict,
	store.EUnauthorized:  http.StatusUnauthorized,
	store.EForbidden:     http.StatusForbidden,
	store.EUnavailable:   http.StatusServiceUnavailable,
	store.EGone:          http.StatusGone,
	store.ERateLimited:   http.StatusTooManyRequests,
	store.EDiskFull:      http.StatusInsufficientStorage,
	store.EQuotaExceeded: http.StatusForbidden,
	store.EInternal:      http.StatusInternalServerError,

	store.ELicenceNotAccepted: http.StatusForbidden,
	store.EAccessPending:      http.StatusForbidden,
	store.EAccessRejected:     http.StatusForbidden,
	store.EAccountSuspended:   http.StatusForbidden,
	store.ETakenDown:          http.StatusUnavailableForLegalReasons, // RFC 7725
}

// retryAfter is an error that says when to try again (auth's
// *ThrottledError).
type retryAfter interface {
	error
	RetryAfter() time.Duration
}

// loggerKey holds the API's logger in a request's gin context.
const loggerKey = "gantry.logger"

// fail writes err as {"error": message, "code": code}; internal details go
// to the log only.
func fail(c *gin.Context, err error) {
	code := store.ErrorCode(err)
	status, ok := statusOf[code]
	if !ok {
		code, status = store.EInternal, http.StatusInternalServerError
	}
	c.Set(errorCodeKey, code)
	msg := store.ErrorMessage(err)
	if code == store.EInternal {
		log := slog.Default()
		if l, ok := c.Value(loggerKey).(*slog.Logger); ok {
			log = l
		}
		log.Error("internal error", "method", c.Request.Method, "path", c.Request.URL.Path, "err", err)
		msg = "internal error"
	}
	if status == http.StatusUnauthorized && !strings.HasPrefix(c.Request.URL.Path, "/api/v1/login") {
		c.Header("WWW-Authenticate", `Bearer realm="gantry"`)
	}
	var ra retryAfter
	if errors.As(err, &ra) {
		c.Header("Retry-After", strconv.Itoa(auth.RetryAfterSeconds(ra.RetryAfter())))
	}
	c.AbortWithStatusJSON(status, wire.Error{Error: msg, Code: code})
}

// propose commits a command; on failure it has answered the request.
func propose[P, R any](c *gin.Context, a *API, cmd *store.Command[P, R], payload P) (R, bool) {
	res, err := cmd.Propose(c.Request.Context(), a.cfg.Proposer, payload)
	if err != nil {
		fail(c, err)
		return res, false
	}
	return res, true
}

func (a *API) health(c *gin.Context) {
	leader, name := false, ""
	if a.cfg.Leader != nil {
		leader, name = a.cfg.Leader()
	}
	v := version.Get()
	h := wire.Health{Status: "ok", Leader: leader, LeaderName: name, Version: v.Release, Commit: v.Commit}
	roles := a.roles(c.Request.Context())
	h.Role, h.Votes = roles.Of[a.cfg.NodeName], votesOf(roles)
	c.JSON(http.StatusOK, h)
}

// roles is the cluster's voting membership; a node without a cluster is
// its own single voter.
func (a *API) roles(ctx context.Context) cluster.Roles {
	if a.cfg.Cluster != nil {
		if r, err := a.cfg.Cluster.Roles(ctx); err == nil {
			return r
		} else {
			a.log.Debug("read raft roles", "err", err)
		}
	}
	return cluster.Roles{Leader: a.cfg.NodeName, Of: map[string]string{a.cfg.NodeName: cluster.RoleLeader}, Voters: 1, HealthyVoters: 1}
}

func votesOf(r cluster.Roles) wire.Votes {
	return wire.Votes{Voters: r.Voters, HealthyVoters: r.HealthyVoters, FailureTolerance: r.FailureTolerance}
}

func (a *API) metrics(c *gin.Context) {
	if a.cfg.Metrics == nil {
		fail(c, store.Errorf(store.ENotFound, "this node serves no metrics"))
		return
	}
	a.cfg.Metrics.ServeHTTP(c.Writer, c.Request)
}

// pprof serves profiles for operators (admin only).
func (a *API) pprof(c *gin.Context) {
	switch c.Param("name") {
	case "/profile":
		pprof.Profile(c.Writer, c.Request)
	case "/trace":
		pprof.Trace(c.Writer, c.Request)
	case "/cmdline":
		pprof.Cmdline(c.Writer, c.Request)
	case "/symbol":
		pprof.Symbol(c.Writer, c.Request)
	default:
		pprof.Index(c.Writer, c.Request)
	}
}
