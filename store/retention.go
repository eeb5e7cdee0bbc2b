package store

import (
	"errors"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// PurgeJobs removes the jobs in IDs that ended before Before, with their
// tasks, attempts and index entries. Each is re-checked on apply: a job that
// is not there, has not ended, or ended later is left alone.
type PurgeJobs struct {
	IDs    []string  `json:"ids"`
	Before time.Time `json:"before"`
}

// PurgeResult counts the jobs a purge removed.
type PurgeResult struct {
	Purged int `json:"purged"`
}

func (a *applier) purgeJobs(c *PurgeJobs) (*PurgeResult, error) {
	res := &PurgeResult{}
	for _, id := range c.IDs {
		j, err := a.job(id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if !Terminal(j.State) || j.Ended.IsZero() || !j.Ended.Before(c.Before) {
			continue
		}
		keys := [][]byte{jobKey(id), jobSpecKey(id), jobOwnerKey(j.Owner, id), jobStateKey(j.State, id), jobOwnerStateKey(j.Owner, j.State, id)}
		if j.Key != "" {
			keys = append(keys, submitKeyKey(j.Owner, j.Key))
		}
		for _, k := range keys {
			if err := a.txn.Delete(k); err != nil {
				return nil, err
			}
		}
		if err := a.deleteEdges(j); err != nil {
			return nil, err
		}
		for _, prefix := range []string{pTask + id + "/", pAttempt + id + "/", pDependent + id + "/", pReleased + id + "/"} {
			if err := a.deletePrefix([]byte(prefix)); err != nil {
				return nil, err
			}
		}
		// Not written back by flush; its spec leaves the cache.
		delete(a.jobs, id)
		delete(a.dirty, id)
		a.purged = append(a.purged, id)
		a.events = append(a.events, Event{Type: "job_purged", Owner: j.Owner, Name: id})
		res.Purged++
	}
	return res, nil
}

// deletePrefix deletes every key under prefix in the applier's transaction.
func (a *applier) deletePrefix(prefix []byte) error {
	var keys [][]byte
	it := a.txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
	for it.Rewind(); it.Valid(); it.Next() {
		keys = append(keys, it.Item().KeyCopy(nil))
	}
	it.Close()
	for _, k := range keys {
		if err := a.txn.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// EndedJob is a job EndedBefore found, with its number of tasks (what a
// purge of it deletes grows with them).
type EndedJob struct {
	ID    string
	Tasks int
}

// EndedBefore returns up to limit jobs that ended before t, oldest
// submissions first. Job ids sort by submission time, so each state's scan
// stops at the first job submitted after t.
func (s *Store) EndedBefore(t time.Time, limit int) ([]EndedJob, error) {
	var out []EndedJob
	err := s.view(func(txn *badger.Txn) error {
		for _, st := range []string{StateSucceeded, StateFailed, StateCancelled} {
			prefix := []byte(pJobState + st + "/")
			it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
			for it.Rewind(); it.Valid() && len(out) < limit; it.Next() {
				id := string(it.Item().Key()[len(prefix):])
				var j Job // its state is enough: the spec is not read
				if _, _, err := getJobState(txn, id, &j); err != nil {
					if errors.Is(err, ErrNotFound) {
						continue
					}
					it.Close()
					return err
				}
				if !j.Submitted.Before(t) {
					break
				}
				if !j.Ended.IsZero() && j.Ended.Before(t) {
					out = append(out, EndedJob{ID: id, Tasks: j.Total})
				}
			}
			it.Close()
		}
		return nil
	})
	return out, err
}
