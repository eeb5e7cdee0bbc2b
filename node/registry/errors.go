package registry

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"gantry/node/auth"
	"gantry/store"
)

// OCI distribution-spec error codes.
const (
	codeBlobUnknown         = "BLOB_UNKNOWN"
	codeBlobUploadInvalid   = "BLOB_UPLOAD_INVALID"
	codeBlobUploadUnknown   = "BLOB_UPLOAD_UNKNOWN"
	codeDigestInvalid       = "DIGEST_INVALID"
	codeManifestBlobUnknown = "MANIFEST_BLOB_UNKNOWN"
	codeManifestInvalid     = "MANIFEST_INVALID"
	codeManifestUnknown     = "MANIFEST_UNKNOWN"
	codeNameInvalid         = "NAME_INVALID"
	codeNameUnknown         = "NAME_UNKNOWN"
	codeSizeInvalid         = "SIZE_INVALID"
	codeUnauthorized        = "UNAUTHORIZED"
	codeDenied              = "DENIED"
	codeUnsupported         = "UNSUPPORTED"
	codeTooManyRequests     = "TOOMANYREQUESTS"
	codeRangeInvalid        = "RANGE_INVALID"
	codeUnknown             = "UNKNOWN"
)

// ociError is an error the registry reports to clients with an OCI code and
// an HTTP status. Its message is safe to show.
type ociError struct {
	Status  int
	Code    string
	Message string
	Detail  any
}

func (e *ociError) Error() string { return e.Code + ": " + e.Message }

func ociErr(status int, code, format string, args ...any) *ociError {
	return &ociError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

var (
	errNameUnknown     = ociErr(http.StatusNotFound, codeNameUnknown, "repository name not known to registry")
	errBlobUnknown     = ociErr(http.StatusNotFound, codeBlobUnknown, "blob unknown to registry")
	errManifestUnknown = ociErr(http.StatusNotFound, codeManifestUnknown, "manifest unknown")
	errUploadUnknown   = ociErr(http.StatusNotFound, codeBlobUploadUnknown, "blob upload unknown to registry")
	errDenied          = ociErr(http.StatusForbidden, codeDenied, "requested access to the resource is denied")
)

// writeError writes err in the spec's error body. Errors that are not
// *ociError or *store.Error are logged and reported as UNKNOWN.
func (r *Registry) writeError(w http.ResponseWriter, req *http.Request, err error) {
	var oe *ociError
	var se *store.Error
	switch {
	case errors.As(err, &oe):
	case errors.As(err, &se):
		switch se.Code {
		case store.ENotFound:
			oe = ociErr(http.StatusNotFound, codeNameUnknown, "%s", se.Message)
		case store.EInvalid:
			oe = ociErr(http.StatusBadRequest, codeUnsupported, "%s", se.Message)
		case store.EUnauthorized:
			oe = ociErr(http.StatusUnauthorized, codeUnauthorized, "%s", se.Message)
		case store.EForbidden, store.ELicenceNotAccepted, store.EAccessPending, store.EAccessRejected, store.EAccountSuspended:
			oe = ociErr(http.StatusForbidden, codeDenied, "%s", se.Message)
		case store.EQuotaExceeded:
			// Harbor answers a push over its quota the same way: the
			// client shows "denied: " and the message.
			oe = ociErr(http.StatusForbidden, codeDenied, "%s", se.Message)
		case store.ETakenDown:
			// RFC 7725: unavailable for legal reasons; DENIED is the
			// spec's code for a refused request.
			oe = ociErr(http.StatusUnavailableForLegalReasons, codeDenied, "%s", se.Message)
		case store.EConflict:
			// The spec has no code for a conflict; DENIED with 409 says the
			// request was understood and refused as things stand.
			oe = ociErr(http.StatusConflict, codeDenied, "%s", se.Message)
		case store.EGone:
			oe = ociErr(http.StatusGone, codeDenied, "%s", se.Message)
		case store.EUnavailable:
			oe = ociErr(http.StatusServiceUnavailable, codeUnknown, "%s", se.Message)
		case store.EDiskFull:
			// The spec has no code for it; the message says what to do.
			oe = ociErr(http.StatusInsufficientStorage, codeUnknown, "%s", se.Message)
		case store.ERateLimited:
			oe = ociErr(http.StatusTooManyRequests, codeTooManyRequests, "%s", se.Message)
			var ra interface{ RetryAfter() time.Duration }
			if errors.As(err, &ra) {
				w.Header().Set("Retry-After", strconv.Itoa(auth.RetryAfterSeconds(ra.RetryAfter())))
			}
		default:
			r.log.Error("request failed", "method", req.Method, "path", req.URL.Path, "err", err)
			oe = ociErr(http.StatusInternalServerError, codeUnknown, "internal error")
		}
	default:
		r.log.Error("request failed", "method", req.Method, "path", req.URL.Path, "err", err)
		oe = ociErr(http.StatusInternalServerError, codeUnknown, "internal error")
	}
	if oe.Status == http.StatusUnauthorized {
		r.challenge(w, req, "")
	}
	body := struct {
		Errors []map[string]any `json:"errors"`
	}{Errors: []map[string]any{{"code": oe.Code, "message": oe.Message}}}
	if oe.Detail != nil {
		body.Errors[0]["detail"] = oe.Detail
	}
	b, _ := json.Marshal(body)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", fmt.Sprint(len(b)))
	w.WriteHeader(oe.Status)
	if req.Method != http.MethodHead {
		w.Write(b)
	}
}
