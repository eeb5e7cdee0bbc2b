package registry

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"testing/iotest"
)

// TestCopyHashedAppendsExactlyWhatItHashes appends bodies whose sizes and
// starting offsets are aligned and not (so direct and buffered writes mix,
// and a session that starts unaligned stays buffered), in the temp dir and,
// where there is one, on tmpfs (which may refuse direct I/O), and checks the
// file and the running hash against the bytes sent.
func TestCopyHashedAppendsExactlyWhatItHashes(t *testing.T) {
	dirs := []string{t.TempDir()}
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		d, err := os.MkdirTemp("/dev/shm", "gantry-blobs-test")
		if err == nil {
			t.Cleanup(func() { os.RemoveAll(d) })
			dirs = append(dirs, d)
		}
	}
	sizes := [][]int{
		{chunkSize * 3},                                // whole chunks
		{chunkSize*2 + 12345},                          // aligned start, odd tail
		{5000, chunkSize + 7, dioAlign * 3},            // unaligned from the second body on
		{dioAlign, chunkSize*2 - dioAlign, 1, 1 << 20}, // aligned, aligned, then not
		{0, 1},
	}
	for _, dir := range dirs {
		for i, parts := range sizes {
			path := filepath.Join(dir, "upload"+string(rune('a'+i)))
			f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			var all []byte
			h := sha256.New()
			var off int64
			for j, n := range parts {
				body := make([]byte, n)
				rand.Read(body)
				all = append(all, body...)
				limit := int64(-1)
				if j%2 == 0 {
					limit = int64(n)
				}
				// OneByteReader on small bodies exercises short reads.
				var src io.Reader = bytes.NewReader(body)
				if n < 10000 {
					src = iotest.OneByteReader(src)
				}
				w, err := copyHashed(f, off, h, src, limit, nil)
				if err != nil || w != int64(n) {
					t.Fatalf("%s parts %v body %d: wrote %d, %v", dir, parts, j, w, err)
				}
				off += w
			}
			f.Close()
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, all) {
				t.Fatalf("%s parts %v: file differs from the bytes sent (%d vs %d bytes)", dir, parts, len(got), len(all))
			}
			if want := sha256.Sum256(all); !bytes.Equal(h.Sum(nil), want[:]) {
				t.Fatalf("%s parts %v: hash differs", dir, parts)
			}
		}
	}
}

// TestCopyHashedReportsAReadErrorWithWhatItWrote: a body that breaks off
// mid-stream returns the error and the number of bytes that reached the file.
func TestCopyHashedReportsAReadErrorWithWhatItWrote(t *testing.T) {
	path := filepath.Join(t.TempDir(), "upload")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	body := make([]byte, chunkSize+100)
	rand.Read(body)
	broken := errors.New("connection reset")
	src := io.MultiReader(bytes.NewReader(body), iotest.ErrReader(broken))
	n, err := copyHashed(f, 0, sha256.New(), src, -1, nil)
	if !errors.Is(err, broken) {
		t.Fatalf("err = %v, want the read error", err)
	}
	fi, _ := f.Stat()
	if n != int64(len(body)) || fi.Size() != n {
		t.Fatalf("wrote %d, file %d bytes, want %d", n, fi.Size(), len(body))
	}
}
