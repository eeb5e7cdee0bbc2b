// Package backup owns Gantry's backups: the archive a node writes while
// it serves (the replicated state and every blob it links, from one
// consistent view), the directory a backup is kept in (blobs by digest, so
// a second backup to it copies only what is new), and the restore of
// either onto a fresh data directory as a new single-node cluster.
//
// An archive is a tar stream: state.snap (the store's snapshot stream),
// then blobs/sha256/<hex> for each blob the receiver does not have yet,
// then backup.json (Manifest) last, so a cut-off stream is never taken for
// a backup. A backup directory holds the same names, backup.json written
// last; a backup file is the archive itself.
package backup

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Names inside an archive and a backup directory.
const (
	StateName    = "state.snap"
	ManifestName = "backup.json"
	BlobsDir     = "blobs/sha256/"
)

// FormatVersion is Manifest.Version of what this binary writes.
const FormatVersion = 1

// Manifest describes a backup: what state it holds and every blob that
// state links (all of them present once the backup is complete).
type Manifest struct {
	Version     int       `json:"version"`
	Taken       time.Time `json:"taken"`
	Cluster     string    `json:"cluster"`
	Applied     uint64    `json:"applied"` // the last Raft index in the state
	StateSHA256 string    `json:"state_sha256"`
	StateSize   int64     `json:"state_size"`
	Blobs       []Blob    `json:"blobs"`
}

// Blob is a blob the state links.
type Blob struct {
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
}

// State writes the state's snapshot stream to w and says what it holds:
// the last Raft index, the cluster id and every blob it links, all from
// one consistent view (store.Store.Backup).
type State func(w io.Writer) (applied uint64, cluster string, blobs []Blob, err error)

// BlobOpener opens a blob by digest, fetching it from a peer when this node
// lacks it.
type BlobOpener func(ctx context.Context, digest string) (io.ReadCloser, error)

// Write writes an archive of the state and the blobs it links (but those
// in have) to w. The state goes to a temporary file in tmpDir first: a tar
// entry needs its size up front.
func Write(ctx context.Context, w io.Writer, state State, open BlobOpener, have map[string]bool, tmpDir string) (Manifest, error) {
	tmp, err := os.CreateTemp(tmpDir, "backup-state-*")
	if err != nil {
		return Manifest{}, fmt.Errorf("backup: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	applied, cluster, blobs, err := state(io.MultiWriter(tmp, h))
	if err != nil {
		return Manifest{}, err
	}
	size, err := tmp.Seek(0, io.SeekCurrent)
	if err != nil {
		return Manifest{}, err
	}
	m := Manifest{Version: FormatVersion, Taken: time.Now().UTC(), Cluster: cluster, Applied: applied,
		StateSHA256: hex.EncodeToString(h.Sum(nil)), StateSize: size, Blobs: blobs}
	if m.Blobs == nil {
		m.Blobs = []Blob{}
	}
	tw := tar.NewWriter(w)
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return m, err
	}
	if err := putEntry(tw, StateName, size, tmp); err != nil {
		return m, err
	}
	for _, b := range m.Blobs {
		if have[b.Digest] {
			continue
		}
		if err := ctx.Err(); err != nil {
			return m, err
		}
		rc, err := open(ctx, b.Digest)
		if err != nil {
			return m, fmt.Errorf("backup: blob %s: %w", b.Digest, err)
		}
		err = putEntry(tw, BlobsDir+hexOf(b.Digest), b.Size, rc)
		rc.Close()
		if err != nil {
			return m, fmt.Errorf("backup: blob %s: %w", b.Digest, err)
		}
	}
	body, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return m, err
	}
	if err := putEntry(tw, ManifestName, int64(len(body)), strings.NewReader(string(body))); err != nil {
		return m, err
	}
	return m, tw.Close()
}

func putEntry(tw *tar.Writer, name string, size int64, r io.Reader) error {
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: size, Typeflag: tar.TypeReg, ModTime: time.Now()}); err != nil {
		return err
	}
	n, err := io.Copy(tw, io.LimitReader(r, size))
	if err == nil && n != size {
		err = fmt.Errorf("%s: %d bytes, expected %d", name, n, size)
	}
	return err
}

// hexOf is the hex part of a sha256 digest ("" for anything else).
func hexOf(digest string) string {
	h, ok := strings.CutPrefix(digest, "sha256:")
	if !ok || len(h) != 64 {
		return ""
	}
	if _, err := hex.DecodeString(h); err != nil {
		return ""
	}
	return h
}

// Have lists the blobs a backup directory already holds (file names that
// are digests; content is checked when a restore reads them).
func Have(dir string) (map[string]bool, error) {
	have := map[string]bool{}
	entries, err := os.ReadDir(filepath.Join(dir, BlobsDir))
	if errors.Is(err, os.ErrNotExist) {
		return have, nil
	}
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if h := hexOf("sha256:" + e.Name()); h != "" && e.Type().IsRegular() {
			have["sha256:"+h] = true
		}
	}
	return have, nil
}

// Stats says what an archive brought.
type Stats struct {
	Manifest  Manifest
	NewBlobs  int
	NewBytes  int64
	StateSize int64
}

