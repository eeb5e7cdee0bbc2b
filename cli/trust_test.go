package cli

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// testCA is a CA and a server certificate it issued for 127.0.0.1.
type testCA struct {
	cert   *x509.Certificate
	pem    []byte
	server tls.Certificate
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	skey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	stmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "node1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	sder, err := x509.CreateCertificate(rand.Reader, stmpl, ca, &skey.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: ca, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		server: tls.Certificate{Certificate: [][]byte{sder}, PrivateKey: skey}}
}

// trustServer is a TLS server answering the few routes login and
// `job ls` use; its CA can be swapped while it runs.
func trustServer(t *testing.T, ca *testCA) (*httptest.Server, *atomic.Pointer[testCA]) {
	t.Helper()
	var cur atomic.Pointer[testCA]
	cur.Store(ca)
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"status":"ok"}`)) })
	mux.HandleFunc("/api/v1/cluster/ca", func(w http.ResponseWriter, r *http.Request) { w.Write(cur.Load().pem) })
	mux.HandleFunc("/api/v1/login", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"token":"gtk_test","user":{"username":"alice"}}`))
	})
	mux.HandleFunc("/api/v1/jobs", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer gtk_test" {
			w.WriteHeader(401)
			w.Write([]byte(`{"error":"sign in","code":"unauthorized"}`))
			return
		}
		w.Write([]byte(`{"jobs":[],"next":""}`))
	})
	srv := httptest.NewUnstartedServer(mux)
	srv.TLS = &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cur.Load().server, nil }}
	srv.StartTLS()
	// StartTLS adds its own certificate, which tls prefers to
	// GetCertificate for a client that sends no name (an IP address).
	srv.TLS.Certificates = nil
	t.Cleanup(srv.Close)
	return srv, &cur
}

// cliEnv gives the test its own config directory and a stdin that is no
// terminal, and clears the variables that would override the saved login.
func cliEnv(t *testing.T) {
	t.Helper()
	home := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", home)
	t.Setenv("HOME", home)
	t.Setenv("GANTRY_ADDR", "")
	t.Setenv("GANTRY_TOKEN", "")
	t.Setenv("GANTRY_PASSWORD", "")
	t.Setenv("GANTRY_DATA", t.TempDir())
	t.Setenv("LANG", "C")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	old := os.Stdin
	os.Stdin = r
	t.Cleanup(func() { os.Stdin = old; r.Close() })
}

func gantry(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, nil, &out, &errb)
	return out.String(), errb.String(), code
}

