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

// ReportCategories lists the categories a report names.
func (c *Client) ReportCategories(ctx context.Context) ([]wire.ReportCategory, error) {
	var out wire.ReportCategories
	return out.Categories, c.do(ctx, "GET", "/api/v1/reports/categories", nil, &out)
}

// Report reports a published image.
func (c *Client) Report(ctx context.Context, r wire.ReportRequest) (*wire.Report, error) {
	var out wire.Report
	return &out, c.do(ctx, "POST", "/api/v1/reports", r, &out)
}

// Reports lists reports grouped by image (an admin's: all; a user's: their own).
func (c *Client) Reports(ctx context.Context, openOnly bool) (*wire.ReportList, error) {
	var out wire.ReportList
	p := "/api/v1/reports"
	if openOnly {
		p += "?open=true"
	}
	return &out, c.do(ctx, "GET", p, nil, &out)
}

// DecideReport dismisses a report or takes its image down (admin).
func (c *Client) DecideReport(ctx context.Context, id string, d wire.ReportDecision) (*wire.ReportDecided, error) {
	var out wire.ReportDecided
	return &out, c.do(ctx, "POST", "/api/v1/reports/"+url.PathEscape(id)+"/decide", d, &out)
}

// TakeDown takes an image down (admin).
func (c *Client) TakeDown(ctx context.Context, r wire.TakedownRequest) (*wire.Takedown, error) {
	var out wire.Takedown
	return &out, c.do(ctx, "POST", "/api/v1/takedowns", r, &out)
}

// Takedowns lists the images taken down (admin).
func (c *Client) Takedowns(ctx context.Context) ([]wire.Takedown, error) {
	var out wire.TakedownList
	return out.Takedowns, c.do(ctx, "GET", "/api/v1/takedowns", nil, &out)
}

// RestoreImage lifts an image's takedown (admin).
func (c *Client) RestoreImage(ctx context.Context, r wire.RestoreRequest) (*wire.Takedown, error) {
	var out wire.Takedown
	return &out, c.do(ctx, "POST", "/api/v1/takedowns/restore", r, &out)
}

// SuspendUser suspends an account (admin).
func (c *Client) SuspendUser(ctx context.Context, name string, r wire.SuspendRequest) (*wire.User, error) {
	var out wire.User
	return &out, c.do(ctx, "POST", "/api/v1/users/"+url.PathEscape(name)+"/suspend", r, &out)
}

// RestoreUser lifts an account's suspension (admin).
func (c *Client) RestoreUser(ctx context.Context, name string) (*wire.User, error) {
	var out wire.User
	return &out, c.do(ctx, "POST", "/api/v1/users/"+url.PathEscape(name)+"/restore", nil, &out)
}

// NoticeStatements returns the statements a notice and a counter-notice
// sign, verbatim from the service terms, and the attachment limits.
func (c *Client) NoticeStatements(ctx context.Context) (*wire.NoticeStatements, error) {
	var out wire.NoticeStatements
	return &out, c.do(ctx, "GET", "/api/v1/notices/statements", nil, &out)
}

// FileNotice files an infringement notice.
func (c *Client) FileNotice(ctx context.Context, f wire.NoticeForm) (*wire.InfringementNotice, error) {
	var out wire.InfringementNotice
	return &out, c.do(ctx, "POST", "/api/v1/notices", f, &out)
}

// FilePublicNotice files an infringement notice through the public form
// (no account).
func (c *Client) FilePublicNotice(ctx context.Context, f wire.NoticeForm) (*wire.InfringementNotice, error) {
	var out wire.InfringementNotice
	return &out, c.do(ctx, "POST", "/api/v1/notices/public", f, &out)
}

// Notices lists the notices the caller may see (state: empty for all).
func (c *Client) Notices(ctx context.Context, state string) ([]wire.InfringementNotice, error) {
	var out wire.InfringementNoticeList
	p := "/api/v1/notices"
	if state != "" {
		p += "?" + url.Values{"state": {state}}.Encode()
	}
	return out.Notices, c.do(ctx, "GET", p, nil, &out)
}

// Notice returns a notice with its timeline.
func (c *Client) Notice(ctx context.Context, id string) (*wire.InfringementNotice, error) {
	var out wire.InfringementNotice
	return &out, c.do(ctx, "GET", "/api/v1/notices/"+url.PathEscape(id), nil, &out)
}

// NoticeAttachment streams an attachment of a notice; the caller closes it.
func (c *Client) NoticeAttachment(ctx context.Context, id, digest string) (io.ReadCloser, error) {
	resp, err := c.raw(ctx, "GET", "/api/v1/notices/"+url.PathEscape(id)+"/attachments/"+url.PathEscape(digest), nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// DecideNotice decides a notice (admin).
func (c *Client) DecideNotice(ctx context.Context, id string, d wire.NoticeDecisionRequest) (*wire.InfringementNotice, error) {
	var out wire.InfringementNotice
	return &out, c.do(ctx, "POST", "/api/v1/notices/"+url.PathEscape(id)+"/decide", d, &out)
}

// FileCounter files the publisher's counter-notice to a notice.
func (c *Client) FileCounter(ctx context.Context, id string, f wire.CounterForm) (*wire.InfringementNotice, error) {
	var out wire.InfringementNotice
	return &out, c.do(ctx, "POST", "/api/v1/notices/"+url.PathEscape(id)+"/counter", f, &out)
}

// RecordCourtAction records that the notifier filed a court action.
func (c *Client) RecordCourtAction(ctx context.Context, id, detail string) (*wire.InfringementNotice, error) {
	var out wire.InfringementNotice
	return &out, c.do(ctx, "POST", "/api/v1/notices/"+url.PathEscape(id)+"/court", wire.CourtActionRequest{Detail: detail}, &out)
}

// NoticeSettings reads the notice procedure's settings (admin).
func (c *Client) NoticeSettings(ctx context.Context) (*wire.NoticeSettings, error) {
	var out wire.NoticeSettings
	return &out, c.do(ctx, "GET", "/api/v1/notices/settings", nil, &out)
}

// SetNoticeSettings replaces the notice procedure's settings (admin).
func (c *Client) SetNoticeSettings(ctx context.Context, s wire.NoticeSettings) (*wire.NoticeSettings, error) {
	var out wire.NoticeSettings
	return &out, c.do(ctx, "PUT", "/api/v1/notices/settings", s, &out)
}
