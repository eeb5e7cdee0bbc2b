package raftcluster

import (
	"strings"
	"testing"
	"time"
)

func TestJoinTokenAndProof(t *testing.T) {
	dir := t.TempDir()
	p, err := LoadOrCreatePKI(dir, "node1", []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	secret := NewJoinSecret()
	tok := FormatToken(p.CAHash(), secret)

	t.Run("a printed token parses back into the CA hash and the secret", func(t *testing.T) {
		h, s, err := ParseToken(tok)
		if err != nil || "sha256:"+h != p.CAHash() || s != secret {
			t.Fatalf("ParseToken(%q) = %q, %q, %v", tok, h, s, err)
		}
	})

	t.Run("malformed tokens are refused", func(t *testing.T) {
		for _, bad := range []string{"", "gantry1", "gantry2-" + strings.Repeat("a", 64) + "-" + secret, "gantry1-zz-" + secret, "gantry1-" + strings.Repeat("g", 64) + "-" + secret} {
			if _, _, err := ParseToken(bad); err == nil {
				t.Errorf("ParseToken(%q) accepted", bad)
			}
		}
	})

	t.Run("the CA is pinned by its hash", func(t *testing.T) {
		h, _, _ := ParseToken(tok)
		if _, err := PinCA(p.CAPEM, h); err != nil {
			t.Fatalf("own CA refused: %v", err)
		}
		other, _ := LoadOrCreatePKI(t.TempDir(), "x", nil)
		if _, err := PinCA(other.CAPEM, h); err == nil || !strings.Contains(err.Error(), "does not match") {
			t.Fatalf("another CA accepted: %v", err)
		}
	})

	key, csr, err := NewNodeKey("node2")
	if err != nil {
		t.Fatal(err)
	}
	req := JoinRequest{Name: "node2", RaftAddr: "10.0.0.2:7071", Host: "10.0.0.2", CSR: csr, Time: time.Now().Unix()}
	req.Proof = JoinProof(secret, &req)

	t.Run("the proof holds for the secret and breaks on any change", func(t *testing.T) {
		if !CheckJoinProof(secret, &req, time.Now()) {
			t.Fatal("valid proof refused")
		}
		if CheckJoinProof(NewJoinSecret(), &req, time.Now()) {
			t.Fatal("proof accepted with another secret")
		}
		r2 := req
		r2.RaftAddr = "10.0.0.9:7071"
		if CheckJoinProof(secret, &r2, time.Now()) {
			t.Fatal("proof accepted for a changed address")
		}
		if CheckJoinProof(secret, &req, time.Now().Add(time.Hour)) {
			t.Fatal("stale proof accepted")
		}
	})

	t.Run("a signed certificate chains to the CA and is written with its key", func(t *testing.T) {
		cert, err := p.SignCSR(csr, "node2", "10.0.0.2")
		if err != nil {
			t.Fatal(err)
		}
		jdir := t.TempDir()
		if err := WriteJoined(jdir, p.CACert, p.CAPEM, cert, key); err != nil {
			t.Fatal(err)
		}
		other, _, _ := NewNodeKey("x")
		if err := WriteJoined(t.TempDir(), p.CACert, p.CAPEM, cert, other); err == nil {
			t.Fatal("certificate accepted for another key")
		}
		q, err := LoadOrCreatePKI(jdir, "node2", nil)
		if err != nil || q.HasCAKey() {
			t.Fatalf("joined PKI: %v (has CA key %v)", err, q != nil && q.HasCAKey())
		}
	})
}
