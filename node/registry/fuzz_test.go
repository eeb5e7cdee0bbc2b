package registry

import (
	"strings"
	"testing"
)

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
