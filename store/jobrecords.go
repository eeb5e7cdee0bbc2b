package store

import (
	"bytes"
	"container/list"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/dgraph-io/badger/v4"
)

// A job is two records (DESIGN.md, "A job's spec is written once"):
// jp/<id> holds its JobSpec, written once by job.submit and deleted with
// the job; j/<id> holds the rest (a jobRecord: state, counts, holds, ...),
// small, and rewritten by every change to the job. Callers see the two
// joined, as a Job.

// layoutVersion is the version of the record layout this binary writes
// (m/layout). Layout 1, written before m/layout existed, kept each job's
// spec inside j/<id>; migrateLayout moves it out. Layout 3 adds the
// storage index (store/storage.go), built from the blob links.
const layoutVersion = 3

// jobRecord is what j/<id> holds: a Job less its spec. Spec shadows
// Job.Spec in JSON (the shallower field wins): nil when writing, so the
// record never carries the spec; set when reading a record of layout 1,
// which held it inline.
type jobRecord struct {
	*Job
	Spec *JobSpec `json:"spec,omitempty"`
}

// encodeJobState encodes j's state record (j/<id>).
func encodeJobState(j *Job) ([]byte, error) {
	b, err := json.Marshal(jobRecord{Job: j})
	if err != nil {
		return nil, fmt.Errorf("encode job %s: %w", j.ID, err)
	}
	return b, nil
}

// getJobState reads j/<id> into j, leaving j.Spec as it is. inline is the
// spec a layout-1 record still holds (nil in this layout); raw is the
// record's bytes.
func getJobState(txn *badger.Txn, id string, j *Job) (inline *JobSpec, raw []byte, err error) {
	item, err := txn.Get(jobKey(id))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, nil, ErrNotFound
	}
	if err != nil {
		return nil, nil, fmt.Errorf("get %s: %w", jobKey(id), err)
	}
	raw, err = item.ValueCopy(nil)
	if err != nil {
		return nil, nil, fmt.Errorf("get %s: %w", jobKey(id), err)
	}
	rec := jobRecord{Job: j}
	if err := json.Unmarshal(raw, &rec); err != nil {
		return nil, nil, fmt.Errorf("decode %s: %w", jobKey(id), err)
	}
	return rec.Spec, raw, nil
}

// errNoSpec is a job whose spec record is missing: a broken store, never
// "not found" (callers skip jobs that are not found).
func errNoSpec(id string) error {
	return fmt.Errorf("job %s: its spec record %s is missing", id, jobSpecKey(id))
}

// getJob reads job id with its spec into j. The spec is the caller's own
// (decoded from jp/<id>, or a copy of the cache's): public reads hand it
// to callers that may change it, and never fill the cache, so listing old
// jobs does not push out the specs of the jobs being scheduled.
func (s *Store) getJob(txn *badger.Txn, id string, j *Job) error {
	inline, _, err := getJobState(txn, id, j)
	if err != nil {
		return err
	}
	if inline != nil {
		j.Spec = *inline
		return nil
	}
	r, err := s.specs.read(txn, id)
	if err != nil {
		return err
	}
	if r.hit {
		j.Spec = r.spec.clone()
	} else {
		j.Spec = *r.spec
	}
	return nil
}

// sharedJob reads job id into j with its spec from the cache, reading and
// decoding jp/<id> only when the cache does not hold it: what the
// scheduler and the runner read on every pass. j.Spec's maps and slices
// are shared with the cache: read-only.
func (s *Store) sharedJob(txn *badger.Txn, id string, j *Job) error {
	inline, _, err := getJobState(txn, id, j)
	if err != nil {
		return err
	}
	if inline != nil {
		j.Spec = *inline
		return nil
	}
	r, err := s.specs.read(txn, id)
	if err != nil {
		return err
	}
	if !r.hit {
		s.specs.add(id, r)
	}
	j.Spec = *r.spec
	return nil
}

// clone returns a copy of s that shares nothing mutable with it.
func (s JobSpec) clone() JobSpec {
	c := s
	c.Command = slices.Clone(s.Command)
	c.Env = maps.Clone(s.Env)
	c.RetryOn = slices.Clone(s.RetryOn)
	c.Labels = maps.Clone(s.Labels)
	c.Deps = slices.Clone(s.Deps)
	c.After = slices.Clone(s.After)
	c.AfterAny = slices.Clone(s.AfterAny)
	c.Constraints = maps.Clone(s.Constraints)
	return c
}

// loadJob reads a job for the applier: its state record, and its spec
// from the store's cache (Apply's reads of a job in later batches, a
// task's transitions, decode the spec once). The spec is shared with the
// cache: Apply never changes a loaded job's spec.
func (a *applier) loadJob(id string) (*Job, error) {
	var j Job
	inline, raw, err := getJobState(a.txn, id, &j)
	if err != nil {
		return nil, err
	}
	if a.loaded == nil {
		a.loaded = map[string][]byte{}
	}
	a.loaded[id] = raw
	if inline != nil {
		// A layout-1 record migrateLayout did not reach: flush splits it.
		j.Spec = *inline
		if a.unsplit == nil {
			a.unsplit = map[string]bool{}
		}
		a.unsplit[id] = true
		return &j, nil
	}
	r, err := a.specs.read(a.txn, id)
	if err != nil {
		return nil, err
	}
	if !r.hit {
		// Into the cache once the batch commits: until then the record
		// may still be discarded with the transaction.
		a.specsRead = append(a.specsRead, specAdd{id, r})
	}
	j.Spec = *r.spec
	return &j, nil
}

