package registry

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"gantry/node/auth"
	"gantry/store"
)

// principal is an authenticated caller.
type principal struct {
	user  string
	admin bool
	node  bool
	// grants is set for bearer tokens: the repository actions the token
	// carries. nil for basic auth (the rules decide alone).
	grants map[string][]string
}

// allowed applies Gantry's access rules: admins may do anything; the node
// credential may pull everything; a user may pull and push under their own
// name; every user may pull the system's repositories.
func allowed(user string, admin, node bool, repo, action string) bool {
	if admin {
		return true
	}
	owner := ownerOf(repo)
	switch action {
	case "pull":
		return node || (owner != "" && (owner == user || owner == SystemOwner))
	case "push", "delete":
		return !node && owner != "" && owner == user
	}
	return false
}

func (p *principal) can(repo, action string) bool {
	return allowed(p.user, p.admin, p.node, repo, action)
}

// may reports whether p may perform action on repo: nil, account_suspended
// (with the reason) for a suspended account, errDenied for a repository
// that is not theirs and not shared with them (whether it exists or not),
// or, for a published one, the gate's refusal (taken_down naming the
// decision; licence_not_accepted, access_pending, access_rejected saying
// what to do).
func (r *Registry) may(p *principal, repo, action string) error {
	if p.user != "" && !p.node && !p.admin {
		// A suspended account pushes and pulls nothing, its own included.
		if err := r.st.Suspended(p.user); err != nil {
			return err
		}
	}
	if p.can(repo, action) {
		return nil
	}
	if action != "pull" || p.user == "" || p.node {
		return errDenied
	}
	shared, err := r.st.PullGate(p.user, repo)
	switch {
	case !shared && err == nil:
		return errDenied
	case err != nil && !store.Refused(store.ErrorCode(err)):
		return fmt.Errorf("licence gate for %s: %w", repo, err)
	}
	return err
}

// authenticate returns the caller, nil when the request carries no
// credentials, or an UNAUTHORIZED error for bad ones.
func (r *Registry) authenticate(req *http.Request) (*principal, error) {
	h := req.Header.Get("Authorization")
	if h == "" {
		return nil, nil
	}
	scheme, cred, _ := strings.Cut(h, " ")
	switch strings.ToLower(scheme) {
	case "bearer":
		c, err := r.verifyToken(strings.TrimSpace(cred))
		if err != nil {
			return nil, ociErr(http.StatusUnauthorized, codeUnauthorized, "invalid or expired token")
		}
		admin := c.Admin
		if !c.Node {
			// A token outlives nothing of its account: one of a user
			// disabled or deleted since is refused at once, and admin
			// rights are the account's now, not the token's.
			u, err := r.st.User(c.Sub)
			if errors.Is(err, store.ErrNotFound) || (err == nil && u.Disabled) {
				return nil, ociErr(http.StatusUnauthorized, codeUnauthorized, "the account of this token is disabled: sign in again")
			}
			if err != nil {
				return nil, fmt.Errorf("read account %s: %w", c.Sub, err)
			}
			admin = u.Admin
		}
		grants := map[string][]string{}
		for _, a := range c.Access {
			grants[a.Name] = append(grants[a.Name], a.Actions...)
		}
		return &principal{user: c.Sub, admin: admin, node: c.Node, grants: grants}, nil
	case "basic":
		user, secret, ok := req.BasicAuth()
		if !ok {
			return nil, ociErr(http.StatusUnauthorized, codeUnauthorized, "malformed basic credentials")
		}
		return r.checkPassword(req, auth.RouteRegistry, user, secret)
	}
	return nil, ociErr(http.StatusUnauthorized, codeUnauthorized, "unsupported authorization scheme")
}

