package registry

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"gantry/node/auth"
	"gantry/store"
)

// The seed corpora of the fuzz targets are in testdata/fuzz/<target>/.

// FuzzParseRoute checks that every path either fails cleanly or yields a
// valid repository name without path tricks.
func FuzzParseRoute(f *testing.F) {
	for _, s := range []string{"", "_catalog", "token", "a/b/manifests/latest", "a/b/blobs/uploads/", "a/b/blobs/uploads/0123",
		"a/../b/manifests/x", "a//b/tags/list", "a/b/referrers/sha256:00", "A/b/manifests/x", "a/b/blobs/sha512:ff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		rt, err := parseRoute(p)
		if err != nil || rt == nil || rt.name == "" {
			return
		}
		if !validName(rt.name) || strings.Contains(rt.name, "..") || strings.Contains(rt.name, "//") ||
			strings.HasPrefix(rt.name, "/") || len(rt.name) > maxNameLen {
			t.Fatalf("parseRoute(%q) accepted name %q", p, rt.name)
		}
	})
}

// FuzzParseDigest checks that accepted digests are canonical and
// re-parse to themselves.
func FuzzParseDigest(f *testing.F) {
	for _, s := range []string{"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "sha256:baddigeststring",
		"sha512:" + strings.Repeat("a", 128), "md5:abc", "sha256:", ":", "sha256:E3B0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseDigest(s)
		if err != nil {
			return
		}
		if d.String() != s || d.Validate() != nil || strings.ContainsAny(s, "/\x00") {
			t.Fatalf("parseDigest(%q) = %q", s, d)
		}
	})
}

// FuzzParseContentRange checks ranges are well-formed when accepted.
func FuzzParseContentRange(f *testing.F) {
	for _, s := range []string{"0-0", "0-499", "bytes 5-10", "10-5", "-1-2", "a-b", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		start, end, ok := parseContentRange(s)
		if ok && (start < 0 || end < start) {
			t.Fatalf("parseContentRange(%q) = %d, %d", s, start, end)
		}
	})
}

// FuzzParseManifest checks what a manifest push is parsed into: a refusal
// is MANIFEST_INVALID (400) with a short message; an accepted manifest is
// of one of the four supported media types, lists each blob, child
// manifest and subject once, as a digest the registry can fetch, and
// pushed again with the media type it is served with it parses the same.
func FuzzParseManifest(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		m, err := parseManifest(body, contentType)
		if err != nil {
			var oe *ociError
			if !errors.As(err, &oe) || oe.Code != codeManifestInvalid || oe.Status != http.StatusBadRequest || oe.Message == "" {
				t.Fatalf("parseManifest(%q, %q): %v (%T), want MANIFEST_INVALID", body, contentType, err, err)
			}
			// Messages quote at most 80 bytes of each value sent (truncate),
			// up to four characters a byte once quoted.
			if len(oe.Message) > 1000 {
				t.Fatalf("parseManifest(%q, %q): a %d-byte message: %.100q...", body, contentType, len(oe.Message), oe.Message)
			}
			return
		}
		valid := func(what, d string) {
			if _, err := parseDigest(d); err != nil || digest.Digest(d).Validate() != nil {
				t.Fatalf("parseManifest(%q, %q) accepted %s %q", body, contentType, what, d)
			}
		}
		for _, d := range m.Foreign {
			valid("foreign layer", d)
		}
		for _, list := range [][]string{m.Blobs, m.Manifests} {
			for i, d := range list {
				valid("digest", d)
				if slices.Contains(list[:i], d) {
					t.Fatalf("parseManifest(%q, %q): %s listed twice in %v", body, contentType, d, list)
				}
			}
		}
		if m.Subject != "" {
			valid("subject", m.Subject)
		}
		switch m.MediaType {
		case v1.MediaTypeImageManifest, mediaTypeDockerManifest:
			if len(m.Blobs) == 0 || len(m.Manifests) != 0 {
				t.Fatalf("parseManifest(%q, %q): image manifest with blobs %v, manifests %v", body, contentType, m.Blobs, m.Manifests)
			}
		case v1.MediaTypeImageIndex, mediaTypeDockerManifestList:
			if len(m.Blobs) != 0 || len(m.Foreign) != 0 {
				t.Fatalf("parseManifest(%q, %q): index with blobs %v, foreign %v", body, contentType, m.Blobs, m.Foreign)
			}
		default:
			t.Fatalf("parseManifest(%q, %q) accepted media type %q", body, contentType, m.MediaType)
		}
		again, err := parseManifest(body, m.MediaType)
		if err != nil || !manifestsEqual(again, m) {
			t.Fatalf("parseManifest(%q, %q) = %+v, but pushed as %q: %+v, %v", body, contentType, m, m.MediaType, again, err)
		}
	})
}

