package data

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
)

// WriteTar writes the tree of a Gantry dataset (or task output) as one
// uncompressed tar to w: each layer's files, its links, then its
// directories, every entry with the mode and time the config lists. It is
// how a browser downloads an artifact as one file. Every blob read is
// checked against its digest; a mismatch ends the tar with an error
// (the reader sees a truncated archive), never with other bytes.
func WriteTar(ctx context.Context, w io.Writer, t *Tree, src BlobSource) error {
	if !t.Described {
		return errors.New("only a Gantry dataset or output can be written as a tar")
	}
	tw := tar.NewWriter(w)
	for _, l := range t.Layers {
		var err error
		switch l.Kind {
		case LayerRaw:
			err = tarRaw(ctx, tw, l, src)
		case LayerTar:
			err = tarPack(ctx, tw, l, src)
		case LayerSkip:
		default:
			err = fmt.Errorf("layer %s: not a layer of a Gantry dataset", l.Desc.Digest)
		}
		if err != nil {
			return err
		}
	}
	for _, e := range t.Links {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: e.Path, Linkname: e.Target, ModTime: e.MTime, Mode: 0o777, Format: tar.FormatPAX}); err != nil {
			return err
		}
	}
	// Directories last, each after everything in it (children before their
	// parents), so an extracting tar sets their modes and times once
	// nothing more is written into them.
	for i := len(t.Dirs) - 1; i >= 0; i-- {
		e := t.Dirs[i]
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: e.Path + "/", Mode: int64(e.Mode), ModTime: e.MTime, Format: tar.FormatPAX}); err != nil {
			return err
		}
	}
	return tw.Close()
}

func fileHeader(e Entry) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeReg, Name: e.Path, Size: e.Size, Mode: int64(e.Mode), ModTime: e.MTime, Format: tar.FormatPAX}
}

// tarRaw writes each file a raw layer holds, reading the blob once per
// file.
func tarRaw(ctx context.Context, tw *tar.Writer, l Layer, src BlobSource) error {
	for _, e := range l.Files {
		if e.Size != l.Desc.Size {
			return fmt.Errorf("%s: %d bytes listed, its layer has %d", e.Path, e.Size, l.Desc.Size)
		}
		rc, err := src.Blob(ctx, l.Desc.Digest, 0)
		if err != nil {
			return fmt.Errorf("fetch %s: %w", l.Desc.Digest, err)
		}
		v := l.Desc.Digest.Verifier()
		err = tw.WriteHeader(fileHeader(e))
		if err == nil {
			var n int64
			n, err = io.Copy(tw, io.TeeReader(io.LimitReader(ctxReader{ctx, rc}, e.Size), v))
			if err == nil && (n != e.Size || !v.Verified()) {
				err = fmt.Errorf("blob %s: the bytes read do not match its digest", l.Desc.Digest)
			}
		}
		rc.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", e.Path, err)
		}
	}
	return nil
}

// tarPack copies the members of a pack layer, with the config's metadata.
func tarPack(ctx context.Context, tw *tar.Writer, l Layer, src BlobSource) error {
	rc, err := src.Blob(ctx, l.Desc.Digest, 0)
	if err != nil {
		return fmt.Errorf("fetch %s: %w", l.Desc.Digest, err)
	}
	defer rc.Close()
	v := l.Desc.Digest.Verifier()
	tee := io.TeeReader(ctxReader{ctx, io.LimitReader(rc, l.Desc.Size)}, v)
	tr := tar.NewReader(tee)
	seen := 0
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("layer %s: %w", l.Desc.Digest, err)
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		e, ok := l.Members[path.Clean(hdr.Name)]
		if !ok || hdr.Typeflag != tar.TypeReg || hdr.Size != e.Size {
			return fmt.Errorf("layer %s: %q is not a file its config lists", l.Desc.Digest, hdr.Name)
		}
		if err := tw.WriteHeader(fileHeader(e)); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return fmt.Errorf("layer %s: %w", l.Desc.Digest, err)
		}
		seen++
	}
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return fmt.Errorf("fetch %s: %w", l.Desc.Digest, err)
	}
	if !v.Verified() {
		return fmt.Errorf("blob %s: the bytes read do not match its digest", l.Desc.Digest)
	}
	if seen != len(l.Members) {
		return fmt.Errorf("layer %s: %d of the %d files its config lists", l.Desc.Digest, seen, len(l.Members))
	}
	return nil
}
