package client

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestPinnedCATrustsTheServerForRequestsAndEvents: a client given the
// server's CA reaches it, for requests and for the event stream; one
// without it, or pinned to another CA, gets a *CertError saying which.
func TestPinnedCATrustsTheServerForRequestsAndEvents(t *testing.T) {
	up := websocket.Upgrader{}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/v1/nodes", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(`{"nodes":[{"name":"n1"}]}`)) })
	mux.HandleFunc("/api/v1/events", func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.WriteMessage(websocket.TextMessage, []byte(`{"type":"hello"}`))
		_, _, _ = c.ReadMessage()
	})
	srv := httptest.NewTLSServer(mux)
	defer srv.Close()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	otherCA := anotherCA(t)
	ctx := context.Background()

	pinned, err := NewTrusting(srv.URL, "tok", ca)
	if err != nil {
		t.Fatal(err)
	}
	if nodes, err := pinned.Nodes(ctx); err != nil || len(nodes) != 1 {
		t.Fatalf("nodes with the pinned CA: %v %v", nodes, err)
	}
	s, err := pinned.Events(ctx, "")
	if err != nil {
		t.Fatalf("events with the pinned CA: %v", err)
	}
	if b, err := s.NextRaw(); err != nil || string(b) != `{"type":"hello"}` {
		t.Fatalf("first event: %q %v", b, err)
	}
	s.Close()

	for _, c := range []struct {
		name   string
		ca     []byte
		pinned bool
	}{{"no pin (the system's roots)", nil, false}, {"another CA pinned", otherCA, true}} {
		t.Run(c.name, func(t *testing.T) {
			cl, err := NewTrusting(srv.URL, "tok", c.ca)
			if err != nil {
				t.Fatal(err)
			}
			var ce *CertError
			if _, err := cl.Nodes(ctx); !errors.As(err, &ce) || ce.Pinned != c.pinned {
				t.Fatalf("nodes: %v (%+v)", err, ce)
			}
			if _, err := cl.Events(ctx, ""); !errors.As(err, &ce) || ce.Pinned != c.pinned {
				t.Fatalf("events: %v (%+v)", err, ce)
			}
		})
	}
	if _, err := NewTrusting(srv.URL, "", []byte("not a certificate")); err == nil {
		t.Fatal("a pin that holds no certificate is accepted")
	}
}

// anotherCA is a self-signed CA certificate (PEM) that issued nothing the
// test servers present (httptest's servers all share one certificate).
func anotherCA(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "another CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
