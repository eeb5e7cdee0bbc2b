// Package registrytest provides real, in-process parts for testing the
// registry without a Raft cluster: a proposer that applies commands straight
// to the store's FSM, and an authenticator backed by the store's users.
package registrytest

import (
	"context"
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

// CreateUser adds a user with a bcrypt-hashed password through p.
func CreateUser(ctx context.Context, p *DirectProposer, name, password string, admin bool) error {
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	_, err = p.Propose(ctx, store.CmdCreateUser, store.CreateUser{User: store.User{Name: name, PasswordHash: h, Admin: admin}})
	return err
}