// putSpec writes a new job's spec record, once.
func (a *applier) putSpec(id string, spec *JobSpec) error {
	b, err := json.Marshal(spec)
	if err != nil {
		return fmt.Errorf("encode spec of job %s: %w", id, err)
	}
	a.jobWrites.Specs++
	a.jobWrites.SpecBytes += uint64(len(b))
	return a.txn.Set(jobSpecKey(id), b)
}

// writeJobState writes a job's state record unless it is what was read
// (a job loaded and left unchanged costs no write); a layout-1 job gets
// its spec record too.
func (a *applier) writeJobState(j *Job) error {
	b, err := encodeJobState(j)
	if err != nil {
		return err
	}
	if raw, ok := a.loaded[j.ID]; !ok || !bytes.Equal(raw, b) {
		a.jobWrites.States++
		a.jobWrites.StateBytes += uint64(len(b))
		if err := a.txn.Set(jobKey(j.ID), b); err != nil {
			return err
		}
	}
	if a.unsplit[j.ID] {
		return a.putSpec(j.ID, &j.Spec)
	}
	return nil
}

// committed runs after a's batch committed: the specs it read go into the
// cache, those of jobs it purged out, and its writes are counted.
func (s *Store) committed(a *applier) {
	for _, r := range a.specsRead {
		s.specs.add(r.id, r.read)
	}
	for _, id := range a.purged {
		s.specs.drop(id)
	}
	w := &s.jobWrites
	w.states.Add(a.jobWrites.States)
	w.stateBytes.Add(a.jobWrites.StateBytes)
	w.specs.Add(a.jobWrites.Specs)
	w.specBytes.Add(a.jobWrites.SpecBytes)
}

// JobWrites counts what Apply wrote to jobs' records since the store was
// opened: state records (j/, one per job changed in a batch) and spec
// records (jp/, one per job submitted), with their bytes.
type JobWrites struct {
	States     uint64 `json:"states"`
	StateBytes uint64 `json:"state_bytes"`
	Specs      uint64 `json:"specs"`
	SpecBytes  uint64 `json:"spec_bytes"`
}

type jobWriteCounters struct{ states, stateBytes, specs, specBytes atomic.Uint64 }

// JobWrites reports what Apply wrote to jobs' records since Open
// (bench/'s write amplification reads it).
func (s *Store) JobWrites() JobWrites {
	w := &s.jobWrites
	return JobWrites{States: w.states.Load(), StateBytes: w.stateBytes.Load(), Specs: w.specs.Load(), SpecBytes: w.specBytes.Load()}
}

// specCacheBytes bounds the memory of the specs the cache holds, each
// counted as its encoded size plus specEntryCost (an ordinary spec of 181
// bytes takes 1.2 KB of heap decoded, with its entry): 256 specs of the
// largest size, about 50,000 ordinary ones.
const (
	specCacheBytes = 64 << 20
	specEntryCost  = 1 << 10
)

// specCache holds decoded specs of the jobs the scheduler, the runner and
// Apply read again and again, so a task's transition neither reads nor
// decodes its job's spec. An entry is good for one version of jp/<id>
// (the Badger version it was read at), so a spec restored from a
// snapshot, or a job id used again after a purge, is never mistaken for
// another. Least recently used out first, by encoded bytes.
type specCache struct {
	mu    sync.Mutex
	max   int64
	size  int64
	items map[string]*list.Element // of *specEntry
	lru   list.List                // front: most recently used
}

type specEntry struct {
	id   string
	read specRead
}

// specRead is a spec as read from jp/<id>: the version and encoded size
// of the record, and whether it came from the cache.
type specRead struct {
	spec    *JobSpec
	version uint64
	size    int64
	hit     bool
}

type specAdd struct {
	id   string
	read specRead
}

func newSpecCache(max int64) *specCache {
	return &specCache{max: max, items: map[string]*list.Element{}}
}

// read returns job id's spec as txn sees it: the cache's when it holds
// that version, else decoded from jp/<id> (hit false; the caller decides
// whether to add it).
func (c *specCache) read(txn *badger.Txn, id string) (specRead, error) {
	item, err := txn.Get(jobSpecKey(id))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return specRead{}, errNoSpec(id)
	}
	if err != nil {
		return specRead{}, fmt.Errorf("get %s: %w", jobSpecKey(id), err)
	}
	r := specRead{version: item.Version(), size: item.ValueSize()}
	if spec := c.get(id, r.version); spec != nil {
		r.spec, r.hit = spec, true
		return r, nil
	}
	var spec JobSpec
	if err := item.Value(func(b []byte) error { return json.Unmarshal(b, &spec) }); err != nil {
		return specRead{}, fmt.Errorf("decode %s: %w", jobSpecKey(id), err)
	}
	r.spec = &spec
	return r, nil
}

