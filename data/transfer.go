package data

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// Remote is one repository of an OCI registry, as a push and a pull need
// it (package client implements it over the distribution API).
type Remote interface {
	BlobSource
	// PushBlob stores a blob unless the repository has it (or can link it
	// from another the caller may read); sent is false when no byte had to
	// be sent. open is called at most once.
	PushBlob(ctx context.Context, d digest.Digest, size int64, open func() (io.ReadCloser, error)) (sent bool, err error)
	// Manifest reads the manifest a tag or digest names.
	Manifest(ctx context.Context, ref string) ([]byte, error)
	// PutManifest stores a manifest under a tag (or its digest).
	PutManifest(ctx context.Context, ref, mediaType string, body []byte) (digest.Digest, error)
}

// MaxConfigSize bounds the config blob a pull reads into memory.
const MaxConfigSize = 64 << 20

// Push sends an artifact's blobs (Parallel at a time, each skipped when
// the registry has it) and then its manifest under ref. An interrupted
// push resumes at the first blob the registry does not have yet.
func Push(ctx context.Context, a *Artifact, r Remote, ref string, parallel int, p *Progress) (digest.Digest, error) {
	if parallel <= 0 {
		parallel = 4
	}
	blobs := append([]Blob{a.Config}, a.Layers...)
	if p != nil {
		for _, b := range blobs {
			p.Total.Add(b.Desc.Size)
		}
		p.Blobs.Add(int64(len(blobs)))
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := make(chan Blob)
	var once sync.Once
	var firstErr error
	var wg sync.WaitGroup
	for range min(parallel, len(blobs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range work {
				if err := pushBlob(ctx, r, b, p); err != nil {
					once.Do(func() { firstErr = err; cancel() })
				}
			}
		}()
	}
feed:
	for _, b := range blobs {
		select {
		case work <- b:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	if firstErr != nil {
		return "", firstErr
	}
	return r.PutManifest(ctx, ref, a.MediaType, a.Manifest)
}

func pushBlob(ctx context.Context, r Remote, b Blob, p *Progress) error {
	var cr *countReader
	sent, err := r.PushBlob(ctx, b.Desc.Digest, b.Desc.Size, func() (io.ReadCloser, error) {
		rc, err := b.Open()
		if err != nil {
			return nil, err
		}
		cr = &countReader{r: ctxReader{ctx, rc}, p: p}
		return struct {
			io.Reader
			io.Closer
		}{cr, rc}, nil
	})
	if err != nil {
		return fmt.Errorf("push %s: %w", b.Desc.Digest, err)
	}
	if p != nil {
		if !sent {
			p.Skipped.Add(1)
		}
		if cr != nil {
			p.Done.Add(b.Desc.Size - cr.n)
		} else {
			p.Done.Add(b.Desc.Size)
		}
	}
	return nil
}

// Fetch reads the manifest ref names and, for a Gantry dataset, its
// config, and returns the tree.
func Fetch(ctx context.Context, r Remote, ref string) (*v1.Manifest, *Tree, error) {
	body, err := r.Manifest(ctx, ref)
	if err != nil {
		return nil, nil, err
	}
	m, err := ParseManifest(body)
	if err != nil {
		return nil, nil, err
	}
	var cfg []byte
	if IsDataset(m) {
		if m.Config.Size > MaxConfigSize {
			return nil, nil, fmt.Errorf("dataset config of %d bytes: more than %d", m.Config.Size, MaxConfigSize)
		}
		rc, err := r.Blob(ctx, m.Config.Digest, 0)
		if err != nil {
			return nil, nil, fmt.Errorf("fetch config: %w", err)
		}
		cfg, err = io.ReadAll(io.LimitReader(rc, MaxConfigSize+1))
		rc.Close()
		if err != nil {
			return nil, nil, fmt.Errorf("fetch config: %w", err)
		}
		if digest.FromBytes(cfg) != m.Config.Digest {
			return nil, nil, fmt.Errorf("config %s: the bytes received do not match its digest", m.Config.Digest)
		}
	}
	t, err := NewTree(m, cfg)
	if err != nil {
		return nil, nil, err
	}
	return m, t, nil
}

// Pull writes the artifact ref names into dir (Unpack says how).
func Pull(ctx context.Context, r Remote, ref, dir string, opt UnpackOptions) (*Tree, *UnpackStats, error) {
	_, t, err := Fetch(ctx, r, ref)
	if err != nil {
		return nil, nil, err
	}
	st, err := Unpack(ctx, dir, t, r, opt)
	return t, st, err
}
