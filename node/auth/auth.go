// Package auth checks credentials (passwords, API tokens, session tokens)
// against the accounts in the store and issues new secrets, and throttles
// failed sign-ins (throttle.go). It owns the secret formats; it does not
// know about HTTP: the HTTP layers say where a request comes from with
// WithClient.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"gantry/store"
)

// TokenPrefix starts every API and session token, so a secret can be told
// from a password.
const TokenPrefix = "gtk_"

// NodeUser is the identity the node's own runner uses to pull images.
const NodeUser = "gantry-node"

// Identity is an authenticated principal.
type Identity struct {
	User    string
	Admin   bool
	TokenID string // the token used, "" for a password
	Session bool
}

// Auth verifies credentials.
type Auth struct {
	st         *store.Store
	nodeSecret string
	limiter    *Limiter
	log        *slog.Logger
	failures   *prometheus.CounterVec // route, kind
	throttled  *prometheus.CounterVec // route

	mu    sync.Mutex
	cache map[[32]byte]cached // successful password checks, to spare bcrypt
}

type cached struct {
	id   Identity
	hash []byte // the password hash the check was made against
	exp  time.Time
}

// Config wires an Auth.
type Config struct {
	Store *store.Store
	// NodeSecret authenticates NodeUser ("": no node credential).
	NodeSecret string
	// Limiter throttles failed sign-ins; nil: NewLimiter(DefaultLimits).
	Limiter *Limiter
	// Logger receives a line for each failed or refused sign-in; nil:
	// slog.Default().
	Logger *slog.Logger
	// Registerer receives gantry_auth_failures_total and
	// gantry_auth_throttled_total; nil: no metrics.
	Registerer prometheus.Registerer
}

// New returns an Auth over cfg.Store.
func New(cfg Config) *Auth {
	if cfg.Limiter == nil {
		cfg.Limiter = NewLimiter(DefaultLimits)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	a := &Auth{st: cfg.Store, nodeSecret: cfg.NodeSecret, limiter: cfg.Limiter,
		log: cfg.Logger.With("component", "auth"), cache: map[[32]byte]cached{},
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gantry_auth_failures_total",
			Help: "Failed sign-ins (a wrong password or an unknown token) on this node, by route (login, api, registry, registry_token) and kind (password, token)."},
			[]string{"route", "kind"}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gantry_auth_throttled_total",
			Help: "Sign-ins this node refused with 429 after too many failures, by route; their secret was not checked."},
			[]string{"route"}),
	}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(a.failures, a.throttled)
	}
	return a
}

var errBadCredentials = store.Errorf(store.EUnauthorized, "invalid credentials")

// HashToken returns the stored form of a token secret.
func HashToken(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// NewSecret returns a fresh token secret.
func NewSecret() string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return TokenPrefix + hex.EncodeToString(b)
}

// NewPassword returns a random password for generated accounts.
func NewPassword() string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// HashPassword hashes a password with bcrypt.
func HashPassword(pw string) ([]byte, error) {
	if len(pw) < 8 {
		return nil, store.Errorf(store.EInvalid, "password: at least 8 characters")
	}
	if len(pw) > 72 {
		return nil, store.Errorf(store.EInvalid, "password: at most 72 bytes")
	}
	return bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
}

// Token authenticates an API or session token secret. An unknown token
// is EUnauthorized, or a *ThrottledError (ERateLimited) once its address
// sent too many; a valid token is never throttled.
func (a *Auth) Token(ctx context.Context, secret string) (Identity, error) {
	if !strings.HasPrefix(secret, TokenPrefix) {
		return Identity{}, a.tokenFailed(ctx)
	}
	t, err := a.st.TokenByHash(HashToken(secret))
	if errors.Is(err, store.ErrNotFound) {
		return Identity{}, a.tokenFailed(ctx)
	}
	if err != nil {
		return Identity{}, err
	}
	if !t.Expires.IsZero() && time.Now().After(t.Expires) {
		return Identity{}, store.Errorf(store.EUnauthorized, "session expired")
	}
	u, err := a.user(t.User)
	if err != nil {
		return Identity{}, err
	}
	return Identity{User: u.Name, Admin: u.Admin, TokenID: t.ID, Session: t.Session}, nil
}

// retryOf is the wait of a throttled answer, in whole seconds for logs.
func retryOf(err error) time.Duration {
	var te *ThrottledError
	if errors.As(err, &te) {
		return time.Duration(RetryAfterSeconds(te.Wait)) * time.Second
	}
	return 0
}

