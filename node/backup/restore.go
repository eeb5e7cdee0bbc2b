package backup

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Unpack reads a backup, a directory or an archive file, checks it is
// complete (the state's sha256, every blob present) and puts each blob
// where blobPath says, checked against its digest. It returns the state
// file to restore the store from: in the directory, or for an archive in
// work (which the caller removes).
func Unpack(src, work string, blobPath func(digest string) string) (state string, m Manifest, err error) {
	fi, err := os.Stat(src)
	if err != nil {
		return "", m, fmt.Errorf("restore: %w", err)
	}
	dir := src
	moveBlobs := false
	if !fi.IsDir() {
		f, err := os.Open(src)
		if err != nil {
			return "", m, fmt.Errorf("restore: %w", err)
		}
		defer f.Close()
		if _, err := ReadInto(f, work); err != nil {
			return "", m, fmt.Errorf("restore from %s: %w", src, err)
		}
		dir, moveBlobs = work, true
	}
	b, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		return "", m, fmt.Errorf("restore: %s has no %s: not a complete backup (%w)", src, ManifestName, err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return "", m, fmt.Errorf("restore: %s: %w", ManifestName, err)
	}
	state = filepath.Join(dir, StateName)
	if err := checkComplete(dir, m, state); err != nil {
		return "", m, fmt.Errorf("restore from %s: %w", src, err)
	}
	for _, bl := range m.Blobs {
		from := filepath.Join(dir, BlobsDir, hexOf(bl.Digest))
		to := blobPath(bl.Digest)
		if moveBlobs {
			// Checked against its digest when it was unpacked into work.
			if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
				return "", m, err
			}
			if err := os.Rename(from, to); err != nil {
				return "", m, fmt.Errorf("restore: blob %s: %w", bl.Digest, err)
			}
			continue
		}
		f, err := os.Open(from)
		if err != nil {
			return "", m, fmt.Errorf("restore: blob %s: %w", bl.Digest, err)
		}
		_, err = writeFile(to, io.Reader(f), hexOf(bl.Digest))
		f.Close()
		if err != nil {
			return "", m, fmt.Errorf("restore: blob %s in %s: %w", bl.Digest, src, err)
		}
	}
	return state, m, nil
}
