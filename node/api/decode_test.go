package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"gantry/node/view"
	"gantry/store"
	"gantry/wire"
)

// decodeBody reads a job submission as POST /api/v1/jobs does: decode into
// the wire type, the store's spec from it, defaulted and validated.
func decodeBody(body string) (store.JobSpec, error) {
	gin.SetMode(gin.ReleaseMode)
	w := httptest.NewRecorder()
	c, _ := gin.CreateTestContext(w)
	c.Request = httptest.NewRequest(http.MethodPost, "/api/v1/jobs", strings.NewReader(body))
	var in wire.JobSpec
	if err := decode(c, &in); err != nil {
		return store.JobSpec{}, err
	}
	spec := view.StoreJobSpec(in)
	spec.Defaults()
	return spec, spec.Validate()
}

func TestDecodeNamesTheField(t *testing.T) {
	cases := []struct{ body, want string }{
		{`{"image":"x","colour":1}`, `unknown field "colour"`},
		{`{"image":"x","timeout":"soon"}`, "timeout:"},
		{`{"image":"x","cpu":"lots"}`, "cpu:"},
		{`{"image":"x","memory":-1}`, "memory:"},
		{`{"image":"x"} {}`, "unexpected data"},
		{`{"image":"x","timeout":"soon"} {}`, "timeout:"},
		{`{"image":"x","timeout":1e300}`, "timeout: 1e+300 seconds is out of range"},
		{``, "empty"},
		{`{"image":`, "invalid JSON"},
		{`[1,2]`, "request body"},
	}
	for _, tc := range cases {
		_, err := decodeBody(tc.body)
		if err == nil || store.ErrorCode(err) != store.EInvalid || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("body %q: got %v, want an invalid error mentioning %q", tc.body, err, tc.want)
		}
	}
	if _, err := decodeBody(`{"image":"gantry/toolbox","command":["echo","hi"],"array":3,"timeout":"10s"}`); err != nil {
		t.Fatalf("valid spec rejected: %v", err)
	}
}

func TestValidUsername(t *testing.T) {
	for name, want := range map[string]bool{"alice": true, "a1": true, "bob-2": true, "x": false, "Alice": false, "-a": false,
		"gantry": false, "gantry-node": false, "a/b": false, "a..b": false, strings.Repeat("a", 33): false} {
		if got := ValidUsername(name); got != want {
			t.Errorf("ValidUsername(%q) = %v, want %v", name, got, want)
		}
	}
}
