// Package wire defines the JSON bodies of Gantry's REST API under /api/v1
// (docs/api.md): what the server (node/api, through node/view) sends and
// accepts and what the Go client (package client) and the CLI speak. It
// imports nothing of Gantry's: the store's records and the Raft log are
// free to change shape without changing what users see, and the other way
// round.
package wire

import (
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// Error is the body of every error answer: a message for people and a
// stable code for programs.
type Error struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// Error codes (Error.Code) and the HTTP status each is sent with.
const (
	CodeInvalid      = "invalid"      // 400
	CodeUnauthorized = "unauthorized" // 401
	CodeForbidden    = "forbidden"    // 403
	CodeNotFound     = "not_found"    // 404
	CodeConflict     = "conflict"     // 409
	CodeGone         = "gone"         // 410
	CodeRateLimited  = "rate_limited" // 429, with Retry-After
	CodeInternal     = "internal"     // 500
	CodeUnavailable  = "unavailable"  // 503
)

// Task and job states, in lifecycle order.
const (
	StateQueued    = "queued"
	StateScheduled = "scheduled"
	StateRunning   = "running"
	StateSucceeded = "succeeded"
	StateFailed    = "failed"
	StateCancelled = "cancelled"
)

// States lists every task and job state in lifecycle order.
var States = []string{StateQueued, StateScheduled, StateRunning, StateSucceeded, StateFailed, StateCancelled}

// Terminal reports whether s is a final task or job state.
func Terminal(s string) bool {
	return s == StateSucceeded || s == StateFailed || s == StateCancelled
}

// Why an attempt (or a task that never ran) ended.
const (
	ReasonExited          = "exited"
	ReasonOOMKilled       = "oom_killed"
	ReasonTimedOut        = "timed_out"
	ReasonNodeLost        = "node_lost"
	ReasonCancelled       = "cancelled"
	ReasonImagePullFailed = "image_pull_failed"
	ReasonInputFailed     = "input_failed" // an input could not be materialised on the node
	ReasonPreempted       = "preempted"    // stopped to make room for a task that outranks it; requeued
	ReasonDependency      = "dependency_failed"
)

// Node states.
const (
	NodeReady    = "ready"
	NodeDraining = "draining"
	NodeDown     = "down"
	// NodeJoining is a member of Raft that has not registered yet (node ls
	// only: it takes no tasks until it is ready).
	NodeJoining = "joining"
)

// ScheduleLabel is the job label naming the schedule that submitted it.
const ScheduleLabel = "gantry.schedule"

// Duration is a time.Duration that reads and writes as a Go duration
// string ("90s"); it also reads a number of seconds.
type Duration time.Duration

// MarshalJSON writes the duration as a string such as "90s" ("" for 0).
func (d Duration) MarshalJSON() ([]byte, error) {
	if d == 0 {
		return []byte(`""`), nil
	}
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON accepts a duration string ("10m") or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		if s == "" {
			*d = 0
			return nil
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%q is not a duration such as \"90s\" or \"10m\"", s)
		}
		*d = Duration(v)
		return nil
	}
	var secs float64
	if err := json.Unmarshal(b, &secs); err != nil {
		return fmt.Errorf("want a duration string such as \"90s\"")
	}
	// Out of int64's range converting is machine-dependent (on amd64 every
	// such number became the most negative duration).
	ns := secs * float64(time.Second)
	if math.Abs(ns) >= 1<<63 {
		return fmt.Errorf("%g seconds is out of range", secs)
	}
	*d = Duration(ns)
	return nil
}

// Resources is an amount of CPU (millicores), memory (bytes) and GPUs.
type Resources struct {
	CPU    int64 `json:"cpu"`
	Memory int64 `json:"memory"`
	GPUs   int   `json:"gpus,omitempty"`
}

// Usage is what a user's placed, unended tasks hold now.
type Usage struct {
	Allocated Resources `json:"allocated"`
	Tasks     int       `json:"tasks"`
}

// Health is GET /healthz (no authentication): this node's role and the
// cluster's failure tolerance.
type Health struct {
	Status     string `json:"status"`
	Leader     bool   `json:"leader"`
	LeaderName string `json:"leader_name"`
	Role       string `json:"role,omitempty"`
	// Version is the node's release ("0.10.0"), Commit the revision it was
	// built from when known.
	Version string `json:"version"`
	Commit  string `json:"commit,omitempty"`
	Votes
}
