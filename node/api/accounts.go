package api

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/oklog/ulid/v2"

	"gantry/node/auth"
	"gantry/node/view"
	"gantry/store"
	"gantry/wire"
)

const (
	sessionCookie = "gantry_session"
	csrfCookie    = "gantry_csrf"
	csrfHeader    = "X-Gantry-CSRF"
	sessionTTL    = 7 * 24 * time.Hour
	identityKey   = "gantry.identity"
)

func identity(c *gin.Context) auth.Identity {
	v, _ := c.Get(identityKey)
	id, _ := v.(auth.Identity)
	return id
}

// authenticate accepts a bearer token, the session cookie (with the CSRF
// header on state-changing requests) or basic auth.
func (a *API) authenticate(c *gin.Context) {
	ctx := auth.WithClient(c.Request.Context(), auth.Client{Addr: c.Request.RemoteAddr, Route: auth.RouteAPI})
	var (
		id  auth.Identity
		err error
	)
	h := c.GetHeader("Authorization")
	switch {
	case strings.HasPrefix(h, "Bearer "):
		id, err = a.cfg.Auth.Token(ctx, strings.TrimPrefix(h, "Bearer "))
	case strings.HasPrefix(h, "Basic "):
		user, pw, ok := c.Request.BasicAuth()
		if !ok {
			err = store.Errorf(store.EUnauthorized, "malformed basic auth")
			break
		}
		var name string
		var admin bool
		name, admin, err = a.cfg.Auth.Authenticate(ctx, user, pw)
		id = auth.Identity{User: name, Admin: admin}
	default:
		ck, cerr := c.Cookie(sessionCookie)
		if cerr != nil || ck == "" {
			// WebSocket clients that cannot set headers may pass ?token=,
			// on the upgrade to the event feed alone: a token in a URL ends
			// up in logs and histories, so no other route takes one.
			if t := c.Query("token"); t != "" && isEventsUpgrade(c.Request) {
				id, err = a.cfg.Auth.Token(ctx, t)
				break
			}
			fail(c, store.Errorf(store.EUnauthorized, "authentication required: send a bearer token (gantry login) or sign in"))
			return
		}
		id, err = a.cfg.Auth.Token(ctx, ck)
		if err == nil && !safeMethod(c.Request.Method) {
			want, _ := c.Cookie(csrfCookie)
			got := c.GetHeader(csrfHeader)
			if want == "" || subtle.ConstantTimeCompare([]byte(want), []byte(got)) != 1 {
				fail(c, store.Errorf(store.EForbidden, "missing or wrong %s header", csrfHeader))
				return
			}
		}
	}
	if err != nil {
		fail(c, err)
		return
	}
	if id.User == auth.NodeUser {
		fail(c, store.Errorf(store.EForbidden, "node credentials are for the registry only"))
		return
	}
	c.Set(identityKey, id)
	c.Request = c.Request.WithContext(auth.WithIdentity(c.Request.Context(), id))
	c.Next()
}

// isEventsUpgrade reports whether r opens the WebSocket of the event feed.
func isEventsUpgrade(r *http.Request) bool {
	return r.Method == http.MethodGet && r.URL.Path == "/api/v1/events" &&
		strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

func (a *API) adminOnly(c *gin.Context) {
	if !identity(c).Admin {
		fail(c, store.Errorf(store.EForbidden, "admin only"))
		return
	}
	c.Next()
}

func (a *API) login(c *gin.Context) {
	var req wire.Login
	if err := decode(c, &req); err != nil {
		fail(c, err)
		return
	}
	ctx := auth.WithClient(c.Request.Context(), auth.Client{Addr: c.Request.RemoteAddr, Route: auth.RouteLogin})
	id, err := a.cfg.Auth.Password(ctx, req.Username, req.Password)
	if err != nil {
		fail(c, err)
		return
	}
	if id.User == auth.NodeUser {
		fail(c, store.Errorf(store.EUnauthorized, "invalid credentials"))
		return
	}
	secret := auth.NewSecret()
	tok := store.Token{ID: ulid.Make().String(), User: id.User, Name: "session", Session: true, Expires: time.Now().Add(sessionTTL)}
	if req.Client != "" {
		tok.Name, tok.Session, tok.Expires = req.Client, false, time.Time{}
	}
	if _, ok := propose(c, a, store.CmdCreateToken, store.CreateToken{Token: tok, Hash: auth.HashToken(secret)}); !ok {
		return
	}
	if tok.Session {
		a.setCookie(c, sessionCookie, secret, true, int(sessionTTL.Seconds()))
		a.setCookie(c, csrfCookie, strings.TrimPrefix(auth.NewSecret(), auth.TokenPrefix), false, int(sessionTTL.Seconds()))
	}
	u, err := a.cfg.Store.User(id.User)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, wire.LoginResult{Token: secret, User: view.User(u)})
}

