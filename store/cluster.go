package store

import (
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

const kJoinSecret = "m/join"

// NodeLost names a node that stopped heartbeating.
type NodeLost struct {
	Name string `json:"name"`
}

// RemoveNode names a node leaving the cluster for good.
type RemoveNode struct {
	Name string `json:"name"`
}

// JoinSecret is the secret part of the join token. It is replicated so that
// any member can check a joining node's proof.
type JoinSecret struct {
	Secret  string `json:"secret"`
	Version int    `json:"version"`
}

// SetJoinSecret replaces the join secret. IfMissing makes it a no-op when a
// secret exists (first start).
type SetJoinSecret struct {
	Secret    string `json:"secret"`
	IfMissing bool   `json:"if_missing,omitempty"`
}

func (a *applier) nodeLost(c *NodeLost) (*Node, error) {
	n, err := a.node(c.Name)
	if errors.Is(err, ErrNotFound) {
		return nil, Errorf(ENotFound, "node %q not found", c.Name)
	}
	if err != nil {
		return nil, err
	}
	if err := a.endNodeAttempts(c.Name, "node "+c.Name+" stopped heartbeating"); err != nil {
		return nil, err
	}
	n.State = NodeDown
	n.Updated = a.at
	return n, nil
}

func (a *applier) removeNode(c *RemoveNode) (*Node, error) {
	n, err := a.node(c.Name)
	if errors.Is(err, ErrNotFound) {
		return nil, Errorf(ENotFound, "node %q not found", c.Name)
	}
	if err != nil {
		return nil, err
	}
	if err := a.endNodeAttempts(c.Name, "node "+c.Name+" was removed from the cluster"); err != nil {
		return nil, err
	}
	delete(a.nodes, c.Name)
	if err := a.txn.Delete(nodeKey(c.Name)); err != nil {
		return nil, err
	}
	gone := *n
	gone.State = "removed"
	gone.Updated = a.at
	a.events = append(a.events, Event{Type: "node", Node: &gone})
	return &gone, nil
}

// endNodeAttempts ends every attempt placed on node that has not ended.
func (a *applier) endNodeAttempts(node, msg string) error {
	type key struct {
		job  string
		i, n int
	}
	var keys []key
	prefix := []byte(pNodeActive + node + "/")
	it := a.txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
	for it.Rewind(); it.Valid(); it.Next() {
		if job, i, n, ok := parseNodeActiveKey(it.Item().KeyCopy(nil)); ok {
			keys = append(keys, key{job, i, n})
		}
	}
	it.Close()
	for _, k := range keys {
		if _, err := a.attemptEnded(&AttemptEnded{JobID: k.job, Task: k.i, N: k.n, ExitCode: -1,
			Reason: ReasonNodeLost, Message: msg, Ended: a.at}); err != nil {
			return fmt.Errorf("end attempt %s/%d/%d: %w", k.job, k.i, k.n, err)
		}
	}
	return nil
}

func (a *applier) setJoinSecret(c *SetJoinSecret) (*JoinSecret, error) {
	if len(c.Secret) < 32 {
		return nil, Errorf(EInvalid, "join secret too short")
	}
	var cur JoinSecret
	err := getJSON(a.txn, []byte(kJoinSecret), &cur)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	if err == nil && c.IfMissing {
		return &cur, nil
	}
	next := JoinSecret{Secret: c.Secret, Version: cur.Version + 1}
	if err := putJSON(a.txn, []byte(kJoinSecret), next); err != nil {
		return nil, err
	}
	return &next, nil
}

// JoinSecret returns the current join secret (ErrNotFound before the first
// one is set).
func (s *Store) JoinSecret() (*JoinSecret, error) {
	var js JoinSecret
	if err := s.view(func(txn *badger.Txn) error { return getJSON(txn, []byte(kJoinSecret), &js) }); err != nil {
		return nil, err
	}
	return &js, nil
}
