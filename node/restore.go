package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/oklog/ulid/v2"
	"github.com/opencontainers/go-digest"

	"gantry/node/backup"
	"gantry/node/registry"
	"gantry/raftcluster"
	"gantry/store"
)

// restoredMarker, in the data dir, records which backup the directory was
// restored from, so a restart with --restore still set starts normally.
const restoredMarker = "restored-from"

// restore fills a fresh data directory from the backup at src (--restore):
// blobs into the registry, the state into the store, made the state of a
// new cluster (store.PrepareRestored); it returns the Raft seed that makes
// this node the new cluster's only voter with that state (nil when the
// directory was already restored from this backup).
func (n *Node) restore(src string) (*raftcluster.Seed, error) {
	if n.cfg.Join != "" {
		return nil, errors.New("--restore starts a new cluster: it cannot be used with --join (restore first, then join other nodes to it)")
	}
	marker := filepath.Join(n.cfg.DataDir, restoredMarker)
	_, err := n.store.Cluster()
	fresh := errors.Is(err, store.ErrNotFound)
	if err != nil && !fresh {
		return nil, err
	}
	if !fresh {
		if b, err := os.ReadFile(marker); err == nil && strings.TrimSpace(string(b)) == src {
			n.log.Info("data directory already restored from this backup; starting normally", "backup", src)
			return nil, nil
		}
		return nil, fmt.Errorf("--restore %s needs a fresh data directory, and %s already holds a node's state", src, n.cfg.DataDir)
	}
	work := filepath.Join(n.cfg.DataDir, "restore-work")
	defer os.RemoveAll(work)
	regDir := filepath.Join(n.cfg.DataDir, "registry")
	state, m, err := backup.Unpack(src, work, func(d string) string { return registry.BlobPath(regDir, digest.Digest(d)) })
	if err != nil {
		return nil, err
	}
	f, err := os.Open(state)
	if err != nil {
		return nil, err
	}
	if err := n.store.Restore(f); err != nil { // closes f
		return nil, fmt.Errorf("restore from %s: %w", src, err)
	}
	id := strings.ToLower(ulid.Make().String())
	if err := n.store.PrepareRestored(id); err != nil {
		return nil, err
	}
	if err := os.WriteFile(marker, []byte(src+"\n"), 0o600); err != nil {
		return nil, err
	}
	n.log.Info("restored a backup as a new cluster", "backup", src, "taken", m.Taken, "old_cluster", m.Cluster,
		"cluster", id, "index", m.Applied, "blobs", len(m.Blobs))
	return &raftcluster.Seed{Index: n.store.AppliedIndex(), Write: func(w io.Writer) error {
		_, err := n.store.Backup(w)
		return err
	}}, nil
}

// writeBackup writes an online backup archive (POST /api/v1/backup): a
// blob this node lacks comes from a peer that holds it.
func (n *Node) writeBackup(ctx context.Context, w io.Writer, have map[string]bool) error {
	reg := n.images.Registry()
	open := func(ctx context.Context, d string) (io.ReadCloser, error) {
		f, err := reg.OpenBlob(digest.Digest(d))
		if errors.Is(err, fs.ErrNotExist) {
			if err := reg.PullBlob(ctx, digest.Digest(d), ""); err != nil {
				return nil, err
			}
			f, err = reg.OpenBlob(digest.Digest(d))
		}
		return f, err
	}
	state := func(w io.Writer) (uint64, string, []backup.Blob, error) {
		info, err := n.store.Backup(w)
		blobs := make([]backup.Blob, len(info.Blobs))
		for i, b := range info.Blobs {
			blobs[i] = backup.Blob{Digest: b.Digest, Size: b.Size}
		}
		return info.Applied, info.Cluster, blobs, err
	}
	m, err := backup.Write(ctx, w, state, open, have, n.cfg.DataDir)
	if err == nil {
		n.log.Info("backup written", "index", m.Applied, "blobs", len(m.Blobs), "sent", len(m.Blobs)-len(have))
	}
	return err
}