// checkPassword checks basic credentials sent to route (auth.RouteRegistry
// or auth.RouteRegistryToken). Bad ones are UNAUTHORIZED; while the
// Authenticator throttles the account or address, its ERateLimited error
// (written as 429 TOOMANYREQUESTS with Retry-After).
func (r *Registry) checkPassword(req *http.Request, route, user, secret string) (*principal, error) {
	ctx := auth.WithClient(req.Context(), auth.Client{Addr: req.RemoteAddr, Route: route})
	badCredentials := ociErr(http.StatusUnauthorized, codeUnauthorized, "invalid username or password")
	if user == NodeUser {
		if r.cfg.NodeSecret != "" && subtle.ConstantTimeCompare([]byte(secret), []byte(r.cfg.NodeSecret)) == 1 {
			return &principal{user: NodeUser, node: true}, nil
		}
		// Let the Authenticator count, log and throttle the failure like
		// any other; whatever it says, this is not the node credential.
		if _, _, err := r.cfg.Auth.Authenticate(ctx, user, secret); store.ErrorCode(err) == store.ERateLimited {
			return nil, err
		}
		return nil, badCredentials
	}
	// Password checks are cached by the Authenticator (node/auth), which
	// re-reads the account each time so a disabled user is refused at once.
	name, admin, err := r.cfg.Auth.Authenticate(ctx, user, secret)
	if err != nil {
		switch store.ErrorCode(err) {
		case store.ERateLimited:
			return nil, err
		case store.EUnauthorized:
		default:
			r.log.Warn("authenticate", "user", user, "err", err)
		}
		return nil, badCredentials
	}
	p := principal{user: name, admin: admin}
	return &p, nil
}

// authorize checks that the caller may perform action on repo. A caller the
// rules deny gets DENIED whether or not the repository exists; a bearer
// token that lacks the scope gets a 401 challenge naming it, so Docker
// fetches a token with the scope.
func (r *Registry) authorize(w http.ResponseWriter, req *http.Request, p *principal, repo, action string) error {
	if err := r.may(p, repo, action); err != nil {
		var se *store.Error
		if errors.As(err, &se) && (se.Code == store.ELicenceNotAccepted || se.Code == store.EAccessPending || se.Code == store.EAccessRejected) {
			// Say where the licence can be read and accepted, too.
			return store.Errorf(se.Code, "%s, or in the console: %s", se.Message, r.consoleURL(req, repo))
		}
		return err
	}
	if p.grants == nil {
		return nil
	}
	acts := p.grants[repo]
	if slices.Contains(acts, action) || slices.Contains(acts, "*") {
		return nil
	}
	want := "pull"
	if action != "pull" {
		want = "pull,push"
		if action == "delete" {
			want = "delete"
		}
	}
	r.challengeErr(w, req, "repository:"+repo+":"+want, "insufficient_scope")
	return ociErr(http.StatusUnauthorized, codeUnauthorized, "token does not grant %s on %s", action, repo)
}

// consoleURL is the console page of a community repository.
func (r *Registry) consoleURL(req *http.Request, repo string) string {
	return strings.TrimSuffix(r.realm(req), "/v2/token") + "/catalog/" + repo
}

func (r *Registry) realm(req *http.Request) string {
	if r.cfg.Realm != "" {
		return r.cfg.Realm + "/v2/token"
	}
	scheme := "http"
	if req.TLS != nil {
		scheme = "https"
	}
	if fp := req.Header.Get("X-Forwarded-Proto"); fp == "https" || fp == "http" {
		scheme = fp
	}
	return scheme + "://" + req.Host + "/v2/token"
}

// challenge sets WWW-Authenticate unless a more specific one is set.
func (r *Registry) challenge(w http.ResponseWriter, req *http.Request, scope string) {
	if w.Header().Get("WWW-Authenticate") != "" {
		return
	}
	r.challengeErr(w, req, scope, "")
}

func (r *Registry) challengeErr(w http.ResponseWriter, req *http.Request, scope, errCode string) {
	v := fmt.Sprintf(`Bearer realm=%q,service=%q`, r.realm(req), tokenService)
	if scope != "" {
		v += fmt.Sprintf(`,scope=%q`, scope)
	}
	if errCode != "" {
		v += fmt.Sprintf(`,error=%q`, errCode)
	}
	w.Header().Set("WWW-Authenticate", v)
}

