package data

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"
)

// BlobSource reads blobs of one repository.
type BlobSource interface {
	// Blob reads blob d from offset on (0: all of it).
	Blob(ctx context.Context, d digest.Digest, offset int64) (io.ReadCloser, error)
}

// Progress counts a transfer's bytes as it runs; a display reads it from
// another goroutine.
type Progress struct {
	Total   atomic.Int64 // bytes of every blob of the artifact
	Done    atomic.Int64 // bytes of blobs finished, sent or not
	Sent    atomic.Int64 // bytes that went over the network
	Blobs   atomic.Int64 // blobs in the artifact
	Skipped atomic.Int64 // blobs not sent: the other side had them
}

func (p *Progress) add(done, sent int64) {
	if p != nil {
		p.Done.Add(done)
		p.Sent.Add(sent)
	}
}

// UnpackOptions tunes Unpack.
type UnpackOptions struct {
	Parallel int // layers fetched at once (0: 4)
	Progress *Progress
	// MaxBytes bounds the bytes written (0: no bound): a tar that expands
	// past it is refused (ErrTooLarge).
	MaxBytes int64
	// Verified: the source's blobs were checked against their digests
	// when they were stored (this node's registry), so they are not
	// hashed again, and a whole file layer read from a local file is
	// copied by the kernel (copy_file_range) instead of through memory.
	Verified bool
}

// ErrTooLarge is returned by Unpack when the tree outgrows MaxBytes.
var ErrTooLarge = errors.New("the artifact expands past its size limit")

// UnpackStats says what Unpack did.
type UnpackStats struct {
	Written int   // files written
	Kept    int   // files already there with the right content
	Fetched int64 // blob bytes read from the source
}

