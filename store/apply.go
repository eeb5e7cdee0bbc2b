package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/raft"
)

var _ raft.BatchingFSM = (*Store)(nil)

// applier applies commands inside one Badger transaction. Jobs and nodes
// touched by several commands of a batch are cached and written once.
type applier struct {
	txn    *badger.Txn
	at     time.Time
	jobs   map[string]*Job
	dirty  map[string]string // job id -> state it had when first loaded
	nodes  map[string]*Node
	usage  map[string]*UserUsage // user -> usage, written back by flush
	quotas map[string]Resources  // user -> quota, read once per batch
	qusage map[string]*UserUsage // queue -> usage, written back by flush
	queues map[string]Resources  // queue -> limit, read once per batch
	events []Event
	ended  map[string]uint64 // jobs that reached each terminal state in this batch
	pubs   bool              // a publication was written or removed
	pulls  bool              // pull counts were added

	// started and finished count tasks that went running and that ended
	// in this batch (TaskCounts).
	started, finished uint64

	// written holds the tasks this command wrote (eachTask prefers them to
	// what it read); seqWalk the sequential jobs whose chain of tasks is
	// being settled (taskEnded); arrayDependents each job's n-to-n
	// dependents (dependentsOfKind).
	written         map[string]Task
	seqWalk         map[string]bool
	arrayDependents map[string][]string

	// Jobs' two records (jobrecords.go): specs is the store's cache of
	// specs; loaded holds each job's state record as read (flush skips a
	// job left as it was), unsplit the jobs read from a layout-1 record;
	// specsRead and purged update the cache after the commit, jobWrites
	// counts the batch's writes.
	specs     *specCache
	loaded    map[string][]byte
	unsplit   map[string]bool
	specsRead []specAdd
	purged    []string
	jobWrites JobWrites

	// auditDetail is what the command adds to the audit record its entry
	// carries (the outcome of a review, ...).
	auditDetail string
}

// Apply applies one Raft log entry.
func (s *Store) Apply(l *raft.Log) any {
	return s.ApplyBatch([]*raft.Log{l})[0]
}

// ApplyBatch applies consecutive log entries in as few transactions as fit,
// recording the last applied index in the same transaction, then notifies
// subscribers. Entries at or below the stored applied index are skipped, so
// replaying the log after a restart is harmless.
func (s *Store) ApplyBatch(logs []*raft.Log) []any {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	results := make([]any, len(logs))
	for i := 0; i < len(logs); {
		n, evs := s.applyChunk(logs[i:], results[i:], len(logs)-i)
		s.publish(evs)
		i += n
	}
	return results
}

// applyChunk applies up to limit entries in one transaction and returns how
// many it consumed. When the transaction grows too big it retries with fewer.
func (s *Store) applyChunk(logs []*raft.Log, results []any, limit int) (int, []Event) {
	for {
		txn := s.db.NewTransaction(true)
		a := &applier{txn: txn, jobs: map[string]*Job{}, dirty: map[string]string{}, nodes: map[string]*Node{},
			usage: map[string]*UserUsage{}, quotas: map[string]Resources{}, specs: s.specs}
		var last uint64
		tooBig := -1
		for j := 0; j < limit; j++ {
			l := logs[j]
			// A replay after a restart (or a batch straddling the applied
			// index) must not move the applied index back: the entries
			// above the batch's last would then be applied twice.
			last = max(l.Index, s.applied)
			if l.Type != raft.LogCommand || l.Index <= s.applied {
				results[j] = nil
				continue
			}
			res, err := a.apply(l.Data)
			if errors.Is(err, badger.ErrTxnTooBig) {
				tooBig = j
				break
			}
			if err != nil {
				results[j] = err
				continue
			}
			results[j] = res
		}
		if tooBig == 0 {
			txn.Discard()
			return s.refuseTooBig(logs[0], results), nil
		}
		if tooBig > 0 {
			txn.Discard()
			limit = tooBig
			continue
		}
		err := a.flush()
		if err == nil {
			err = putJSON(txn, []byte(kApplied), last)
		}
		if err == nil {
			err = txn.Commit()
		} else {
			txn.Discard()
		}
		if errors.Is(err, badger.ErrTxnTooBig) && limit > 1 {
			limit = (limit + 1) / 2
			continue
		}
		if errors.Is(err, badger.ErrTxnTooBig) {
			// One entry whose writes fit but not with what flush adds.
			return s.refuseTooBig(logs[0], results), nil
		}
		if err != nil {
			// The state DB failing is fatal for consistency: stop applying
			// rather than diverge from the log.
			panic(fmt.Sprintf("store: commit applied batch: %v", err))
		}
		s.setApplied(last)
		s.committed(a)
		s.countEnded(a.ended)
		s.tasksStarted.Add(a.started)
		s.tasksFinished.Add(a.finished)
		if a.pubs {
			s.pubGen.Add(1) // after the commit: see PublicationsGeneration
		}
		if a.pulls {
			s.pullsGen.Add(1)
		}
		return limit, a.events
	}
}

