package registry

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"

	"gantry/store"
)

// TestStoreErrorsBecomeOCIErrors: each code of a store error is answered
// with its status and an OCI code; only errors without a code are 500.
func TestStoreErrorsBecomeOCIErrors(t *testing.T) {
	r := &Registry{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	cases := []struct {
		err    error
		status int
		code   string
		msg    string
	}{
		{store.Errorf(store.ENotFound, "no such repo"), 404, codeNameUnknown, "no such repo"},
		{store.Errorf(store.EInvalid, "bad"), 400, codeUnsupported, "bad"},
		{store.Errorf(store.EForbidden, "accept the licence first"), 403, codeDenied, "accept the licence first"},
		{store.Errorf(store.EConflict, "in use"), 409, codeDenied, "in use"},
		{store.Errorf(store.EQuotaExceeded, "storage quota: adding 2 MiB would make alice's storage 3 MiB, over the limit of 2 MiB"), 403, codeDenied,
			"storage quota: adding 2 MiB would make alice's storage 3 MiB, over the limit of 2 MiB"},
		{store.Errorf(store.EGone, "removed by policy"), 410, codeDenied, "removed by policy"},
		{store.Errorf(store.EUnavailable, "try again"), 503, codeUnknown, "try again"},
		{errors.New("disk on fire"), 500, codeUnknown, "internal error"},
	}
	for _, tc := range cases {
		t.Run(tc.code+" "+tc.msg, func(t *testing.T) {
			w := httptest.NewRecorder()
			r.writeError(w, httptest.NewRequest("GET", "/v2/alice/x/manifests/1", nil), tc.err)
			var body struct {
				Errors []struct{ Code, Message string } `json:"errors"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || len(body.Errors) != 1 {
				t.Fatalf("body %q: %v", w.Body.String(), err)
			}
			if w.Code != tc.status || body.Errors[0].Code != tc.code || body.Errors[0].Message != tc.msg {
				t.Fatalf("answered %d %+v, want %d %s %q", w.Code, body.Errors[0], tc.status, tc.code, tc.msg)
			}
		})
	}
}
