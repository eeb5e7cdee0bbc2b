package node

import "golang.org/x/sys/unix"

// diskSpace reports the bytes available to unprivileged writers and the
// size of the file system holding dir.
func diskSpace(dir string) (free, size uint64, ok bool) {
	var s unix.Statfs_t
	if err := unix.Statfs(dir, &s); err != nil {
		return 0, 0, false
	}
	bs := uint64(s.Bsize)
	return s.Bavail * bs, s.Blocks * bs, true
}