// refuseTooBig rejects one entry too big for a transaction: nothing of it
// is applied, only its index recorded. A single command is refused with
// EInvalid; a batch with ErrBatchTooBig, for its proposer to send its
// commands one by one.
func (s *Store) refuseTooBig(l *raft.Log, results []any) int {
	results[0] = Errorf(EInvalid, "request too large")
	if isBatch(l.Data) {
		results[0] = ErrBatchTooBig
	}
	if err := s.saveApplied(l.Index); err != nil {
		s.logger.Error("save applied index", "err", err)
	}
	s.setApplied(l.Index) // a follower waiting for this index learns the refusal at once
	return 1
}

func (s *Store) saveApplied(index uint64) error {
	return s.db.Update(func(txn *badger.Txn) error { return putJSON(txn, []byte(kApplied), index) })
}

// apply applies one log entry: a command, or a batch of them (batch.go).
func (a *applier) apply(data []byte) (any, error) {
	var env envelope
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, Errorf(EInvalid, "undecodable command")
	}
	if env.Type == batchType {
		return a.applyBatch(&env)
	}
	return a.applyCommand(&env)
}

func (a *applier) applyCommand(env *envelope) (any, error) {
	e, ok := commands[env.Type]
	if !ok {
		return nil, Errorf(EInvalid, "unknown command %q", env.Type)
	}
	if v := e.info().Version; env.V > v {
		return nil, Errorf(EUnavailable, "command %s v%d is newer than this binary (v%d)", env.Type, env.V, v)
	}
	if env.Audit != nil && (e.auditsFrom() == 0 || env.V < e.auditsFrom()) {
		return nil, Errorf(EInvalid, "command %s v%d does not carry audit records", env.Type, env.V)
	}
	a.at = env.Time
	a.written = nil
	a.auditDetail = ""
	res, err := e.applyData(a, env.Data)
	if err == nil && env.Audit != nil {
		err = a.carriedAudit(*env.Audit)
	}
	return res, err
}

// flush writes cached jobs and nodes, maintaining the job state indexes.
func (a *applier) flush() error {
	for id, j := range a.jobs {
		old, ok := a.dirty[id]
		if !ok {
			continue
		}
		if old != j.State {
			if Terminal(j.State) {
				if a.ended == nil {
					a.ended = map[string]uint64{}
				}
				a.ended[j.State]++
			}
			if old != "" {
				if err := a.txn.Delete(jobStateKey(old, id)); err != nil {
					return err
				}
				if err := a.txn.Delete(jobOwnerStateKey(j.Owner, old, id)); err != nil {
					return err
				}
			}
			if err := a.txn.Set(jobStateKey(j.State, id), nil); err != nil {
				return err
			}
			if err := a.txn.Set(jobOwnerStateKey(j.Owner, j.State, id), nil); err != nil {
				return err
			}
		}
		// The state record only: the spec was written once, at submission.
		if err := a.writeJobState(j); err != nil {
			return err
		}
		jc := *j
		a.events = append(a.events, Event{Type: "job", Owner: j.Owner, Job: &jc})
	}
	for name, u := range a.usage {
		if err := putJSON(a.txn, userUsageKey(name), u); err != nil {
			return err
		}
	}
	for name, u := range a.qusage {
		if err := putJSON(a.txn, queueUsageKey(name), u); err != nil {
			return err
		}
	}
	for _, n := range a.nodes {
		if err := putJSON(a.txn, nodeKey(n.Name), n); err != nil {
			return err
		}
		nc := *n
		a.events = append(a.events, Event{Type: "node", Node: &nc})
	}
	return nil
}

