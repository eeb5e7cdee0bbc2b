// Package api is Gantry's REST API under /api/v1/ (see docs/api.md): the
// HTTP routing, authentication middleware, JSON encoding and the one table
// from error codes to HTTP statuses. It is the only package that imports
// gin. State changes go through the Proposer; reads come from the store.
package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"reflect"
	"runtime/debug"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"gantry/node/auth"
	"gantry/store"
)

// Proposer commits a command through Raft and returns Apply's result.
type Proposer interface {
	Propose(ctx context.Context, typ string, payload any) (any, error)
}

// Config wires the API to the rest of the node.
type Config struct {
	Store    *store.Store
	Proposer Proposer
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
}

// API is the HTTP handler of a node.
type API struct {
	cfg    Config
	log    *slog.Logger
	engine *gin.Engine
}

// New builds the router.
func New(cfg Config) *API {
	gin.SetMode(gin.ReleaseMode)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	a := &API{cfg: cfg, log: cfg.Logger.With("component", "api")}
	e := gin.New()
	e.Use(gin.Recovery())
	e.HandleMethodNotAllowed = false
	e.ContextWithFallback = true

	e.GET("/healthz", a.health)
	v1 := e.Group("/api/v1")
	v1.POST("/login", a.login)

	authed := v1.Group("", a.authenticate, a.consistentRead)
	authed.POST("/logout", a.logout)
	authed.GET("/me", a.me)
	authed.POST("/me/password", a.changePassword)
	authed.GET("/tokens", a.listTokens)
	authed.POST("/tokens", a.createToken)
	authed.DELETE("/tokens/:id", a.deleteToken)
	authed.GET("/users", a.adminOnly, a.listUsers)
	authed.POST("/users", a.adminOnly, a.createUser)
	authed.PATCH("/users/:name", a.adminOnly, a.updateUser)

	authed.POST("/jobs", a.submitJob)
	authed.GET("/jobs", a.listJobs)
	authed.GET("/jobs/:id", a.getJob)
	authed.POST("/jobs/:id/cancel", a.cancelJob)
	authed.POST("/jobs/:id/retry", a.retryJob)
	authed.GET("/jobs/:id/wait", a.waitJob)
	authed.GET("/jobs/:id/tasks", a.listTasks)
	authed.GET("/jobs/:id/tasks/:index", a.getTask)
	authed.GET("/jobs/:id/tasks/:index/logs", a.taskLogs)

	a.imageRoutes(authed)
	a.scheduleRoutes(authed)

	authed.GET("/nodes", a.listNodes)
	authed.POST("/nodes/:name/drain", a.adminOnly, a.setNodeState(store.NodeDraining))
	authed.POST("/nodes/:name/ready", a.adminOnly, a.setNodeState(store.NodeReady))
	authed.GET("/cluster", a.cluster)
	a.clusterRoutes(v1, authed)

	if cfg.Events != nil {
		authed.GET("/events", gin.WrapH(cfg.Events))
	}
	if cfg.Metrics != nil {
		e.GET("/metrics", a.authenticate, gin.WrapH(cfg.Metrics))
	}
	// Profiles for operators (admin only).
	e.GET("/debug/pprof/*name", a.authenticate, a.adminOnly, func(c *gin.Context) {
		switch c.Param("name") {
		case "/profile":
			pprof.Profile(c.Writer, c.Request)
		case "/trace":
			pprof.Trace(c.Writer, c.Request)
		default:
			pprof.Index(c.Writer, c.Request)
		}
	})
	e.NoRoute(a.fallback)
	a.engine = e
	return a
}

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

// recoverRegistry answers 500 for a panic in the registry, as gin.Recovery
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
	store.EInvalid:      http.StatusBadRequest,
	store.ENotFound:     http.StatusNotFound,
	store.EConflict:     http.StatusConflict,
	store.EUnauthorized: http.StatusUnauthorized,
	store.EForbidden:    http.StatusForbidden,
	store.EUnavailable:  http.StatusServiceUnavailable,
	store.EGone:         http.StatusGone,
	store.EInternal:     http.StatusInternalServerError,
}

// fail writes err as {"error": ...}; internal details go to the log only.
func fail(c *gin.Context, err error) {
	code := store.ErrorCode(err)
	if code == store.EInternal {
		slog.Default().Error("internal error", "path", c.Request.URL.Path, "err", err)
	}
	c.AbortWithStatusJSON(statusOf[code], gin.H{"error": store.ErrorMessage(err)})
}

// decode reads a JSON body strictly: unknown fields and trailing data are
// errors whose message names the field.
func decode(c *gin.Context, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, 1<<20))
	if err != nil {
		return store.Errorf(store.EInvalid, "%s", describeJSONError(err))
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		msg := describeJSONError(err)
		if f := culprit(body, v); f != "" && !strings.HasPrefix(msg, f+":") && !strings.HasPrefix(msg, "unknown field") {
			msg = f + ": " + msg
		}
		return store.Errorf(store.EInvalid, "%s", msg)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return store.Errorf(store.EInvalid, "request body: unexpected data after the JSON object")
	}
	return nil
}

// culprit finds the top-level field whose value failed to decode, so errors
// from custom decoders (durations) still name their field.
func culprit(body []byte, v any) string {
	var fields map[string]json.RawMessage
	if json.Unmarshal(body, &fields) != nil {
		return ""
	}
	t := reflect.TypeOf(v).Elem()
	for k, raw := range fields {
		one, _ := json.Marshal(map[string]json.RawMessage{k: raw})
		if json.Unmarshal(one, reflect.New(t).Interface()) != nil {
			return k
		}
	}
	return ""
}

func describeJSONError(err error) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = "request body"
		}
		return fmt.Sprintf("%s: want %s, got %s", field, te.Type.String(), te.Value)
	case errors.As(err, &se):
		return fmt.Sprintf("request body: invalid JSON at byte %d", se.Offset)
	case errors.As(err, &mbe):
		return "request body: too large"
	case errors.Is(err, io.EOF):
		return "request body: empty, want a JSON object"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "request body: invalid JSON (it ends too early)"
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return "unknown field " + f
	}
	msg = strings.TrimPrefix(msg, "json: ")
	// Errors from our own UnmarshalJSON methods come wrapped with the field.
	return msg
}

func (a *API) propose(c *gin.Context, typ string, payload any) (any, bool) {
	res, err := a.cfg.Proposer.Propose(c.Request.Context(), typ, payload)
	if err != nil {
		fail(c, err)
		return nil, false
	}
	if e, ok := res.(error); ok && e != nil {
		fail(c, e)
		return nil, false
	}
	return res, true
}

func (a *API) health(c *gin.Context) {
	leader, name := false, ""
	if a.cfg.Leader != nil {
		leader, name = a.cfg.Leader()
	}
	c.JSON(http.StatusOK, gin.H{"status": "ok", "leader": leader, "leader_name": name})
}
