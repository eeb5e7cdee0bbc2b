package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"gantry/wire"
)

// Repository is one repository of the node's registry (/v2/), reached
// with the client's API token as the registry's basic credentials (user
// "token"). It implements data.Remote.
type Repository struct {
	c    *Client
	Name string
}

// Repository returns the registry repository name (OWNER/NAME).
func (c *Client) Repository(name string) *Repository { return &Repository{c: c, Name: name} }

// Me is the signed-in account.
func (c *Client) Me(ctx context.Context) (*wire.User, error) {
	var u wire.User
	return &u, c.do(ctx, "GET", "/api/v1/me", nil, &u)
}

func (r *Repository) request(ctx context.Context, method, p string, body io.Reader) (*http.Request, error) {
	u := p
	if !strings.HasPrefix(p, "http://") && !strings.HasPrefix(p, "https://") {
		u = r.c.Addr + p
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if r.c.Token != "" {
		req.SetBasicAuth("token", r.c.Token)
	}
	return req, nil
}

func (r *Repository) send(req *http.Request, want ...int) (*http.Response, error) {
	resp, err := r.c.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach Gantry's registry at %s: %w", r.c.Addr, unwrapURLError(err))
	}
	for _, w := range want {
		if resp.StatusCode == w {
			return resp, nil
		}
	}
	defer resp.Body.Close()
	return nil, registryError(resp)
}

// registryError reads an OCI error answer ({"errors":[{code,message}]}).
func registryError(resp *http.Response) *Error {
	var doc struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(b, &doc) == nil && len(doc.Errors) > 0 {
		e := doc.Errors[0]
		return &Error{Status: resp.StatusCode, Code: e.Code, Message: strings.ToLower(e.Code) + ": " + e.Message}
	}
	msg := strings.TrimSpace(string(b))
	if msg == "" {
		msg = resp.Status
	}
	return &Error{Status: resp.StatusCode, Message: msg}
}

func (r *Repository) path(kind, ref string) string {
	return "/v2/" + r.Name + "/" + kind + "/" + ref
}

// Blob reads blob d from offset on.
func (r *Repository) Blob(ctx context.Context, d digest.Digest, offset int64) (io.ReadCloser, error) {
	req, err := r.request(ctx, "GET", r.path("blobs", d.String()), nil)
	if err != nil {
		return nil, err
	}
	if offset > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(offset, 10)+"-")
	}
	resp, err := r.send(req, http.StatusOK, http.StatusPartialContent)
	if err != nil {
		return nil, err
	}
	if offset > 0 && resp.StatusCode == http.StatusOK {
		// The registry sent the whole blob: skip what is here already.
		if _, err := io.CopyN(io.Discard, resp.Body, offset); err != nil {
			resp.Body.Close()
			return nil, fmt.Errorf("read blob %s: %w", d, err)
		}
	}
	return resp.Body, nil
}

// HasBlob reports whether the repository links blob d.
func (r *Repository) HasBlob(ctx context.Context, d digest.Digest) (bool, error) {
	req, err := r.request(ctx, "HEAD", r.path("blobs", d.String()), nil)
	if err != nil {
		return false, err
	}
	resp, err := r.c.HTTP.Do(req)
	if err != nil {
		return false, fmt.Errorf("cannot reach Gantry's registry at %s: %w", r.c.Addr, unwrapURLError(err))
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return true, nil
	case http.StatusNotFound:
		return false, nil
	case http.StatusUnauthorized, http.StatusForbidden:
		// A HEAD answer has no body to say more.
		return false, &Error{Status: resp.StatusCode, Code: "DENIED", Message: "denied: you may not write to " + r.Name}
	}
	return false, &Error{Status: resp.StatusCode, Message: "blob " + d.String() + ": " + resp.Status}
}

// PushBlob stores blob d unless the repository has it: a HEAD, then a
// mount from any repository the caller may read that has it, then the
// bytes (one monolithic PUT).
func (r *Repository) PushBlob(ctx context.Context, d digest.Digest, size int64, open func() (io.ReadCloser, error)) (bool, error) {
	if ok, err := r.HasBlob(ctx, d); err != nil || ok {
		return false, err
	}
	req, err := r.request(ctx, "POST", "/v2/"+r.Name+"/blobs/uploads/?mount="+url.QueryEscape(d.String()), nil)
	if err != nil {
		return false, err
	}
	resp, err := r.send(req, http.StatusCreated, http.StatusAccepted)
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusCreated {
		return false, nil
	}
	loc, err := resp.Location()
	if err != nil {
		return false, fmt.Errorf("upload %s: no Location: %w", d, err)
	}
	q := loc.Query()
	q.Set("digest", d.String())
	loc.RawQuery = q.Encode()
	body, err := open()
	if err != nil {
		return false, err
	}
	defer body.Close()
	req, err = r.request(ctx, "PUT", loc.String(), body)
	if err != nil {
		return false, err
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err = r.send(req, http.StatusCreated)
	if err != nil {
		return true, err
	}
	resp.Body.Close()
	return true, nil
}

// Manifest reads the image manifest ref (a tag or digest) names.
func (r *Repository) Manifest(ctx context.Context, ref string) ([]byte, error) {
	req, err := r.request(ctx, "GET", r.path("manifests", ref), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", v1.MediaTypeImageManifest+", "+v1.MediaTypeImageIndex)
	resp, err := r.send(req, http.StatusOK)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, fmt.Errorf("read manifest %s:%s: %w", r.Name, ref, err)
	}
	if want := resp.Header.Get("Docker-Content-Digest"); want != "" {
		if d, err := digest.Parse(want); err == nil && d.Algorithm().Available() && d.Algorithm().FromBytes(b) != d {
			return nil, fmt.Errorf("manifest %s:%s does not match its digest", r.Name, ref)
		}
	}
	if d, err := digest.Parse(ref); err == nil && d.Algorithm().Available() && d.Algorithm().FromBytes(b) != d {
		return nil, fmt.Errorf("manifest %s does not match its digest", ref)
	}
	return b, nil
}

// PutManifest stores a manifest under ref (a tag or its digest).
func (r *Repository) PutManifest(ctx context.Context, ref, mediaType string, body []byte) (digest.Digest, error) {
	req, err := r.request(ctx, "PUT", r.path("manifests", ref), strings.NewReader(string(body)))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", mediaType)
	resp, err := r.send(req, http.StatusCreated)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	return digest.FromBytes(body), nil
}

// Outputs is a page of the stored outputs of job's tasks: limit tasks (0:
// the server's default) from task index cursor on.
func (c *Client) Outputs(ctx context.Context, job string, cursor string, limit int) (*wire.OutputList, error) {
	q := url.Values{}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var l wire.OutputList
	return &l, c.do(ctx, "GET", "/api/v1/jobs/"+url.PathEscape(job)+"/outputs?"+q.Encode(), nil, &l)
}
