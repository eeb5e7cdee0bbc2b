package client

import (
	"context"
	"io"
	"net/url"

	"gantry/wire"
)

// Audit lists a page of the audit log (q: since, actor, action, cursor, limit).
func (c *Client) Audit(ctx context.Context, q url.Values) (*wire.AuditList, error) {
	var out wire.AuditList
	return &out, c.do(ctx, "GET", "/api/v1/audit?"+q.Encode(), nil, &out)
}

// VerifyAudit walks the audit log's hash chain on the server.
func (c *Client) VerifyAudit(ctx context.Context) (*wire.AuditVerification, error) {
	var out wire.AuditVerification
	return &out, c.do(ctx, "GET", "/api/v1/audit/verify", nil, &out)
}

// ExportAudit streams every audit record as JSON lines; the caller closes it.
func (c *Client) ExportAudit(ctx context.Context) (io.ReadCloser, error) {
	resp, err := c.raw(ctx, "GET", "/api/v1/audit/export", nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// Inbox lists the signed-in user's messages.
func (c *Client) Inbox(ctx context.Context, unread bool) (*wire.Inbox, error) {
	var out wire.Inbox
	p := "/api/v1/inbox"
	if unread {
		p += "?unread=true"
	}
	return &out, c.do(ctx, "GET", p, nil, &out)
}

// MarkRead marks a message read and returns it.
func (c *Client) MarkRead(ctx context.Context, id string) (*wire.Message, error) {
	var out wire.Message
	return &out, c.do(ctx, "POST", "/api/v1/inbox/"+url.PathEscape(id)+"/read", nil, &out)
}

// SendMessage sends a user a message (admin).
func (c *Client) SendMessage(ctx context.Context, m wire.MessageSend) error {
	return c.do(ctx, "POST", "/api/v1/inbox/send", m, nil)
}

// ReviewQueue lists published images in a review state (empty: pending).
func (c *Client) ReviewQueue(ctx context.Context, state string) ([]wire.CatalogEntry, error) {
	var out wire.CatalogList
	return out.Entries, c.do(ctx, "GET", "/api/v1/review?"+url.Values{"state": {state}}.Encode(), nil, &out)
}

// Review approves or rejects a published image (admin).
func (c *Client) Review(ctx context.Context, d wire.ReviewDecision) (*wire.CatalogEntry, error) {
	var out wire.CatalogEntry
	return &out, c.do(ctx, "POST", "/api/v1/review/decide", d, &out)
}

// ReviewRules reads the automatic review rules.
func (c *Client) ReviewRules(ctx context.Context) (*wire.ReviewRules, error) {
	var out wire.ReviewRules
	return &out, c.do(ctx, "GET", "/api/v1/review/rules", nil, &out)
}

// SetReviewRules replaces the automatic review rules.
func (c *Client) SetReviewRules(ctx context.Context, r wire.ReviewRules) (*wire.ReviewRules, error) {
	var out wire.ReviewRules
	return &out, c.do(ctx, "PUT", "/api/v1/review/rules", r, &out)
}
