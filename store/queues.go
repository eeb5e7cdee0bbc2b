package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// DefaultQueue is the queue of a job that names none. It always exists: an
// admin may change its settings (which stores a record for it) but not
// remove it.
const DefaultQueue = "default"

// Placement modes of a queue: spread tasks over nodes (the node with the
// most room first) or pack them (the fullest node that fits first), which
// keeps whole nodes free for large tasks.
const (
	PlaceSpread = "spread"
	PlacePack   = "pack"
)

// DefaultGrace is how long a preempted task has between SIGTERM and
// SIGKILL unless its queue says otherwise.
const DefaultGrace = 30 * time.Second

// Queue is an admin-defined share of the cluster. A queue's guaranteed
// share is its weight over the sum of the weights of all queues; within it,
// tasks go by priority, then by dominant resource fairness between users.
type Queue struct {
	Name   string  `json:"name"`
	Weight float64 `json:"weight"`
	// Limit bounds what the queue's placed tasks hold at once (a zero
	// field: no limit on that resource).
	Limit Resources `json:"limit,omitzero"`
	// Borrow lets the queue use idle capacity beyond its guaranteed share;
	// what it borrowed is preempted when a queue under its share needs it.
	Borrow bool `json:"borrow,omitempty"`
	// Users may submit to the queue (empty: everyone).
	Users []string `json:"users,omitempty"`
	// Priority is given to a job that sets none; MaxRunTime bounds (and is
	// the default of) a job's timeout per attempt.
	Priority   int      `json:"priority,omitempty"`
	MaxRunTime Duration `json:"max_run_time,omitempty"`
	// Constraints are node labels every task of the queue needs.
	Constraints map[string]string `json:"constraints,omitempty"`
	// Grace is a preempted task's time between SIGTERM and SIGKILL (0:
	// DefaultGrace).
	Grace     Duration  `json:"grace,omitempty"`
	Placement string    `json:"placement,omitempty"` // spread (default) or pack
	Created   time.Time `json:"created,omitzero"`
	Updated   time.Time `json:"updated,omitzero"`
}

// GraceOrDefault is the queue's preemption grace period.
func (q *Queue) GraceOrDefault() time.Duration {
	if q.Grace > 0 {
		return time.Duration(q.Grace)
	}
	return DefaultGrace
}

// Allows reports whether user may submit to the queue.
func (q *Queue) Allows(user string) bool {
	return len(q.Users) == 0 || slices.Contains(q.Users, user)
}

// defaultQueue is the default queue's settings before an admin changes them.
func defaultQueue() Queue {
	return Queue{Name: DefaultQueue, Weight: 1, Borrow: true}
}

// Bounds of a queue's settings.
const (
	MaxQueues      = 100
	MaxQueueWeight = 1e6
)

// ValidQueueName checks a queue name: a lower-case letter, then letters,
// digits and '-', at most 63.
func ValidQueueName(name string) error {
	ok := name != "" && len(name) <= 63 && name[0] >= 'a' && name[0] <= 'z'
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			ok = false
		}
	}
	if !ok {
		return Errorf(EInvalid, "queue: %q is not a valid name (a lower-case letter, then letters, digits and -; at most 63)", name)
	}
	return nil
}

// Validate reports the first problem with the queue's settings.
func (q *Queue) Validate() error {
	bad := func(format string, args ...any) error { return Errorf(EInvalid, format, args...) }
	if err := ValidQueueName(q.Name); err != nil {
		return err
	}
	switch {
	case !(q.Weight > 0) || q.Weight > MaxQueueWeight:
		return bad("weight: must be more than 0 and at most %g, got %g", float64(MaxQueueWeight), q.Weight)
	case q.Limit.CPU < 0 || q.Limit.Memory < 0 || q.Limit.GPUs < 0:
		return bad("limit: must not be negative")
	case q.Priority < -MaxPriority || q.Priority > MaxPriority:
		return bad("priority: must be between %d and %d", -MaxPriority, MaxPriority)
	case q.MaxRunTime < 0:
		return bad("max_run_time: must not be negative")
	case q.Grace < 0 || time.Duration(q.Grace) > time.Hour:
		return bad("grace: must be between 0 and 1h")
	case q.Placement != "" && q.Placement != PlaceSpread && q.Placement != PlacePack:
		return bad("placement: %q is neither spread nor pack", q.Placement)
	case len(q.Users) > 1000:
		return bad("users: at most 1000")
	case len(q.Constraints) > 20:
		return bad("constraints: at most 20")
	}
	for k, v := range q.Constraints {
		if err := ValidNodeLabel(k, v); err != nil {
			return bad("constraints: %v", err)
		}
	}
	return nil
}

// CreateQueue adds a queue (admins only; the API checks).
type CreateQueue struct {
	Queue Queue `json:"queue"`
}

// UpdateQueue replaces a queue's settings; the name stays.
type UpdateQueue struct {
	Queue Queue `json:"queue"`
}

// DeleteQueue removes a queue that holds no unended job.
type DeleteQueue struct {
	Name string `json:"name"`
}