func manifestsEqual(a, b *store.RegManifest) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// FuzzParseReference checks image references of this registry: an
// accepted one has a valid repository name (lowercase components joined by
// single slashes, separators only inside a component, at most 255 bytes),
// a valid tag or digest, and prints back as what was given (":latest"
// added when it named neither); a name is owned by its first component.
func FuzzParseReference(f *testing.F) {
	f.Fuzz(func(t *testing.T, image string) {
		ref, err := ParseReference(image)
		if err != nil {
			if !strings.Contains(err.Error(), "image ") {
				t.Fatalf("ParseReference(%q): error %q does not name the image", image, err)
			}
			return
		}
		if !validName(ref.Repo) || len(ref.Repo) > maxNameLen || ref.Host != "" {
			t.Fatalf("ParseReference(%q): repository %q", image, ref.Repo)
		}
		for _, c := range strings.Split(ref.Repo, "/") {
			if c == "" || strings.Trim(c, "._-") != c || strings.ToLower(c) != c || strings.Contains(c, "..") || strings.Contains(c, "___") {
				t.Fatalf("ParseReference(%q): repository %q has component %q", image, ref.Repo, c)
			}
		}
		if owner := ownerOf(ref.Repo); owner != "" && !strings.HasPrefix(ref.Repo, owner+"/") || owner == "" && strings.Contains(ref.Repo, "/") {
			t.Fatalf("ownerOf(%q) = %q", ref.Repo, owner)
		}
		if ref.Tag == "" && ref.Digest == "" {
			t.Fatalf("ParseReference(%q): neither tag nor digest", image)
		}
		if ref.Tag != "" && (!validTag(ref.Tag) || len(ref.Tag) > maxTagLen || strings.ContainsAny(ref.Tag, ":/@")) {
			t.Fatalf("ParseReference(%q): tag %q", image, ref.Tag)
		}
		if ref.Digest != "" && digest.Digest(ref.Digest).Validate() != nil {
			t.Fatalf("ParseReference(%q): digest %q", image, ref.Digest)
		}
		printed := ref.Repo
		if ref.Tag != "" {
			printed += ":" + ref.Tag
		}
		if ref.Digest != "" {
			printed += "@" + ref.Digest
		}
		if printed != image && printed != image+":latest" {
			t.Fatalf("ParseReference(%q) = %+v, which prints as %q", image, ref, printed)
		}
		if again, err := ParseReference(printed); err != nil || again != ref {
			t.Fatalf("ParseReference(%q) = %+v, but %q parses as %+v, %v", image, ref, printed, again, err)
		}
	})
}

// Placeholders a seed or fuzzed Authorization value may hold for alice's
// real credentials, fresh per run: an API token and a bearer token from
// /v2/token. "Basic " credentials get them replaced inside their base64.
const (
	apiTokenPlaceholder    = "<token>"
	bearerTokenPlaceholder = "<bearer>"
)

// registryAuthRequests are the requests FuzzRegistryAuth sends, chosen by a
// byte: the base endpoint, the token endpoint (basic auth only), a pull and
// a push.
var registryAuthRequests = []struct{ method, path string }{
	{"GET", "/v2/"},
	{"GET", "/v2/token?service=gantry&scope=repository:alice/tool:pull,push"},
	{"GET", "/v2/alice/tool/tags/list"},
	{"PUT", "/v2/alice/tool/manifests/latest"},
}

