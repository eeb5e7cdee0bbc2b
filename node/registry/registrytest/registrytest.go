// Package registrytest provides real, in-process parts for testing the
// registry without a Raft cluster: a proposer that applies commands straight
// to the store's FSM, and an authenticator backed by the store's users.
package registrytest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"golang.org/x/crypto/bcrypt"

	"gantry/store"
)

// DirectProposer applies each command to the store's real FSM with an
// increasing log index, as a single-node Raft would after commit.
type DirectProposer struct {
	Store *store.Store
	Now   func() time.Time // nil: time.Now

	mu    sync.Mutex
	index uint64
}

// Propose encodes the command, applies it and returns Apply's result, or the
// error Apply returned.
func (p *DirectProposer) Propose(ctx context.Context, typ string, payload any) (any, error) {
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	b, err := store.NewCommand(typ, now(), payload)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.index == 0 {
		p.index = p.Store.AppliedIndex()
	}
	p.index++
	res := p.Store.Apply(&raft.Log{Index: p.index, Type: raft.LogCommand, Data: b})
	if err, ok := res.(error); ok {
		return nil, err
	}
	return res, nil
}

// StoreAuth authenticates against the store's users (bcrypt password hash)
// and API tokens (SHA-256 of the secret).
type StoreAuth struct {
	Store *store.Store
}

// Authenticate returns the user and whether it is an admin, or an
// *store.Error with code EUnauthorized.
func (a StoreAuth) Authenticate(ctx context.Context, username, secret string) (string, bool, error) {
	bad := store.Errorf(store.EUnauthorized, "invalid username or password")
	sum := sha256.Sum256([]byte(secret))
	if t, err := a.Store.TokenByHash(hex.EncodeToString(sum[:])); err == nil && (t.User == username || username == "") {
		if !t.Expires.IsZero() && time.Now().After(t.Expires) {
			return "", false, bad
		}
		u, err := a.Store.User(t.User)
		if err != nil || u.Disabled {
			return "", false, bad
		}
		return u.Name, u.Admin, nil
	}
	u, err := a.Store.User(username)
	if err != nil || u.Disabled || bcrypt.CompareHashAndPassword(u.PasswordHash, []byte(secret)) != nil {
		return "", false, bad
	}
	return u.Name, u.Admin, nil
}

// CreateUser adds a user with a bcrypt-hashed password through p.
func CreateUser(ctx context.Context, p *DirectProposer, name, password string, admin bool) error {
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	_, err = p.Propose(ctx, store.CmdCreateUser, store.CreateUser{User: store.User{Name: name, PasswordHash: h, Admin: admin}})
	return err
}

// CreateToken adds an API token with the given secret for a user through p.
func CreateToken(ctx context.Context, p *DirectProposer, user, id, secret string) error {
	sum := sha256.Sum256([]byte(secret))
	h := hex.EncodeToString(sum[:])
	_, err := p.Propose(ctx, store.CmdCreateToken, store.CreateToken{Token: store.Token{ID: id, User: user, Name: id}, Hash: h})
	return err
}
