package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"gantry/wire"
)

// signIn sends POST /api/v1/login from addr and validates the answer
// against the OpenAPI description.
func (f *fixture) signIn(addr, user, password string) *httptest.ResponseRecorder {
	f.t.Helper()
	body := map[string]string{"username": user, "password": password}
	b, _ := json.Marshal(body)
	req := httptest.NewRequest("POST", "/api/v1/login", strings.NewReader(string(b)))
	req.Header.Set("Content-Type", "application/json")
	req.RemoteAddr = addr
	w := httptest.NewRecorder()
	f.api.ServeHTTP(w, req)
	checkAgainstOpenAPI(f.t, f.api, req, body, w)
	return w
}

// basicGet sends GET path with HTTP Basic credentials from addr.
func (f *fixture) basicGet(addr, path, user, password string) *httptest.ResponseRecorder {
	f.t.Helper()
	req := httptest.NewRequest("GET", path, nil)
	req.SetBasicAuth(user, password)
	req.RemoteAddr = addr
	w := httptest.NewRecorder()
	f.api.ServeHTTP(w, req)
	checkAgainstOpenAPI(f.t, f.api, req, nil, w)
	return w
}

func TestRepeatedFailedSignInsAreThrottled(t *testing.T) {
	t.Parallel() // password hashing under the race detector: overlaps the rest of the package
	const attacker, elsewhere = "203.0.113.7:40000", "198.51.100.2:50000"
	t.Run("50 wrong passwords are refused with 429 after 5, the right one works after the cool-down, bob never notices", func(t *testing.T) {
		f := newFixture(t)
		for i := range 50 {
			w := f.signIn(attacker, "alice", "wrong password")
			if i < 5 {
				wantError(t, w, http.StatusUnauthorized, wire.CodeUnauthorized, "invalid credentials")
				continue
			}
			wantError(t, w, http.StatusTooManyRequests, wire.CodeRateLimited, "too many failed sign-ins for alice: try again in 1s")
			if got := w.Header().Get("Retry-After"); got != "1" {
				t.Fatalf("attempt %d: Retry-After %q, want 1", i+1, got)
			}
		}
		wantError(t, f.signIn(elsewhere, "alice", passwordOf("alice")), http.StatusTooManyRequests, wire.CodeRateLimited, "alice")
		wantError(t, f.basicGet(elsewhere, "/api/v1/me", "alice", passwordOf("alice")), http.StatusTooManyRequests, wire.CodeRateLimited, "alice")
		for _, addr := range []string{attacker, elsewhere} {
			if w := f.signIn(addr, "bob", passwordOf("bob")); w.Code != http.StatusOK {
				t.Fatalf("bob signing in from %s: %d %s", addr, w.Code, w.Body)
			}
			if w := f.basicGet(addr, "/api/v1/me", "bob", passwordOf("bob")); w.Code != http.StatusOK {
				t.Fatalf("bob with basic auth from %s: %d %s", addr, w.Code, w.Body)
			}
		}
		f.clock.Advance(time.Second)
		if w := f.signIn(elsewhere, "alice", passwordOf("alice")); w.Code != http.StatusOK {
			t.Fatalf("alice after the cool-down: %d %s", w.Code, w.Body)
		}
	})
	t.Run("wrong basic-auth passwords on API routes count like sign-ins", func(t *testing.T) {
		f := newFixture(t)
		for range 5 {
			wantError(t, f.basicGet(attacker, "/api/v1/jobs", "alice", "wrong password"), http.StatusUnauthorized, wire.CodeUnauthorized)
		}
		w := f.signIn(attacker, "alice", passwordOf("alice"))
		wantError(t, w, http.StatusTooManyRequests, wire.CodeRateLimited, "try again in 1s")
		if w.Header().Get("Retry-After") != "1" {
			t.Fatalf("Retry-After %q", w.Header().Get("Retry-After"))
		}
	})
	t.Run("a throttled password change says so, not that the old password is wrong", func(t *testing.T) {
		f := newFixture(t)
		for range 5 {
			wantError(t, f.do(owner, "POST", "/api/v1/me/password", map[string]string{"old": "not it", "new": "a new password"}),
				http.StatusForbidden, wire.CodeForbidden, "old: the current password is wrong")
		}
		wantError(t, f.do(owner, "POST", "/api/v1/me/password", map[string]string{"old": passwordOf("alice"), "new": "a new password"}),
			http.StatusTooManyRequests, wire.CodeRateLimited, "too many failed sign-ins for alice")
	})
}

// TestAPasswordChangeEndsTheOtherSessions: the session that changes the
// password stays, alice's other sessions end at once, her API token stays
// (and the answer says both), and bob's session is untouched.
func TestAPasswordChangeEndsTheOtherSessions(t *testing.T) {
	f := newFixture(t)
	session := func(user string) string {
		w := f.signIn("192.0.2.1:1000", user, passwordOf(user))
		if w.Code != http.StatusOK {
			t.Fatalf("sign in %s: %d %s", user, w.Code, w.Body)
		}
		return decodeAs[wire.LoginResult](t, w).Token
	}
	me := func(token string) int {
		req := httptest.NewRequest("GET", "/api/v1/me", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		f.api.ServeHTTP(w, req)
		return w.Code
	}
	here, laptop, phone, bobs := session("alice"), session("alice"), session("alice"), session("bob")
	req := httptest.NewRequest("POST", "/api/v1/me/password", strings.NewReader(`{"old":"`+passwordOf("alice")+`","new":"a brand new password"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+here)
	w := httptest.NewRecorder()
	f.api.ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		t.Fatalf("password change: %d %s", w.Code, w.Body)
	}
	if got := decodeAs[wire.PasswordChanged](t, w); got.EndedSessions != 2 || !strings.Contains(got.Message, "2 other session(s) signed out") || !strings.Contains(got.Message, "API tokens stay valid") {
		t.Fatalf("answer %+v", got)
	}
	for name, tok := range map[string]string{"the other laptop": laptop, "the phone": phone} {
		if code := me(tok); code != http.StatusUnauthorized {
			t.Errorf("%s's session after the password change: %d, want 401", name, code)
		}
	}
	for name, tok := range map[string]string{"the session that changed it": here, "alice's API token": f.tokens["alice"], "bob's session": bobs} {
		if code := me(tok); code != http.StatusOK {
			t.Errorf("%s after the password change: %d, want 200", name, code)
		}
	}
	if w := f.signIn("192.0.2.1:1000", "alice", "a brand new password"); w.Code != http.StatusOK {
		t.Fatalf("the new password: %d %s", w.Code, w.Body)
	}
}