// Unpack writes tree t into dir, fetching layers from src in parallel.
//
// Nothing is written outside dir: every name is checked (CheckPath) and
// every write goes through an os.Root on dir, so a symbolic link, one in
// the artifact or one already in dir, can never lead a write out of it.
// Symbolic links pointing outside the tree, hard links to anything but a
// file of the tree, device files and FIFOs are refused (*UnsafeError).
//
// A file already in dir with the digest the dataset lists is kept, and a
// raw layer half-fetched by an interrupted Unpack is resumed from where it
// stopped (PartialDir), so running Unpack again after a failure finishes
// the job. Files are written under a temporary name and renamed, so a
// file is either the old one or the whole new one.
func Unpack(ctx context.Context, dir string, t *Tree, src BlobSource, opt UnpackOptions) (*UnpackStats, error) {
	if opt.Parallel <= 0 {
		opt.Parallel = 4
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	u := &unpacker{root: root, src: src, opt: opt, dirs: map[string]Entry{}}
	if p := opt.Progress; p != nil {
		for _, l := range t.Layers {
			p.Total.Add(l.Desc.Size)
		}
		p.Blobs.Add(int64(len(t.Layers)))
	}
	for _, d := range t.Dirs {
		if err := u.mkdir(d.Path); err != nil {
			return nil, err
		}
		u.dirs[d.Path] = d
	}
	order := make([]int, len(t.Layers))
	for i := range order {
		order[i] = i
	}
	// Largest first, so one big file does not start last and run alone.
	slices.SortStableFunc(order, func(a, b int) int { return int(t.Layers[b].Desc.Size - t.Layers[a].Desc.Size) })
	work := make(chan int)
	var once sync.Once
	var firstErr error
	var wg sync.WaitGroup
	for range min(opt.Parallel, max(len(order), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if err := u.layer(ctx, t.Layers[i]); err != nil {
					once.Do(func() { firstErr = err; cancel() })
				}
			}
		}()
	}
feed:
	for _, i := range order {
		select {
		case work <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	if firstErr != nil {
		return &u.stats, firstErr
	}
	for _, l := range t.Links {
		if err := u.symlink(l.Path, l.Target); err != nil {
			return &u.stats, err
		}
	}
	if err := u.finishDirs(); err != nil {
		return &u.stats, err
	}
	if err := root.RemoveAll(PartialDir); err != nil {
		return &u.stats, err
	}
	return &u.stats, nil
}

type unpacker struct {
	root *os.Root
	src  BlobSource
	opt  UnpackOptions

	mu      sync.Mutex
	dirs    map[string]Entry // modes and times to set once all is written
	stats   UnpackStats
	written atomic.Int64
}

func (u *unpacker) count(written, kept int, fetched int64) {
	u.mu.Lock()
	u.stats.Written += written
	u.stats.Kept += kept
	u.stats.Fetched += fetched
	u.mu.Unlock()
}

func (u *unpacker) layer(ctx context.Context, l Layer) error {
	switch l.Kind {
	case LayerRaw:
		return u.raw(ctx, l)
	case LayerTar, LayerTarGzip:
		return u.tarLayer(ctx, l)
	}
	u.opt.Progress.add(l.Desc.Size, 0)
	return nil
}

// present reports whether e is in the tree already with its content.
func (u *unpacker) present(e Entry) bool {
	if e.Digest == "" {
		return false
	}
	fi, err := u.root.Lstat(e.Path)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() != e.Size {
		return false
	}
	f, err := u.root.Open(e.Path)
	if err != nil {
		return false
	}
	defer f.Close()
	v := e.Digest.Verifier()
	if _, err := io.Copy(v, f); err != nil || !v.Verified() {
		return false
	}
	// The content is right; make the rest right too.
	return u.setMeta(e.Path, e.Mode, e.MTime) == nil
}

func (u *unpacker) raw(ctx context.Context, l Layer) error {
	var need []Entry
	for _, e := range l.Files {
		if u.present(e) {
			u.count(0, 1, 0)
			continue
		}
		need = append(need, e)
	}
	if len(need) == 0 {
		u.opt.Progress.add(l.Desc.Size, 0)
		return nil
	}
	if err := u.grow(l.Desc.Size * int64(len(need))); err != nil {
		return err
	}
	if err := u.root.MkdirAll(PartialDir, 0o700); err != nil {
		return err
	}
	part := PartialDir + "/" + l.Desc.Digest.Encoded()
	f, err := u.root.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if f != nil {
			f.Close()
		}
		if !ok {
			// Keep a partial blob that is a prefix: the next run resumes it.
			if fi, err := u.root.Lstat(part); err == nil && fi.Size() > l.Desc.Size {
				u.root.Remove(part)
			}
		}
	}()
	h := sha256.New()
	off, err := resumeFrom(f, h, l.Desc.Size)
	if err != nil {
		return err
	}
	u.opt.Progress.add(off, 0)
	if u.opt.Verified && off == 0 {
		if err := u.copyVerified(ctx, f, l); err != nil {
			return err
		}
		off = l.Desc.Size
	} else if off < l.Desc.Size || l.Desc.Size == 0 {
		rc, err := u.src.Blob(ctx, l.Desc.Digest, off)
		if err != nil {
			return fmt.Errorf("fetch %s: %w", l.Desc.Digest, err)
		}
		n, err := io.Copy(io.MultiWriter(f, h, progressWriter{u.opt.Progress}), ctxReader{ctx, io.LimitReader(rc, l.Desc.Size-off+1)})
		rc.Close()
		u.count(0, 0, n)
		if err != nil {
			return fmt.Errorf("fetch %s: %w", l.Desc.Digest, err)
		}
		off += n
	}
	if off != l.Desc.Size || (!u.opt.Verified && digest.NewDigest(digest.SHA256, h) != l.Desc.Digest) {
		u.root.Remove(part)
		return fmt.Errorf("blob %s: the bytes received do not match its digest", l.Desc.Digest)
	}
	if err := f.Close(); err != nil {
		return err
	}
	f = nil
	ok = true
	for i, e := range need {
		src := part
		if i < len(need)-1 {
			if src, err = u.copyToTemp(part, e.Path); err != nil {
				return err
			}
		}
		if err := u.place(src, e); err != nil {
			return err
		}
		u.count(1, 0, 0)
	}
	return nil
}

// copyVerified copies a file layer from a source that verified it when
// it stored it, 64 MiB at a time (each a copy_file_range when both ends
// are files), checking ctx between chunks.
func (u *unpacker) copyVerified(ctx context.Context, f *os.File, l Layer) error {
	rc, err := u.src.Blob(ctx, l.Desc.Digest, 0)
	if err != nil {
		return fmt.Errorf("fetch %s: %w", l.Desc.Digest, err)
	}
	defer rc.Close()
	var off int64
	for off < l.Desc.Size {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := f.ReadFrom(io.LimitReader(rc, min(64<<20, l.Desc.Size-off)))
		off += n
		u.opt.Progress.add(n, n)
		if err != nil {
			return fmt.Errorf("fetch %s: %w", l.Desc.Digest, err)
		}
		if n == 0 {
			break
		}
	}
	u.count(0, 0, off)
	if off != l.Desc.Size {
		return fmt.Errorf("blob %s: %d bytes, want %d", l.Desc.Digest, off, l.Desc.Size)
	}
	return nil
}

// resumeFrom hashes what a partial blob file holds and returns its size,
// or truncates it when it is longer than the blob.
func resumeFrom(f *os.File, h hash.Hash, size int64) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if fi.Size() > size {
		if err := f.Truncate(0); err != nil {
			return 0, err
		}
		return 0, nil
	}
	n, err := io.Copy(h, f)
	if err != nil {
		return 0, err
	}
	return n, nil
}

