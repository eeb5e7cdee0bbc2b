package raftcluster

import (
	"encoding/hex"
	"strings"
	"testing"
)

// FuzzParseToken checks that any --token value is refused with ErrBadToken
// or yields a 64-hex-digit lowercase CA hash and a secret of at least 32
// characters, and that FormatToken of what it yields (with or without the
// "sha256:" prefix) parses back to the same. Seeds: testdata/fuzz/FuzzParseToken.
func FuzzParseToken(f *testing.F) {
	f.Fuzz(func(t *testing.T, tok string) {
		h, secret, err := ParseToken(tok)
		if err != nil {
			if err != ErrBadToken || h != "" || secret != "" {
				t.Fatalf("ParseToken(%q) = %q, %q, %v; want ErrBadToken and nothing else", tok, h, secret, err)
			}
			return
		}
		if b, err := hex.DecodeString(h); err != nil || len(b) != 32 || h != strings.ToLower(h) {
			t.Fatalf("ParseToken(%q): CA hash %q is not 64 lowercase hex digits", tok, h)
		}
		if len(secret) < 32 || strings.Contains(secret, "-") {
			t.Fatalf("ParseToken(%q): secret %q", tok, secret)
		}
		for _, caHash := range []string{h, "sha256:" + h} {
			again := FormatToken(caHash, secret)
			if h2, s2, err := ParseToken(again); err != nil || h2 != h || s2 != secret {
				t.Fatalf("ParseToken(%q) = %q, %q; FormatToken(%q, ...) = %q parses as %q, %q, %v", tok, h, secret, caHash, again, h2, s2, err)
			}
		}
	})
}
