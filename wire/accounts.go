package wire

import "time"

// User is an account as the API shows it (never its password hash).
type User struct {
	Name     string    `json:"name"`
	Admin    bool      `json:"admin"`
	Disabled bool      `json:"disabled"`
	Created  time.Time `json:"created"`
	// Quota bounds what the user's running tasks may hold at once (a zero
	// field or no quota: no limit).
	Quota *Resources `json:"quota,omitempty"`
	// Usage is what the user's placed, unended tasks hold now.
	Usage *Usage `json:"usage,omitempty"`
	// StorageQuota bounds the bytes the user's repositories may hold
	// (images, data, outputs; 0 or absent: no limit).
	StorageQuota int64 `json:"storage_quota,omitempty"`
	// Storage is what the user's repositories hold now.
	Storage *StorageUsage `json:"storage,omitempty"`
	// Weight is the user's fair-share weight against the other users of a
	// queue (1 unless an admin set it).
	Weight float64 `json:"weight"`
	// Suspension is set while the account is suspended: why, by whom.
	Suspension *Suspension `json:"suspension,omitempty"`
}

// UserList is GET /api/v1/users (admin).
type UserList struct {
	Users []User `json:"users"`
}

// CreateUser is the body of POST /api/v1/users (admin).
type CreateUser struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Admin    bool   `json:"admin"`
}

// UpdateUser is the body of PATCH /api/v1/users/:name (admin): the fields
// given change.
type UpdateUser struct {
	Disabled *bool      `json:"disabled"`
	Quota    *Resources `json:"quota"`
	// StorageQuota replaces the storage quota, in bytes (0: no limit).
	StorageQuota *int64   `json:"storage_quota,omitempty"`
	Weight       *float64 `json:"weight,omitempty"`
}

// CodeQuotaExceeded refuses (403; the registry: DENIED) a push or an
// output's upload that would take its owner over their storage quota;
// the message says what was added, the total and the limit.
const CodeQuotaExceeded = "quota_exceeded"

// StorageUsage is what a user's repositories hold: the distinct blobs
// (a blob in several of them counts once) and their bytes.
type StorageUsage struct {
	Bytes int64 `json:"bytes"`
	Blobs int   `json:"blobs"`
}

// Login is the body of POST /api/v1/login.
type Login struct {
	Username string `json:"username"`
	Password string `json:"password"`
	// Client names a long-lived API token to create instead of a browser
	// session (the CLI sends "cli").
	Client string `json:"client,omitempty"`
}

// LoginResult is the answer to a login: the token's secret (shown once).
type LoginResult struct {
	Token string `json:"token"`
	User  User   `json:"user"`
}

// PasswordChange is the body of POST /api/v1/me/password.
type PasswordChange struct {
	Old string `json:"old"`
	New string `json:"new"`
}

// PasswordChanged answers a password change: it ends the account's other
// console sessions (API tokens stay; revoke them in the token list).
type PasswordChanged struct {
	EndedSessions int    `json:"ended_sessions"`
	Message       string `json:"message"`
}

// Token is an API or session token (never its secret).
type Token struct {
	ID      string    `json:"id"`
	User    string    `json:"user"`
	Name    string    `json:"name"`
	Session bool      `json:"session,omitempty"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires,omitzero"`
}

// TokenList is GET /api/v1/tokens.
type TokenList struct {
	Tokens []Token `json:"tokens"`
}

// TokenRequest is the body of POST /api/v1/tokens.
type TokenRequest struct {
	Name string `json:"name"`
}

// TokenCreated is the answer to POST /api/v1/tokens: the secret (shown
// once) and the token.
type TokenCreated struct {
	Token string `json:"token"`
	Info  Token  `json:"info"`
}
