package registry

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
	"time"
	"unsafe"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// resident is the fraction of path's pages in the page cache (mincore).
func resident(t *testing.T, path string) float64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	m, err := unix.Mmap(int(f.Fd()), 0, int(fi.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	page := os.Getpagesize()
	vec := make([]byte, (len(m)+page-1)/page)
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatal(errno)
	}
	in := 0
	for _, v := range vec {
		in += int(v & 1)
	}
	return float64(in) / float64(len(vec))
}

// TestCommittedBlobIsWarmed: a blob written past the page cache (as
// uploads are, with direct I/O) is in memory soon after its commit, so the
// first pull does not read it from disk.
func TestCommittedBlobIsWarmed(t *testing.T) {
	dir := t.TempDir()
	b, err := newBlobStore(filepath.Join(dir, "blobs"), filepath.Join(dir, "uploads"))
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, "uploads", "u1")
	data := make([]byte, 16<<20)
	rand.Read(data)
	f, err := os.Create(tmp)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	// Drop the pages the write left, as a direct-I/O upload leaves none.
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if r := resident(t, tmp); r > 0.1 {
		t.Skipf("this file system keeps %.0f%% of a dropped file cached; nothing to measure", r*100)
	}
	d := digest.FromBytes(data)
	if err := b.commit(tmp, d, time.Now()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := resident(t, b.path(d))
		if r >= 0.99 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%.0f%% of the committed blob in the page cache after 10s, want all of it", r*100)
		}
		time.Sleep(10 * time.Millisecond) // polling the condition above
	}
}