// job loads a job for modification; flush writes its state back (its
// spec is never changed or written again).
func (a *applier) job(id string) (*Job, error) {
	if j, ok := a.jobs[id]; ok {
		return j, nil
	}
	j, err := a.loadJob(id)
	if err != nil {
		return nil, err
	}
	a.jobs[id] = j
	a.dirty[id] = j.State
	return j, nil
}

// userUsage loads a user's usage for modification; flush writes it back.
func (a *applier) userUsage(name string) (*UserUsage, error) {
	if u, ok := a.usage[name]; ok {
		return u, nil
	}
	var u UserUsage
	if err := getJSON(a.txn, userUsageKey(name), &u); err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	a.usage[name] = &u
	return &u, nil
}

// quota returns a user's quota (zero: none), read once per batch.
func (a *applier) quota(name string) (Resources, error) {
	if q, ok := a.quotas[name]; ok {
		return q, nil
	}
	var u User
	if err := getJSON(a.txn, userKey(name), &u); err != nil && !errors.Is(err, ErrNotFound) {
		return Resources{}, err
	}
	a.quotas[name] = u.Quota
	return u.Quota, nil
}

func (a *applier) node(name string) (*Node, error) {
	if n, ok := a.nodes[name]; ok {
		return n, nil
	}
	var n Node
	if err := getJSON(a.txn, nodeKey(name), &n); err != nil {
		return nil, err
	}
	a.nodes[name] = &n
	return &n, nil
}

func (a *applier) bootstrap(c *Bootstrap) (*Token, error) {
	ok, err := exists(a.txn, []byte(kCluster))
	if err != nil || ok {
		return nil, err
	}
	if err := putJSON(a.txn, []byte(kCluster), c.Cluster); err != nil {
		return nil, err
	}
	if _, err := a.createUser(&CreateUser{User: c.Admin}); err != nil {
		return nil, err
	}
	return a.createToken(&CreateToken{Token: c.Token, Hash: c.TokenHash})
}

func (a *applier) createUser(c *CreateUser) (*User, error) {
	ok, err := exists(a.txn, userKey(c.User.Name))
	if err != nil {
		return nil, err
	}
	if ok {
		return nil, Errorf(EConflict, "user %q already exists", c.User.Name)
	}
	u := c.User
	u.Created = a.at
	if err := putJSON(a.txn, userKey(u.Name), u); err != nil {
		return nil, err
	}
	a.events = append(a.events, Event{Type: "user", Name: u.Name})
	return &u, nil
}

func (a *applier) updateUser(c *UpdateUser) (*User, error) {
	var u User
	if err := getJSON(a.txn, userKey(c.Name), &u); err != nil {
		return nil, err
	}
	if c.Disabled != nil {
		u.Disabled = *c.Disabled
	}
	if len(c.PasswordHash) > 0 {
		u.PasswordHash = c.PasswordHash
	}
	if c.StorageQuota != nil {
		if *c.StorageQuota < 0 {
			return nil, Errorf(EInvalid, "storage_quota: must not be negative")
		}
		u.StorageQuota = *c.StorageQuota
	}
	if c.Quota != nil {
		if c.Quota.CPU < 0 || c.Quota.Memory < 0 || c.Quota.GPUs < 0 {
			return nil, Errorf(EInvalid, "quota: must not be negative")
		}
		u.Quota = *c.Quota
		a.quotas[u.Name] = u.Quota
	}
	if c.Weight != nil {
		if w := *c.Weight; !(w > 0) || w > MaxQueueWeight {
			return nil, Errorf(EInvalid, "weight: must be more than 0 and at most %g", float64(MaxQueueWeight))
		}
		u.Weight = *c.Weight
	}
	if err := putJSON(a.txn, userKey(u.Name), u); err != nil {
		return nil, err
	}
	if c.EndSessions {
		if err := a.endSessions(u.Name, c.KeepSession); err != nil {
			return nil, err
		}
	}
	a.events = append(a.events, Event{Type: "user", Name: u.Name})
	return &u, nil
}

