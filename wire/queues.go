package wire

import "time"

// Queue is an admin-defined share of the cluster, with what it holds now.
type Queue struct {
	Name string `json:"name"`
	// Weight is the queue's share of the cluster when queues compete; its
	// guaranteed share is Weight over the sum of every queue's weight.
	Weight float64 `json:"weight"`
	// Limit bounds what its placed tasks hold at once (absent: no limit).
	Limit *Resources `json:"limit,omitempty"`
	// Borrow lets it use idle capacity beyond its guarantee, taken back
	// (by preemption) when a queue under its own guarantee needs it.
	Borrow bool `json:"borrow"`
	// Users may submit to it (empty: everyone).
	Users       []string          `json:"users,omitempty"`
	Priority    int               `json:"priority,omitempty"`     // given to a job that sets none
	MaxRunTime  Duration          `json:"max_run_time,omitempty"` // bounds, and defaults, a job's timeout
	Constraints map[string]string `json:"constraints,omitempty"`  // node labels its tasks need
	Grace       Duration          `json:"grace"`                  // a preempted task's time between SIGTERM and SIGKILL
	Placement   string            `json:"placement"`              // spread or pack
	Created     time.Time         `json:"created,omitzero"`
	// Guaranteed is the share of the cluster the queue is guaranteed (0..1);
	// Usage what its placed tasks hold; Queued how many tasks wait in it.
	Guaranteed float64 `json:"guaranteed"`
	Usage      Usage   `json:"usage"`
	Queued     int     `json:"queued"`
}

// QueueList is GET /api/v1/queues.
type QueueList struct {
	Queues []Queue `json:"queues"`
}

// QueueRequest is the body of POST /api/v1/queues (Name and Weight
// required) and of PATCH /api/v1/queues/:name (the fields given change).
type QueueRequest struct {
	Name        string             `json:"name,omitempty"`
	Weight      *float64           `json:"weight,omitempty"`
	Limit       *Resources         `json:"limit,omitempty"`
	Borrow      *bool              `json:"borrow,omitempty"`
	Users       *[]string          `json:"users,omitempty"`
	Priority    *int               `json:"priority,omitempty"`
	MaxRunTime  *Duration          `json:"max_run_time,omitempty"`
	Constraints *map[string]string `json:"constraints,omitempty"`
	Grace       *Duration          `json:"grace,omitempty"`
	Placement   *string            `json:"placement,omitempty"`
}
