package cluster

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gantry/raftcluster"
)

// member is a TLS-only stand-in for a member's join routes, presenting
// the certificate serve holds.
func member(t *testing.T, pki *raftcluster.PKI, secret string, serve tls.Certificate) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/api/v1/cluster/ca", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(pki.CAPEM) })
	mux.HandleFunc("/api/v1/cluster/join", func(w http.ResponseWriter, r *http.Request) {
		var req raftcluster.JoinRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || !raftcluster.CheckJoinProof(secret, &req, time.Now()) {
			http.Error(w, `{"error":"bad proof"}`, http.StatusForbidden)
			return
		}
		cert, err := pki.SignCSR(req.CSR, req.Name, req.Host)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_ = json.NewEncoder(w).Encode(raftcluster.JoinResponse{Cert: cert, ClusterID: "c1", MemberAddr: "127.0.0.1:7071"})
	})
	srv := httptest.NewUnstartedServer(mux)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{serve}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "https://")
}

// TestJoinSpeaksHTTPSAndChecksTheMembersCertificate: --join HOST:PORT
// joins over HTTPS (a member beyond loopback refuses plain HTTP), and a
// server presenting a certificate the pinned CA did not issue is refused
// even when it relays the right CA.
func TestJoinSpeaksHTTPSAndChecksTheMembersCertificate(t *testing.T) {
	pki, err := raftcluster.LoadOrCreatePKI(t.TempDir(), "node1", []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	secret := raftcluster.NewJoinSecret()
	token := raftcluster.FormatToken(pki.CAHash(), secret)
	join := func(addr string) (string, error) {
		dir := t.TempDir()
		got, err := Join(context.Background(), JoinConfig{Member: addr, Token: token, Name: "node2", TLSDir: dir,
			Host: "127.0.0.1", Cluster: "127.0.0.1:7072"})
		if err == nil {
			if _, serr := os.Stat(filepath.Join(dir, "node.pem")); serr != nil {
				t.Errorf("joined without writing node.pem: %v", serr)
			}
		}
		return got, err
	}

	if got, err := join(member(t, pki, secret, pki.NodeTLS)); err != nil || got != "127.0.0.1:7071" {
		t.Fatalf("join a TLS-only member: %q %v", got, err)
	}
	other, err := raftcluster.LoadOrCreatePKI(t.TempDir(), "intruder", []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := join(member(t, pki, secret, other.NodeTLS)); err == nil || !strings.Contains(err.Error(), "not issued by the cluster CA") {
		t.Fatalf("join a server relaying the CA with another CA's certificate: %v", err)
	}
}
