package api

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/opencontainers/go-digest"

	"gantry/node/backup"
	"gantry/node/registry"
	"gantry/store"
	"gantry/wire"
)

// backupOf writes backups of st with reg's blobs, as the node does.
func backupOf(st *store.Store, reg *registry.Registry, tmp string) func(context.Context, io.Writer, map[string]bool) error {
	return func(ctx context.Context, w io.Writer, have map[string]bool) error {
		state := func(w io.Writer) (uint64, string, []backup.Blob, error) {
			info, err := st.Backup(w)
			var blobs []backup.Blob
			for _, b := range info.Blobs {
				blobs = append(blobs, backup.Blob(b))
			}
			return info.Applied, info.Cluster, blobs, err
		}
		open := func(_ context.Context, d string) (io.ReadCloser, error) { return reg.OpenBlob(digest.Digest(d)) }
		_, err := backup.Write(ctx, w, state, open, have, tmp)
		return err
	}
}

// TestBackupStreamsTheStateAndTheBlobsAsked: the admin's backup is a
// complete archive (its state's sha256 and each blob's digest check out)
// holding every linked blob but those the request says it has; a have
// list with something other than digests is refused.
func TestBackupStreamsTheStateAndTheBlobsAsked(t *testing.T) {
	f := newFixture(t)
	f.image("alice", "alice/big", "1", "layer one", "layer two")
	w := f.do(admin, "POST", "/api/v1/backup", wire.BackupRequest{})
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/x-tar" {
		t.Fatalf("backup: %d %s", w.Code, w.Header().Get("Content-Type"))
	}
	all, err := backup.Check(bytes.NewReader(w.Body.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if m := all.Manifest; m.Cluster != "testcluster" || m.Applied == 0 || len(m.Blobs) < 3 || all.NewBlobs != len(m.Blobs) {
		t.Fatalf("manifest %+v, %d blobs in the archive", m, all.NewBlobs)
	}
	have := []string{all.Manifest.Blobs[0].Digest, all.Manifest.Blobs[1].Digest}
	w = f.do(admin, "POST", "/api/v1/backup", wire.BackupRequest{Have: have})
	some, err := backup.Check(bytes.NewReader(w.Body.Bytes()))
	if err != nil || some.NewBlobs != len(all.Manifest.Blobs)-2 {
		t.Fatalf("a backup leaving out 2 blobs: %d of %d in it, %v", some.NewBlobs, len(all.Manifest.Blobs), err)
	}
	wantError(t, f.do(admin, "POST", "/api/v1/backup", wire.BackupRequest{Have: []string{"../../etc/passwd"}}),
		http.StatusBadRequest, wire.CodeInvalid, `have: "../../etc/passwd" is not a sha256 digest`)
}
