package wire

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
)

// Series is a chart's column of figures, oldest first; a missing figure
// (not measured, the node did not answer) is null in JSON and NaN in Go.
type Series []float64

// MarshalJSON writes NaN as null.
func (s Series) MarshalJSON() ([]byte, error) { return s.AppendJSON(make([]byte, 0, 2+len(s)*8)), nil }

// AppendJSON appends the series as a JSON array, NaN as null, whole
// figures exactly and others with the digits of a float32 (what the
// history keeps).
func (s Series) AppendJSON(b []byte) []byte {
	b = append(b, '[')
	for i, v := range s {
		if i > 0 {
			b = append(b, ',')
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			b = append(b, "null"...)
			continue
		}
		if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
			b = strconv.AppendInt(b, int64(v), 10)
			continue
		}
		b = strconv.AppendFloat(b, v, 'g', -1, 32)
	}
	return append(b, ']')
}

// UnmarshalJSON reads null as NaN.
func (s *Series) UnmarshalJSON(b []byte) error {
	var raw []*float64
	if err := json.Unmarshal(bytes.TrimSpace(b), &raw); err != nil {
		return err
	}
	out := make(Series, len(raw))
	for i, p := range raw {
		if p == nil {
			out[i] = math.NaN()
		} else {
			out[i] = *p
		}
	}
	*s = out
	return nil
}

// StatsHistory is GET /api/v1/stats/history: the cluster over the last
// hour or day, as columns aligned with Times. CPU is in millicores, memory
// in bytes; "used" is what the nodes' machines use (DESIGN.md of
// node/history), null where not measured.
type StatsHistory struct {
	Window string `json:"window"` // 1h or 1d
	// Step is the seconds between points; Interval the seconds between
	// the node's samples (live charts poll at it).
	Step     float64 `json:"step_seconds"`
	Interval float64 `json:"interval_seconds"`
	// Node is the node that answered (each keeps its own history).
	Node  string  `json:"node"`
	Times []int64 `json:"times"` // Unix milliseconds, the end of each point
	// Cluster has cpu_capacity, cpu_allocated, cpu_used, memory_capacity,
	// memory_allocated, memory_used, gpu_capacity, gpu_allocated,
	// queue_depth, running, started_per_min, finished_per_min.
	Cluster map[string]Series `json:"cluster"`
	// Nodes: cpu_capacity, cpu_allocated, cpu_used, memory_capacity,
	// memory_allocated, memory_used, running.
	Nodes []NamedSeries `json:"nodes"`
	// Users: cpu, memory, gpus, their quotas (cpu_quota, memory_quota,
	// gpu_quota; 0 is no limit) and tasks. An admin gets every user's, a
	// user only their own.
	Users []NamedSeries `json:"users"`
}

// NamedSeries is one node's or user's columns.
type NamedSeries struct {
	Name   string            `json:"name"`
	Series map[string]Series `json:"series"`
}

// Timeline is GET /api/v1/jobs/:id/timeline: every attempt of a page of
// the job's tasks, for the console's timeline of an array.
type Timeline struct {
	Job   string `json:"job"`
	Total int    `json:"total"` // tasks in the job
	// Attempts are in task, then attempt order.
	Attempts []TimelineAttempt `json:"attempts"`
	// Next is the cursor of the next page (a task index), "" at the end.
	Next string `json:"next"`
}

// TimelineAttempt is one attempt: when it started and ended (Unix ms; 0:
// not yet), its state (running, succeeded, failed, cancelled, ...) and
// reason (exited, timeout, preempted, node_lost, ...).
type TimelineAttempt struct {
	Task    int    `json:"task"`
	Attempt int    `json:"attempt"`
	Start   int64  `json:"start"`
	End     int64  `json:"end"`
	State   string `json:"state"`
	Reason  string `json:"reason,omitempty"`
}
