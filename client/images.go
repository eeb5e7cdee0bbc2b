package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// ImageTag is one tag of a repository.
type ImageTag struct {
	Tag       string    `json:"tag"`
	Digest    string    `json:"digest"`
	MediaType string    `json:"media_type"`
	Size      int64     `json:"size"` // manifest plus the blobs it references
	Pushed    time.Time `json:"pushed"`
}

// ImageRepo is a repository of the built-in registry.
type ImageRepo struct {
	Name      string     `json:"name"`
	Owner     string     `json:"owner"`
	Tags      []ImageTag `json:"tags"`
	Manifests int        `json:"manifests"`
	Size      int64      `json:"size"` // distinct blobs plus manifests
	LastPush  time.Time  `json:"last_push"`
}

// ImageList is GET /api/v1/images: the repositories the caller may pull and
// the caller's storage usage in bytes (every owner's for admins).
type ImageList struct {
	Repositories []ImageRepo      `json:"repositories"`
	Usage        int64            `json:"usage"`
	UsageByOwner map[string]int64 `json:"usage_by_owner,omitempty"`
}

// GCReport is what a registry garbage collection removed (or would remove).
type GCReport struct {
	DryRun        bool `json:"dry_run"`
	UnlinkedBlobs []struct {
		Repo   string `json:"repo"`
		Digest string `json:"digest"`
	} `json:"unlinked_blobs"`
	DeletedBlobs   []string `json:"deleted_blobs"`
	FreedBytes     int64    `json:"freed_bytes"`
	ExpiredUploads []string `json:"expired_uploads"`
	KeptBlobs      int      `json:"kept_blobs"`
}

// Images lists the repositories visible to the caller.
func (c *Client) Images(ctx context.Context) (*ImageList, error) {
	var out ImageList
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
func (c *Client) RegistryGC(ctx context.Context, dryRun bool) (*GCReport, error) {
	var out GCReport
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
		var e struct {
			Error string `json:"error"`
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(b))
		}
		return nil, &Error{Status: resp.StatusCode, Message: e.Error}
	}
	var out struct {
		Images []string `json:"images"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("decode import answer: %w", err)
	}
	return out.Images, nil
}
