package cli

// Trust on first use for `gantry login` to an https:// address: the
// server's CA is pinned once, the way a join token pins it for a node, and
// every later command trusts only that CA for the address (see
// client.NewTrusting). A CA is pinned only when the user confirmed its
// SHA-256 fingerprint (at a terminal, or with --ca-fingerprint) or gave it
// with --ca-file; a server the system's roots already vouch for needs no pin.

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"gantry/client"
)

// trustOptions are what decides which CA a login pins.
type trustOptions struct {
	fingerprint string // --ca-fingerprint: the SHA-256 of the CA the user expects
	caFile      string // --ca-file: a CA to trust without asking
	pinned      []byte // the CA the last login to this address pinned
	in          io.Reader
	out         io.Writer // the question, at a terminal
	tty         bool      // in is a terminal: the user may be asked
}

// caRoute serves the cluster CA to anyone (the certificate is public).
const caRoute = "/api/v1/cluster/ca"

// fingerprint is the SHA-256 of a certificate's DER in the form
// `openssl x509 -noout -fingerprint -sha256` prints (AB:CD:...).
func fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	parts := make([]string, 0, len(sum))
	for i := 0; i < len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, ":")
}

// normalFingerprint reads a fingerprint as typed: hex, colons, spaces and
// a "sha256:" prefix optional, any case; it returns 64 lower-case hex
// digits, or an error saying what it wants.
func normalFingerprint(s string) (string, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	t = strings.TrimPrefix(strings.TrimPrefix(t, "sha256:"), "sha256=")
	t = strings.NewReplacer(":", "", " ", "", "-", "").Replace(t)
	if _, err := hex.DecodeString(t); err != nil || len(t) != 64 {
		return "", fmt.Errorf("--ca-fingerprint %q: want the CA's SHA-256 fingerprint, 64 hex digits (colons optional)", s)
	}
	return t, nil
}

func sameFingerprint(cert *x509.Certificate, want string) bool {
	got, _ := normalFingerprint(fingerprint(cert))
	return got == want
}

// isTerminal reports whether r is a terminal the user can answer at
// (/dev/null, a pipe or a file is not).
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && fileIsTerminal(f) // tty_*.go
}

// parseCAPEM returns the first certificate of a PEM file.
func parseCAPEM(b []byte) (*x509.Certificate, error) {
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return nil, errors.New("no PEM certificate in it")
		}
		if blk.Type == "CERTIFICATE" {
			return x509.ParseCertificate(blk.Bytes)
		}
	}
}

// pinCA decides the CA a login to addr pins: nil for a plain http://
// address or a server the system's roots verify, else the PEM of the CA
// the user trusted. A CA the user did not confirm, a fingerprint that does
// not match and a server whose CA is not the one pinned before are errors
// that say what to do.
func pinCA(ctx context.Context, addr string, o trustOptions) ([]byte, error) {
	u, err := url.Parse(addr)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("--addr %q: want https://HOST:PORT or http://HOST:PORT", addr)
	}
	if u.Scheme != "https" {
		if o.fingerprint != "" || o.caFile != "" {
			return nil, fmt.Errorf("--ca-fingerprint and --ca-file are for an https:// address, not %s", addr)
		}
		return nil, nil
	}
	var want string
	if o.fingerprint != "" {
		if want, err = normalFingerprint(o.fingerprint); err != nil {
			return nil, err
		}
	}
	if o.caFile != "" {
		b, err := os.ReadFile(o.caFile)
		if err != nil {
			return nil, fmt.Errorf("--ca-file: %w", err)
		}
		ca, err := parseCAPEM(b)
		if err != nil {
			return nil, fmt.Errorf("--ca-file %s: %w", o.caFile, err)
		}
		if want != "" && !sameFingerprint(ca, want) {
			return nil, errors.New(tr("trust.file_fingerprint", o.caFile, fingerprint(ca), o.fingerprint))
		}
		if err := probe(ctx, addr, b); err != nil {
			return nil, errors.New(tr("trust.file_refused", addr, o.caFile, certReason(err)))
		}
		return b, nil
	}
	if want == "" && len(o.pinned) > 0 {
		err := probe(ctx, addr, o.pinned)
		if err == nil {
			return o.pinned, nil
		}
		var ce *client.CertError
		var he x509.HostnameError
		if !errors.As(err, &ce) {
			return nil, err
		} else if errors.As(err, &he) {
			return nil, errors.New(certErrorText(ce))
		}
		offered := "?"
		if ca, _, ferr := fetchCA(ctx, addr); ferr == nil {
			offered = fingerprint(ca)
		}
		return nil, errors.New(tr("trust.pin_changed", addr, offered, addr))
	}
	if want == "" {
		err := probe(ctx, addr, nil)
		if err == nil {
			return nil, nil // the system's roots vouch for it
		}
		var ce *client.CertError
		if !errors.As(err, &ce) {
			return nil, err
		}
	}
	ca, caPEM, err := fetchCA(ctx, addr)
	if err != nil {
		return nil, err
	}
	fp := fingerprint(ca)
	switch {
	case want != "":
		if !sameFingerprint(ca, want) {
			return nil, errors.New(tr("trust.fingerprint_mismatch", addr, fp, o.fingerprint))
		}
	case o.tty:
		fmt.Fprint(o.out, tr("trust.ask", addr, fp, addr))
		answer, err := readLine(o.in)
		if err != nil {
			return nil, err
		}
		if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
			return nil, errors.New(tr("trust.declined"))
		}
	default:
		return nil, errors.New(tr("trust.unattended", addr, fp, addr, fp))
	}
	return caPEM, nil
}

