package backup

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func digestOf(b []byte) string { s := sha256.Sum256(b); return "sha256:" + hex.EncodeToString(s[:]) }

// archive writes an archive of a small state and blobs, leaving out have.
func archive(t *testing.T, blobs map[string][]byte, have map[string]bool) []byte {
	t.Helper()
	var list []Blob
	for d, b := range blobs {
		list = append(list, Blob{Digest: d, Size: int64(len(b))})
	}
	state := func(w io.Writer) (uint64, string, []Blob, error) {
		_, err := io.WriteString(w, "GANTRYSNAP1\nthe state")
		return 42, "c1", list, err
	}
	open := func(_ context.Context, d string) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(blobs[d])), nil
	}
	var buf bytes.Buffer
	if _, err := Write(context.Background(), &buf, state, open, have, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestADirectoryBackupTakesOnlyNewBlobsAndRefusesBadArchives(t *testing.T) {
	a, b := []byte("blob a"), []byte("blob b")
	blobs := map[string][]byte{digestOf(a): a, digestOf(b): b}
	dir := t.TempDir()
	st, err := ReadInto(bytes.NewReader(archive(t, blobs, nil)), dir)
	if err != nil || st.NewBlobs != 2 || st.Manifest.Applied != 42 {
		t.Fatalf("first: %+v %v", st, err)
	}
	have, err := Have(dir)
	if err != nil || len(have) != 2 {
		t.Fatalf("have %v %v", have, err)
	}
	c := []byte("blob c")
	blobs[digestOf(c)] = c
	st, err = ReadInto(bytes.NewReader(archive(t, blobs, have)), dir)
	if err != nil || st.NewBlobs != 1 || len(st.Manifest.Blobs) != 3 {
		t.Fatalf("second: %+v %v", st, err)
	}
	// A restore finds it complete and puts the blobs where it is told.
	into := t.TempDir()
	state, m, err := Unpack(dir, t.TempDir(), func(d string) string { return filepath.Join(into, d[7:]) })
	if err != nil || len(m.Blobs) != 3 {
		t.Fatalf("unpack: %v %+v", err, m)
	}
	if got, _ := os.ReadFile(filepath.Join(into, digestOf(c)[7:])); !bytes.Equal(got, c) {
		t.Fatalf("blob c restored as %q", got)
	}
	if got, _ := os.ReadFile(state); string(got) != "GANTRYSNAP1\nthe state" {
		t.Fatalf("state %q", got)
	}

	full := archive(t, blobs, nil)
	cut := full[:len(full)-2048] // without backup.json
	if _, err := Check(bytes.NewReader(cut)); err == nil {
		t.Fatal("a cut-off archive passed the check")
	}
	before, _ := os.ReadFile(filepath.Join(dir, ManifestName))
	if _, err := ReadInto(bytes.NewReader(cut), dir); err == nil {
		t.Fatal("a cut-off archive was taken")
	}
	if after, _ := os.ReadFile(filepath.Join(dir, ManifestName)); !bytes.Equal(before, after) {
		t.Fatal("a cut-off archive replaced the previous backup's manifest")
	}
	bad := bytes.Replace(full, []byte("blob c"), []byte("blob X"), 1)
	if _, err := Check(bytes.NewReader(bad)); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("a tampered blob: %v", err)
	}
	if _, err := ReadInto(bytes.NewReader(bad), t.TempDir()); err == nil || !strings.Contains(err.Error(), "does not match its digest") {
		t.Fatalf("a tampered blob into a directory: %v", err)
	}
	os.Remove(filepath.Join(dir, BlobsDir, digestOf(a)[7:]))
	if _, _, err := Unpack(dir, t.TempDir(), func(d string) string { return filepath.Join(into, d) }); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("unpack of a backup missing a blob: %v", err)
	}
}
