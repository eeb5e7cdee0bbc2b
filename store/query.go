package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/dgraph-io/badger/v4"
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// Cluster returns the cluster identity, or ErrNotFound before bootstrap.
func (s *Store) Cluster() (ClusterInfo, error) {
	var c ClusterInfo
	err := s.view(func(txn *badger.Txn) error { return getJSON(txn, []byte(kCluster), &c) })
	return c, err
}

// User returns an account.
func (s *Store) User(name string) (*User, error) {
	var u User
	err := s.view(func(txn *badger.Txn) error { return getJSON(txn, userKey(name), &u) })
	if err != nil {
		return nil, err
	}
	return &u, nil
}

// Users lists all accounts.
func (s *Store) Users() ([]User, error) {
	var out []User
	err := s.scan(pUser, func(_ []byte, v []byte) (bool, error) {
		var u User
		if err := json.Unmarshal(v, &u); err != nil {
			return false, err
		}
		out = append(out, u)
		return true, nil
	})
	return out, err
}

// Usages returns every user's usage (users with nothing placed may be
// missing or zero).
func (s *Store) Usages() (map[string]UserUsage, error) { return s.usages(pUserUsage) }

// usages reads the UserUsage records under prefix (uu/ or qu/), by name.
func (s *Store) usages(prefix string) (map[string]UserUsage, error) {
	out := map[string]UserUsage{}
	err := s.scan(prefix, func(k []byte, v []byte) (bool, error) {
		var u UserUsage
		if err := json.Unmarshal(v, &u); err != nil {
			return false, err
		}
		out[strings.TrimPrefix(string(k), prefix)] = u
		return true, nil
	})
	return out, err
}

// Usage returns one user's usage.
func (s *Store) Usage(user string) (UserUsage, error) {
	var u UserUsage
	err := s.view(func(txn *badger.Txn) error { return getJSON(txn, userUsageKey(user), &u) })
	if errors.Is(err, ErrNotFound) {
		err = nil
	}
	return u, err
}

// Quotas returns the quota of every user that has one.
func (s *Store) Quotas() (map[string]Resources, error) {
	users, err := s.Users()
	if err != nil {
		return nil, err
	}
	out := map[string]Resources{}
	for _, u := range users {
		if !u.Quota.IsZero() {
			out[u.Name] = u.Quota
		}
	}
	return out, nil
}

// UserWeights returns the fair-share weight of every user that has one.
func (s *Store) UserWeights() (map[string]float64, error) {
	users, err := s.Users()
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, u := range users {
		if u.Weight > 0 {
			out[u.Name] = u.Weight
		}
	}
	return out, nil
}

// TokenByHash looks a token up by the SHA-256 hex of its secret.
func (s *Store) TokenByHash(hash string) (*Token, error) {
	var t tokenRecord
	err := s.view(func(txn *badger.Txn) error { return getJSON(txn, tokenKey(hash), &t) })
	if err != nil {
		return nil, err
	}
	return &t.Token, nil
}

// Tokens lists a user's tokens.
func (s *Store) Tokens(user string) ([]Token, error) {
	var out []Token
	err := s.view(func(txn *badger.Txn) error {
		prefix := []byte(pUserToken + user + "/")
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			hash, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			var t tokenRecord
			if err := getJSON(txn, tokenKey(string(hash)), &t); err != nil {
				if errors.Is(err, ErrNotFound) {
					continue
				}
				return err
			}
			out = append(out, t.Token)
		}
		return nil
	})
	return out, err
}

// Job returns a job.
func (s *Store) Job(id string) (*Job, error) {
	var j Job
	err := s.view(func(txn *badger.Txn) error { return s.getJob(txn, id, &j) })
	if err != nil {
		return nil, err
	}
	return &j, nil
}

// JobFilter selects jobs for ListJobs.
type JobFilter struct {
	Owner  string // empty: all owners
	State  string // empty: all states
	Query  string // substring of id, name, image or owner
	Limit  int
	Cursor string // id of the last job of the previous page
}

// maxQueryScan bounds the index entries a text search examines per page.
const maxQueryScan = 20000

