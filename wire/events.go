package wire

// Event is one message of the live feed at /api/v1/events (WebSocket): a
// changed job, task, node or schedule the receiver may see.
type Event struct {
	Type string `json:"type"` // job, task, node, schedule, following, resync, stats (a new sample of the history: redraw the charts)
	Job  *Job   `json:"job,omitempty"`
	Task *Task  `json:"task,omitempty"`
	Node *Node  `json:"node,omitempty"`
	// Schedule is a created or changed schedule; for a deleted one it is
	// nil and ScheduleID names it.
	Schedule   *Schedule `json:"schedule,omitempty"`
	ScheduleID string    `json:"schedule_id,omitempty"`
	// JobID names the job of a "following" acknowledgement.
	JobID string `json:"job_id,omitempty"`
	// Sent is when the hub took the event off the store's change feed, in
	// Unix nanoseconds; clients and benchmarks measure delivery delay by it.
	Sent int64 `json:"sent,omitempty"`
}
