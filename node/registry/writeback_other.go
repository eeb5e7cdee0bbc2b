//go:build !linux

package registry

import (
	"errors"
	"os"
)

// startWriteback is a no-op where sync_file_range does not exist.
func startWriteback(f *os.File, off, n int64) {}

// openDirect: direct I/O is only used on Linux.
func openDirect(path string) (*os.File, error) {
	return nil, errors.New("direct I/O not supported here")
}

// prefetch: readahead hints are only given on Linux.
func prefetch(f *os.File, n int64) {}

// memAvailable: unknown here, so nothing is prefetched.
func memAvailable() int64 { return 0 }