func (u *unpacker) copyToTemp(src, dst string) (string, error) {
	in, err := u.root.Open(src)
	if err != nil {
		return "", err
	}
	defer in.Close()
	tmp, f, err := u.createTemp(dst)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(f, in); err != nil {
		f.Close()
		u.root.Remove(tmp)
		return "", err
	}
	if err := f.Close(); err != nil {
		u.root.Remove(tmp)
		return "", err
	}
	return tmp, nil
}

// place gives a finished temporary file e's mode and time and renames it
// to e's path.
func (u *unpacker) place(tmp string, e Entry) error {
	if err := u.setMeta(tmp, e.Mode, e.MTime); err != nil {
		u.root.Remove(tmp)
		return err
	}
	if err := u.mkdirParent(e.Path); err != nil {
		u.root.Remove(tmp)
		return err
	}
	if err := u.root.Rename(tmp, e.Path); err != nil {
		u.root.Remove(tmp)
		return fmt.Errorf("write %s: %w", e.Path, err)
	}
	return nil
}

func (u *unpacker) setMeta(p string, mode uint32, mtime time.Time) error {
	if err := u.root.Chmod(p, fs.FileMode(mode&0o777)); err != nil {
		return err
	}
	if !mtime.IsZero() {
		return u.root.Chtimes(p, mtime, mtime)
	}
	return nil
}

// createTemp makes an empty file beside p (its directory made if needed).
func (u *unpacker) createTemp(p string) (string, *os.File, error) {
	if err := u.mkdirParent(p); err != nil {
		return "", nil, err
	}
	var b [8]byte
	rand.Read(b[:])
	tmp := path.Join(path.Dir(p), ".gantry-tmp-"+hex.EncodeToString(b[:]))
	f, err := u.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", nil, fmt.Errorf("write %s: %w", p, err)
	}
	return tmp, f, nil
}

func (u *unpacker) mkdirParent(p string) error {
	if d := path.Dir(p); d != "." {
		return u.mkdir(d)
	}
	return nil
}

// mkdir makes a directory and its parents, and makes sure this process
// can write in it until finishDirs sets its mode.
func (u *unpacker) mkdir(p string) error {
	fi, err := u.root.Lstat(p)
	if err == nil && fi.IsDir() {
		if fi.Mode().Perm()&0o700 != 0o700 {
			return u.root.Chmod(p, fi.Mode().Perm()|0o700)
		}
		return nil
	}
	if err := u.root.MkdirAll(p, 0o755); err != nil {
		return fmt.Errorf("make directory %s: %w", p, err)
	}
	return nil
}

