package store

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/raft"
)

// snapshotMagic starts every snapshot stream, with a format version:
// 2 since a job's spec has its own record (layout 2, jobrecords.go), so
// that a binary of layout 1 refuses such a stream instead of reading
// jobs without their specs; 3 since the state carries the storage index
// (layout 3, storage.go), so that a binary of layout 2 refuses it before
// dropping its state, instead of applying links without keeping the
// index. Restore still reads formats 1 and 2, migrating them.
const (
	snapshotMagic   = "GANTRYSNAP3\n"
	snapshotMagicV2 = "GANTRYSNAP2\n"
	snapshotMagicV1 = "GANTRYSNAP1\n"
)

// Snapshot captures the state at the current applied index. It holds a
// Badger read transaction (a consistent view), so Persist can stream while
// new entries are applied.
func (s *Store) Snapshot() (raft.FSMSnapshot, error) {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	return &snapshot{txn: s.db.NewTransaction(false)}, nil
}

type snapshot struct{ txn *badger.Txn }

// Persist writes every key and value as length-prefixed records.
func (sn *snapshot) Persist(sink raft.SnapshotSink) error {
	if err := sn.write(sink); err != nil {
		sink.Cancel()
		return fmt.Errorf("persist snapshot: %w", err)
	}
	return sink.Close()
}

// write writes the snapshot stream to dst (Persist, and Backup).
func (sn *snapshot) write(dst io.Writer) error {
	w := bufio.NewWriterSize(dst, 1<<20)
	if _, err := w.WriteString(snapshotMagic); err != nil {
		return err
	}
	it := sn.txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, PrefetchSize: 256})
	defer it.Close()
	var hdr [binary.MaxVarintLen64 * 2]byte
	for it.Rewind(); it.Valid(); it.Next() {
		item := it.Item()
		v, err := item.ValueCopy(nil)
		if err != nil {
			return err
		}
		k := item.Key()
		n := binary.PutUvarint(hdr[:], uint64(len(k)))
		n += binary.PutUvarint(hdr[n:], uint64(len(v)))
		if _, err := w.Write(hdr[:n]); err != nil {
			return err
		}
		if _, err := w.Write(k); err != nil {
			return err
		}
		if _, err := w.Write(v); err != nil {
			return err
		}
	}
	return w.Flush()
}

// Release ends the read transaction.
func (sn *snapshot) Release() { sn.txn.Discard() }

// Restore replaces the whole state with a snapshot's.
func (s *Store) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	r := bufio.NewReaderSize(rc, 1<<20)
	magic := make([]byte, len(snapshotMagic))
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != snapshotMagic && string(magic) != snapshotMagicV2 && string(magic) != snapshotMagicV1 {
		if err == nil && strings.HasPrefix(string(magic), "GANTRYSNAP") {
			return fmt.Errorf("restore: snapshot format %q is newer than this binary's (%q)", strings.TrimSpace(string(magic)), strings.TrimSpace(snapshotMagic))
		}
		return fmt.Errorf("restore: not a gantry snapshot")
	}
	if err := s.db.DropAll(); err != nil {
		return fmt.Errorf("restore: drop: %w", err)
	}
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	for {
		kl, err := binary.ReadUvarint(r)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("restore: read: %w", err)
		}
		vl, err := binary.ReadUvarint(r)
		if err != nil {
			return fmt.Errorf("restore: read: %w", err)
		}
		buf := make([]byte, kl+vl)
		if _, err := io.ReadFull(r, buf); err != nil {
			return fmt.Errorf("restore: read: %w", err)
		}
		if err := wb.Set(buf[:kl], buf[kl:]); err != nil {
			return fmt.Errorf("restore: write: %w", err)
		}
	}
	if err := wb.Flush(); err != nil {
		return fmt.Errorf("restore: flush: %w", err)
	}
	// A format-1 stream holds layout-1 records (m/layout decides, not the
	// magic); the cache's specs are of the state just dropped.
	s.specs.reset()
	if err := migrateLayout(s.db, s.logger); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	var applied uint64
	err := s.db.View(func(txn *badger.Txn) error {
		err := getJSON(txn, []byte(kApplied), &applied)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		return err
	})
	s.setApplied(applied)
	s.pubGen.Add(1)
	s.publish([]Event{{Type: "resync"}})
	return err
}