// ReadInto unpacks an archive into a backup directory: each blob checked
// against its digest and renamed into place, the state and backup.json
// replaced only once the whole archive has arrived and every blob the
// manifest lists is in the directory.
func ReadInto(r io.Reader, dir string) (Stats, error) {
	var st Stats
	if err := os.MkdirAll(filepath.Join(dir, BlobsDir), 0o700); err != nil {
		return st, err
	}
	statePart := filepath.Join(dir, StateName+".partial")
	defer os.Remove(statePart)
	var m *Manifest
	err := readArchive(r, func(name string, size int64, body io.Reader) error {
		switch {
		case name == StateName:
			n, err := writeFile(statePart, body, "")
			st.StateSize = n
			return err
		case name == ManifestName:
			m = new(Manifest)
			return json.NewDecoder(body).Decode(m)
		default:
			h := hexOf("sha256:" + strings.TrimPrefix(name, BlobsDir))
			if !strings.HasPrefix(name, BlobsDir) || h == "" {
				return fmt.Errorf("unexpected entry %q", name)
			}
			n, err := writeFile(filepath.Join(dir, BlobsDir, h), body, h)
			st.NewBlobs++
			st.NewBytes += n
			return err
		}
	})
	if err != nil {
		return st, err
	}
	if m == nil {
		return st, errors.New("backup: the archive ended without backup.json: it was cut off")
	}
	if err := checkComplete(dir, *m, statePart); err != nil {
		return st, err
	}
	if err := os.Rename(statePart, filepath.Join(dir, StateName)); err != nil {
		return st, err
	}
	body, _ := json.MarshalIndent(m, "", "  ")
	if _, err := writeFile(filepath.Join(dir, ManifestName), strings.NewReader(string(body)), ""); err != nil {
		return st, err
	}
	st.Manifest = *m
	return st, nil
}

// checkComplete checks that the state file matches the manifest and that
// every blob it lists is in dir.
func checkComplete(dir string, m Manifest, state string) error {
	if m.Version > FormatVersion {
		return fmt.Errorf("backup: format version %d is newer than this binary's %d: use a newer gantry", m.Version, FormatVersion)
	}
	sum, _, err := fileSHA256(state)
	if err != nil {
		return fmt.Errorf("backup: state: %w", err)
	}
	if sum != m.StateSHA256 {
		return fmt.Errorf("backup: the state's sha256 is %s, the manifest says %s", sum, m.StateSHA256)
	}
	for _, b := range m.Blobs {
		fi, err := os.Stat(filepath.Join(dir, BlobsDir, hexOf(b.Digest)))
		if err != nil || fi.Size() != b.Size {
			return fmt.Errorf("backup: blob %s is missing or of the wrong size in %s", b.Digest, dir)
		}
	}
	return nil
}

// readArchive calls fn for each regular file of a tar stream.
func readArchive(r io.Reader, fn func(name string, size int64, body io.Reader) error) error {
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("backup: not a readable archive: %w", err)
		}
		if hdr.Typeflag != tar.TypeReg {
			return fmt.Errorf("backup: unexpected entry %q", hdr.Name)
		}
		if err := fn(hdr.Name, hdr.Size, tr); err != nil {
			return fmt.Errorf("backup: %s: %w", hdr.Name, err)
		}
	}
}

// writeFile writes body to path through a temporary file renamed into
// place; with wantHex, only if its sha256 is that.
func writeFile(path string, body io.Reader, wantHex string) (int64, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return 0, err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".partial-*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(f.Name())
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), body)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, err
	}
	if wantHex != "" && hex.EncodeToString(h.Sum(nil)) != wantHex {
		return n, fmt.Errorf("content does not match its digest sha256:%s", wantHex)
	}
	return n, os.Rename(f.Name(), path)
}

func fileSHA256(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	return hex.EncodeToString(h.Sum(nil)), n, err
}

// Check reads an archive as it goes by (to a file, say) and checks it: it
// ends with its manifest, the state matches its sha256, and every blob
// entry its digest; the manifest's other blobs are the have list's.
func Check(r io.Reader) (Stats, error) {
	var st Stats
	var m *Manifest
	stateSum := ""
	err := readArchive(r, func(name string, size int64, body io.Reader) error {
		h := sha256.New()
		if name == ManifestName {
			m = new(Manifest)
			return json.NewDecoder(body).Decode(m)
		}
		n, err := io.Copy(h, body)
		if err != nil {
			return err
		}
		sum := hex.EncodeToString(h.Sum(nil))
		switch {
		case name == StateName:
			stateSum, st.StateSize = sum, n
		case strings.HasPrefix(name, BlobsDir) && hexOf("sha256:"+strings.TrimPrefix(name, BlobsDir)) == sum:
			st.NewBlobs++
			st.NewBytes += n
		default:
			return fmt.Errorf("content does not match its name (or an unexpected entry)")
		}
		return nil
	})
	if err != nil {
		return st, err
	}
	if m == nil {
		return st, errors.New("backup: the archive ended without backup.json: it was cut off")
	}
	if stateSum != m.StateSHA256 {
		return st, fmt.Errorf("backup: the state's sha256 is %s, the manifest says %s", stateSum, m.StateSHA256)
	}
	st.Manifest = *m
	return st, nil
}