func (a *API) setCookie(c *gin.Context, name, value string, httpOnly bool, maxAge int) {
	http.SetCookie(c.Writer, &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: httpOnly, Secure: a.cfg.SecureCookies, SameSite: http.SameSiteStrictMode})
}

func (a *API) logout(c *gin.Context) {
	id := identity(c)
	if id.TokenID != "" && id.Session {
		if _, ok := propose(c, a, store.CmdDeleteToken, store.DeleteToken{User: id.User, ID: id.TokenID}); !ok {
			return
		}
	}
	a.setCookie(c, sessionCookie, "", true, -1)
	a.setCookie(c, csrfCookie, "", false, -1)
	c.Status(http.StatusNoContent)
}

// withUsage adds what the user's placed tasks and repositories hold now.
func (a *API) withUsage(v wire.User) (wire.User, error) {
	use, err := a.cfg.Store.Usage(v.Name)
	if err != nil {
		return v, fmt.Errorf("read usage of %s: %w", v.Name, err)
	}
	u := view.Usage(use)
	v.Usage = &u
	st, err := a.cfg.Store.StorageUsage(v.Name)
	if err != nil {
		return v, fmt.Errorf("read storage of %s: %w", v.Name, err)
	}
	v.Storage = &wire.StorageUsage{Bytes: st.Bytes, Blobs: st.Blobs}
	return v, nil
}

// userAnswer answers with the account and what its tasks hold now.
func (a *API) userAnswer(c *gin.Context, status int, u *store.User) {
	v, err := a.withUsage(view.User(u))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(status, v)
}

func (a *API) me(c *gin.Context) {
	u, err := a.cfg.Store.User(identity(c).User)
	if err != nil {
		fail(c, err)
		return
	}
	a.userAnswer(c, http.StatusOK, u)
}

func (a *API) changePassword(c *gin.Context) {
	var req wire.PasswordChange
	if err := decode(c, &req); err != nil {
		fail(c, err)
		return
	}
	id := identity(c)
	ctx := auth.WithClient(c.Request.Context(), auth.Client{Addr: c.Request.RemoteAddr, Route: auth.RouteAPI})
	if _, err := a.cfg.Auth.Password(ctx, id.User, req.Old); err != nil {
		if store.ErrorCode(err) != store.ERateLimited {
			err = store.Errorf(store.EForbidden, "old: the current password is wrong")
		}
		fail(c, err)
		return
	}
	hash, err := auth.HashPassword(req.New)
	if err != nil {
		fail(c, err)
		return
	}
	// Every other console session ends with the old password; the one
	// that changed it stays (an API token changing it keeps none).
	toks, err := a.cfg.Store.Tokens(id.User)
	if err != nil {
		fail(c, err)
		return
	}
	keep, ended := "", 0
	if id.Session {
		keep = id.TokenID
	}
	for _, t := range toks {
		if t.Session && t.ID != keep {
			ended++
		}
	}
	if _, ok := propose(c, a, store.CmdUpdateUser, store.UpdateUser{Name: id.User, PasswordHash: hash, EndSessions: true, KeepSession: keep}); !ok {
		return
	}
	msg := fmt.Sprintf("password changed; %d other session(s) signed out; API tokens stay valid (revoke them under tokens if the password was exposed)", ended)
	c.JSON(http.StatusOK, wire.PasswordChanged{EndedSessions: ended, Message: msg})
}