func (a *applier) createQueue(c *CreateQueue) (*Queue, error) {
	q := c.Queue
	if err := q.Validate(); err != nil {
		return nil, err
	}
	if q.Name == DefaultQueue {
		return nil, Errorf(EConflict, "queue default always exists; change it with an update")
	}
	if ok, err := exists(a.txn, queueRecKey(q.Name)); err != nil || ok {
		if ok {
			return nil, Errorf(EConflict, "queue %s already exists", q.Name)
		}
		return nil, err
	}
	n := 0
	if err := scanKeys(a.txn, pQueueRec, func([]byte) bool { n++; return true }); err != nil {
		return nil, err
	}
	if n >= MaxQueues {
		return nil, Errorf(EInvalid, "queue: at most %d queues", MaxQueues)
	}
	q.Created, q.Updated = a.at, a.at
	a.queues = nil
	return &q, putJSON(a.txn, queueRecKey(q.Name), q)
}

func (a *applier) updateQueue(c *UpdateQueue) (*Queue, error) {
	q := c.Queue
	if err := q.Validate(); err != nil {
		return nil, err
	}
	old, err := getQueue(a.txn, q.Name)
	if err != nil {
		return nil, err
	}
	q.Created, q.Updated = old.Created, a.at
	if q.Created.IsZero() {
		q.Created = a.at
	}
	a.queues = nil
	return &q, putJSON(a.txn, queueRecKey(q.Name), q)
}

func (a *applier) deleteQueue(c *DeleteQueue) (None, error) {
	if c.Name == DefaultQueue {
		return None{}, Errorf(EConflict, "queue default cannot be removed")
	}
	if _, err := getQueue(a.txn, c.Name); err != nil {
		return None{}, err
	}
	queued := 0
	if err := scanKeys(a.txn, queuePrefix(c.Name), func([]byte) bool { queued++; return false }); err != nil {
		return None{}, err
	}
	use, err := a.queueUsage(c.Name)
	if err != nil {
		return None{}, err
	}
	if queued > 0 || use.Tasks > 0 {
		return None{}, Errorf(EConflict, "queue %s still has queued or running tasks; cancel its jobs or let them end first", c.Name)
	}
	delete(a.qusage, c.Name)
	a.queues = nil
	if err := a.txn.Delete(queueUsageKey(c.Name)); err != nil {
		return None{}, err
	}
	return None{}, a.txn.Delete(queueRecKey(c.Name))
}

// getQueue reads a queue's settings; the default queue exists without a
// record.
func getQueue(txn *badger.Txn, name string) (Queue, error) {
	var q Queue
	err := getJSON(txn, queueRecKey(name), &q)
	switch {
	case errors.Is(err, ErrNotFound) && name == DefaultQueue:
		return defaultQueue(), nil
	case errors.Is(err, ErrNotFound):
		return q, Errorf(ENotFound, "queue %s does not exist (gantry queue ls lists them)", name)
	}
	return q, err
}

// admitToQueue resolves the queue a job is submitted to and applies its
// settings to the spec: the queue must exist and let the owner submit; its
// default priority fills an unset one, its maximum run time bounds the
// timeout, its node constraints join the job's.
func (a *applier) admitToQueue(owner string, spec *JobSpec) (string, error) {
	name := spec.Queue
	if name == "" {
		name = DefaultQueue
	}
	q, err := getQueue(a.txn, name)
	if errors.Is(err, ErrNotFound) {
		return "", Errorf(EInvalid, "queue: %s does not exist (gantry queue ls lists the queues)", name)
	}
	if err != nil {
		return "", err
	}
	if !q.Allows(owner) {
		return "", Errorf(EForbidden, "queue: you may not submit to %s (an admin can add you with gantry queue update %s --users ...)", name, name)
	}
	if spec.Priority == 0 {
		spec.Priority = q.Priority
	}
	if q.MaxRunTime > 0 {
		switch {
		case spec.Timeout == 0:
			spec.Timeout = q.MaxRunTime
		case spec.Timeout > q.MaxRunTime:
			return "", Errorf(EInvalid, "timeout: %s is more than queue %s allows (%s)", time.Duration(spec.Timeout), name, time.Duration(q.MaxRunTime))
		}
	}
	if len(q.Constraints) > 0 {
		c := maps.Clone(spec.Constraints)
		if c == nil {
			c = map[string]string{}
		}
		for k, v := range q.Constraints {
			if have, ok := c[k]; ok && have != v {
				return "", Errorf(EInvalid, "constraints: %s=%s conflicts with queue %s, which runs on %s=%s", k, have, name, k, v)
			}
			c[k] = v
		}
		spec.Constraints = c
	}
	spec.Queue = name
	if name == DefaultQueue {
		return "", nil // the record's "" is the default queue (and was before queues existed)
	}
	return name, nil
}

// queueUsage loads a queue's usage for modification; flush writes it back.
func (a *applier) queueUsage(name string) (*UserUsage, error) {
	if name == "" {
		name = DefaultQueue
	}
	if u, ok := a.qusage[name]; ok {
		return u, nil
	}
	var u UserUsage
	if err := getJSON(a.txn, queueUsageKey(name), &u); err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	if a.qusage == nil {
		a.qusage = map[string]*UserUsage{}
	}
	a.qusage[name] = &u
	return &u, nil
}

