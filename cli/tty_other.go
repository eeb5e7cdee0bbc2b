//go:build !linux

package cli

import "os"

// fileIsTerminal reports whether f is a character device (a terminal, or
// /dev/null, which then reads as no answer).
func fileIsTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