func (a *applier) createToken(c *CreateToken) (*Token, error) {
	t := c.Token
	t.Created = a.at
	if err := putJSON(a.txn, tokenKey(c.Hash), tokenRecord{Token: t, Hash: c.Hash}); err != nil {
		return nil, err
	}
	if err := a.txn.Set(userTokenKey(t.User, t.ID), []byte(c.Hash)); err != nil {
		return nil, err
	}
	return &t, nil
}

// tokenRecord stores the hash too (Token.Hash is hidden from JSON output).
type tokenRecord struct {
	Token
	Hash string `json:"hash"`
}

func (a *applier) deleteToken(c *DeleteToken) (None, error) {
	item, err := a.txn.Get(userTokenKey(c.User, c.ID))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return None{}, Errorf(ENotFound, "token %s not found", c.ID)
	}
	if err != nil {
		return None{}, err
	}
	hash, err := item.ValueCopy(nil)
	if err != nil {
		return None{}, err
	}
	if err := a.txn.Delete(tokenKey(string(hash))); err != nil {
		return None{}, err
	}
	return None{}, a.txn.Delete(userTokenKey(c.User, c.ID))
}

// endSessions deletes the user's session tokens but keep (API tokens stay).
func (a *applier) endSessions(user, keep string) error {
	var ended []tokenRecord
	it := a.txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pUserToken + user + "/")})
	for it.Rewind(); it.Valid(); it.Next() {
		hash, err := it.Item().ValueCopy(nil)
		if err != nil {
			it.Close()
			return err
		}
		var t tokenRecord
		switch err := getJSON(a.txn, tokenKey(string(hash)), &t); {
		case errors.Is(err, ErrNotFound):
			continue
		case err != nil:
			it.Close()
			return err
		}
		if t.Session && t.ID != keep {
			ended = append(ended, t)
		}
	}
	it.Close()
	for _, t := range ended {
		if err := a.txn.Delete(tokenKey(t.Hash)); err != nil {
			return err
		}
		if err := a.txn.Delete(userTokenKey(user, t.ID)); err != nil {
			return err
		}
	}
	return nil
}

func (a *applier) upsertNode(c *UpsertNode) (*Node, error) {
	if err := ValidDevices(c.Node.Devices); err != nil {
		return nil, err
	}
	n, err := a.node(c.Node.Name)
	if errors.Is(err, ErrNotFound) {
		nn := c.Node
		nn.State = NodeReady
		nn.Allocated = Resources{}
		nn.Running = 0
		nn.Devices = nil
		nn.redeclare(c.Node.Devices)
		nn.Joined = a.at
		nn.Updated = a.at
		a.nodes[nn.Name] = &nn
		return &nn, nil
	}
	if err != nil {
		return nil, err
	}
	n.Addr, n.APIAddr, n.Capacity, n.Labels, n.Updated = c.Node.Addr, c.Node.APIAddr, c.Node.Capacity, c.Node.Labels, a.at
	// Capacity.GPUs is the number of declared devices, whatever was sent.
	n.redeclare(c.Node.Devices)
	if n.State == NodeDown {
		n.State = NodeReady
	}
	return n, nil
}

func (a *applier) setNodeState(c *SetNodeState) (*Node, error) {
	switch c.State {
	case NodeReady, NodeDraining, NodeDown:
	default:
		return nil, Errorf(EInvalid, "state: want ready, draining or down")
	}
	n, err := a.node(c.Name)
	if errors.Is(err, ErrNotFound) {
		return nil, Errorf(ENotFound, "node %q not found", c.Name)
	}
	if err != nil {
		return nil, err
	}
	n.State = c.State
	n.DrainDeadline = time.Time{}
	if c.State == NodeDraining {
		n.DrainDeadline = c.Deadline
	}
	n.Updated = a.at
	return n, nil
}

func (a *applier) evictNode(c *EvictNode) (*Node, error) {
	n, err := a.node(c.Name)
	if errors.Is(err, ErrNotFound) {
		return nil, Errorf(ENotFound, "node %q not found", c.Name)
	}
	if err != nil {
		return nil, err
	}
	// Re-checked on apply: the node may have been readied meanwhile.
	if n.State != NodeDraining || n.DrainDeadline.IsZero() || a.at.Before(n.DrainDeadline) {
		return n, nil
	}
	if err := a.endNodeAttempts(c.Name, "moved off node "+c.Name+" when its drain deadline passed"); err != nil {
		return nil, err
	}
	return n, nil
}
