package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"gantry/wire"
)

// Images lists the repositories visible to the caller.
func (c *Client) Images(ctx context.Context) (*wire.ImageList, error) {
	var out wire.ImageList
	return &out, c.do(ctx, "GET", "/api/v1/images", nil, &out)
}

// DeleteImageTag removes repo:tag (owner or admin).
func (c *Client) DeleteImageTag(ctx context.Context, repo, tag string) error {
	return c.do(ctx, "DELETE", "/api/v1/images/"+repo+"/tags/"+tag, nil, nil)
}

// DeleteImageManifest removes repo@digest and the tags pointing at it
// (owner or admin).
func (c *Client) DeleteImageManifest(ctx context.Context, repo, digest string) error {
	return c.do(ctx, "DELETE", "/api/v1/images/"+repo+"/manifests/"+digest, nil, nil)
}

// RegistryGC runs the registry's garbage collection (admin).
func (c *Client) RegistryGC(ctx context.Context, dryRun bool) (*wire.GCReport, error) {
	var out wire.GCReport
	p := "/api/v1/admin/gc"
	if dryRun {
		p += "?dry_run=1"
	}
	return &out, c.do(ctx, "POST", p, nil, &out)
}

// ImportImages uploads a `docker save` archive; its images are stored
// under the caller's namespace. It returns the references created.
func (c *Client) ImportImages(ctx context.Context, archive io.Reader) ([]string, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", c.Addr+"/api/v1/images/import", archive)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-tar")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach Gantry at %s: %w", c.Addr, unwrapURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return nil, errorOf(resp)
	}
	var out wire.ImageImport
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("decode import answer: %w", err)
	}
	return out.Images, nil
}

// Backup asks for an online backup archive (admin) leaving out the blobs
// in have; the caller reads and closes it (node/backup reads it).
func (c *Client) Backup(ctx context.Context, have []string) (io.ReadCloser, error) {
	body, err := json.Marshal(wire.BackupRequest{Have: have})
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, "POST", c.Addr+"/api/v1/backup", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach Gantry at %s: %w", c.Addr, unwrapURLError(err))
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		return nil, errorOf(resp)
	}
	return resp.Body, nil
}