// grow counts bytes about to be written against MaxBytes.
func (u *unpacker) grow(n int64) error {
	if u.opt.MaxBytes > 0 && u.written.Add(n) > u.opt.MaxBytes {
		return ErrTooLarge
	}
	return nil
}

// writeFile writes r (size bytes) to p under a temporary name, checks its
// digest when want is set, and renames it into place.
func (u *unpacker) writeFile(ctx context.Context, p string, mode uint32, mtime time.Time, r io.Reader, size int64, want digest.Digest) error {
	if err := u.grow(size); err != nil {
		return err
	}
	tmp, f, err := u.createTemp(p)
	if err != nil {
		return err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), ctxReader{ctx, r})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && n != size {
		err = fmt.Errorf("%s: %d bytes, %d expected", p, n, size)
	}
	if err == nil && want != "" && digest.NewDigest(digest.SHA256, h) != want {
		err = fmt.Errorf("%s: its content does not match the digest the dataset lists", p)
	}
	if err != nil {
		u.root.Remove(tmp)
		return fmt.Errorf("write %s: %w", p, err)
	}
	return u.place(tmp, Entry{Path: p, Mode: mode, MTime: mtime})
}

func (u *unpacker) tarLayer(ctx context.Context, l Layer) error {
	var need map[string]bool
	if l.Members != nil {
		need = map[string]bool{}
		for p, e := range l.Members {
			if u.present(e) {
				u.count(0, 1, 0)
			} else {
				need[p] = true
			}
		}
		if len(need) == 0 {
			u.opt.Progress.add(l.Desc.Size, 0)
			return nil
		}
	}
	rc, err := u.src.Blob(ctx, l.Desc.Digest, 0)
	if err != nil {
		return fmt.Errorf("fetch %s: %w", l.Desc.Digest, err)
	}
	defer rc.Close()
	v := l.Desc.Digest.Verifier()
	var in io.Reader = io.TeeReader(ctxReader{ctx, rc}, v)
	if u.opt.Verified {
		in = ctxReader{ctx, rc}
	}
	cr := &countReader{r: in, p: u.opt.Progress}
	var r io.Reader = cr
	if l.Kind == LayerTarGzip {
		zr, err := gzip.NewReader(cr)
		if err != nil {
			return fmt.Errorf("layer %s: %w", l.Desc.Digest, err)
		}
		defer zr.Close()
		r = zr
	}
	if err := u.extract(ctx, tar.NewReader(r), l, need); err != nil {
		return fmt.Errorf("layer %s: %w", l.Desc.Digest, err)
	}
	// Read to the end: the digest covers the whole blob.
	if _, err := io.Copy(io.Discard, cr); err != nil {
		return fmt.Errorf("fetch %s: %w", l.Desc.Digest, err)
	}
	u.count(0, 0, cr.n)
	if cr.n != l.Desc.Size || (!u.opt.Verified && !v.Verified()) {
		return fmt.Errorf("blob %s: the bytes received do not match its digest", l.Desc.Digest)
	}
	return nil
}