// ListJobs returns jobs newest first through the owner/state indexes, and
// the cursor for the next page ("" when there is none).
func (s *Store) ListJobs(f JobFilter) ([]Job, string, error) {
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 50
	}
	var prefix string
	switch {
	case f.Owner != "" && f.State != "":
		prefix = pJobOwnerSt + f.Owner + "/" + f.State + "/"
	case f.Owner != "":
		prefix = pJobOwner + f.Owner + "/"
	case f.State != "":
		prefix = pJobState + f.State + "/"
	default:
		prefix = pJob
	}
	var out []Job
	next := ""
	q := strings.ToLower(f.Query)
	err := s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefix), Reverse: true})
		defer it.Close()
		seek := prefix + "\xff"
		if f.Cursor != "" {
			seek = prefix + f.Cursor
		}
		scanned := 0
		for it.Seek([]byte(seek)); it.Valid(); it.Next() {
			id := string(it.Item().Key()[len(prefix):])
			if id == f.Cursor {
				continue
			}
			scanned++
			if len(out) == f.Limit {
				next = out[len(out)-1].ID
				break
			}
			var j Job
			if err := s.getJob(txn, id, &j); err != nil {
				if errors.Is(err, ErrNotFound) {
					continue
				}
				return err
			}
			if q != "" && !matches(&j, q) {
				if scanned > maxQueryScan {
					next = id
					break
				}
				continue
			}
			out = append(out, j)
		}
		return nil
	})
	return out, next, err
}

func matches(j *Job, q string) bool {
	for _, s := range []string{j.ID, j.Spec.Name, j.Spec.Image, j.Owner} {
		if strings.Contains(strings.ToLower(s), q) {
			return true
		}
	}
	return false
}

// Tasks lists a job's tasks in index order from cursor (an index), optionally
// of one state, and the next cursor (-1 when there is none).
func (s *Store) Tasks(jobID, state string, cursor, limit int) ([]Task, int, error) {
	if limit <= 0 || limit > MaxArraySize {
		limit = 1000
	}
	var out []Task
	next := -1
	prefix := pTask + jobID + "/"
	err := s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefix), PrefetchValues: true, PrefetchSize: 256})
		defer it.Close()
		for it.Seek([]byte(prefix + idx(max(cursor, 0)))); it.Valid(); it.Next() {
			var t Task
			if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &t) }); err != nil {
				return err
			}
			if state != "" && t.State != state {
				continue
			}
			if len(out) == limit {
				next = t.Index
				break
			}
			out = append(out, t)
		}
		return nil
	})
	return out, next, err
}

// Task returns one task.
func (s *Store) Task(jobID string, i int) (*Task, error) {
	var t Task
	err := s.view(func(txn *badger.Txn) error { return getJSON(txn, taskKey(jobID, i), &t) })
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// Attempts lists a task's attempts, oldest first.
func (s *Store) Attempts(jobID string, i int) ([]Attempt, error) {
	var out []Attempt
	err := s.scan(pAttempt+jobID+"/"+idx(i)+"/", func(_ []byte, v []byte) (bool, error) {
		var a Attempt
		if err := json.Unmarshal(v, &a); err != nil {
			return false, err
		}
		out = append(out, a)
		return true, nil
	})
	return out, err
}

// Attempt returns one attempt.
func (s *Store) Attempt(jobID string, i, n int) (*Attempt, error) {
	var a Attempt
	err := s.view(func(txn *badger.Txn) error { return getJSON(txn, attemptKey(jobID, i, n), &a) })
	if err != nil {
		return nil, err
	}
	return &a, nil
}

// Node returns a node.
func (s *Store) Node(name string) (*Node, error) {
	var n Node
	err := s.view(func(txn *badger.Txn) error { return getJSON(txn, nodeKey(name), &n) })
	if err != nil {
		return nil, err
	}
	return &n, nil
}

// Nodes lists all nodes by name.
func (s *Store) Nodes() ([]Node, error) {
	var out []Node
	err := s.scan(pNode, func(_ []byte, v []byte) (bool, error) {
		var n Node
		if err := json.Unmarshal(v, &n); err != nil {
			return false, err
		}
		out = append(out, n)
		return true, nil
	})
	return out, err
}

// QueuedTask is a task waiting for placement, with what placing it needs.
type QueuedTask struct {
	JobID    string
	Task     int
	Owner    string
	Queue    string // "default" or the job's queue
	Priority int
	CPU      int64
	Memory   int64
	GPUs     int
	// Constraints are the node labels the job requires (shared, read-only).
	Constraints map[string]string
	NoPreempt   bool
	// Inputs are the job's inputs (shared, read-only): the scheduler
	// prefers nodes that hold them.
	Inputs []Input
}

// Queued returns about limit queued tasks, each queue's highest priority
// first, then in submission order. Each queue has its own window (limit
// shared between the queues, at least 512 each), so a deep queue never
// hides another's tasks.
func (s *Store) Queued(limit int) ([]QueuedTask, error) {
	queues, err := s.Queues()
	if err != nil {
		return nil, err
	}
	limit = max(limit/len(queues), min(limit, 512))
	var out []QueuedTask
	jobs := map[string]*Job{}
	err = s.view(func(txn *badger.Txn) error {
		for _, q := range queues {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(queuePrefix(q.Name))})
			n := 0
			for it.Rewind(); it.Valid() && n < limit; it.Next() {
				jobID, i, ok := parseQueueKey(it.Item().Key())
				if !ok {
					continue
				}
				j, ok := jobs[jobID]
				if !ok {
					j = &Job{}
					if err := s.sharedJob(txn, jobID, j); err != nil {
						if errors.Is(err, ErrNotFound) {
							continue
						}
						it.Close()
						return err
					}
					jobs[jobID] = j
				}
				n++
				out = append(out, QueuedTask{JobID: jobID, Task: i, Owner: j.Owner, Queue: q.Name, Priority: j.Spec.Priority,
					CPU: j.Spec.CPU, Memory: j.Spec.Memory, GPUs: j.Spec.GPUs, Constraints: j.Spec.Constraints, NoPreempt: j.Spec.NoPreempt, Inputs: j.Spec.Inputs})
			}
			it.Close()
		}
		return nil
	})
	return out, err
}

