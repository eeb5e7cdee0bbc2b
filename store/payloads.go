package store

import "time"

// Payloads of the core commands (the table is in commands.go).

// Bootstrap creates the cluster identity and the admin account.
type Bootstrap struct {
	Cluster ClusterInfo `json:"cluster"`
	Admin   User        `json:"admin"`
	Token   Token       `json:"token"`
	// TokenHash is the admin token's hash (Token.Hash is not serialised).
	TokenHash string `json:"token_hash"`
}

// CreateUser adds an account.
type CreateUser struct {
	User User `json:"user"`
}

// UpdateUser changes an account's flags or password.
type UpdateUser struct {
	Name         string     `json:"name"`
	Disabled     *bool      `json:"disabled,omitempty"`
	PasswordHash []byte     `json:"password_hash,omitempty"`
	Quota        *Resources `json:"quota,omitempty"` // replaces the quota when set
	// StorageQuota replaces the storage quota in bytes when set (0: no
	// limit; v5).
	StorageQuota *int64 `json:"storage_quota,omitempty"`
	// Weight replaces the user's fair-share weight within a queue (v2).
	Weight *float64 `json:"weight,omitempty"`
	// EndSessions deletes the user's console sessions but the one whose
	// token id is KeepSession (a password change, v3); API tokens stay.
	EndSessions bool   `json:"end_sessions,omitempty"`
	KeepSession string `json:"keep_session,omitempty"`
}

// CreateToken stores a token (hash only).
type CreateToken struct {
	Token Token  `json:"token"`
	Hash  string `json:"hash"`
}

// DeleteToken revokes a token of a user.
type DeleteToken struct {
	User string `json:"user"`
	ID   string `json:"id"`
}

// SubmitJob adds a job and its tasks. A submission with a Key the owner
// used before adds nothing and returns the job that key made, so a client
// may send a submission again after a timeout or an election.
type SubmitJob struct {
	ID    string  `json:"id"`
	Owner string  `json:"owner"`
	Spec  JobSpec `json:"spec"`
	Key   string  `json:"key,omitempty"`
	// GenAI marks a job whose image performs generative AI (its tasks get
	// GANTRY_GENAI=1); Trial a community image's "Try it" run, which draws
	// on the trial allowance instead of the owner's quota.
	GenAI bool `json:"genai,omitempty"`
	Trial bool `json:"trial,omitempty"`
}

// CancelJob requests cancellation of a job. Actor is checked against the
// owner on apply (admins may cancel anything).
type CancelJob struct {
	ID    string `json:"id"`
	Actor string `json:"actor"`
	Admin bool   `json:"admin"`
	// Dependents: also cancel, transitively, the dependents that have not
	// started (v2).
	Dependents bool `json:"dependents,omitempty"`
}

// Placement puts the next attempt of one queued task on a node.
type Placement struct {
	JobID string `json:"job"`
	Task  int    `json:"task"`
	Node  string `json:"node"`
}

// Place is a batch of placements proposed by the leader's scheduler. Each is
// re-checked on apply; the ones that no longer fit are skipped.
type Place struct {
	Placements []Placement `json:"p"`
}

// PlaceResult tells the scheduler how many placements were accepted.
type PlaceResult struct {
	Accepted int
	Rejected int
}

// AttemptStarted records that a container is running for an attempt.
type AttemptStarted struct {
	JobID     string    `json:"job"`
	Task      int       `json:"task"`
	N         int       `json:"attempt"`
	Container string    `json:"container"`
	At        time.Time `json:"at"`
}

// AttemptEnded records how an attempt ended.
type AttemptEnded struct {
	JobID       string    `json:"job"`
	Task        int       `json:"task"`
	N           int       `json:"attempt"`
	Container   string    `json:"container,omitempty"`
	ExitCode    int       `json:"exit_code"`
	Reason      string    `json:"reason"`
	Message     string    `json:"message,omitempty"`
	Started     time.Time `json:"started,omitzero"`
	Ended       time.Time `json:"ended"`
	ImageDigest string    `json:"image_digest,omitempty"`
	// Output is what the runner stored of the task's output directory
	// (v2).
	Output *AttemptOutput `json:"output,omitempty"`
}

// UpsertNode registers a node or updates its address and capacity.
type UpsertNode struct {
	Node Node `json:"node"`
}

// SetNodeState drains, readies or marks a node down.
type SetNodeState struct {
	Name  string `json:"name"`
	State string `json:"state"`
	// Deadline (draining only): after it, tasks still running there are
	// moved elsewhere (see CmdEvictNode).
	Deadline time.Time `json:"deadline,omitzero"`
}

// EvictNode ends the running attempts of a draining node whose drain
// deadline has passed, so they are rescheduled on other nodes.
type EvictNode struct {
	Name string `json:"name"`
}
