package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"

	"github.com/dgraph-io/badger/v4"
)

// Backups. A backup is the state as a snapshot stream (the format Raft
// snapshots use) and the blobs the state's repositories link, both taken
// from one read transaction, so the blob list is exactly what the state
// needs. node/backup writes them out and restores them.

// BackupBlob is a blob a backed-up state links.
type BackupBlob struct {
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
}

// BackupInfo describes a state written by Backup.
type BackupInfo struct {
	Applied uint64       `json:"applied"` // the last Raft index in the state
	Cluster string       `json:"cluster"` // the cluster id then
	Blobs   []BackupBlob `json:"blobs"`   // every linked blob, by digest
}

// Backup lists the blobs the current state links and then writes the state
// to w as a snapshot stream, both from one consistent view, while entries
// go on being applied.
func (s *Store) Backup(w io.Writer) (BackupInfo, error) {
	s.applyMu.Lock()
	txn := s.db.NewTransaction(false)
	s.applyMu.Unlock()
	defer txn.Discard()
	var info BackupInfo
	if err := getJSON(txn, []byte(kApplied), &info.Applied); err != nil {
		return info, fmt.Errorf("backup: applied index: %w", err)
	}
	var c ClusterInfo
	if err := getJSON(txn, []byte(kCluster), &c); err == nil {
		info.Cluster = c.ID
	}
	seen := map[string]bool{}
	if err := regScanPrefix(txn, []byte(pRegBlob), func(k, v []byte) error {
		i := bytes.LastIndex(k, []byte(sep))
		d := string(k[i+len(sep):])
		if seen[d] {
			return nil
		}
		var l RegBlobLink
		if err := json.Unmarshal(v, &l); err != nil {
			return err
		}
		seen[d] = true
		info.Blobs = append(info.Blobs, BackupBlob{Digest: d, Size: l.Size})
		return nil
	}); err != nil {
		return info, fmt.Errorf("backup: blobs: %w", err)
	}
	sort.Slice(info.Blobs, func(i, j int) bool { return info.Blobs[i].Digest < info.Blobs[j].Digest })
	if err := (&snapshot{txn: txn}).write(w); err != nil {
		return info, fmt.Errorf("backup: state: %w", err)
	}
	return info, nil
}

// PrepareRestored makes a state just restored from a backup the state of a
// new cluster: a new cluster id (containers are labelled with it, so the
// old cluster's, should it still run on the same machines, are never
// touched) and no join secret (the new cluster makes its own, for its new
// CA). Everything else stays as it was when the backup was taken: nodes
// of the old cluster show as they were and are found lost, their
// attempts then end node_lost and run again.
func (s *Store) PrepareRestored(clusterID string) error {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	return s.db.Update(func(txn *badger.Txn) error {
		var c ClusterInfo
		if err := getJSON(txn, []byte(kCluster), &c); err != nil {
			return fmt.Errorf("restored state: no cluster record: %w", err)
		}
		c.ID = clusterID
		if err := putJSON(txn, []byte(kCluster), c); err != nil {
			return err
		}
		if err := txn.Delete([]byte(kJoinSecret)); err != nil {
			return err
		}
		return nil
	})
}
