package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"gantry/store"
)

func decodeBody(body string) error {
	gin.SetMode(gin.ReleaseMode)
	w := httptest.NewRecorder()
	c, _ := gin.CreateTestContext(w)
	c.Request = httptest.NewRequest(http.MethodPost, "/api/v1/jobs", strings.NewReader(body))
	var spec store.JobSpec
	if err := decode(c, &spec); err != nil {
		return err
	}
	spec.Defaults()
	return spec.Validate()
}

func TestDecodeNamesTheField(t *testing.T) {
	cases := []struct{ body, want string }{
		{`{"image":"x","colour":1}`, `unknown field "colour"`},
		{`{"image":"x","timeout":"soon"}`, "timeout:"},
		{`{"image":"x","cpu":"lots"}`, "cpu:"},
		{`{"image":"x","memory":-1}`, "memory:"},
		{`{"image":"x"} {}`, "unexpected data"},
		{``, "empty"},
		{`{"image":`, "invalid JSON"},
		{`[1,2]`, "request body"},
	}
	for _, tc := range cases {
		err := decodeBody(tc.body)
		if err == nil || store.ErrorCode(err) != store.EInvalid || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("body %q: got %v, want an invalid error mentioning %q", tc.body, err, tc.want)
		}
	}
	if err := decodeBody(`{"image":"gantry/toolbox","command":["echo","hi"],"array":3,"timeout":"10s"}`); err != nil {
		t.Fatalf("valid spec rejected: %v", err)
	}
}

// FuzzDecodeJobSpec: any body gets a clean invalid error or a valid spec,
// never a panic or an internal error.
func FuzzDecodeJobSpec(f *testing.F) {
	for _, s := range []string{`{"image":"x"}`, `{"image":"x","timeout":"1s","env":{"A":"B"}}`, `{"array":0}`, `{`, `null`, `{"after":["a"]}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		err := decodeBody(body)
		if err != nil && store.ErrorCode(err) != store.EInvalid {
			t.Fatalf("body %q: non-invalid error %v", body, err)
		}
	})
}

func TestValidUsername(t *testing.T) {
	for name, want := range map[string]bool{"alice": true, "a1": true, "bob-2": true, "x": false, "Alice": false, "-a": false,
		"gantry": false, "gantry-node": false, "a/b": false, "a..b": false, strings.Repeat("a", 33): false} {
		if got := ValidUsername(name); got != want {
			t.Errorf("ValidUsername(%q) = %v, want %v", name, got, want)
		}
	}
}