// TestLoginPinsTheServersCA: `gantry login` to an https:// address pins
// the server's CA only once its fingerprint is confirmed, later commands
// trust that CA, and a server whose CA changed is refused with a line
// saying what to do.
func TestLoginPinsTheServersCA(t *testing.T) {
	cliEnv(t)
	ca1, ca2 := newTestCA(t, "cluster one"), newTestCA(t, "cluster two")
	srv, cur := trustServer(t, ca1)
	addr := srv.URL
	fp1 := fingerprint(ca1.cert)
	login := func(extra ...string) (string, string, int) {
		return gantry(t, append([]string{"login", "--addr", addr, "-u", "alice", "-p", "pw"}, extra...)...)
	}

	t.Run("without a terminal or a fingerprint, login refuses and prints the fingerprint to pass", func(t *testing.T) {
		_, errs, code := login()
		if code != 1 || !strings.Contains(errs, fp1) || !strings.Contains(errs, "--ca-fingerprint "+fp1) || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
			t.Fatalf("exit %d, stderr %q", code, errs)
		}
		if _, err := os.Stat(configPath()); !os.IsNotExist(err) {
			t.Fatalf("a refused login saved %s (%v)", configPath(), err)
		}
	})
	t.Run("a wrong fingerprint is refused", func(t *testing.T) {
		_, errs, code := login("--ca-fingerprint", fingerprint(ca2.cert))
		if code != 1 || !strings.Contains(errs, "refused") || !strings.Contains(errs, fp1) {
			t.Fatalf("exit %d, stderr %q", code, errs)
		}
		if _, err := os.Stat(configPath()); !os.IsNotExist(err) {
			t.Fatalf("a refused login saved %s (%v)", configPath(), err)
		}
	})
	t.Run("a malformed fingerprint is a usage error", func(t *testing.T) {
		if _, errs, code := login("--ca-fingerprint", "abc"); code != 2 || !strings.Contains(errs, "64 hex digits") {
			t.Fatalf("exit %d, stderr %q", code, errs)
		}
	})
	t.Run("the right fingerprint, lower case without colons, pins the CA", func(t *testing.T) {
		plain := strings.ToLower(strings.ReplaceAll(fp1, ":", ""))
		out, errs, code := login("--ca-fingerprint", plain)
		if code != 0 || !strings.Contains(out, fp1) {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
		}
		b, err := os.ReadFile(configPath())
		if err != nil {
			t.Fatal(err)
		}
		var cfg clientConfig
		if err := json.Unmarshal(b, &cfg); err != nil || cfg.CA != string(ca1.pem) || cfg.Addr != addr {
			t.Fatalf("saved login %s: %v", b, err)
		}
	})
	t.Run("a later command trusts the pinned CA", func(t *testing.T) {
		if out, errs, code := gantry(t, "job", "ls"); code != 0 {
			t.Fatalf("job ls: exit %d, stdout %q, stderr %q", code, out, errs)
		}
	})
	t.Run("logging in again with the pin asks nothing", func(t *testing.T) {
		if out, errs, code := login(); code != 0 {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
		}
	})

	cur.Store(ca2) // the server now presents another CA's certificate
	fp2 := fingerprint(ca2.cert)
	t.Run("a later command refuses a server whose CA no longer matches the pin", func(t *testing.T) {
		_, errs, code := gantry(t, "job", "ls")
		if code != 1 || !strings.Contains(errs, "pinned") || !strings.Contains(errs, "gantry login --addr "+addr+" --ca-fingerprint") ||
			strings.Count(strings.TrimSpace(errs), "\n") != 0 {
			t.Fatalf("exit %d, stderr %q", code, errs)
		}
	})
	t.Run("login without a fingerprint refuses the changed CA and names the new one", func(t *testing.T) {
		_, errs, code := login()
		if code != 1 || !strings.Contains(errs, fp2) || !strings.Contains(errs, "pinned") {
			t.Fatalf("exit %d, stderr %q", code, errs)
		}
	})
	t.Run("login with the new CA's fingerprint pins it", func(t *testing.T) {
		if out, errs, code := login("--ca-fingerprint", fp2); code != 0 || !strings.Contains(out, fp2) {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
		}
		if out, errs, code := gantry(t, "job", "ls"); code != 0 {
			t.Fatalf("job ls: exit %d, stdout %q, stderr %q", code, out, errs)
		}
	})
	t.Run("another address does not use the pin", func(t *testing.T) {
		t.Setenv("GANTRY_ADDR", strings.Replace(addr, "127.0.0.1", "localhost", 1))
		_, errs, code := gantry(t, "job", "ls")
		if code != 1 || !strings.Contains(errs, "does not trust") {
			t.Fatalf("exit %d, stderr %q", code, errs)
		}
	})
}

// TestLoginCAFileAndTerminal: --ca-file pins that CA without asking; at a
// terminal the user is asked, and only "y" pins.
func TestLoginCAFileAndTerminal(t *testing.T) {
	cliEnv(t)
	ca1, ca2 := newTestCA(t, "cluster one"), newTestCA(t, "cluster two")
	srv, _ := trustServer(t, ca1)
	ctx := context.Background()

	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good.pem"), filepath.Join(dir, "bad.pem")
	if err := os.WriteFile(good, ca1.pem, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, ca2.pem, 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := pinCA(ctx, srv.URL, trustOptions{caFile: good}); err != nil || !bytes.Equal(got, ca1.pem) {
		t.Fatalf("--ca-file with the server's CA: %v", err)
	}
	if _, err := pinCA(ctx, srv.URL, trustOptions{caFile: bad}); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("--ca-file with another CA: %v", err)
	}
	var asked bytes.Buffer
	got, err := pinCA(ctx, srv.URL, trustOptions{tty: true, in: strings.NewReader("y\n"), out: &asked})
	if err != nil || !bytes.Equal(got, ca1.pem) || !strings.Contains(asked.String(), fingerprint(ca1.cert)) {
		t.Fatalf("answered y: %v; asked %q", err, asked.String())
	}
	if _, err := pinCA(ctx, srv.URL, trustOptions{tty: true, in: strings.NewReader("\n"), out: &asked}); err == nil || !strings.Contains(err.Error(), "not trusted") {
		t.Fatalf("answered nothing: %v", err)
	}
	if got, err := pinCA(ctx, "http://127.0.0.1:1", trustOptions{}); err != nil || got != nil {
		t.Fatalf("plain http: %q %v", got, err)
	}
}
