package registry

import (
	_ "crypto/sha512" // registers sha384/sha512 for go-digest
	"net/http"
	"regexp"
	"strings"

	"github.com/opencontainers/go-digest"
)

// Limits from the distribution spec.
const (
	maxNameLen = 255
	maxTagLen  = 128
)

var (
	nameComponent = `[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*`
	nameRe        = regexp.MustCompile(`^` + nameComponent + `(?:/` + nameComponent + `)*$`)
	tagRe         = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
)

// validName reports whether s is a valid repository name.
func validName(s string) bool {
	return len(s) <= maxNameLen && nameRe.MatchString(s)
}

// validTag reports whether s is a valid tag.
func validTag(s string) bool { return tagRe.MatchString(s) }

// parseDigest parses and validates a digest of a supported algorithm
// (sha256, sha512).
func parseDigest(s string) (digest.Digest, error) {
	d, err := digest.Parse(s)
	if err != nil {
		return "", ociErr(http.StatusBadRequest, codeDigestInvalid, "invalid digest %q", truncate(s))
	}
	switch d.Algorithm() {
	case digest.SHA256, digest.SHA512:
	default:
		return "", ociErr(http.StatusBadRequest, codeDigestInvalid, "unsupported digest algorithm %q", truncate(string(d.Algorithm())))
	}
	return d, nil
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// route kinds.
const (
	routeBase = iota
	routeCatalog
	routeToken
	routeBlob
	routeUploadStart
	routeUpload
	routeManifest
	routeTags
	routeReferrers
	// routeKinds is the number of kinds: the isolation matrix
	// (matrix_test.go) must have rows for each.
	routeKinds
)

// route is a parsed request path below /v2/.
type route struct {
	kind int
	name string // repository
	ref  string // digest, tag, or upload id
}

// parseRoute parses the path after /v2/. It returns an *ociError with
// NAME_INVALID for a malformed repository name and a nil route for a path
// that is no API endpoint.
func parseRoute(p string) (*route, error) {
	switch p {
	case "":
		return &route{kind: routeBase}, nil
	case "_catalog":
		return &route{kind: routeCatalog}, nil
	case "token":
		return &route{kind: routeToken}, nil
	}
	segs := strings.Split(p, "/")
	n := len(segs)
	var rt route
	var nameSegs []string
	switch {
	case n >= 3 && segs[n-2] == "tags" && segs[n-1] == "list":
		rt, nameSegs = route{kind: routeTags}, segs[:n-2]
	case n >= 4 && segs[n-3] == "blobs" && segs[n-2] == "uploads":
		if segs[n-1] == "" {
			rt = route{kind: routeUploadStart}
		} else {
			rt = route{kind: routeUpload, ref: segs[n-1]}
		}
		nameSegs = segs[:n-3]
	case n >= 3 && segs[n-2] == "blobs" && segs[n-1] == "uploads":
		rt, nameSegs = route{kind: routeUploadStart}, segs[:n-2]
	case n >= 3 && segs[n-2] == "blobs":
		rt, nameSegs = route{kind: routeBlob, ref: segs[n-1]}, segs[:n-2]
	case n >= 3 && segs[n-2] == "manifests":
		rt, nameSegs = route{kind: routeManifest, ref: segs[n-1]}, segs[:n-2]
	case n >= 3 && segs[n-2] == "referrers":
		rt, nameSegs = route{kind: routeReferrers, ref: segs[n-1]}, segs[:n-2]
	default:
		return nil, nil
	}
	rt.name = strings.Join(nameSegs, "/")
	if !validName(rt.name) {
		return nil, ociErr(http.StatusBadRequest, codeNameInvalid, "invalid repository name %q", truncate(rt.name))
	}
	return &rt, nil
}

// ownerOf returns the owner of a repository: its first path component.
// A single-component name has no owner ("") and only admins may push it.
func ownerOf(name string) string {
	owner, _, ok := strings.Cut(name, "/")
	if !ok {
		return ""
	}
	return owner
}
