package registry

import (
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// startWriteback asks the kernel to start writing a range of f to disk
// without waiting, so the fsync at commit finds little left to flush.
func startWriteback(f *os.File, off, n int64) {
	_ = unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}

// openDirect opens path for writing with direct I/O (bypassing the page
// cache); file systems without it (tmpfs) refuse.
func openDirect(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|unix.O_DIRECT, 0)
}

// prefetch asks the kernel to read f's first n bytes into the page cache
// (readahead), so the next reader finds them in memory. The kernel caps
// how much one hint reads, so the range is given a piece at a time.
func prefetch(f *os.File, n int64) {
	const piece = 2 << 20
	for off := int64(0); off < n; off += piece {
		if unix.Fadvise(int(f.Fd()), off, min(piece, n-off), unix.FADV_WILLNEED) != nil {
			return
		}
	}
}

// memAvailable is the memory the kernel can give without swapping
// (MemAvailable of /proc/meminfo), or 0 when it cannot be read.
func memAvailable() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemAvailable:"); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				if kb, err := strconv.ParseInt(f[0], 10, 64); err == nil {
					return kb << 10
				}
			}
		}
	}
	return 0
}
