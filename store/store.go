// Package store owns Gantry's replicated state: the records (users, tokens,
// jobs, tasks, attempts, nodes, registry metadata), the commands that change
// them, and the Raft FSM that applies those commands to a Badger database.
// It does not know about HTTP, Docker or the network; see DESIGN.md.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/dgraph-io/badger/v4"
)

// Store is the state machine over one Badger database.
type Store struct {
	db     *badger.DB
	logger *slog.Logger

	applyMu   sync.Mutex // serialises Apply with Restore
	applied   uint64
	appliedCh chan struct{} // closed and replaced when applied advances (under applyMu)

	subMu sync.Mutex
	subs  map[*Subscription]struct{}

	endedMu sync.Mutex
	ended   map[string]uint64 // jobs that reached each terminal state, since Open

	tasksStarted  atomic.Uint64 // see TaskCounts
	tasksFinished atomic.Uint64

	pubGen   atomic.Uint64 // see PublicationsGeneration
	pullsGen atomic.Uint64 // see PullsGeneration

	specs     *specCache // decoded job specs (jobrecords.go)
	jobWrites jobWriteCounters
}

// Open opens (or creates) the state database in dir.
func Open(dir string, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.Default()
	}
	opts := badger.DefaultOptions(dir).
		WithLogger(nil).
		WithSyncWrites(false). // the Raft log is durable; this DB is rebuilt from it
		WithMemTableSize(32 << 20).
		WithNumMemtables(2).
		WithNumLevelZeroTables(2).
		WithNumLevelZeroTablesStall(8).
		WithBlockCacheSize(16 << 20).
		WithIndexCacheSize(8 << 20).
		WithValueLogFileSize(64 << 20).
		WithNumCompactors(2).
		WithValueThreshold(1 << 10)
	db, err := badger.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("open state db %s: %w", dir, err)
	}
	s := &Store{db: db, logger: logger.With("component", "store"), subs: map[*Subscription]struct{}{}, appliedCh: make(chan struct{}),
		specs: newSpecCache(specCacheBytes)}
	if err := migrateLayout(db, s.logger); err != nil {
		db.Close()
		return nil, fmt.Errorf("open state db %s: %w", dir, err)
	}
	if err := db.View(func(txn *badger.Txn) error {
		var v uint64
		err := getJSON(txn, []byte(kApplied), &v)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		s.applied = v
		return err
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("read applied index: %w", err)
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error {
	s.subMu.Lock()
	for sub := range s.subs {
		sub.close()
	}
	s.subs = map[*Subscription]struct{}{}
	s.subMu.Unlock()
	return s.db.Close()
}

// JobsEnded counts, by final state (succeeded, failed, cancelled), the
// jobs that ended in entries this store applied since it was opened: a
// job run again and ended again counts each time. Every replica applies
// every entry, so each counts the whole cluster's jobs. A snapshot
// restored counts nothing (its jobs ended before).
func (s *Store) JobsEnded() map[string]uint64 {
	s.endedMu.Lock()
	defer s.endedMu.Unlock()
	out := make(map[string]uint64, 3)
	for _, st := range []string{StateSucceeded, StateFailed, StateCancelled} {
		out[st] = s.ended[st]
	}
	return out
}

func (s *Store) countEnded(by map[string]uint64) {
	if len(by) == 0 {
		return
	}
	s.endedMu.Lock()
	defer s.endedMu.Unlock()
	if s.ended == nil {
		s.ended = map[string]uint64{}
	}
	for st, n := range by {
		s.ended[st] += n
	}
}

// TaskCounts reports how many times, in entries this store applied since
// it was opened, a task went running (an attempt started: retries count
// again) and a task reached a final state. Like JobsEnded, every replica
// counts the whole cluster's, and a restored snapshot counts nothing.
func (s *Store) TaskCounts() (started, finished uint64) {
	return s.tasksStarted.Load(), s.tasksFinished.Load()
}

// AppliedIndex is the last Raft index applied to this store.
func (s *Store) AppliedIndex() uint64 {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	return s.applied
}

// setApplied records index as applied and wakes WaitApplied callers. The
// caller holds applyMu.
func (s *Store) setApplied(index uint64) {
	s.applied = index
	close(s.appliedCh)
	s.appliedCh = make(chan struct{})
}

// WaitApplied blocks until this store has applied index or ctx ends, and
// reports whether it has.
func (s *Store) WaitApplied(ctx context.Context, index uint64) bool {
	for {
		s.applyMu.Lock()
		done, ch := s.applied >= index, s.appliedCh
		s.applyMu.Unlock()
		if done {
			return true
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
	}
}

func getJSON(txn *badger.Txn, key []byte, v any) error {
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("get %s: %w", key, err)
	}
	return item.Value(func(b []byte) error {
		if err := json.Unmarshal(b, v); err != nil {
			return fmt.Errorf("decode %s: %w", key, err)
		}
		return nil
	})
}

func putJSON(txn *badger.Txn, key []byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	return txn.Set(key, b)
}

// getString reads a key whose value is a plain string (ErrNotFound when
// it is missing).
func getString(txn *badger.Txn, key []byte) (string, error) {
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("get %s: %w", key, err)
	}
	v, err := item.ValueCopy(nil)
	return string(v), err
}

func exists(txn *badger.Txn, key []byte) (bool, error) {
	_, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	return err == nil, err
}

// view runs fn in a read transaction.
func (s *Store) view(fn func(txn *badger.Txn) error) error { return s.db.View(fn) }

// Event is a change applied to the store, delivered to local subscribers on
// every node after the change is committed to the state database. A Job's
// spec is shared with the store's cache of specs: read-only.
type Event struct {
	Type     string // "job", "task", "node", "user", "token", "schedule"
	Owner    string
	Job      *Job
	Task     *Task
	Node     *Node
	Schedule *Schedule // nil for a deleted schedule (Name is its id)
	Name     string
}

// Subscription receives events. When a subscriber falls behind, its channel
// is closed and Lost reports true: it must resynchronise from the store.
type Subscription struct {
	C    <-chan Event
	c    chan Event
	s    *Store
	lost bool
	done bool
}

// Subscribe registers a subscriber with a buffer of n events.
func (s *Store) Subscribe(n int) *Subscription {
	c := make(chan Event, n)
	sub := &Subscription{C: c, c: c, s: s}
	s.subMu.Lock()
	s.subs[sub] = struct{}{}
	s.subMu.Unlock()
	return sub
}

// Lost reports whether events were dropped because the subscriber was slow.
func (sub *Subscription) Lost() bool {
	sub.s.subMu.Lock()
	defer sub.s.subMu.Unlock()
	return sub.lost
}

// Close unregisters the subscriber.
func (sub *Subscription) Close() {
	sub.s.subMu.Lock()
	defer sub.s.subMu.Unlock()
	delete(sub.s.subs, sub)
	sub.close()
}

func (sub *Subscription) close() {
	if !sub.done {
		sub.done = true
		close(sub.c)
	}
}

func (s *Store) publish(evs []Event) {
	if len(evs) == 0 {
		return
	}
	s.subMu.Lock()
	defer s.subMu.Unlock()
	for sub := range s.subs {
		for _, ev := range evs {
			select {
			case sub.c <- ev:
			default:
				sub.lost = true
				delete(s.subs, sub)
				sub.close()
			}
			if sub.done {
				break
			}
		}
	}
}
