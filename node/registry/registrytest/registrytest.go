// Package registrytest provides real, in-process parts for testing the
// registry without a Raft cluster: an account helper over store.Direct,
// which applies commands straight to the store's state machine.
package registrytest

import (
	"context"
	"fmt"

	"golang.org/x/crypto/bcrypt"

	"gantry/store"
)

// CreateUser adds a user with a bcrypt-hashed password through p.
func CreateUser(ctx context.Context, p store.Proposer, name, password string, admin bool) error {
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	_, err = store.CmdCreateUser.Propose(ctx, p, store.CreateUser{User: store.User{Name: name, PasswordHash: h, Admin: admin}})
	return err
}
