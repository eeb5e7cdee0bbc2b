package httpsmux

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestDecide(t *testing.T) {
	lo := &net.TCPAddr{IP: net.ParseIP("127.0.0.1")}
	far := &net.TCPAddr{IP: net.ParseIP("192.0.2.7")}
	cases := []struct {
		name  string
		first byte
		from  net.Addr
		want  Kind
	}{
		{"a TLS handshake from anywhere is TLS", 0x16, far, TLS},
		{"plain HTTP from loopback is served", 'G', lo, Plain},
		{"plain HTTP from beyond loopback is refused", 'G', far, Refused},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Decide(c.first, c.from, nil); got != c.want {
				t.Fatalf("got %v, want %v", got, c.want)
			}
		})
	}
}

func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

func serve(t *testing.T, plainOK func(net.IP) bool) (string, *x509.CertPool) {
	cert, pool := selfSigned(t)
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := New(inner, &tls.Config{Certificates: []tls.Certificate{cert}}, plainOK)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil {
			io.WriteString(w, "tls")
		} else {
			io.WriteString(w, "plain")
		}
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String(), pool
}

func get(t *testing.T, hc *http.Client, url string) (int, string) {
	resp, err := hc.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestOnePortServesTLSAndLoopbackPlain(t *testing.T) {
	addr, pool := serve(t, nil)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if code, body := get(t, hc, "https://"+addr+"/"); code != 200 || body != "tls" {
		t.Fatalf("https: %d %q", code, body)
	}
	if code, body := get(t, http.DefaultClient, "http://"+addr+"/"); code != 200 || body != "plain" {
		t.Fatalf("plain from loopback: %d %q", code, body)
	}
	bare := &http.Client{Transport: &http.Transport{}}
	if _, err := bare.Get("https://" + addr + "/"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("a client without the CA: want a certificate error, got %v", err)
	}
}

func TestPlainHTTPFromAnUntrustedAddressIsRefused(t *testing.T) {
	// The kernel gives every loopback client a loopback source; a policy
	// that trusts no address stands in for a client on another machine.
	addr, _ := serve(t, func(net.IP) bool { return false })
	code, body := get(t, http.DefaultClient, "http://"+addr+"/")
	if code != http.StatusBadRequest || !strings.Contains(body, "https://"+addr) {
		t.Fatalf("got %d %q, want 400 naming https://%s", code, body, addr)
	}
}

func TestParsePlainFrom(t *testing.T) {
	cases := []struct {
		spec     string
		accepted []string
		refused  []string
	}{
		{"", []string{"127.0.0.1", "127.0.0.2", "::1"}, []string{"192.0.2.7"}},
		{"loopback", []string{"127.0.0.1", "127.9.9.9", "::1"}, []string{"10.0.0.1"}},
		{"127.0.0.1", []string{"127.0.0.1"}, []string{"127.0.0.2", "::1", "10.0.0.1"}},
		{"loopback, 10.0.0.0/8", []string{"127.0.0.1", "10.2.3.4"}, []string{"11.0.0.1"}},
		{"none", nil, []string{"127.0.0.1", "::1"}},
		{"::1", []string{"::1"}, []string{"127.0.0.1"}},
	}
	for _, c := range cases {
		t.Run("plain HTTP from "+c.spec, func(t *testing.T) {
			ok, err := ParsePlainFrom(c.spec)
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range c.accepted {
				if !ok(net.ParseIP(a)) {
					t.Errorf("%s is refused", a)
				}
			}
			for _, a := range c.refused {
				if ok(net.ParseIP(a)) {
					t.Errorf("%s is accepted", a)
				}
			}
		})
	}
	for _, bad := range []string{"127.0.0.300", "10.0.0.0/33", "everyone", "none,loopback", "loopback,,"} {
		if _, err := ParsePlainFrom(bad); err == nil {
			t.Errorf("%q is accepted", bad)
		}
	}
}
