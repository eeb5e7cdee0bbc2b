package raftcluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/raft"
)

// LogStore is raft's log and stable store on one Badger database with
// SyncWrites on: when StoreLogs returns, the entries are on disk. Raft
// batches entries per call, so one fsync covers many commands.
type LogStore struct {
	db *badger.DB
}

var (
	_ raft.LogStore    = (*LogStore)(nil)
	_ raft.StableStore = (*LogStore)(nil)
)

// errNotFound is the error text hashicorp/raft expects for a missing key.
var errNotFound = errors.New("not found")

const (
	logPrefix    = 'l'
	stablePrefix = 's'
)

// OpenLogStore opens the Raft log database in dir.
func OpenLogStore(dir string) (*LogStore, error) {
	opts := badger.DefaultOptions(dir).
		WithLogger(nil).
		WithSyncWrites(true).
		WithMemTableSize(16 << 20).
		WithNumMemtables(2).
		WithNumLevelZeroTables(2).
		WithNumLevelZeroTablesStall(8).
		WithBlockCacheSize(4 << 20).
		WithIndexCacheSize(4 << 20).
		WithValueLogFileSize(64 << 20).
		WithValueThreshold(64 << 10). // entries stay in the LSM: one write, one fsync per batch
		WithNumCompactors(2)
	db, err := badger.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("open raft log %s: %w", dir, err)
	}
	return &LogStore{db: db}, nil
}

// Close closes the database.
func (s *LogStore) Close() error { return s.db.Close() }

func logKey(i uint64) []byte {
	k := make([]byte, 9)
	k[0] = logPrefix
	binary.BigEndian.PutUint64(k[1:], i)
	return k
}

// FirstIndex returns the first index written, 0 for none.
func (s *LogStore) FirstIndex() (uint64, error) { return s.edge(false) }

// LastIndex returns the last index written, 0 for none.
func (s *LogStore) LastIndex() (uint64, error) { return s.edge(true) }

func (s *LogStore) edge(last bool) (uint64, error) {
	var idx uint64
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{logPrefix}, Reverse: last})
		defer it.Close()
		if last {
			it.Seek([]byte{logPrefix, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
		} else {
			it.Rewind()
		}
		if it.Valid() {
			idx = binary.BigEndian.Uint64(it.Item().Key()[1:])
		}
		return nil
	})
	return idx, err
}

// GetLog reads one entry.
func (s *LogStore) GetLog(index uint64, out *raft.Log) error {
	return s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(logKey(index))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return raft.ErrLogNotFound
		}
		if err != nil {
			return err
		}
		return item.Value(func(b []byte) error { return decodeLog(b, out) })
	})
}

// StoreLog writes one entry.
func (s *LogStore) StoreLog(l *raft.Log) error { return s.StoreLogs([]*raft.Log{l}) }

// StoreLogs writes entries durably, in one transaction when they fit.
func (s *LogStore) StoreLogs(logs []*raft.Log) error {
	txn := s.db.NewTransaction(true)
	defer func() { txn.Discard() }()
	for _, l := range logs {
		err := txn.Set(logKey(l.Index), encodeLog(l))
		if errors.Is(err, badger.ErrTxnTooBig) {
			if err := txn.Commit(); err != nil {
				return fmt.Errorf("store logs: %w", err)
			}
			txn = s.db.NewTransaction(true)
			err = txn.Set(logKey(l.Index), encodeLog(l))
		}
		if err != nil {
			return fmt.Errorf("store log %d: %w", l.Index, err)
		}
	}
	if err := txn.Commit(); err != nil {
		return fmt.Errorf("store logs: %w", err)
	}
	return nil
}

// DeleteRange removes entries min..max inclusive.
func (s *LogStore) DeleteRange(min, max uint64) error {
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	for i := min; i <= max; i++ {
		if err := wb.Delete(logKey(i)); err != nil {
			return fmt.Errorf("delete log range: %w", err)
		}
	}
	return wb.Flush()
}

// Set stores a stable value.
func (s *LogStore) Set(key, val []byte) error {
	return s.db.Update(func(txn *badger.Txn) error {
		return txn.Set(append([]byte{stablePrefix}, key...), val)
	})
}

// Get reads a stable value; a missing key yields an empty value.
func (s *LogStore) Get(key []byte) ([]byte, error) {
	var out []byte
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(append([]byte{stablePrefix}, key...))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		out, err = item.ValueCopy(nil)
		return err
	})
	if err != nil {
		return nil, err
	}
	if out == nil {
		return nil, errNotFound
	}
	return out, nil
}

// SetUint64 stores a stable integer.
func (s *LogStore) SetUint64(key []byte, val uint64) error {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], val)
	return s.Set(key, b[:])
}

// GetUint64 reads a stable integer; missing is 0.
func (s *LogStore) GetUint64(key []byte) (uint64, error) {
	b, err := s.Get(key)
	if err != nil {
		if err.Error() == "not found" {
			return 0, nil
		}
		return 0, err
	}
	if len(b) != 8 {
		return 0, fmt.Errorf("stable %s: bad length %d", key, len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}

// encodeLog: index, term, type, appendedAt (unix nanos), then data and
// extensions each with a length prefix.
func encodeLog(l *raft.Log) []byte {
	b := make([]byte, 0, 8*3+1+2*binary.MaxVarintLen64+len(l.Data)+len(l.Extensions))
	b = binary.BigEndian.AppendUint64(b, l.Index)
	b = binary.BigEndian.AppendUint64(b, l.Term)
	b = append(b, byte(l.Type))
	var at int64
	if !l.AppendedAt.IsZero() {
		at = l.AppendedAt.UnixNano()
	}
	b = binary.BigEndian.AppendUint64(b, uint64(at))
	b = binary.AppendUvarint(b, uint64(len(l.Data)))
	b = append(b, l.Data...)
	b = binary.AppendUvarint(b, uint64(len(l.Extensions)))
	b = append(b, l.Extensions...)
	return b
}

func decodeLog(b []byte, l *raft.Log) error {
	if len(b) < 25 {
		return errors.New("raft log entry too short")
	}
	l.Index = binary.BigEndian.Uint64(b)
	l.Term = binary.BigEndian.Uint64(b[8:])
	l.Type = raft.LogType(b[16])
	if at := int64(binary.BigEndian.Uint64(b[17:])); at != 0 {
		l.AppendedAt = time.Unix(0, at)
	}
	rest := b[25:]
	n, k := binary.Uvarint(rest)
	if k <= 0 || uint64(len(rest)-k) < n {
		return errors.New("raft log entry: bad data length")
	}
	l.Data = append([]byte(nil), rest[k:k+int(n)]...)
	rest = rest[k+int(n):]
	n, k = binary.Uvarint(rest)
	if k <= 0 || uint64(len(rest)-k) < n {
		return errors.New("raft log entry: bad extensions length")
	}
	if n > 0 {
		l.Extensions = append([]byte(nil), rest[k:k+int(n)]...)
	}
	return nil
}