// tokenFailed counts and logs an unknown token and returns the answer.
func (a *Auth) tokenFailed(ctx context.Context) error {
	cl := clientOf(ctx)
	if err := a.limiter.TokenFailed(cl.Addr); err != nil {
		a.throttled.WithLabelValues(cl.Route).Inc()
		a.log.Warn("sign-in refused: too many failures", "kind", "token", "remote", cl.Addr, "route", cl.Route,
			"retry_after", retryOf(err))
		return err
	}
	a.failures.WithLabelValues(cl.Route, "token").Inc()
	a.log.Info("sign-in failed", "kind", "token", "remote", cl.Addr, "route", cl.Route)
	return errBadCredentials
}

// Password authenticates a username and password. A wrong password, or
// an unknown user, is EUnauthorized; a disabled account EForbidden; while
// the account or the client's address cools down after too many failures
// (throttle.go), a *ThrottledError (ERateLimited) without the password
// being compared.
func (a *Auth) Password(ctx context.Context, username, password string) (Identity, error) {
	cl := clientOf(ctx)
	if err := a.limiter.Begin(username, cl.Addr); err != nil {
		a.throttled.WithLabelValues(cl.Route).Inc()
		a.log.Warn("sign-in refused: too many failures", "kind", "password", "user", username, "remote", cl.Addr,
			"route", cl.Route, "retry_after", retryOf(err))
		return Identity{}, err
	}
	id, err := a.password(ctx, username, password)
	switch {
	case err == nil || store.ErrorCode(err) == store.EForbidden:
		// The password was right (a disabled account is refused after it).
		a.limiter.Succeeded(username, cl.Addr)
	case errors.Is(err, errBadCredentials):
		a.failures.WithLabelValues(cl.Route, "password").Inc()
		a.log.Info("sign-in failed", "kind", "password", "user", username, "remote", cl.Addr, "route", cl.Route)
	}
	return id, err
}

func (a *Auth) password(ctx context.Context, username, password string) (Identity, error) {
	if username == NodeUser && a.nodeSecret != "" {
		if subtle.ConstantTimeCompare([]byte(password), []byte(a.nodeSecret)) == 1 {
			return Identity{User: NodeUser, Admin: true}, nil
		}
		return Identity{}, errBadCredentials
	}
	key := sha256.Sum256([]byte(username + "\x00" + password))
	a.mu.Lock()
	c, ok := a.cache[key]
	a.mu.Unlock()
	if ok && time.Now().Before(c.exp) {
		// Re-read the account so a disabled user is refused at once, and a
		// changed password makes the old one fail at once.
		u, err := a.user(username)
		if err != nil {
			return Identity{}, err
		}
		if subtle.ConstantTimeCompare(u.PasswordHash, c.hash) == 1 {
			return Identity{User: u.Name, Admin: u.Admin}, nil
		}
		a.mu.Lock()
		delete(a.cache, key)
		a.mu.Unlock()
	}
	u, err := a.st.User(username)
	if errors.Is(err, store.ErrNotFound) {
		// Spend the same time as a real check so names cannot be probed.
		_ = bcrypt.CompareHashAndPassword(dummyHash(), []byte(password))
		return Identity{}, errBadCredentials
	}
	if err != nil {
		return Identity{}, err
	}
	if bcrypt.CompareHashAndPassword(u.PasswordHash, []byte(password)) != nil {
		return Identity{}, errBadCredentials
	}
	if u.Disabled {
		return Identity{}, store.Errorf(store.EForbidden, "account %s is disabled", u.Name)
	}
	id := Identity{User: u.Name, Admin: u.Admin}
	a.mu.Lock()
	if len(a.cache) > 10000 {
		a.cache = map[[32]byte]cached{}
	}
	a.cache[key] = cached{id: id, hash: u.PasswordHash, exp: time.Now().Add(time.Minute)}
	a.mu.Unlock()
	return id, nil
}

// Authenticate accepts a password or a token as secret (registry clients
// send either through basic auth).
func (a *Auth) Authenticate(ctx context.Context, username, secret string) (string, bool, error) {
	var id Identity
	var err error
	if strings.HasPrefix(secret, TokenPrefix) {
		id, err = a.Token(ctx, secret)
		if err == nil && username != "" && username != id.User && !strings.EqualFold(username, "token") {
			return "", false, errBadCredentials
		}
	} else {
		id, err = a.Password(ctx, username, secret)
	}
	if err != nil {
		return "", false, err
	}
	return id.User, id.Admin, nil
}

func (a *Auth) user(name string) (*store.User, error) {
	u, err := a.st.User(name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errBadCredentials
	}
	if err != nil {
		return nil, err
	}
	if u.Disabled {
		return nil, store.Errorf(store.EForbidden, "account %s is disabled", u.Name)
	}
	return u, nil
}

// dummyHash is made on first use, not at start-up: every process started
// from the binary (the toolbox in each task's container too) would otherwise
// spend a bcrypt round before doing anything.
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("gantry-dummy-password"), bcrypt.DefaultCost)
	return h
})
