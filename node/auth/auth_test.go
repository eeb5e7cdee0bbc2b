package auth

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"gantry/store"
)

type fixture struct {
	t  *testing.T
	st *store.Store
	d  *store.Direct
}

func newFixture(t *testing.T) *fixture {
	st, err := store.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &fixture{t: t, st: st, d: store.NewDirect(st)}
}

// must fails the test when a command was refused.
func (f *fixture) must(err error) {
	f.t.Helper()
	if err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) user(name, pw string, admin bool) {
	f.t.Helper()
	h, err := HashPassword(pw)
	if err != nil {
		f.t.Fatal(err)
	}
	f.must(ignore(store.CmdCreateUser.Propose(context.Background(), f.d, store.CreateUser{User: store.User{Name: name, PasswordHash: h, Admin: admin}})))
}

func (f *fixture) token(user, id string, session bool, expires time.Time) string {
	f.t.Helper()
	secret := NewSecret()
	f.must(ignore(store.CmdCreateToken.Propose(context.Background(), f.d, store.CreateToken{Token: store.Token{ID: id, User: user, Name: id, Session: session, Expires: expires}, Hash: HashToken(secret)})))
	return secret
}

func code(err error) string {
	if err == nil {
		return ""
	}
	return store.ErrorCode(err)
}

func TestPasswordChecks(t *testing.T) {
	f := newFixture(t)
	f.user("alice", "correct horse", false)
	f.user("root", "admin password", true)
	a := New(Config{Store: f.st, NodeSecret: "node-secret-123", Logger: quiet})
	ctx := context.Background()

	id, err := a.Password(ctx, "alice", "correct horse")
	if err != nil || id.User != "alice" || id.Admin {
		t.Fatalf("alice with her password: %+v %v", id, err)
	}
	if id, err := a.Password(ctx, "root", "admin password"); err != nil || !id.Admin {
		t.Fatalf("admin: %+v %v", id, err)
	}
	_, wrong := a.Password(ctx, "alice", "battery staple")
	_, unknown := a.Password(ctx, "mallory", "correct horse")
	if code(wrong) != store.EUnauthorized || code(unknown) != store.EUnauthorized || wrong.Error() != unknown.Error() {
		t.Fatalf("wrong password %v, unknown user %v: want the same unauthorized answer", wrong, unknown)
	}
	if id, err := a.Password(ctx, NodeUser, "node-secret-123"); err != nil || id.User != NodeUser {
		t.Fatalf("node credential: %+v %v", id, err)
	}
	if _, err := a.Password(ctx, NodeUser, "guess"); code(err) != store.EUnauthorized {
		t.Fatalf("wrong node secret: %v", err)
	}
}

// TestAChangedPasswordFailsAtOnce: the check cache must not keep the old
// password working after a change, nor a disabled account after disabling.
func TestAChangedPasswordFailsAtOnce(t *testing.T) {
	f := newFixture(t)
	f.user("alice", "old password", false)
	a := New(Config{Store: f.st, Logger: quiet})
	ctx := context.Background()
	if _, err := a.Password(ctx, "alice", "old password"); err != nil {
		t.Fatal(err)
	}
	h, _ := HashPassword("new password")
	f.must(ignore(store.CmdUpdateUser.Propose(context.Background(), f.d, store.UpdateUser{Name: "alice", PasswordHash: h})))
	if _, err := a.Password(ctx, "alice", "old password"); code(err) != store.EUnauthorized {
		t.Fatalf("old password right after the change: %v", err)
	}
	if _, err := a.Password(ctx, "alice", "new password"); err != nil {
		t.Fatalf("new password: %v", err)
	}
	yes := true
	f.must(ignore(store.CmdUpdateUser.Propose(context.Background(), f.d, store.UpdateUser{Name: "alice", Disabled: &yes})))
	if _, err := a.Password(ctx, "alice", "new password"); code(err) != store.EForbidden {
		t.Fatalf("disabled account (cached check): %v", err)
	}
}

func TestTokenChecks(t *testing.T) {
	f := newFixture(t)
	f.user("alice", "correct horse", false)
	f.user("bob", "another one", false)
	a := New(Config{Store: f.st, Logger: quiet})
	ctx := context.Background()
	api := f.token("alice", "t1", false, time.Time{})
	expired := f.token("alice", "t2", true, time.Now().Add(-time.Minute))

	id, err := a.Token(ctx, api)
	if err != nil || id.User != "alice" || id.TokenID != "t1" {
		t.Fatalf("valid token: %+v %v", id, err)
	}
	if _, err := a.Token(ctx, NewSecret()); code(err) != store.EUnauthorized {
		t.Fatalf("unknown token: %v", err)
	}
	if _, err := a.Token(ctx, "correct horse"); code(err) != store.EUnauthorized {
		t.Fatalf("a password as a token: %v", err)
	}
	if _, err := a.Token(ctx, expired); code(err) != store.EUnauthorized {
		t.Fatalf("expired session: %v", err)
	}
	// Basic auth with a token: the user name must be the owner's (or "token").
	if u, _, err := a.Authenticate(ctx, "alice", api); err != nil || u != "alice" {
		t.Fatalf("alice + her token: %q %v", u, err)
	}
	if u, _, err := a.Authenticate(ctx, "token", api); err != nil || u != "alice" {
		t.Fatalf("\"token\" + alice's token: %q %v", u, err)
	}
	if _, _, err := a.Authenticate(ctx, "bob", api); code(err) != store.EUnauthorized {
		t.Fatalf("bob presenting alice's token: %v", err)
	}
	f.must(ignore(store.CmdDeleteToken.Propose(context.Background(), f.d, store.DeleteToken{User: "alice", ID: "t1"})))
	if _, err := a.Token(ctx, api); code(err) != store.EUnauthorized {
		t.Fatalf("deleted token: %v", err)
	}
	other := f.token("bob", "t3", false, time.Time{})
	yes := true
	f.must(ignore(store.CmdUpdateUser.Propose(context.Background(), f.d, store.UpdateUser{Name: "bob", Disabled: &yes})))
	if _, err := a.Token(ctx, other); code(err) != store.EForbidden {
		t.Fatalf("token of a disabled account: %v", err)
	}
}

func TestSecretsAndPasswordRules(t *testing.T) {
	if a, b := NewSecret(), NewSecret(); a == b || len(a) != len(TokenPrefix)+48 || a[:len(TokenPrefix)] != TokenPrefix {
		t.Fatalf("secrets %q %q", a, b)
	}
	if HashToken("x") == HashToken("y") || len(HashToken("x")) != 64 {
		t.Fatal("token hashes")
	}
	if _, err := HashPassword("short"); code(err) != store.EInvalid {
		t.Fatalf("7-character password: %v", err)
	}
	long := make([]byte, 73)
	for i := range long {
		long[i] = 'a'
	}
	if _, err := HashPassword(string(long)); code(err) != store.EInvalid {
		t.Fatalf("73-byte password: %v", err)
	}
}

// quiet is a logger that drops everything.
var quiet = slog.New(slog.DiscardHandler)

func ignore[R any](_ R, err error) error { return err }
