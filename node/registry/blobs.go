package registry

import (
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/opencontainers/go-digest"
)

// blobStore keeps verified blobs as files named by digest:
// <root>/<algorithm>/<first two hex>/<hex>. Files appear only by rename of a
// fully written, fsynced, verified temporary file from the uploads
// directory (same file system), so a reader never sees a partial blob.
type blobStore struct {
	root string
	tmp  string

	// mu orders commits and touches against garbage collection's deletes.
	mu      sync.Mutex
	touched map[digest.Digest]time.Time
}

func newBlobStore(root, tmp string) (*blobStore, error) {
	for _, d := range []string{root, tmp} {
		if err := ensureDir(d); err != nil {
			return nil, err
		}
	}
	return &blobStore{root: root, tmp: tmp, touched: map[digest.Digest]time.Time{}}, nil
}

func (b *blobStore) path(d digest.Digest) string {
	hex := d.Encoded()
	return filepath.Join(b.root, string(d.Algorithm()), hex[:2], hex)
}

// touch records that d was just used (committed, checked by a client about to
// reference it, or mounted), protecting it from collection for a while.
func (b *blobStore) touch(d digest.Digest, now time.Time) {
	b.mu.Lock()
	b.touched[d] = now
	b.mu.Unlock()
}

// stat returns the size of a stored blob and touches it; ok is false when
// this node does not hold it.
func (b *blobStore) stat(d digest.Digest, now time.Time) (size int64, ok bool, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	fi, err := os.Stat(b.path(d))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("stat blob %s: %w", d, err)
	}
	b.touched[d] = now
	return fi.Size(), true, nil
}

// open opens a stored blob for reading; it returns fs.ErrNotExist (wrapped)
// when this node does not hold it.
func (b *blobStore) open(d digest.Digest) (*os.File, error) {
	f, err := os.Open(b.path(d))
	if err != nil {
		return nil, fmt.Errorf("open blob %s: %w", d, err)
	}
	return f, nil
}

// commit moves a verified temporary file into place as blob d. The caller
// has fsynced and closed it. If the blob already exists the temporary file
// is removed instead.
func (b *blobStore) commit(tmpPath string, d digest.Digest, now time.Time) error {
	dst := b.path(d)
	if err := ensureDir(filepath.Dir(dst)); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.touched[d] = now
	if _, err := os.Stat(dst); err == nil {
		return os.Remove(tmpPath)
	}
	if err := os.Rename(tmpPath, dst); err != nil {
		return fmt.Errorf("commit blob %s: %w", d, err)
	}
	b.warm(dst)
	return nil
}

// warm brings a blob just stored into the page cache in the background.
// Uploads are written with direct I/O, so without it the first pull, which
// is usually the Docker daemon of this node starting a job right after the
// push, reads the whole blob from disk. Blobs larger than a quarter of the
// memory available are left on disk: caching them would evict more than
// it saves.
func (b *blobStore) warm(path string) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	fi, err := f.Stat()
	if err != nil || fi.Size() == 0 || fi.Size() > memAvailable()/4 {
		f.Close()
		return
	}
	go func() { // the hint may wait for the disk queue: not in the push's path
		defer f.Close()
		prefetch(f, fi.Size())
	}()
}

// removeIfIdle deletes blob d unless it was touched at or after since.
func (b *blobStore) removeIfIdle(d digest.Digest, since time.Time) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if t, ok := b.touched[d]; ok && !t.Before(since) {
		return false, nil
	}
	if err := os.Remove(b.path(d)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("remove blob %s: %w", d, err)
	}
	delete(b.touched, d)
	return true, nil
}

// forgetTouches drops touch records older than before.
func (b *blobStore) forgetTouches(before time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for d, t := range b.touched {
		if t.Before(before) {
			delete(b.touched, d)
		}
	}
}

// walk calls fn for every stored blob.
func (b *blobStore) walk(fn func(d digest.Digest, size int64) error) error {
	return filepath.WalkDir(b.root, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if de.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(b.root, p)
		if err != nil {
			return err
		}
		parts := strings.Split(filepath.ToSlash(rel), "/")
		if len(parts) != 3 {
			return nil
		}
		d := digest.NewDigestFromEncoded(digest.Algorithm(parts[0]), parts[2])
		if d.Validate() != nil {
			return nil
		}
		info, err := de.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		return fn(d, info.Size())
	})
}

// chunkSize is the unit the upload pipeline reads, hashes and writes;
// chunkCount bounds the chunks in flight per upload. dioAlign is the
// alignment direct I/O needs of buffers, offsets and lengths (the largest
// logical block size in common use).
const (
	chunkSize  = 2 << 20
	chunkCount = 6
	dioAlign   = 4096
)

// chunkBuf is one pipeline buffer, aligned for direct I/O.
type chunkBuf struct{ b []byte }

var chunkPool = sync.Pool{New: func() any {
	raw := make([]byte, chunkSize+dioAlign)
	skip := 0
	if r := int(uintptr(unsafe.Pointer(&raw[0])) & (dioAlign - 1)); r != 0 {
		skip = dioAlign - r
	}
	return &chunkBuf{b: raw[skip : skip+chunkSize : skip+chunkSize]}
}}