func (a *API) listTokens(c *gin.Context) {
	toks, err := a.cfg.Store.Tokens(identity(c).User)
	if err != nil {
		fail(c, err)
		return
	}
	out := make([]wire.Token, 0, len(toks))
	for i := range toks {
		if !toks[i].Session {
			out = append(out, view.Token(&toks[i]))
		}
	}
	c.JSON(http.StatusOK, wire.TokenList{Tokens: out})
}

func (a *API) createToken(c *gin.Context) {
	var req wire.TokenRequest
	if err := decode(c, &req); err != nil {
		fail(c, err)
		return
	}
	if strings.TrimSpace(req.Name) == "" || len(req.Name) > 100 {
		fail(c, store.Errorf(store.EInvalid, "name: give the token a name of 1 to 100 characters"))
		return
	}
	secret := auth.NewSecret()
	tok := store.Token{ID: ulid.Make().String(), User: identity(c).User, Name: req.Name}
	auditTarget(c, tok.User+" "+tok.ID+" ("+tok.Name+")")
	res, ok := propose(c, a, store.CmdCreateToken, store.CreateToken{Token: tok, Hash: auth.HashToken(secret)})
	if !ok {
		return
	}
	c.JSON(http.StatusCreated, wire.TokenCreated{Token: secret, Info: view.Token(res)})
}

func (a *API) deleteToken(c *gin.Context) {
	if _, ok := propose(c, a, store.CmdDeleteToken, store.DeleteToken{User: identity(c).User, ID: c.Param("id")}); !ok {
		return
	}
	c.Status(http.StatusNoContent)
}

func (a *API) listUsers(c *gin.Context) {
	us, err := a.cfg.Store.Users()
	if err != nil {
		fail(c, err)
		return
	}
	out := make([]wire.User, 0, len(us))
	for i := range us {
		v, err := a.withUsage(view.User(&us[i]))
		if err != nil {
			fail(c, err)
			return
		}
		out = append(out, v)
	}
	c.JSON(http.StatusOK, wire.UserList{Users: out})
}

// ValidUsername reports whether name can be an account (and so a registry
// namespace): lowercase letters, digits, '-' and '_', 2 to 32 characters.
func ValidUsername(name string) bool {
	if len(name) < 2 || len(name) > 32 || name == "gantry" || name == auth.NodeUser {
		return false
	}
	for i, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
		case (r == '-' || r == '_') && i > 0:
		default:
			return false
		}
	}
	return true
}

func (a *API) createUser(c *gin.Context) {
	var req wire.CreateUser
	if err := decode(c, &req); err != nil {
		fail(c, err)
		return
	}
	auditTarget(c, req.Username)
	if !ValidUsername(req.Username) {
		fail(c, store.Errorf(store.EInvalid, "username: 2-32 lowercase letters, digits, '-' or '_', starting with a letter or digit"))
		return
	}
	hash, err := auth.HashPassword(req.Password)
	if err != nil {
		fail(c, err)
		return
	}
	res, ok := propose(c, a, store.CmdCreateUser, store.CreateUser{User: store.User{Name: req.Username, PasswordHash: hash, Admin: req.Admin}})
	if !ok {
		return
	}
	c.JSON(http.StatusCreated, view.User(res))
}

func (a *API) updateUser(c *gin.Context) {
	var req wire.UpdateUser
	if err := decode(c, &req); err != nil {
		fail(c, err)
		return
	}
	name := c.Param("name")
	if req.Disabled != nil && *req.Disabled && name == identity(c).User {
		fail(c, store.Errorf(store.EInvalid, "disabled: you cannot disable your own account"))
		return
	}
	cmd := store.UpdateUser{Name: name, Disabled: req.Disabled, Weight: req.Weight, StorageQuota: req.StorageQuota}
	if req.Quota != nil {
		q := view.StoreResources(*req.Quota)
		cmd.Quota = &q
	}
	res, err := store.CmdUpdateUser.Propose(c.Request.Context(), a.cfg.Proposer, cmd)
	if errors.Is(err, store.ErrNotFound) {
		err = store.Errorf(store.ENotFound, "user %q not found", name)
	}
	if err != nil {
		fail(c, err)
		return
	}
	a.userAnswer(c, http.StatusOK, res)
}
