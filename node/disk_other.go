//go:build !linux

package node

// diskSpace is not measured off Linux: the disk metrics are left out.
func diskSpace(string) (free, size uint64, ok bool) { return 0, 0, false }