// readChunk fills b from src; it returns io.EOF only for a clean end of src.
func readChunk(src io.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := src.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// blobWriter appends the pipeline's chunks to an upload file. Whole aligned
// chunks go to the disk with direct I/O where the file system takes it: the
// bytes are copied once (network to buffer) instead of twice, the page
// cache is not filled with a layer nobody reads soon, and the fsync at
// commit has only metadata and a short tail left. Anything else (an
// unaligned start, the tail of the stream, a file system without O_DIRECT)
// goes through the page cache, with write-back started as ranges complete so
// that fsync has little left to do there too.
type blobWriter struct {
	f      *os.File
	direct *os.File // f's file opened with O_DIRECT, or nil
	off    int64    // where the next byte goes
	synced int64    // buffered bytes before this offset are under write-back
}

func newBlobWriter(f *os.File, off int64) *blobWriter {
	w := &blobWriter{f: f, off: off, synced: off}
	if off%dioAlign == 0 {
		w.direct, _ = openDirect(f.Name()) // nil: buffered only
	}
	return w
}

func (w *blobWriter) write(b []byte) error {
	if w.direct != nil && w.off%dioAlign == 0 {
		if k := len(b) &^ (dioAlign - 1); k > 0 {
			n, err := w.direct.WriteAt(b[:k], w.off)
			w.off += int64(n)
			b = b[n:]
			if err != nil && !(n == 0 && errors.Is(err, syscall.EINVAL)) {
				return fmt.Errorf("write upload: %w", err)
			}
			if err != nil { // the file system refused direct I/O
				w.closeDirect()
			}
			w.synced = w.off
		}
	}
	if len(b) == 0 {
		return nil
	}
	n, err := w.f.WriteAt(b, w.off)
	w.off += int64(n)
	if err != nil {
		return fmt.Errorf("write upload: %w", err)
	}
	if w.off-w.synced >= 8<<20 {
		startWriteback(w.f, w.synced, w.off-w.synced)
		w.synced = w.off
	}
	return nil
}

func (w *blobWriter) closeDirect() {
	if w.direct != nil {
		w.direct.Close()
		w.direct = nil
	}
}

// copyHashed appends src (at most limit bytes when limit >= 0) to f, whose
// current size is off, while feeding h. Reading from the network, hashing
// and writing run as a pipeline of three goroutines so they overlap; the
// writer is a blobWriter. It returns the number of bytes written.
//
// progress, when not nil, is called by the writer after each chunk with the
// bytes written so far (those bytes are in the file and may be read).
func copyHashed(f *os.File, off int64, h hash.Hash, src io.Reader, limit int64, progress func(written int64)) (int64, error) {
	type chunk struct {
		cb  *chunkBuf
		n   int
		err error
	}
	toHash := make(chan chunk, chunkCount)
	toWrite := make(chan chunk, chunkCount)
	stop := make(chan struct{})
	go func() {
		defer close(toHash)
		var read int64
		for {
			cb := chunkPool.Get().(*chunkBuf)
			buf := cb.b
			if limit >= 0 && limit-read < int64(len(buf)) {
				buf = buf[:limit-read]
			}
			n, err := readChunk(src, buf)
			read += int64(n)
			if err == nil && limit >= 0 && read == limit {
				err = io.EOF
			}
			select {
			case toHash <- chunk{cb, n, err}:
			case <-stop:
				chunkPool.Put(cb)
				return
			}
			if err != nil {
				return
			}
		}
	}()
	bw := newBlobWriter(f, off)
	var werr error
	var failed atomic.Bool
	wdone := make(chan struct{})
	go func() {
		defer close(wdone)
		defer bw.closeDirect()
		for c := range toWrite {
			if c.n > 0 && werr == nil {
				if err := bw.write(c.cb.b[:c.n]); err != nil {
					werr = err
					failed.Store(true)
				} else if progress != nil {
					progress(bw.off - off)
				}
			}
			chunkPool.Put(c.cb)
		}
	}()
	var rerr error
	for c := range toHash {
		if failed.Load() {
			chunkPool.Put(c.cb)
			break
		}
		if c.n > 0 {
			h.Write(c.cb.b[:c.n])
		}
		toWrite <- c
		if c.err != nil {
			if c.err != io.EOF {
				rerr = fmt.Errorf("read upload body: %w", c.err)
			}
			break
		}
	}
	close(stop)
	for c := range toHash {
		chunkPool.Put(c.cb)
	}
	close(toWrite)
	<-wdone
	written := bw.off - off
	if werr != nil {
		return written, werr
	}
	return written, rerr
}

// BlobPath is where a registry whose Config.Dir is dir keeps blob d (a
// restore from a backup puts blobs there before the node starts).
func BlobPath(dir string, d digest.Digest) string {
	return (&blobStore{root: filepath.Join(dir, "blobs")}).path(d)
}