// probe makes one request to addr trusting only caPEM (nil: the system's
// roots); a certificate that does not verify is a *client.CertError.
func probe(ctx context.Context, addr string, caPEM []byte) error {
	c, err := client.NewTrusting(addr, "", caPEM)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Addr+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		var ve *tls.CertificateVerificationError
		if errors.As(err, &ve) {
			return &client.CertError{Addr: c.Addr, Pinned: caPEM != nil, Err: ve.Err}
		}
		return fmt.Errorf("cannot reach Gantry at %s: %w", c.Addr, err)
	}
	resp.Body.Close()
	return nil
}

// fetchCA reads the cluster CA from addr over a connection that does not
// verify the server (nothing is trusted until the user confirms the
// fingerprint), and checks that the certificate the server presented is
// the CA's for this host: a server presenting an operator's certificate
// (--tls-cert) needs --ca-file.
func fetchCA(ctx context.Context, addr string) (*x509.Certificate, []byte, error) {
	t := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}, //nolint:gosec // verified below against the fetched CA
		Proxy: http.ProxyFromEnvironment, DialContext: (&net.Dialer{Timeout: 10 * time.Second}).DialContext}
	defer t.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	base := strings.TrimRight(addr, "/")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+caRoute, nil)
	if err != nil {
		return nil, nil, err
	}
	resp, err := (&http.Client{Transport: t}).Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot reach Gantry at %s: %w", base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, nil, fmt.Errorf("read the CA from %s: %w", base, err)
	}
	if resp.StatusCode != http.StatusOK || resp.TLS == nil || len(resp.TLS.PeerCertificates) == 0 {
		return nil, nil, errors.New(tr("trust.no_ca", base, resp.Status))
	}
	ca, err := parseCAPEM(b)
	if err != nil {
		return nil, nil, errors.New(tr("trust.no_ca", base, err.Error()))
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	inter := x509.NewCertPool()
	for _, c := range resp.TLS.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	host := req.URL.Hostname()
	if _, err := resp.TLS.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, DNSName: host}); err != nil {
		return nil, nil, errors.New(tr("trust.not_cluster_ca", base, certReason(err)))
	}
	return ca, b, nil
}

// certReason is the x509 reason of a certificate error, for one line.
func certReason(err error) string {
	var ce *client.CertError
	if errors.As(err, &ce) {
		err = ce.Err
	}
	return err.Error()
}

// certErrorText says what to do about a server whose certificate did not
// verify on a command after login.
func certErrorText(e *client.CertError) string {
	var he x509.HostnameError
	switch {
	case errors.As(e.Err, &he):
		return tr("trust.wrong_host", e.Addr, certReason(e))
	case e.Pinned:
		return tr("trust.pin_refused", e.Addr, e.Addr)
	default:
		return tr("trust.untrusted", e.Addr, e.Addr)
	}
}
