package registry

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
	"unsafe"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"gantry/gantrytest"
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
	r := resident(t, tmp)
	gantrytest.Require(t, r <= 0.1, fmt.Sprintf("a file system that drops a file's pages on request (this one keeps %.0f%% cached)", r*100))
	d := digest.FromBytes(data)
	if err := b.commit(tmp, d, time.Now()); err != nil {
		t.Fatal(err)
	}
	gantrytest.Eventually(t, 10*time.Second, func() bool { return resident(t, b.path(d)) >= 0.99 },
		"the committed blob wholly in the page cache")
}
