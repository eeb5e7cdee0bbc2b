package client

import (
	"context"
	"net/url"

	"gantry/wire"
)

// Publish publishes (or updates the publication of) a repository.
func (c *Client) Publish(ctx context.Context, p wire.Publish) (*wire.CatalogEntry, error) {
	var out wire.CatalogEntry
	return &out, c.do(ctx, "POST", "/api/v1/images/publish", p, &out)
}

// Unpublish returns a published repository to private.
func (c *Client) Unpublish(ctx context.Context, repo string) error {
	return c.do(ctx, "POST", "/api/v1/images/unpublish", wire.RepoRef{Repo: repo}, nil)
}

// Accept accepts the licence version of repo (empty: the current one).
func (c *Client) Accept(ctx context.Context, repo, version string, answers []string) (*wire.Acceptance, error) {
	var out wire.Acceptance
	return &out, c.do(ctx, "POST", "/api/v1/images/accept", wire.Accept{Repo: repo, Licence: version, Answers: answers}, &out)
}

// RequestAccess asks the publisher of repo for access.
func (c *Client) RequestAccess(ctx context.Context, repo string, answers []string) (*wire.AccessRequest, error) {
	var out wire.AccessRequest
	return &out, c.do(ctx, "POST", "/api/v1/images/request", wire.AccessAsk{Repo: repo, Answers: answers}, &out)
}

// AccessReport lists who accepted repo's licence and who asked for access.
func (c *Client) AccessReport(ctx context.Context, repo string) (*wire.AccessReport, error) {
	var out wire.AccessReport
	return &out, c.do(ctx, "GET", "/api/v1/images/access?repo="+url.QueryEscape(repo), nil, &out)
}

// DecideAccess approves, rejects or revokes user's access to repo.
func (c *Client) DecideAccess(ctx context.Context, repo, user, decision, reason string) (*wire.AccessRequest, error) {
	var out wire.AccessRequest
	return &out, c.do(ctx, "POST", "/api/v1/images/access/decide", wire.AccessDecision{Repo: repo, User: user, Decision: decision, Reason: reason}, &out)
}

// Accepted lists the licences the caller accepted.
func (c *Client) Accepted(ctx context.Context) ([]wire.Acceptance, error) {
	var out wire.AcceptanceList
	return out.Acceptances, c.do(ctx, "GET", "/api/v1/images/accepted", nil, &out)
}

// RemoveNotice removes the notice repo inherits from base (base's owner).
func (c *Client) RemoveNotice(ctx context.Context, repo, base string) error {
	return c.do(ctx, "POST", "/api/v1/images/notices/remove", wire.RemoveNotice{Repo: repo, Base: base}, nil)
}

// Catalog lists a page of the community catalog.
func (c *Client) Catalog(ctx context.Context, q url.Values) (*wire.CatalogList, error) {
	var out wire.CatalogList
	return &out, c.do(ctx, "GET", "/api/v1/catalog?"+q.Encode(), nil, &out)
}

// CatalogEntry fetches a published repository and where the caller stands.
func (c *Client) CatalogEntry(ctx context.Context, repo string) (*wire.CatalogDetail, error) {
	var out wire.CatalogDetail
	return &out, c.do(ctx, "GET", "/api/v1/catalog/entry?repo="+url.QueryEscape(repo), nil, &out)
}

// Trial fetches the trial allowance and what the caller has left of it.
func (c *Client) Trial(ctx context.Context) (*wire.Trial, error) {
	var out wire.Trial
	return &out, c.do(ctx, "GET", "/api/v1/catalog/trial", nil, &out)
}

// Try runs a community image's command as a trial job.
func (c *Client) Try(ctx context.Context, repo string) (*wire.TryResult, error) {
	var out wire.TryResult
	return &out, c.do(ctx, "POST", "/api/v1/catalog/try", wire.RepoRef{Repo: repo}, &out)
}

// SetTrial sets the trial allowance (admin).
func (c *Client) SetTrial(ctx context.Context, a wire.TrialAllowance) (*wire.TrialAllowance, error) {
	var out wire.TrialAllowance
	return &out, c.do(ctx, "PUT", "/api/v1/admin/trial", a, &out)
}