func (c *specCache) get(id string, version uint64) *JobSpec {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[id]
	if !ok || e.Value.(*specEntry).read.version != version {
		return nil
	}
	c.lru.MoveToFront(e)
	return e.Value.(*specEntry).read.spec
}

func (e *specEntry) cost() int64 { return e.read.size + specEntryCost }

// add caches a spec read from jp/<id>; a spec larger than the whole
// cache is not kept.
func (c *specCache) add(id string, r specRead) {
	if r.spec == nil || r.size+specEntryCost > c.max {
		return
	}
	r.hit = false
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[id]; ok {
		c.size -= e.Value.(*specEntry).cost()
		c.lru.Remove(e)
	}
	e := &specEntry{id: id, read: r}
	c.items[id] = c.lru.PushFront(e)
	c.size += e.cost()
	for c.size > c.max {
		old := c.lru.Back()
		e := old.Value.(*specEntry)
		c.lru.Remove(old)
		delete(c.items, e.id)
		c.size -= e.cost()
	}
}

func (c *specCache) drop(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[id]; ok {
		c.size -= e.Value.(*specEntry).cost()
		c.lru.Remove(e)
		delete(c.items, id)
	}
}

func (c *specCache) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.items = map[string]*list.Element{}
	c.lru.Init()
	c.size = 0
}

// migrateBatchBytes bounds one migration transaction, well below what
// Badger takes in one (about 4.8 MB with the store's memtables).
const migrateBatchBytes = 2 << 20

// migrateLayout brings a state DB written by an earlier layout to this
// one; Open and Restore call it before the store is used. Layout 1 (no
// m/layout) kept each job's spec inside j/<id>: each such record becomes
// jp/<id> (the spec's bytes as they were) and j/<id> (the other fields
// as they were), both in one transaction, so a crash part-way leaves
// every job whole in one layout or the other and the next start finishes
// the rest. m/layout is written last. It changes nothing a command's
// apply could see, so replicas migrated at different times agree. A DB
// of a newer layout than this binary is refused.
func migrateLayout(db *badger.DB, logger *slog.Logger) error {
	var version int
	err := db.View(func(txn *badger.Txn) error {
		err := getJSON(txn, []byte(kLayout), &version)
		if errors.Is(err, ErrNotFound) {
			version = 1
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("read layout version: %w", err)
	}
	switch {
	case version == layoutVersion:
		return nil
	case version > layoutVersion:
		return fmt.Errorf("the state DB has layout %d, newer than this binary's %d: run a newer gantry", version, layoutVersion)
	}
	moved := 0
	start := []byte(pJob)
	if version >= 2 {
		start = nil // the job records are split already
	}
	for start != nil {
		type split struct{ id, state, spec []byte }
		var batch []split
		var next []byte
		size := 0
		err := db.View(func(txn *badger.Txn) error {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pJob), PrefetchValues: false})
			defer it.Close()
			for it.Seek(start); it.Valid(); it.Next() {
				item := it.Item()
				if len(batch) > 0 && size+int(item.ValueSize()) > migrateBatchBytes {
					next = item.KeyCopy(nil)
					return nil
				}
				v, err := item.ValueCopy(nil)
				if err != nil {
					return err
				}
				state, spec, err := splitJobRecord(v)
				if err != nil {
					return fmt.Errorf("%s: %w", item.Key(), err)
				}
				if spec != nil {
					batch = append(batch, split{id: item.KeyCopy(nil)[len(pJob):], state: state, spec: spec})
					size += len(v)
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("migrate job records: %w", err)
		}
		err = db.Update(func(txn *badger.Txn) error {
			for _, s := range batch {
				if err := txn.Set(jobSpecKey(string(s.id)), s.spec); err != nil {
					return err
				}
				if err := txn.Set(jobKey(string(s.id)), s.state); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("migrate job records: %w", err)
		}
		moved += len(batch)
		start = next
	}
	if err := rebuildStorage(db, logger); err != nil {
		return err
	}
	if err := db.Update(func(txn *badger.Txn) error { return putJSON(txn, []byte(kLayout), layoutVersion) }); err != nil {
		return fmt.Errorf("write layout version: %w", err)
	}
	if moved > 0 {
		logger.Info("state DB migrated: job specs moved to their own records", "from_layout", version, "to_layout", layoutVersion, "jobs", moved)
	}
	return nil
}

// splitJobRecord splits a layout-1 j/ value into the state record and
// the spec's bytes, each field's bytes kept as they were; spec is nil for
// a record that holds none (already split).
func splitJobRecord(v []byte) (state, spec []byte, err error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(v, &fields); err != nil {
		return nil, nil, fmt.Errorf("decode job record: %w", err)
	}
	raw, ok := fields["spec"]
	if !ok {
		return v, nil, nil
	}
	delete(fields, "spec")
	state, err = json.Marshal(fields)
	if err != nil {
		return nil, nil, fmt.Errorf("encode job record: %w", err)
	}
	return state, raw, nil
}