// FuzzRegistryAuth sends the registry any Authorization header: unless it
// carries a real credential (a password, the node secret, an API token or
// a bearer token the registry signed), the answer is 401 UNAUTHORIZED in
// the OCI error body with a Bearer challenge, never a panic or a success.
func FuzzRegistryAuth(f *testing.F) {
	e := newEnv(f)
	ctx := context.Background()
	apiToken := auth.NewSecret()
	if _, err := store.CmdCreateToken.Propose(ctx, e.prop, store.CreateToken{Token: store.Token{ID: "tok-alice", User: "alice", Name: "fuzz"}, Hash: auth.HashToken(apiToken)}); err != nil {
		f.Fatal(err)
	}
	req := httptest.NewRequest("GET", registryAuthRequests[1].path, nil)
	req.SetBasicAuth("alice", "alice-pw")
	w := httptest.NewRecorder()
	e.reg.ServeHTTP(w, req)
	var tok struct{ Token string }
	if err := json.Unmarshal(w.Body.Bytes(), &tok); err != nil || tok.Token == "" {
		f.Fatalf("get a bearer token: %d %s", w.Code, w.Body)
	}
	// The signature covers the claims: a value holding them is not random.
	claims, _, _ := strings.Cut(tok.Token, ".")
	secrets := []string{"alice-pw", "bob-pw", "root-pw", "node-secret", apiToken, claims}
	f.Fuzz(func(t *testing.T, which uint8, authorization string) {
		authorization = withCredentials(authorization, apiToken, tok.Token)
		r := registryAuthRequests[int(which)%len(registryAuthRequests)]
		req := httptest.NewRequest(r.method, r.path, strings.NewReader(`{}`))
		if authorization != "" {
			req.Header.Set("Authorization", authorization)
		}
		w := httptest.NewRecorder()
		e.reg.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("%s %s, Authorization %q: %d %s", r.method, r.path, authorization, w.Code, w.Body)
		}
		if holdsSecret(authorization, secrets) {
			return
		}
		var body struct {
			Errors []struct{ Code, Message string }
		}
		// Enough failures from one address are throttled: 429 with the
		// OCI code and Retry-After is the other right answer.
		if w.Code == http.StatusTooManyRequests {
			if json.Unmarshal(w.Body.Bytes(), &body) != nil || len(body.Errors) != 1 || body.Errors[0].Code != "TOOMANYREQUESTS" || w.Header().Get("Retry-After") == "" {
				t.Fatalf("%s %s, Authorization %q: %d %v %s, want 429 TOOMANYREQUESTS with Retry-After", r.method, r.path, authorization, w.Code, w.Header(), w.Body)
			}
			return
		}
		if w.Code != http.StatusUnauthorized || json.Unmarshal(w.Body.Bytes(), &body) != nil || len(body.Errors) != 1 ||
			body.Errors[0].Code != codeUnauthorized || !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Bearer realm=") {
			t.Fatalf("%s %s, Authorization %q: %d %v %s, want 401 UNAUTHORIZED with a challenge", r.method, r.path, authorization, w.Code, w.Header(), w.Body)
		}
	})
}

// withCredentials replaces the placeholders in an Authorization value.
func withCredentials(authorization, apiToken, bearer string) string {
	put := strings.NewReplacer(apiTokenPlaceholder, apiToken, bearerTokenPlaceholder, bearer).Replace
	scheme, cred, ok := strings.Cut(authorization, " ")
	if ok && strings.EqualFold(scheme, "basic") {
		if b, err := base64.StdEncoding.DecodeString(cred); err == nil && put(string(b)) != string(b) {
			return scheme + " " + base64.StdEncoding.EncodeToString([]byte(put(string(b))))
		}
	}
	return put(authorization)
}

// holdsSecret reports whether an Authorization value holds one of secrets,
// as it is or in the base64 of basic credentials.
func holdsSecret(authorization string, secrets []string) bool {
	places := []string{authorization}
	if _, cred, ok := strings.Cut(authorization, " "); ok {
		if b, err := base64.StdEncoding.DecodeString(cred); err == nil {
			places = append(places, string(b))
		}
	}
	for _, p := range places {
		for _, s := range secrets {
			if strings.Contains(p, s) {
				return true
			}
		}
	}
	return false
}

func TestTagsAndNames(t *testing.T) {
	cases := []struct {
		s         string
		name, tag bool
	}{
		{"alice/tool", true, false}, {"a", true, true}, {"a/b/c-d_e.f__g", true, false}, {"A", false, true},
		{"a/../b", false, false}, {"a//b", false, false}, {"-a", false, false}, {"v1.0_rc-1", true, true}, {"v1.0_RC", false, true},
		{strings.Repeat("a", 129), true, false}, {strings.Repeat("a", 256), false, false},
	}
	for _, c := range cases {
		if validName(c.s) != c.name || validTag(c.s) != c.tag {
			t.Errorf("%q: name %v tag %v, want %v %v", c.s, validName(c.s), validTag(c.s), c.name, c.tag)
		}
	}
}
