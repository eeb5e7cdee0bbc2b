package store

import (
	"errors"
	"fmt"
)

// Error codes shared by every layer. The HTTP layer maps each code to one
// status in a single table; nothing else decides statuses.
const (
	EInvalid      = "invalid"
	ENotFound     = "not_found"
	EConflict     = "conflict"
	EUnauthorized = "unauthorized"
	EForbidden    = "forbidden"
	EUnavailable  = "unavailable"
	EGone         = "gone" // existed, removed by policy (e.g. log retention)
	EInternal     = "internal"
	// ERateLimited refuses a request for a while (too many failed
	// sign-ins); the error says when to come back.
	ERateLimited = "rate_limited"
	// EDiskFull refuses a write on a node whose disk is below its reserve
	// of free space (node/diskspace); 507.
	EDiskFull = "disk_full"
	// EQuotaExceeded refuses a blob link (a push, an output's upload)
	// that would take its owner over their storage quota (store/storage.go);
	// 403, the message says what was added and the limit.
	EQuotaExceeded = "quota_exceeded"

	// Refusals of the community catalog's licence gate (all forbidden):
	// what the user must do first is in the message.
	ELicenceNotAccepted = "licence_not_accepted"
	EAccessPending      = "access_pending"
	EAccessRejected     = "access_rejected"

	// Refusals of governance (node/governance): an account suspended
	// (forbidden, 403) and an image taken down (451, RFC 7725); the
	// message names the reason and the decision.
	EAccountSuspended = "account_suspended"
	ETakenDown        = "taken_down"
)

// Forbidden reports whether code is forbidden or one of its refusals.
func Forbidden(code string) bool {
	switch code {
	case EForbidden, ELicenceNotAccepted, EAccessPending, EAccessRejected, EAccountSuspended:
		return true
	}
	return false
}

// Refused reports whether code refuses a request by policy: forbidden (or
// one of its refusals) or taken down.
func Refused(code string) bool { return Forbidden(code) || code == ETakenDown }

// Error is an application error whose Message is safe to show to users.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Message }

// Is makes errors.Is(err, ErrNotFound) (and any other *Error sentinel) match
// every error of the same code, wherever its message was written: an error
// that crossed a forward to the leader is rebuilt from its code and
// message, not its identity.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Errorf returns an *Error with the given code and formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err, or EInternal when err is not an *Error.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EInternal
}

// ErrorMessage returns the user-facing message of err; internal errors get a
// generic message so details stay in the logs.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// ErrNotFound is returned by getters when a record does not exist;
// errors.Is(err, ErrNotFound) holds for every not_found error.
var ErrNotFound = &Error{Code: ENotFound, Message: "not found"}
