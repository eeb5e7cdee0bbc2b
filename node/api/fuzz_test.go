package api

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"gantry/node/view"
	"gantry/store"
	"gantry/wire"
)

// The seed corpora of these targets are in testdata/fuzz/<target>/.

// jobSpecFields are the JSON names of a job submission's fields.
var jobSpecFields = func() []string {
	var out []string
	t := reflect.TypeFor[wire.JobSpec]()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		out = append(out, name)
	}
	return out
}()

// namesFieldOrBody reports whether an error message starts by saying what
// was wrong: a field of the spec (as the user spelt it: JSON keys match
// case-insensitively), an unknown field, or the body as a whole.
func namesFieldOrBody(msg string) bool {
	if strings.HasPrefix(msg, "request body") || strings.HasPrefix(msg, "unknown field ") {
		return true
	}
	for _, f := range jobSpecFields {
		if len(msg) > len(f) && strings.EqualFold(msg[:len(f)], f) && strings.ContainsRune(":.[", rune(msg[len(f)])) {
			return true
		}
	}
	return false
}

// normalSpec is s with empty lists and maps as nil: JSON's omitempty does
// not tell them apart, and neither does anything that reads a spec.
func normalSpec(s store.JobSpec) store.JobSpec {
	if len(s.Command) == 0 {
		s.Command = nil
	}
	if len(s.Env) == 0 {
		s.Env = nil
	}
	if len(s.RetryOn) == 0 {
		s.RetryOn = nil
	}
	if len(s.Labels) == 0 {
		s.Labels = nil
	}
	if len(s.After) == 0 {
		s.After = nil
	}
	if len(s.AfterAny) == 0 {
		s.AfterAny = nil
	}
	if len(s.Constraints) == 0 {
		s.Constraints = nil
	}
	return s
}

// FuzzDecodeJobSpec reads any body as a job submission: it gets an invalid
// error whose message names a field or the body, or a valid spec that, as
// the API shows it (GET /jobs/:id), submits again to the same spec.
func FuzzDecodeJobSpec(f *testing.F) {
	f.Fuzz(func(t *testing.T, body string) {
		spec, err := decodeBody(body)
		if err != nil {
			e, ok := err.(*store.Error)
			if !ok || e.Code != store.EInvalid {
				t.Fatalf("body %q: %v (%T), want an invalid *store.Error", body, err, err)
			}
			if !namesFieldOrBody(e.Message) {
				t.Fatalf("body %q: message %q names no field and not the body", body, e.Message)
			}
			return
		}
		shown, err := json.Marshal(view.JobSpec(spec))
		if err != nil {
			t.Fatalf("body %q: encode the accepted spec: %v", body, err)
		}
		again, err := decodeBody(string(shown))
		if err != nil {
			t.Fatalf("body %q was accepted, but as shown (%s) it is refused: %v", body, shown, err)
		}
		if !reflect.DeepEqual(normalSpec(again), normalSpec(spec)) {
			t.Fatalf("body %q: spec %+v, shown as %s, reads back as %+v", body, spec, shown, again)
		}
	})
}

// tokenPlaceholder in a seed or fuzzed value stands for alice's real API
// token (a fresh random one per fixture), so the corpus reaches the paths
// of a valid token and the mutations around it.
const tokenPlaceholder = "<token>"

// withToken replaces tokenPlaceholder in an Authorization value, also
// inside the base64 of basic credentials.
func withToken(authorization, token string) string {
	authorization = strings.ReplaceAll(authorization, tokenPlaceholder, token)
	if cred, ok := strings.CutPrefix(authorization, "Basic "); ok {
		if b, err := base64.StdEncoding.DecodeString(cred); err == nil && strings.Contains(string(b), tokenPlaceholder) {
			return "Basic " + base64.StdEncoding.EncodeToString([]byte(strings.ReplaceAll(string(b), tokenPlaceholder, token)))
		}
	}
	return authorization
}

// authRequests are the requests FuzzAuthenticate sends, chosen by a byte:
// a read, a write (the session cookie needs the CSRF header there), an
// admin-only read and the console's feed, which also takes ?token=.
var authRequests = []struct{ method, path, body string }{
	{"GET", "/api/v1/me", ""},
	{"POST", "/api/v1/tokens", `{"name":"fuzz"}`},
	{"GET", "/api/v1/users", ""},
	{"GET", "/api/v1/events", ""},
}

// FuzzAuthenticate sends the API any Authorization and Cookie header (and
// ?token= on the feed): unless they carry a real credential, the answer is
// 401 or 403 with the JSON error of that code (or 429 rate_limited once the
// fuzzer's failures are throttled), never a success, a 5xx or a panic. The
// fixture's credentials are its users' passwords and tokens.
func FuzzAuthenticate(f *testing.F) {
	fx := newFixture(f)
	secrets := []string{fx.tokens["alice"], fx.tokens["bob"], fx.tokens["admin"]}
	for _, u := range []string{"alice", "bob", "admin"} {
		secrets = append(secrets, passwordOf(u))
	}
	f.Fuzz(func(t *testing.T, which uint8, authorization, cookie string) {
		authorization = withToken(authorization, fx.tokens["alice"])
		cookie = strings.ReplaceAll(cookie, tokenPlaceholder, fx.tokens["alice"])
		r := authRequests[int(which)%len(authRequests)]
		path := r.path
		if r.path == "/api/v1/events" {
			path += "?" + url.Values{"token": {cookie}}.Encode()
		}
		req := httptest.NewRequest(r.method, path, strings.NewReader(r.body))
		req.Header.Set("Content-Type", "application/json")
		if authorization != "" {
			req.Header.Set("Authorization", authorization)
		}
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		w := httptest.NewRecorder()
		fx.api.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("%s %s, Authorization %q, Cookie %q: %d %s", r.method, path, authorization, cookie, w.Code, w.Body)
		}
		if carriesSecret(req, secrets) {
			return
		}
		want := map[int]string{http.StatusUnauthorized: wire.CodeUnauthorized, http.StatusForbidden: wire.CodeForbidden,
			http.StatusTooManyRequests: wire.CodeRateLimited}[w.Code]
		var e wire.Error
		if want == "" || json.Unmarshal(w.Body.Bytes(), &e) != nil || e.Code != want || e.Error == "" ||
			!strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
			t.Fatalf("%s %s, Authorization %q, Cookie %q: %d %s, want 401, 403 or 429 with a JSON error", r.method, path, authorization, cookie, w.Code, w.Body)
		}
	})
}

// carriesSecret reports whether a request holds one of secrets anywhere a
// client may put it: the Authorization header (or its base64), a cookie
// (URL-escaped or not) or the token parameter.
func carriesSecret(req *http.Request, secrets []string) bool {
	var places []string
	if h := req.Header.Get("Authorization"); h != "" {
		places = append(places, h)
		for _, field := range strings.Fields(h) {
			if b, err := base64.StdEncoding.DecodeString(field); err == nil {
				places = append(places, string(b))
			}
		}
		if _, rest, ok := strings.Cut(h, " "); ok {
			if b, err := base64.StdEncoding.DecodeString(rest); err == nil {
				places = append(places, string(b))
			}
		}
	}
	for _, c := range req.Cookies() {
		places = append(places, c.Value)
		if v, err := url.QueryUnescape(c.Value); err == nil {
			places = append(places, v)
		}
	}
	places = append(places, req.URL.Query()["token"]...)
	for _, p := range places {
		for _, s := range secrets {
			if strings.Contains(p, s) {
				return true
			}
		}
	}
	return false
}