// extract writes a tar's entries: a dataset pack's listed members only,
// or any safe entry of another artifact's tar.
func (u *unpacker) extract(ctx context.Context, tr *tar.Reader, l Layer, need map[string]bool) error {
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		name, err := tarName(hdr.Name)
		if err != nil {
			return err
		}
		if name == "" {
			continue // the root itself
		}
		if l.Members != nil {
			e, ok := l.Members[name]
			if !ok {
				return unsafe(name, "not listed in the dataset's config")
			}
			if hdr.Typeflag != tar.TypeReg {
				return unsafe(name, "a pack entry that is not a regular file")
			}
			if !need[name] {
				continue
			}
			if err := u.writeFile(ctx, name, e.Mode, e.MTime, tr, e.Size, e.Digest); err != nil {
				return err
			}
			u.count(1, 0, 0)
			continue
		}
		mode := uint32(hdr.Mode) & 0o777
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := u.mkdir(name); err != nil {
				return err
			}
			u.mu.Lock()
			u.dirs[name] = Entry{Path: name, Type: TypeDir, Mode: mode, MTime: hdr.ModTime}
			u.mu.Unlock()
		case tar.TypeReg, tar.TypeRegA:
			if err := u.writeFile(ctx, name, mode, hdr.ModTime, tr, hdr.Size, ""); err != nil {
				return err
			}
			u.count(1, 0, 0)
		case tar.TypeSymlink:
			if err := CheckLink(name, hdr.Linkname); err != nil {
				return err
			}
			if err := u.symlink(name, hdr.Linkname); err != nil {
				return err
			}
		case tar.TypeLink:
			if err := u.hardlink(name, hdr.Linkname); err != nil {
				return err
			}
		case tar.TypeChar, tar.TypeBlock:
			return unsafe(name, "a device file")
		case tar.TypeFifo:
			return unsafe(name, "a named pipe")
		default:
			return unsafe(name, fmt.Sprintf("a tar entry of type %q", hdr.Typeflag))
		}
	}
}

// tarName is a tar entry's name as a tree path ("" for the root), or an
// *UnsafeError.
func tarName(n string) (string, error) {
	if strings.HasPrefix(n, "/") {
		return "", unsafe(n, "an absolute path")
	}
	n = strings.TrimSuffix(n, "/")
	for strings.HasPrefix(n, "./") {
		n = n[2:]
	}
	if n == "" || n == "." {
		return "", nil
	}
	return n, CheckPath(n)
}

// hardlink links name to target, a file already written from the tree.
func (u *unpacker) hardlink(name, target string) error {
	t, err := tarName(target)
	if err != nil || t == "" {
		return unsafe(name, "a hard link to "+target+", outside the tree")
	}
	fi, err := u.root.Lstat(t)
	if err != nil || !fi.Mode().IsRegular() {
		return unsafe(name, "a hard link to "+target+", which is not a file of the tree")
	}
	if err := u.mkdirParent(name); err != nil {
		return err
	}
	u.removeFile(name)
	if err := u.root.Link(t, name); err != nil {
		return fmt.Errorf("link %s: %w", name, err)
	}
	return nil
}

// symlink makes a link (CheckLink'ed by the caller or the config),
// replacing a file or link of that name.
func (u *unpacker) symlink(name, target string) error {
	if err := CheckLink(name, target); err != nil {
		return err
	}
	if err := u.mkdirParent(name); err != nil {
		return err
	}
	if cur, err := u.root.Readlink(name); err == nil && cur == target {
		return nil
	}
	u.removeFile(name)
	if err := u.root.Symlink(target, name); err != nil {
		return fmt.Errorf("link %s: %w", name, err)
	}
	return nil
}

func (u *unpacker) removeFile(name string) {
	if fi, err := u.root.Lstat(name); err == nil && !fi.IsDir() {
		u.root.Remove(name)
	}
}

// finishDirs sets directories' modes and times, deepest first, once
// nothing more is written in them.
func (u *unpacker) finishDirs() error {
	var ds []Entry
	for _, d := range u.dirs {
		ds = append(ds, d)
	}
	slices.SortFunc(ds, func(a, b Entry) int {
		if c := strings.Count(b.Path, "/") - strings.Count(a.Path, "/"); c != 0 {
			return c
		}
		return strings.Compare(a.Path, b.Path)
	})
	for _, d := range ds {
		if err := u.setMeta(d.Path, d.Mode, d.MTime); err != nil {
			return fmt.Errorf("directory %s: %w", d.Path, err)
		}
	}
	return nil
}

type countReader struct {
	r io.Reader
	n int64
	p *Progress
}

func (c *countReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	c.p.add(int64(n), int64(n))
	return n, err
}

type progressWriter struct{ p *Progress }

func (w progressWriter) Write(b []byte) (int, error) {
	w.p.add(int64(len(b)), int64(len(b)))
	return len(b), nil
}
