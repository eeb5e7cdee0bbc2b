package cli

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"gantry/node/backup"
)

func backupCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "backup DIR|FILE.tar",
		Short: "Take an online backup of the state and every image (admin); restore with 'gantry server --restore'",
		Long: "Takes a consistent backup while jobs run. Into a directory, blobs are kept by digest, so the next\n" +
			"backup into it copies only what is new; a path ending in .tar gets the whole archive.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := newClient()
			if err != nil {
				return err
			}
			dst := args[0]
			if strings.HasSuffix(dst, ".tar") {
				part := dst + ".partial"
				f, err := os.OpenFile(part, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
				if err != nil {
					return err
				}
				defer os.Remove(part)
				rc, err := cl.Backup(cmd.Context(), nil)
				if err != nil {
					f.Close()
					return err
				}
				// Check the archive while it is written: it must end with
				// its manifest, and every blob must match its digest.
				st, err := backup.Check(io.TeeReader(rc, f))
				rc.Close()
				if cerr := f.Close(); err == nil {
					err = cerr
				}
				if err == nil && st.NewBlobs != len(st.Manifest.Blobs) {
					err = fmt.Errorf("the archive holds %d of its %d blobs", st.NewBlobs, len(st.Manifest.Blobs))
				}
				if err != nil {
					return fmt.Errorf("backup to %s failed, nothing written: %w", dst, err)
				}
				if err := os.Rename(part, dst); err != nil {
					return err
				}
				return printBackup(cmd, g, dst, st)
			}
			have, err := backup.Have(dst)
			if err != nil {
				return err
			}
			list := make([]string, 0, len(have))
			for d := range have {
				list = append(list, d)
			}
			slices.Sort(list)
			rc, err := cl.Backup(cmd.Context(), list)
			if err != nil {
				return err
			}
			defer rc.Close()
			st, err := backup.ReadInto(rc, dst)
			if err != nil {
				return fmt.Errorf("backup to %s failed (the previous backup there, if any, is intact): %w", dst, err)
			}
			return printBackup(cmd, g, dst, st)
		},
	}
}

func printBackup(cmd *cobra.Command, g *globals, dst string, st backup.Stats) error {
	if g.output == "json" {
		return printJSON(cmd.OutOrStdout(), st.Manifest)
	}
	m := st.Manifest
	fmt.Fprintf(cmd.OutOrStdout(), "backup of cluster %s at index %d in %s: state %s, %d blobs (%d new, %s)\n",
		m.Cluster, m.Applied, dst, human(st.StateSize), len(m.Blobs), st.NewBlobs, human(st.NewBytes))
	return nil
}