// queueLimit is a queue's resource limit, read once per batch.
func (a *applier) queueLimit(name string) (Resources, error) {
	if name == "" {
		name = DefaultQueue
	}
	if a.queues == nil {
		a.queues = map[string]Resources{}
	}
	if r, ok := a.queues[name]; ok {
		return r, nil
	}
	q, err := getQueue(a.txn, name)
	if errors.Is(err, ErrNotFound) {
		err = nil // removed while its job ran: no limit
	}
	if err != nil {
		return Resources{}, err
	}
	a.queues[name] = q.Limit
	return q.Limit, nil
}

// Queues returns every queue, the default one first, then by name.
func (s *Store) Queues() ([]Queue, error) {
	var out []Queue
	haveDefault := false
	err := s.scan(pQueueRec, func(k, v []byte) (bool, error) {
		var q Queue
		if err := json.Unmarshal(v, &q); err != nil {
			return false, err
		}
		haveDefault = haveDefault || q.Name == DefaultQueue
		out = append(out, q)
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	if !haveDefault {
		out = append(out, defaultQueue())
	}
	sort.Slice(out, func(i, j int) bool {
		if (out[i].Name == DefaultQueue) != (out[j].Name == DefaultQueue) {
			return out[i].Name == DefaultQueue
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// Queue returns one queue's settings.
func (s *Store) Queue(name string) (Queue, error) {
	var q Queue
	err := s.view(func(txn *badger.Txn) error {
		var err error
		q, err = getQueue(txn, name)
		return err
	})
	return q, err
}

// QueueUsages is what each queue's placed, unended tasks hold.
func (s *Store) QueueUsages() (map[string]UserUsage, error) { return s.usages(pQueueUsage) }

// QueuedCount counts the queued, placeable tasks of one queue.
func (s *Store) QueuedCount(queue string) (int, error) {
	n := 0
	err := s.view(func(txn *badger.Txn) error {
		return scanKeys(txn, queuePrefix(queue), func([]byte) bool { n++; return true })
	})
	return n, err
}

// scanKeys calls fn with each key under prefix until it returns false.
func scanKeys(txn *badger.Txn, prefix string, fn func(k []byte) bool) error {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefix)})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		if !fn(it.Item().Key()) {
			return nil
		}
	}
	return nil
}

// queuePrefix is where a queue's queued tasks are indexed: the default
// queue keeps the layout of the single queue before queues existed.
func queuePrefix(queue string) string {
	if queue == "" || queue == DefaultQueue {
		return pQueue
	}
	return pQueueNamed + queue + "/"
}

// taskQueueKey is the index entry of a queued task of j.
func taskQueueKey(j *Job, i int) []byte {
	return []byte(fmt.Sprintf("%s%s/%s/%s", queuePrefix(j.Queue), prioRank(j.Spec.Priority), j.ID, idx(i)))
}

// Preempt asks the runners of victims to stop them (the leader's scheduler
// chose them to make room for For, "job/task").
type Preempt struct {
	Victims []Victim `json:"victims"`
}

// Victim is one attempt to preempt, for the task For ("job/index").
type Victim struct {
	JobID string `json:"job"`
	Task  int    `json:"task"`
	N     int    `json:"attempt"`
	For   string `json:"for"`
}

// PreemptResult says how many victims were still running and preemptible
// when the command applied.
type PreemptResult struct {
	Accepted int `json:"accepted"`
}

func (a *applier) preempt(c *Preempt) (*PreemptResult, error) {
	res := &PreemptResult{}
	for _, v := range c.Victims {
		var at Attempt
		if err := getJSON(a.txn, attemptKey(v.JobID, v.Task, v.N), &at); err != nil {
			if errors.Is(err, ErrNotFound) {
				continue
			}
			return nil, err
		}
		if Terminal(at.State) || at.Preempt || at.CancelRequested {
			continue
		}
		j, err := a.job(v.JobID)
		if err != nil {
			return nil, err
		}
		if j.Spec.NoPreempt || j.CancelRequested {
			continue
		}
		var t Task
		if err := getJSON(a.txn, taskKey(v.JobID, v.Task), &t); err != nil {
			return nil, err
		}
		if t.Attempts != v.N || Terminal(t.State) {
			continue
		}
		q, err := getQueue(a.txn, orDefault(j.Queue))
		if errors.Is(err, ErrNotFound) {
			q, err = defaultQueue(), nil
		}
		if err != nil {
			return nil, err
		}
		at.Preempt, at.PreemptedBy, at.PreemptAt = true, v.For, a.at
		at.Grace = Duration(q.GraceOrDefault())
		if err := putJSON(a.txn, attemptKey(v.JobID, v.Task, v.N), at); err != nil {
			return nil, err
		}
		// Re-announce the task so the runner of its node acts on it.
		if err := a.setTask(j, &t, t.State); err != nil {
			return nil, err
		}
		res.Accepted++
	}
	return res, nil
}

func orDefault(queue string) string {
	if queue == "" {
		return DefaultQueue
	}
	return queue
}
