package client

import (
	"context"
	"net/url"

	"gantry/wire"
)

// Queues lists the queues the caller may submit to (an admin: all).
func (c *Client) Queues(ctx context.Context) ([]wire.Queue, error) {
	var out wire.QueueList
	return out.Queues, c.do(ctx, "GET", "/api/v1/queues", nil, &out)
}

// Queue fetches one queue.
func (c *Client) Queue(ctx context.Context, name string) (*wire.Queue, error) {
	var q wire.Queue
	return &q, c.do(ctx, "GET", "/api/v1/queues/"+url.PathEscape(name), nil, &q)
}

// CreateQueue adds a queue (admin).
func (c *Client) CreateQueue(ctx context.Context, r wire.QueueRequest) (*wire.Queue, error) {
	var q wire.Queue
	return &q, c.do(ctx, "POST", "/api/v1/queues", r, &q)
}

// UpdateQueue changes the settings r gives (admin).
func (c *Client) UpdateQueue(ctx context.Context, name string, r wire.QueueRequest) (*wire.Queue, error) {
	var q wire.Queue
	return &q, c.do(ctx, "PATCH", "/api/v1/queues/"+url.PathEscape(name), r, &q)
}

// DeleteQueue removes a queue with no queued or running task (admin).
func (c *Client) DeleteQueue(ctx context.Context, name string) error {
	return c.do(ctx, "DELETE", "/api/v1/queues/"+url.PathEscape(name), nil, nil)
}

// SetWeight sets a user's fair-share weight (admin).
func (c *Client) SetWeight(ctx context.Context, name string, w float64) (*wire.User, error) {
	var u wire.User
	return &u, c.do(ctx, "PATCH", "/api/v1/users/"+url.PathEscape(name), wire.UpdateUser{Weight: &w}, &u)
}