// ActiveAttempt is an attempt placed on a node and not yet ended, with the
// job it belongs to. The job's spec is shared with the store's cache of
// specs: read-only.
type ActiveAttempt struct {
	Attempt Attempt
	Job     Job
}

// NodeAttempts lists the attempts placed on a node that have not ended.
func (s *Store) NodeAttempts(node string) ([]ActiveAttempt, error) {
	return s.activeUnder(pNodeActive + node + "/")
}

// activeUnder reads the attempts of the node-active index under prefix,
// each with its job.
func (s *Store) activeUnder(prefix string) ([]ActiveAttempt, error) {
	var out []ActiveAttempt
	jobs := map[string]*Job{}
	err := s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefix)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			jobID, i, n, ok := parseNodeActiveKey(it.Item().Key())
			if !ok {
				continue
			}
			var a Attempt
			if err := getJSON(txn, attemptKey(jobID, i, n), &a); err != nil {
				return err
			}
			j, ok := jobs[jobID]
			if !ok {
				j = &Job{}
				if err := s.sharedJob(txn, jobID, j); err != nil {
					return err
				}
				jobs[jobID] = j
			}
			out = append(out, ActiveAttempt{Attempt: a, Job: *j})
		}
		return nil
	})
	return out, err
}

// CountJobs counts jobs by state through the state index (keys only).
func (s *Store) CountJobs() (map[string]int, error) {
	out := map[string]int{}
	err := s.view(func(txn *badger.Txn) error {
		for _, st := range States {
			prefix := []byte(pJobState + st + "/")
			it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
			for it.Rewind(); it.Valid(); it.Next() {
				out[st]++
			}
			it.Close()
		}
		return nil
	})
	return out, err
}

// QueueDepth counts queued, placeable tasks of every queue.
func (s *Store) QueueDepth() (int, error) {
	n := 0
	err := s.view(func(txn *badger.Txn) error {
		for _, p := range []string{pQueue, pQueueNamed} {
			if err := scanKeys(txn, p, func([]byte) bool { n++; return true }); err != nil {
				return err
			}
		}
		return nil
	})
	return n, err
}

// Active lists every attempt placed on a node and not yet ended (the
// scheduler's preemption step reads it).
func (s *Store) Active() ([]ActiveAttempt, error) { return s.activeUnder(pNodeActive) }

func (s *Store) scan(prefix string, fn func(k, v []byte) (bool, error)) error {
	return s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefix), PrefetchValues: true, PrefetchSize: 100})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var cont bool
			err := it.Item().Value(func(v []byte) error {
				var err error
				cont, err = fn(it.Item().Key(), v)
				return err
			})
			if err != nil {
				return err
			}
			if !cont {
				return nil
			}
		}
		return nil
	})
}

// JobAttempts calls fn with the attempts of a job's tasks from task from
// on, in task then attempt order, until fn returns false: one scan of the
// job's attempt records, for views of a whole array (the console's
// timeline) that would otherwise read each task's attempts apart.
func (s *Store) JobAttempts(jobID string, from int, fn func(Attempt) bool) error {
	prefix := []byte(pAttempt + jobID + "/")
	start := []byte(pAttempt + jobID + "/" + idx(max(from, 0)) + "/")
	return s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: 100})
		defer it.Close()
		for it.Seek(start); it.Valid(); it.Next() {
			var a Attempt
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &a) }); err != nil {
				return fmt.Errorf("read attempt %s: %w", it.Item().Key(), err)
			}
			if !fn(a) {
				return nil
			}
		}
		return nil
	})
}