const tokenService = "gantry"

// tokenAccess is one granted scope, as in Docker's token format.
type tokenAccess struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// tokenClaims is the body of a bearer token. The token is
// base64url(claims) "." base64url(HMAC-SHA256(key, base64url(claims))).
type tokenClaims struct {
	Sub    string        `json:"sub"`
	Admin  bool          `json:"adm,omitempty"`
	Node   bool          `json:"node,omitempty"`
	Access []tokenAccess `json:"access"`
	Iat    int64         `json:"iat"`
	Exp    int64         `json:"exp"`
}

func (r *Registry) signToken(c tokenClaims) (string, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("encode token: %w", err)
	}
	body := base64.RawURLEncoding.EncodeToString(b)
	m := hmac.New(sha256.New, r.tokenKey)
	m.Write([]byte(body))
	return body + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil)), nil
}

var errBadToken = errors.New("bad token")

func (r *Registry) verifyToken(tok string) (*tokenClaims, error) {
	body, sig, ok := strings.Cut(tok, ".")
	if !ok {
		return nil, errBadToken
	}
	want, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		return nil, errBadToken
	}
	m := hmac.New(sha256.New, r.tokenKey)
	m.Write([]byte(body))
	if !hmac.Equal(m.Sum(nil), want) {
		return nil, errBadToken
	}
	b, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		return nil, errBadToken
	}
	var c tokenClaims
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, errBadToken
	}
	if r.now().Unix() >= c.Exp {
		return nil, errBadToken
	}
	return &c, nil
}

// serveToken implements the Docker token endpoint: GET with basic auth and
// scope parameters; it grants the requested actions the caller is allowed.
func (r *Registry) serveToken(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodGet {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"errors":[{"code":"UNSUPPORTED","message":"use GET with basic auth"}]}`))
		return
	}
	user, secret, ok := req.BasicAuth()
	if !ok {
		r.writeError(w, req, ociErr(http.StatusUnauthorized, codeUnauthorized, "basic credentials required"))
		return
	}
	p, err := r.checkPassword(req, auth.RouteRegistryToken, user, secret)
	if err != nil {
		r.writeError(w, req, err)
		return
	}
	var access []tokenAccess
	for _, sv := range req.URL.Query()["scope"] {
		for _, s := range strings.Fields(sv) {
			typ, rest, ok := strings.Cut(s, ":")
			if !ok || typ != "repository" {
				continue
			}
			i := strings.LastIndex(rest, ":")
			if i < 0 {
				continue
			}
			name, acts := rest[:i], strings.Split(rest[i+1:], ",")
			if !validName(name) {
				continue
			}
			var granted []string
			for _, a := range acts {
				if a == "*" {
					for _, x := range []string{"pull", "push", "delete"} {
						if r.may(p, name, x) == nil {
							granted = append(granted, x)
						}
					}
					continue
				}
				if (a == "pull" || a == "push" || a == "delete") && r.may(p, name, a) == nil && !slices.Contains(granted, a) {
					granted = append(granted, a)
				}
			}
			access = append(access, tokenAccess{Type: "repository", Name: name, Actions: granted})
		}
	}
	now := r.now()
	tok, err := r.signToken(tokenClaims{Sub: p.user, Admin: p.admin, Node: p.node, Access: access, Iat: now.Unix(), Exp: now.Add(r.cfg.TokenTTL).Unix()})
	if err != nil {
		r.writeError(w, req, err)
		return
	}
	b, _ := json.Marshal(map[string]any{
		"token": tok, "access_token": tok, "expires_in": int(r.cfg.TokenTTL / time.Second),
		"issued_at": now.UTC().Format(time.RFC3339),
	})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(b)
}

// loadOrCreateKey reads the token signing key, creating it on first start.
func loadOrCreateKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil && len(b) >= 32 {
		return b, nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read token key: %w", err)
	}
	b = make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("generate token key: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return nil, fmt.Errorf("write token key: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, fmt.Errorf("write token key: %w", err)
	}
	return b, nil
}
